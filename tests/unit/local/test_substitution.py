"""The one ``${...}`` substitution (Fn::Sub, DefinitionSubstitutions) and the definition renderer."""

from __future__ import annotations

import pytest

from p1_retrain.local.errors import LocalStackError
from p1_retrain.local.intrinsics import placeholders, substitute
from p1_retrain.local.template import render_definition


def test_substitute_fills_every_placeholder_and_keeps_escaped_ones():
    text = "${A}-${B.Arn}-${AWS::Region}-${!Literal}"
    values = {"A": 1, "B.Arn": "arn:b", "AWS::Region": "us-east-1"}
    assert substitute(text, values) == "1-arn:b-us-east-1-${!Literal}"
    assert placeholders(text) == {"A", "B.Arn", "AWS::Region"}


def test_a_missing_name_is_a_key_error_unless_kept():
    with pytest.raises(KeyError, match=r"no substitution for \$\{B\}"):
        substitute("${A}${B}", {"A": "a"})
    assert substitute("${A}${B}", {"A": "a"}, keep_unknown=True) == "a${B}"


def test_a_function_may_supply_the_values():
    assert substitute("${x}/${y}", str.upper) == "X/Y"


def test_render_definition_names_missing_substitutions_and_bad_json():
    definition = '{"Resource": "${FnArn}", "Seconds": ${Wait}}'
    assert render_definition("M", definition, {"FnArn": "arn:f", "Wait": "5"}) == (
        '{"Resource": "arn:f", "Seconds": 5}'
    )
    with pytest.raises(LocalStackError, match="state machine M: no DefinitionSubstitutions for FnArn, Wait"):
        render_definition("M", definition, {})
    with pytest.raises(LocalStackError, match="M: the substituted definition is not valid JSON"):
        render_definition("M", definition, {"FnArn": "arn:f", "Wait": "five"})
