"""p1_retrain.local.event_rules: EventBridge's pattern checks and matching semantics (event-ruler's)."""

from __future__ import annotations

import pytest

from p1_retrain.local.event_rules import InvalidEventPattern, compile_pattern, matches, validate_pattern

EVENT = {
    "source": "aws.ec2",
    "resources": ["arn:a", "arn:b"],
    "detail": {
        "state": "running",
        "count": 5,
        "ratio": 0.5,
        "flag": True,
        "none": None,
        "ip": "10.0.0.33",
        "tags": ["red", "Blue"],
        "huge": 6_000_000_000,
        "employees": [
            {"first": "John", "last": "Doe"},
            {"first": "Anna", "last": "Smith"},
        ],
    },
}


@pytest.mark.parametrize(
    ("pattern", "path", "message"),
    [
        ({"a": [1], "$or": [{"a": [2]}, {"b": [3]}]}, None, "Path `a` cannot be allowed multiple times"),
        ({"$or": [{"a": [2]}, {"b": [3]}], "a": [1]}, None, "Path `a` cannot be allowed multiple times"),
        (
            {"d": {"$or": [{"x": [1], "$or": [{"x": [2]}, {"y": [3]}]}, {"y": [1]}]}},
            None,
            "Path `d.x` cannot be allowed multiple times",
        ),
        ({"a": {"b": [1]}, "$or": [{"a": {"b": [2]}}, {"c": [1]}]}, None, "Path `a.b` cannot be allowed"),
        ({"a": []}, "a", "empty arrays are not allowed"),
        ({"a": {}}, "a", "empty objects are not allowed"),
        ({"a": "x"}, None, '"a" must be an object or an array'),
        ({"$or": [{"a": [1]}]}, "$or", "at least 2 objects"),
        ({"$or": {"a": [1]}}, "$or", "array of objects"),
        ({"$or": [{"prefix": ["x"]}, {"b": [1]}]}, None, "`prefix` is an operator"),
        ({"a": [{"regex": "x.*"}]}, "a", "unrecognized match type `regex`"),
        ({"a": [{"exactly": "x"}]}, "a", "unrecognized match type `exactly`"),
        ({"a": [{"prefix": 1}]}, "a", "prefix needs a string"),
        ({"a": [{"prefix": {"ignore": "x"}}]}, "a", "equals-ignore-case"),
        ({"a": [{"prefix": "x", "suffix": "y"}]}, "a", "exactly one operator"),
        ({"a": [{"wildcard": "a**b"}]}, "a", "consecutive wildcard"),
        ({"a": [{"wildcard": "a\\b"}]}, "a", "backslash"),
        ({"a": [{"anything-but": {"contains": "x"}}]}, "a", "unsupported anything-but pattern `contains`"),
        ({"a": [{"anything-but": ["x", 1]}]}, "a", "only strings or only numbers"),
        ({"a": [{"anything-but": []}]}, "a", "only strings or only numbers"),
        ({"a": [{"anything-but": {"prefix": ""}}]}, "a", "cannot be empty"),
        ({"a": [{"numeric": [">"]}]}, "a", "numeric takes"),
        ({"a": [{"numeric": ["!=", 1]}]}, "a", "unrecognized numeric operator"),
        ({"a": [{"numeric": ["<", 1, ">", 0]}]}, "a", "a numeric range is"),
        ({"a": [{"numeric": [">", 5, "<", 1]}]}, "a", "is empty"),
        ({"a": [{"numeric": [">", 5e9]}]}, "a", "outside EventBridge's range"),
        ({"a": [{"numeric": [">", "0"]}]}, "a", "is not a number"),
        ({"a": [{"exists": "yes"}]}, "a", "exists must be true or false"),
        ({"a": [{"cidr": "10.0.0.0/33"}]}, "a", "not an IPv4 or IPv6 network"),
        ({"a": [[1]]}, "a", "a match value must be"),
        ("[1]", None, "not a JSON object"),
        ("{", None, "not valid JSON"),
    ],
)
def test_patterns_eventbridge_rejects(pattern, path, message):
    with pytest.raises(InvalidEventPattern, match=message.replace("(", r"\(").replace("*", r"\*")) as raised:
        validate_pattern(pattern)
    assert raised.value.path == path


def test_or_expands_into_branches_that_inherit_the_fields_beside_it():
    branches = compile_pattern({"s": ["x"], "$or": [{"a": [1]}, {"b": [2], "$or": [{"c": [3]}, {"d": [4]}]}]})
    assert [sorted(branch) for branch in branches] == [
        [("a",), ("s",)],
        [("b",), ("c",), ("s",)],
        [("b",), ("d",), ("s",)],
    ]


def test_the_same_path_in_two_branches_is_allowed():
    validate_pattern({"$or": [{"a": [{"prefix": "x"}], "n": [1]}, {"a": [{"suffix": "y"}]}]})


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ({"state": ["running"]}, True),
        ({"state": ["stopped", "running"]}, True),
        ({"state": ["Running"]}, False),
        ({"state": [{"equals-ignore-case": "RUNNING"}]}, True),
        ({"state": [{"prefix": "run"}]}, True),
        ({"state": [{"prefix": {"equals-ignore-case": "RUN"}}]}, True),
        ({"state": [{"suffix": "ing"}]}, True),
        ({"state": [{"suffix": {"equals-ignore-case": "ING"}}]}, True),
        ({"state": [{"wildcard": "r*n*g"}]}, True),
        ({"state": [{"wildcard": "r*x"}]}, False),
        ({"state": [{"anything-but": "running"}]}, False),
        ({"state": [{"anything-but": ["stopped", "pending"]}]}, True),
        ({"state": [{"anything-but": {"prefix": "run"}}]}, False),
        ({"state": [{"anything-but": {"prefix": ["x", "y"]}}]}, True),
        ({"state": [{"anything-but": {"suffix": "ing"}}]}, False),
        ({"state": [{"anything-but": {"equals-ignore-case": "RUNNING"}}]}, False),
        ({"state": [{"anything-but": {"wildcard": "*unn*"}}]}, False),
        ({"count": [5]}, True),
        ({"count": [5.0]}, True),
        ({"count": ["5"]}, False),
        ({"state": [5]}, False),
        ({"count": [{"numeric": [">", 0, "<=", 5]}]}, True),
        ({"count": [{"numeric": [">", 5]}]}, False),
        ({"count": [{"numeric": ["=", 5]}]}, True),
        ({"ratio": [{"numeric": ["<", 1]}]}, True),
        ({"state": [{"numeric": [">", 0]}]}, False),  # numeric needs a number
        ({"flag": [{"numeric": [">", 0]}]}, False),  # true is not 1
        ({"flag": [True]}, True),
        ({"flag": [1]}, False),
        ({"none": [None]}, True),
        ({"none": [{"exists": True}]}, True),
        ({"count": [{"anything-but": 4}]}, True),
        ({"count": [{"anything-but": [5, 6]}]}, False),
        ({"count": [{"anything-but": "5"}]}, True),  # a string exclusion does not exclude the number
        ({"huge": [{"numeric": [">", 0]}]}, False),  # beyond EventBridge's documented numeric range
        ({"huge": [6_000_000_000]}, True),
        ({"ip": [{"cidr": "10.0.0.0/24"}]}, True),
        ({"ip": [{"cidr": "10.0.1.0/24"}]}, False),
        ({"ip": ["10.0.0.33"]}, True),
        ({"tags": ["Blue"]}, True),  # an array matches if any element does
        ({"tags": [{"anything-but": "red"}]}, True),  # ... also for anything-but
        ({"tags": [{"anything-but": ["red", "Blue"]}]}, False),
        ({"missing": [{"exists": False}]}, True),
        ({"missing": [{"exists": True}]}, False),
        ({"missing": [{"anything-but": "x"}]}, False),  # anything-but needs the field
        ({"missing": [{"anything-but": {"prefix": "x"}}]}, False),
        ({"missing": [{"prefix": ""}]}, False),
        ({"state": [{"exists": False}]}, False),
        ({"employees": [{"exists": False}]}, True),  # exists looks at leaves only
        ({"employees": {"first": ["Anna"]}}, True),
        ({"employees": {"first": ["Anna"], "last": ["Smith"]}}, True),
        ({"employees": {"first": ["Anna"], "last": ["Doe"]}}, False),  # one array element at a time
        ({"nowhere": {"deeper": [{"exists": False}]}}, True),
        ({"nowhere": {"deeper": ["x"]}}, False),
    ],
)
def test_matching(detail, expected):
    assert matches({"detail": detail}, EVENT) is expected


def test_top_level_arrays_and_or():
    assert matches({"resources": ["arn:b"]}, EVENT)
    either = [{"detail": {"count": [6]}}, {"resources": ["arn:a"]}]
    assert not matches({"source": ["aws.s3"], "$or": either}, EVENT)
    assert matches({"source": ["aws.ec2"], "$or": either}, EVENT)
    assert matches({"$or": [{"source": ["aws.s3"]}, {"detail": {"state": [{"prefix": "run"}]}}]}, EVENT)
    assert not matches({"$or": [{"source": ["aws.s3"]}, {"detail": {"state": ["stopped"]}}]}, EVENT)


def test_matching_an_invalid_pattern_raises():
    with pytest.raises(InvalidEventPattern):
        matches({"a": [1], "$or": [{"a": [2]}, {"b": [1]}]}, {"a": 1})


def test_a_json_text_pattern_is_accepted():
    assert matches('{"detail": {"count": [{"numeric": [">=", 5]}]}}', EVENT)
