"""Read ``template.yaml`` and turn it into CloudFormation that moto can deploy, offline.

The SAM transform runs locally (``samtranslator``). Local paths that ``sam build`` would package
(function code, layer content, state machine definitions) are replaced by placeholders; what they
pointed at is kept in a :class:`LocalTemplate` so the local stack can use the real files instead.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import intrinsics_multi_constructor

from p1_retrain.local import sessions
from p1_retrain.local.errors import LocalStackError
from p1_retrain.local.intrinsics import placeholders, substitute

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
SERVERLESS_LAYER = "AWS::Serverless::LayerVersion"
SERVERLESS_STATE_MACHINE = "AWS::Serverless::StateMachine"
SECRET_TYPE = "AWS::SecretsManager::Secret"  # noqa: S105 - a resource type, not a password
STATE_MACHINE = "AWS::StepFunctions::StateMachine"
BUCKET = "AWS::S3::Bucket"
ARTIFACT_BUCKET = "p1-retrain-local-artifacts"
# Packages a layer ships that keep process-wide caches (Parameters, Metrics): imported afresh per stack,
# like the project's own layer code, whether an AWS-managed layer (by name in its ARN) or the project's
# layer (by distribution name in its requirements.txt) provides them.
MANAGED_LAYER_PACKAGES = {"AWSLambdaPowertoolsPython": "aws_lambda_powertools"}
LAYER_REQUIREMENT_PACKAGES = {"aws-lambda-powertools": "aws_lambda_powertools"}
PLACEHOLDER_DEFINITION = {"StartAt": "Placeholder", "States": {"Placeholder": {"Type": "Pass", "End": True}}}


@dataclass(frozen=True)
class FunctionSource:
    """Where a function's real code lives: ``<code_dir>/<module>.py`` exposing ``<attribute>``."""

    logical_id: str
    code_dir: Path
    module: str
    attribute: str

    @property
    def module_path(self) -> Path:
        return self.code_dir / f"{self.module}.py"


@dataclass(frozen=True)
class StateMachineSource:
    """A state machine's definition text (``${...}`` placeholders intact) and its substitutions."""

    logical_id: str
    definition: str
    substitutions: dict[str, Any]


@dataclass
class LocalTemplate:
    """The SAM template, its CloudFormation translation, and what the placeholders stand for."""

    path: Path
    sam: dict[str, Any]
    cloudformation: dict[str, Any]
    functions: dict[str, FunctionSource] = field(default_factory=dict)
    state_machines: dict[str, StateMachineSource] = field(default_factory=dict)
    layers: list[str] = field(default_factory=list)

    def layer_folders(self) -> list[Path]:
        """Local folders of the template's own layers (their packages are the layer's content)."""
        folders = []
        for resource in self.sam["Resources"].values():
            if resource.get("Type") == SERVERLESS_LAYER:
                uri = resource.get("Properties", {}).get("ContentUri")
                if isinstance(uri, str) and not uri.startswith("s3://"):
                    folders.append((self.path.parent / uri).resolve())
        return folders

    def managed_layer_packages(self) -> list[str]:
        """Packages of the AWS-managed layers the functions list (by layer name in the ARN)."""
        layers = [self.sam.get("Globals", {}).get("Function", {}).get("Layers", [])]
        layers += [
            resource.get("Properties", {}).get("Layers", [])
            for resource in self.sam["Resources"].values()
            if resource.get("Type") == SERVERLESS_FUNCTION
        ]
        text = json.dumps(layers)
        packages = {package for name, package in MANAGED_LAYER_PACKAGES.items() if name in text}
        for folder in self.layer_folders():
            requirements = folder / "requirements.txt"
            if requirements.is_file():
                for line in requirements.read_text(encoding="utf-8").splitlines():
                    name = re.split(r"[\s\[=<>!~;#]", line.strip(), maxsplit=1)[0].lower()
                    if name in LAYER_REQUIREMENT_PACKAGES:
                        packages.add(LAYER_REQUIREMENT_PACKAGES[name])
        return sorted(packages)

    @property
    def parameters(self) -> dict[str, Any]:
        return self.cloudformation.get("Parameters", {})

    def resources_of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """CloudFormation resources of one type, by logical id."""
        resources = self.cloudformation.get("Resources", {})
        return {name: body for name, body in resources.items() if body.get("Type") == resource_type}


def load_template(path: str | Path) -> dict[str, Any]:
    """Parse a SAM/CloudFormation YAML or JSON template (short-form tags such as ``!Ref`` included)."""
    template_path = Path(path)
    if not template_path.is_file():
        raise LocalStackError(f"template not found: {template_path}")
    stat = template_path.stat()
    document = _parsed(template_path.resolve(), stat.st_mtime_ns, stat.st_size)
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise LocalStackError(f"{template_path.name} has no Resources section")
    return copy.deepcopy(document)


class _TemplateLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML's safe loader (libyaml's when built) with samtranslator's constructor for ``!Ref`` & co."""


_TemplateLoader.add_multi_constructor("!", intrinsics_multi_constructor)


@functools.lru_cache(maxsize=8)
def _parsed(path: Path, mtime_ns: int, size: int) -> Any:
    """One parse per version of a file (every local stack, test and benchmark reads the same template);
    callers get a deep copy."""
    del mtime_ns, size  # part of the cache key only
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_TemplateLoader)  # noqa: S506 - a safe loader


def check_parameters(sam: dict[str, Any], overrides: dict[str, str], template_name: str) -> None:
    """Refuse overrides of parameters the template does not declare (a typo would be silently ignored)."""
    declared = sam.get("Parameters", {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise LocalStackError(
            f"{template_name} declares no parameter(s) {', '.join(unknown)}; "
            f"declared: {', '.join(sorted(declared)) or 'none'}"
        )


def _function_source(
    name: str, properties: dict[str, Any], globals_: dict[str, Any], base: Path
) -> FunctionSource:
    code_uri = properties.get("CodeUri", globals_.get("CodeUri"))
    handler = properties.get("Handler", globals_.get("Handler"))
    if properties.get("PackageType", globals_.get("PackageType", "Zip")) != "Zip":
        raise LocalStackError(f"function {name}: only zip functions can run in the local stack")
    if not isinstance(code_uri, str) or code_uri.startswith("s3://"):
        raise LocalStackError(f"function {name}: CodeUri must be a local folder, got {code_uri!r}")
    if not isinstance(handler, str) or "." not in handler:
        raise LocalStackError(f"function {name}: Handler must look like module.function, got {handler!r}")
    module, _, attribute = handler.rpartition(".")
    source = FunctionSource(name, (base / code_uri).resolve(), module.replace(".", "/"), attribute)
    if not source.module_path.is_file():
        raise LocalStackError(f"function {name}: {source.module_path} not found")
    return source


def _state_machine_source(name: str, properties: dict[str, Any], base: Path) -> StateMachineSource:
    substitutions = properties.get("DefinitionSubstitutions", {})
    if "DefinitionUri" in properties:
        uri = properties["DefinitionUri"]
        if not isinstance(uri, str) or uri.startswith("s3://"):
            raise LocalStackError(f"state machine {name}: DefinitionUri must be a local file, got {uri!r}")
        definition_path = (base / uri).resolve()
        if not definition_path.is_file():
            raise LocalStackError(f"state machine {name}: {definition_path} not found")
        text = definition_path.read_text(encoding="utf-8")
    elif isinstance(properties.get("Definition"), dict):
        text = json.dumps(properties["Definition"])
    else:
        raise LocalStackError(f"state machine {name}: needs DefinitionUri or Definition")
    return StateMachineSource(name, text, substitutions)


def prepare(sam: dict[str, Any], template_path: Path) -> tuple[dict[str, Any], LocalTemplate]:
    """Replace local artefact paths by placeholders; return the prepared SAM document and the sources."""
    prepared = copy.deepcopy(sam)
    base = template_path.parent
    local = LocalTemplate(path=template_path, sam=sam, cloudformation={})
    function_globals = prepared.get("Globals", {}).get("Function", {})
    for name, resource in prepared["Resources"].items():
        resource_type = resource.get("Type")
        properties = resource.setdefault("Properties", {})
        if resource_type == SERVERLESS_FUNCTION:
            source = _function_source(name, properties, function_globals, base)
            local.functions[name] = source
            properties.pop("CodeUri", None)
            relative = source.module_path.relative_to(base) if source.module_path.is_relative_to(base) else ""
            properties["InlineCode"] = f"# runs in a local worker from {relative or source.module_path.name}"
        elif resource_type == SERVERLESS_LAYER:
            local.layers.append(name)
            properties["ContentUri"] = {"Bucket": ARTIFACT_BUCKET, "Key": f"{name}.zip"}
        elif resource_type == SERVERLESS_STATE_MACHINE:
            source = _state_machine_source(name, properties, base)
            local.state_machines[name] = source
            # The definition is only valid JSON once substituted; the stack creates the state machine
            # from the file itself after deployment, so the transform gets a placeholder.
            properties.pop("DefinitionUri", None)
            properties["Definition"] = PLACEHOLDER_DEFINITION
    function_globals.pop("CodeUri", None)
    return prepared, local


def translate(prepared: dict[str, Any], parameters: dict[str, str], region: str) -> dict[str, Any]:
    """Run the SAM transform offline and return the CloudFormation document."""
    if "Transform" not in prepared:
        return copy.deepcopy(prepared)
    translator = Translator(
        managed_policy_map=None, sam_parser=Parser(), boto_session=sessions.session(region)
    )
    try:
        return translator.translate(
            copy.deepcopy(prepared),
            parameter_values=dict(parameters),
            get_managed_policy_map=lambda: get_bundled_managed_policy_map("aws") or {},
        )
    except InvalidDocumentException as exc:
        details = "; ".join(str(cause) for cause in exc.causes)
        raise LocalStackError(f"SAM transform failed: {details}") from exc


def build(template_path: str | Path, parameters: dict[str, str], region: str) -> LocalTemplate:
    """Load, check, prepare and translate ``template_path``."""
    path = Path(template_path).resolve()
    sam = load_template(path)
    check_parameters(sam, parameters, path.name)
    prepared, local = prepare(sam, path)
    local.cloudformation = translate(prepared, parameters, region)
    return local


def replace_refs(node: Any, values: dict[str, dict[str, str]]) -> Any:
    """Replace references to the logical ids in ``values`` by literals: ``{"Ref": X}`` by
    ``values[X]["Ref"]``, ``{"Fn::GetAtt": [X, A]}`` by ``values[X][A]``, and the same inside ``Fn::Sub``."""
    if isinstance(node, list):
        return [replace_refs(item, values) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"} and node["Ref"] in values:
        return values[node["Ref"]]["Ref"]
    if set(node) == {"Fn::GetAtt"}:
        target = node["Fn::GetAtt"]
        name, attribute = target if isinstance(target, list) else str(target).split(".", 1)
        if name in values:
            return values[name][attribute]
    if set(node) == {"Fn::Sub"}:
        body = node["Fn::Sub"]
        if isinstance(body, str):
            return {"Fn::Sub": _sub_text(body, values)}
        if isinstance(body, list) and body and isinstance(body[0], str):
            return {"Fn::Sub": [_sub_text(body[0], values), *replace_refs(body[1:], values)]}
    return {key: replace_refs(value, values) for key, value in node.items()}


def _sub_text(text: str, values: dict[str, dict[str, str]]) -> str:
    literals = {
        name if attribute == "Ref" else f"{name}.{attribute}": value
        for name, attributes in values.items()
        for attribute, value in attributes.items()
    }
    return substitute(text, literals, keep_unknown=True)


def render_definition(logical_id: str, definition: str, values: dict[str, Any]) -> str:
    """A state machine definition with its ``DefinitionSubstitutions`` filled in, as Step Functions does:
    every placeholder needs a value, and the result must be JSON."""
    missing = sorted(placeholders(definition) - set(values))
    if missing:
        raise LocalStackError(
            f"state machine {logical_id}: no DefinitionSubstitutions for {', '.join(missing)}"
        )
    rendered = substitute(definition, values)
    try:
        json.loads(rendered)
    except json.JSONDecodeError as exc:
        raise LocalStackError(
            f"state machine {logical_id}: the substituted definition is not valid JSON ({exc})"
        ) from exc
    return rendered
