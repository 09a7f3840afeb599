"""Fixtures for the template and state machine checks: the SAM template, its translation, the ASL files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from p1_retrain.local import template as tpl
from p1_retrain.local.intrinsics import placeholders, substitute

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"
REGION = "us-east-1"
ACCOUNT = "123456789012"
SAMPLE_BUCKET = "p1-retrain-databucket-1a2b3c4d5e6f"  # the bucket named in events/*object-created*.json


def load_sam_template() -> dict[str, Any]:
    """template.yaml with CloudFormation short-form tags decoded (``!Ref`` -> ``{"Ref": ...}``)."""
    return tpl.load_template(TEMPLATE)


def resolve_bucket(node: Any) -> Any:
    """``node`` (a rule's pattern) with every ``!Ref DataBucket`` replaced by the sample bucket name."""
    if isinstance(node, dict):
        if node == {"Ref": "DataBucket"}:
            return SAMPLE_BUCKET
        return {key: resolve_bucket(value) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve_bucket(item) for item in node]
    return node


def state_machines(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Serverless state machines by logical id."""
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::StateMachine"
    }


def sample_substitutions(names: list[str], overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Plausible values for the ASL placeholders: ARNs for ``...Arn``, small numbers for retry settings."""
    values: dict[str, str] = {}
    for name in names:
        if name.endswith("FunctionArn"):
            function = name.removesuffix("Arn")
            values[name] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"
        elif name.endswith("TopicArn"):
            values[name] = f"arn:aws:sns:{REGION}:{ACCOUNT}:{name.removesuffix('Arn')}"
        else:
            values[name] = "1"
    values.update(overrides or {})
    return values


@pytest.fixture(scope="session")
def sam_template() -> dict[str, Any]:
    return load_sam_template()


@pytest.fixture(scope="session")
def cfn_template(sam_template: dict[str, Any]) -> dict[str, Any]:
    """The template after the SAM transform (local artefact paths replaced by S3 placeholders)."""
    prepared = json.loads(json.dumps(sam_template))
    for name, resource in prepared["Resources"].items():
        properties = resource.get("Properties", {})
        for uri in ("CodeUri", "ContentUri", "DefinitionUri"):
            if isinstance(properties.get(uri), str):
                properties[uri] = f"s3://artifacts/{name}"
    return tpl.translate(prepared, {}, REGION)


@pytest.fixture(scope="session")
def retrain_properties(sam_template: dict[str, Any]) -> dict[str, Any]:
    return state_machines(sam_template)["RetrainStateMachine"]


@pytest.fixture(scope="session")
def retrain_text(retrain_properties: dict[str, Any]) -> str:
    return (ROOT / retrain_properties["DefinitionUri"]).read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def retrain_asl(retrain_text: str, render_asl: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """statemachine/retrain.asl.json, substituted with sample values and parsed."""
    return render_asl(retrain_text)


@pytest.fixture(scope="session")
def state_machine_sources(sam_template: dict[str, Any]) -> dict[str, tuple[dict[str, Any], str]]:
    """Every serverless state machine: (its properties, its definition file's raw text)."""
    return {
        name: (properties, (ROOT / properties["DefinitionUri"]).read_text(encoding="utf-8"))
        for name, properties in state_machines(sam_template).items()
    }


@pytest.fixture(scope="session")
def render_asl() -> Callable[..., dict[str, Any]]:
    """``render_asl(text, overrides)``: fill every placeholder (sample values unless overridden), parse."""

    def render(text: str, overrides: dict[str, str] | None = None) -> dict[str, Any]:
        names = sorted(placeholders(text))
        return json.loads(substitute(text, sample_substitutions(names, overrides)))

    return render


@pytest.fixture(scope="session")
def load_event() -> Callable[[str], Any]:
    def load(name: str) -> Any:
        return json.loads((EVENTS / name).read_text(encoding="utf-8"))

    return load
