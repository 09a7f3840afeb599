"""``p1-retrain keys`` against a moto server over HTTP: the secret is found from a CloudFormation stack
(or named with ``--secret-id``), ``set`` merges one entry, ``list`` prints names only, ``remove`` deletes
one entry, and the key never reaches stdout or stderr."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from p1_retrain import cli, keys

REGION = "ap-northeast-1"
KEY = "pk-Secret-1234567890abcdef"
OTHER = "pk-other-key-0987654321"
ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _client(endpoint: str, service: str):
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint)


@pytest.fixture
def stack(endpoint: str) -> tuple[str, str]:
    """A stack whose output ``ApiKeysSecretArn`` names a secret that already holds one model."""
    name = f"keys-{uuid.uuid4().hex[:12]}"
    secret = _client(endpoint, "secretsmanager").create_secret(
        Name=f"{name}/prediction-one-api-keys",
        SecretString=json.dumps({"sales": {"api_key": OTHER, "auto_switch": True}}),
    )
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"ApiKeysSecretArn": {"Value": secret["ARN"]}},
    }
    _client(endpoint, "cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))
    return name, secret["ARN"]


def _secret(endpoint: str, arn: str) -> dict:
    return json.loads(_client(endpoint, "secretsmanager").get_secret_value(SecretId=arn)["SecretString"])


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(argv: list[str], stdin: io.StringIO, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    args = cli.build_parser().parse_args(argv)
    args.stdin = stdin
    code = keys.run(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_set_from_stdin_merges_into_the_stack_secret(endpoint, stack, capsys) -> None:
    name, arn = stack
    argv = ["keys", "set", "--stack", name, "churn", "--region", REGION, "--endpoint-url", endpoint]
    code, out, err = _run(argv, io.StringIO(KEY + "\n"), capsys)
    assert code == 0, err
    assert _secret(endpoint, arn) == {"sales": {"api_key": OTHER, "auto_switch": True}, "churn": KEY}
    assert "added the API key of model churn" in out
    assert KEY not in out + err


def test_set_from_the_hidden_prompt_replaces_the_key_and_keeps_auto_switch(
    endpoint, stack, capsys, monkeypatch
) -> None:
    name, arn = stack
    prompts: list[str] = []

    def fake_getpass(prompt: str) -> str:
        prompts.append(prompt)
        return KEY

    monkeypatch.setattr(keys.getpass, "getpass", fake_getpass)
    argv = ["keys", "set", "--stack", name, "sales", "--region", REGION, "--endpoint-url", endpoint]
    code, out, err = _run(argv, _Tty(""), capsys)
    assert code == 0, err
    assert prompts == ["Prediction One API key for model sales (input hidden): "]
    assert _secret(endpoint, arn) == {"sales": {"api_key": KEY, "auto_switch": True}}
    assert "replaced" in out
    assert KEY not in out + err


def test_set_auto_switch_default_drops_the_override(endpoint, stack, capsys) -> None:
    name, arn = stack
    argv = ["keys", "set", "--stack", name, "sales", "--auto-switch", "default"]
    code, _, err = _run([*argv, "--region", REGION, "--endpoint-url", endpoint], io.StringIO(KEY), capsys)
    assert code == 0, err
    assert _secret(endpoint, arn) == {"sales": KEY}


def test_list_prints_model_names_only(endpoint, stack, capsys) -> None:
    name, arn = stack
    _client(endpoint, "secretsmanager").put_secret_value(
        SecretId=arn, SecretString=json.dumps({"sales": OTHER, "churn": {"api_key": KEY}})
    )
    argv = ["keys", "list", "--stack", name, "--region", REGION, "--endpoint-url", endpoint]
    code, out, err = _run(argv, io.StringIO(), capsys)
    assert code == 0, err
    assert out.splitlines() == ["churn", "sales"]
    assert KEY not in out + err and OTHER not in out + err


def test_remove_deletes_one_entry_by_secret_id(endpoint, stack, capsys) -> None:
    _, arn = stack
    _client(endpoint, "secretsmanager").put_secret_value(
        SecretId=arn, SecretString=json.dumps({"sales": OTHER, "churn": KEY})
    )
    argv = ["keys", "remove", "--secret-id", arn, "churn", "--region", REGION, "--endpoint-url", endpoint]
    code, out, err = _run(argv, io.StringIO(), capsys)
    assert code == 0, err
    assert _secret(endpoint, arn) == {"sales": OTHER}
    assert "removed the API key of model churn" in out

    code, _, err = _run(argv, io.StringIO(), capsys)
    assert code == 1
    assert "model churn has no key" in err


def test_secret_found_from_the_stack_resource_without_outputs(endpoint, capsys) -> None:
    """No output: the stack's ApiKeysSecret resource names the secret (a queue stands in for it here)."""
    template = {"Resources": {"ApiKeysSecret": {"Type": "AWS::SQS::Queue"}}}
    cfn = _client(endpoint, "cloudformation")
    cfn.create_stack(StackName="keys-by-resource", TemplateBody=json.dumps(template))
    resource = cfn.describe_stack_resource(StackName="keys-by-resource", LogicalResourceId="ApiKeysSecret")
    physical = resource["StackResourceDetail"]["PhysicalResourceId"]
    _client(endpoint, "secretsmanager").create_secret(Name=physical, SecretString="{}")
    argv = ["keys", "set", "--stack", "keys-by-resource", "m1", "--region", REGION]
    argv += ["--endpoint-url", endpoint]
    code, _, err = _run(argv, io.StringIO(KEY), capsys)
    assert code == 0, err
    assert _secret(endpoint, physical) == {"m1": KEY}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("pk-with space", "whitespace at position 8 of 13"),
        ("pk-tab\there", "whitespace at position 7"),
        ("pk-\x07bell", "control character at position 4"),
        ("pk-ключ", "non-ASCII character at position 4"),
        ("", "the API key is empty"),
        ("first\nsecond", "more than one line"),
    ],
)
def test_bad_keys_are_refused_without_printing_them(endpoint, stack, capsys, value, problem) -> None:
    name, arn = stack
    before = _secret(endpoint, arn)
    argv = ["keys", "set", "--stack", name, "churn", "--region", REGION, "--endpoint-url", endpoint]
    code, out, err = _run(argv, io.StringIO(value), capsys)
    assert code == 1
    assert problem in err
    if value:
        assert value not in out + err
    assert _secret(endpoint, arn) == before


@pytest.mark.parametrize(
    ("model", "problem"), [("a/b", "contains '/'"), ("..", "not a folder name"), ("m\x00", "control")]
)
def test_bad_model_names_are_refused(endpoint, stack, capsys, model, problem) -> None:
    name, arn = stack
    before = _secret(endpoint, arn)
    argv = ["keys", "set", "--stack", name, model, "--region", REGION, "--endpoint-url", endpoint]
    code, _, err = _run(argv, io.StringIO(KEY), capsys)
    assert code == 1
    assert problem in err
    assert _secret(endpoint, arn) == before


def test_malformed_secret_is_reported_without_its_value(endpoint, stack, capsys) -> None:
    name, arn = stack
    _client(endpoint, "secretsmanager").put_secret_value(SecretId=arn, SecretString=f"not json {OTHER}")
    argv = ["keys", "list", "--stack", name, "--region", REGION, "--endpoint-url", endpoint]
    code, out, err = _run(argv, io.StringIO(), capsys)
    assert code == 1
    assert "not valid JSON" in err
    assert OTHER not in out + err


def test_unknown_stack_is_a_clear_error(endpoint, capsys) -> None:
    argv = ["keys", "list", "--stack", "no-such-stack", "--region", REGION, "--endpoint-url", endpoint]
    code, _, err = _run(argv, io.StringIO(), capsys)
    assert code == 1
    assert "no-such-stack" in err


@pytest.mark.slow
def test_the_installed_command_reads_stdin_and_never_prints_the_key(endpoint, stack) -> None:
    """The console script as a user runs it: key piped on stdin, not a terminal."""
    name, arn = stack
    command = Path(sys.executable).with_name("p1-retrain")
    argv = [str(command), "keys", "set", "--stack", name, "churn", "--region", REGION]
    done = subprocess.run(
        [*argv, "--endpoint-url", endpoint],
        input=KEY + "\n",
        capture_output=True,
        text=True,
        env={**os.environ, **ENV},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert KEY not in done.stdout + done.stderr
    assert _secret(endpoint, arn)["churn"] == KEY
