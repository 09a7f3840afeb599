"""samconfig.toml: the default, dev and prod environments build, lint and deploy the template as intended."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from samcli.cli.types import CfnParameterOverridesType

ROOT = Path(__file__).resolve().parents[3]
ENVIRONMENTS = ("default", "dev", "prod")


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))


def overrides(deploy: dict[str, Any]) -> dict[str, str]:
    """parameter_overrides as the SAM CLI reads them."""
    if "parameter_overrides" not in deploy:
        return {}
    return CfnParameterOverridesType().convert(deploy["parameter_overrides"], None, None)


def test_version_and_environments(config):
    assert config["version"] == 0.1
    assert set(ENVIRONMENTS) <= set(config)
    names = [config[env]["global"]["parameters"]["stack_name"] for env in ENVIRONMENTS]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_build_validate_and_deploy_settings(config, env):
    assert config[env]["build"]["parameters"] == {"cached": True, "parallel": True}
    assert config[env]["validate"]["parameters"]["lint"] is True
    deploy = config[env]["deploy"]["parameters"]
    assert set(deploy["capabilities"].split()) == {"CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"}
    assert deploy["resolve_s3"] is True


def test_prod_changes_are_reviewed(config):
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True
    assert (ROOT / "samconfig.toml").read_text(encoding="utf-8").count('# "NotificationEmail=') == 1


def test_dev_polls_faster_than_the_default(config, sam_template):
    dev = overrides(config["dev"]["deploy"]["parameters"])
    assert int(dev["PollIntervalSeconds"]) < sam_template["Parameters"]["PollIntervalSeconds"]["Default"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_overrides_name_real_parameters_with_allowed_values(config, sam_template, env):
    parameters = sam_template["Parameters"]
    for name, value in overrides(config[env]["deploy"]["parameters"]).items():
        assert name in parameters, f"{env}: {name} is not a template parameter"
        parameter = parameters[name]
        if "AllowedValues" in parameter:
            assert value in [str(allowed) for allowed in parameter["AllowedValues"]], f"{env}: {name}={value}"
        if parameter["Type"] == "Number":
            number = float(value)
            assert number >= parameter.get("MinValue", number), f"{env}: {name}={value}"
            assert number <= parameter.get("MaxValue", number), f"{env}: {name}={value}"
    dev_or_prod = overrides(config[env]["deploy"]["parameters"])
    if "PollIntervalSeconds" in dev_or_prod:
        assert float(dev_or_prod["MaxPollIntervalSeconds"]) >= float(dev_or_prod["PollIntervalSeconds"])


@pytest.mark.parametrize(
    ("env", "region"), [("default", "us-east-1"), ("dev", "us-east-1"), ("prod", "ap-northeast-1")]
)
def test_each_environment_says_where_it_deploys(config, env, region):
    """`make deploy ENV=...` and `sam delete --config-env ...` both read the region from here."""
    assert config[env]["global"]["parameters"]["region"] == region


def test_only_dev_opts_in_to_expiring_incoming_files(config):
    for env in ("default", "prod"):
        assert "IncomingExpirationDays" not in overrides(config[env]["deploy"]["parameters"])
    assert int(overrides(config["dev"]["deploy"]["parameters"])["IncomingExpirationDays"]) > 0
