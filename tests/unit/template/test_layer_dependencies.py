"""The libraries Lambda imports are the ones the tests ran: the layer pins what pyproject.toml pins."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.unit.template.conftest import ROOT

LAYER_REQUIREMENTS = ROOT / "layers" / "pipeline" / "requirements.txt"


def pins(lines: list[str]) -> dict[str, Requirement]:
    requirements = [Requirement(line) for line in (raw.split("#", 1)[0].strip() for raw in lines) if line]
    return {canonicalize_name(requirement.name): requirement for requirement in requirements}


def project_pins() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return pins(project["dependencies"])


def layer_pins() -> dict[str, Requirement]:
    return pins(LAYER_REQUIREMENTS.read_text(encoding="utf-8").splitlines())


def test_every_layer_requirement_is_pinned_exactly():
    for name, requirement in layer_pins().items():
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{name} is not pinned in {LAYER_REQUIREMENTS.name}"


def test_the_layer_ships_every_run_time_dependency_at_the_tested_release():
    layer, project = layer_pins(), project_pins()
    assert set(project) <= set(layer), f"missing from the layer: {sorted(set(project) - set(layer))}"
    for name in set(layer) & set(project):
        assert str(layer[name].specifier) == str(project[name].specifier), name
        assert layer[name].extras == project[name].extras, name


def test_powertools_with_its_tracer_comes_from_the_layer(sam_template):
    powertools = layer_pins()["aws-lambda-powertools"]
    assert powertools.extras == {"tracer"}
    assert sam_template["Globals"]["Function"]["Layers"] == [{"Ref": "PredictionOneLayer"}]
    assert "PowertoolsLayerVersion" not in sam_template["Parameters"]
