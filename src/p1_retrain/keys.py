"""``p1-retrain keys``: put, list and remove the Prediction One API keys of a deployed stack.

The stack's secret holds one JSON object, model name -> API key (or -> ``{"api_key": ..., "auto_switch":
true|false}``). ``put-secret-value`` replaces that whole object, so adding one model by hand easily wipes
the others; these commands read the secret, change one entry and write the merged object back.

- ``keys set --stack NAME MODEL`` reads the key from a hidden prompt (or from stdin when stdin is not a
  terminal), checks it and merges it in. The key is never echoed, printed or put in an error message.
- ``keys list --stack NAME`` prints the model names only.
- ``keys remove --stack NAME MODEL`` deletes one entry.

The secret is the stack's output ``ApiKeysSecretArn`` (or ``ApiKeysSecretName``), else its resource
``ApiKeysSecret``; ``--secret-id`` names it directly. Credentials come from the usual boto3 chain
(environment, profile, SSO, instance role); ``--region``, ``--profile`` and ``--endpoint-url`` (e.g. the
local stack of ``p1-retrain serve``) are passed to every client.

Two writers at the same time can still overwrite each other (Secrets Manager has no conditional put):
change keys from one place at a time.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import unicodedata
from typing import Any, TextIO

SECRET_LOGICAL_ID = "ApiKeysSecret"  # noqa: S105 -- a resource name, not a password
SECRET_OUTPUTS = ("ApiKeysSecretArn", "ApiKeysSecretName")
MAX_MODEL_BYTES = 512
MAX_KEY_LENGTH = 4096


class KeysError(Exception):
    """A problem the user can fix; the message never holds an API key."""


# ---------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------
def check_model(model: str) -> str:
    """A model is the folder under ``incoming/``: one path segment."""
    if not model:
        raise KeysError("the model name is empty")
    if "/" in model:
        raise KeysError(f"model name {model!r} contains '/': it is one folder name under incoming/")
    if model in {".", ".."}:
        raise KeysError(f"model name {model!r} is not a folder name")
    if model != model.strip():
        raise KeysError(f"model name {model!r} starts or ends with whitespace")
    for index, char in enumerate(model):
        if unicodedata.category(char).startswith("C"):
            raise KeysError(f"model name {model!r} contains a control character at position {index + 1}")
    if len(model.encode("utf-8")) > MAX_MODEL_BYTES:
        raise KeysError(f"model name is longer than {MAX_MODEL_BYTES} bytes")
    return model


def check_key(key: str) -> str:
    """An API key goes into an HTTP header: printable ASCII, no whitespace. Errors name the position only."""
    if not key:
        raise KeysError("the API key is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise KeysError(f"the API key is {len(key)} characters long; at most {MAX_KEY_LENGTH} are accepted")
    for index, char in enumerate(key):
        where = f"at position {index + 1} of {len(key)}"
        if char.isspace():
            raise KeysError(f"the API key contains whitespace {where}")
        if unicodedata.category(char).startswith("C"):
            raise KeysError(f"the API key contains a control character {where}")
        if not char.isascii():
            raise KeysError(f"the API key contains a non-ASCII character {where}")
    return key


def read_key(model: str, stdin: TextIO | None = None) -> str:
    """The key from a hidden prompt on a terminal, else the first line of stdin (its line end removed)."""
    stdin = stdin or sys.stdin
    if stdin.isatty():
        key = getpass.getpass(f"Prediction One API key for model {model} (input hidden): ")
    else:
        text = stdin.read()
        lines = text.splitlines()
        if len(lines) > 1 and any(line.strip() for line in lines[1:]):
            raise KeysError("stdin holds more than one line; give the API key alone")
        key = lines[0] if lines else ""
    return check_key(key)


# ---------------------------------------------------------------------------------------------------
# AWS
# ---------------------------------------------------------------------------------------------------
def _session(args: argparse.Namespace) -> Any:
    import boto3

    return boto3.session.Session(profile_name=args.profile, region_name=args.region)


def _client(args: argparse.Namespace, service: str) -> Any:
    return _session(args).client(service, endpoint_url=args.endpoint_url)


def find_secret(args: argparse.Namespace) -> str:
    """The secret's id: ``--secret-id``, else the stack's output, else the stack's resource."""
    if args.secret_id:
        return args.secret_id
    cfn = _client(args, "cloudformation")
    stacks = cfn.describe_stacks(StackName=args.stack)["Stacks"]
    outputs = {item["OutputKey"]: item.get("OutputValue") for item in stacks[0].get("Outputs") or []}
    for name in SECRET_OUTPUTS:
        if outputs.get(name):
            return outputs[name]
    resources = cfn.describe_stack_resources(StackName=args.stack, LogicalResourceId=SECRET_LOGICAL_ID)
    for resource in resources.get("StackResources") or []:
        if resource.get("PhysicalResourceId"):
            return resource["PhysicalResourceId"]
    raise KeysError(
        f"stack {args.stack!r} has no output {' or '.join(SECRET_OUTPUTS)} and no resource "
        f"{SECRET_LOGICAL_ID}; name the secret with --secret-id"
    )


def read_secret(secrets: Any, secret_id: str) -> dict[str, Any]:
    """The secret's JSON object ({} when it has no value yet). Messages never quote the value."""
    try:
        answer = secrets.get_secret_value(SecretId=secret_id)
    except secrets.exceptions.ResourceNotFoundException as exc:
        if "AWSCURRENT" in str(exc):  # the secret exists but has no value yet
            return {}
        raise
    text = answer.get("SecretString")
    if text is None:
        raise KeysError(f"secret {secret_id} holds binary data, not a JSON object of API keys")
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise KeysError(f"secret {secret_id}: its value is not valid JSON; fix or replace it first") from None
    if not isinstance(value, dict):
        raise KeysError(f"secret {secret_id}: its value is a JSON {type(value).__name__}, not an object")
    return value


def write_secret(secrets: Any, secret_id: str, value: dict[str, Any]) -> None:
    secrets.put_secret_value(SecretId=secret_id, SecretString=json.dumps(value, ensure_ascii=False))


# ---------------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------------
def merged_entry(old: Any, key: str, auto_switch: str | None) -> Any:
    """The new entry of a model: the key replaced, an existing ``auto_switch`` kept unless told otherwise."""
    keep = old.get("auto_switch") if isinstance(old, dict) else None
    if auto_switch == "default" or (auto_switch is None and not isinstance(keep, bool)):
        return key
    switch = keep if auto_switch is None else auto_switch == "true"
    return {"api_key": key, "auto_switch": switch}


def cmd_set(args: argparse.Namespace, out: TextIO) -> int:
    model = check_model(args.model)
    key = read_key(model, args.stdin)
    secret_id = find_secret(args)
    secrets = _client(args, "secretsmanager")
    value = read_secret(secrets, secret_id)
    replaced = model in value
    value[model] = merged_entry(value.get(model), key, args.auto_switch)
    write_secret(secrets, secret_id, value)
    verb = "replaced" if replaced else "added"
    print(f"{verb} the API key of model {model} in {secret_id} ({len(value)} models)", file=out)
    return 0


def cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    secret_id = find_secret(args)
    for model in sorted(read_secret(_client(args, "secretsmanager"), secret_id)):
        print(model, file=out)
    return 0


def cmd_remove(args: argparse.Namespace, out: TextIO) -> int:
    model = check_model(args.model)
    secret_id = find_secret(args)
    secrets = _client(args, "secretsmanager")
    value = read_secret(secrets, secret_id)
    if model not in value:
        raise KeysError(f"model {model} has no key in {secret_id}")
    del value[model]
    write_secret(secrets, secret_id, value)
    print(f"removed the API key of model {model} from {secret_id} ({len(value)} models left)", file=out)
    return 0


COMMANDS = {"set": cmd_set, "list": cmd_list, "remove": cmd_remove}


def add_parser(sub: Any) -> None:
    """Register ``keys`` on the ``p1-retrain`` subcommands."""
    keys = sub.add_parser(
        "keys",
        help="set, list or remove the API keys in a deployed stack's secret",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = keys.add_subparsers(dest="keys_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", metavar="NAME", help="the stack's name (its secret is found from it)")
    where.add_argument("--secret-id", metavar="ID", help="the secret's name or ARN, instead of --stack")
    common.add_argument("--region", help="AWS region (default: the usual boto3 configuration)")
    common.add_argument("--profile", help="AWS profile (default: the usual boto3 configuration)")
    common.add_argument("--endpoint-url", help="AWS endpoint, e.g. the local stack of p1-retrain serve")

    put = actions.add_parser(
        "set",
        parents=[common],
        help="add or replace one model's key (read from a hidden prompt, or stdin)",
    )
    put.add_argument("model", metavar="MODEL", help="the model's folder name under incoming/")
    put.add_argument(
        "--auto-switch",
        choices=["true", "false", "default"],
        help="switch this model after a retrain (default: the entry's choice, else AutoSwitch)",
    )
    actions.add_parser("list", parents=[common], help="print the model names (never the keys)")
    remove = actions.add_parser("remove", parents=[common], help="remove one model's key")
    remove.add_argument("model", metavar="MODEL")


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one ``keys`` command; 0 on success, 1 with a message on stderr otherwise."""
    from botocore.exceptions import BotoCoreError, ClientError

    out, err = out or sys.stdout, err or sys.stderr
    if not hasattr(args, "stdin"):
        args.stdin = None
    try:
        return COMMANDS[args.keys_command](args, out)
    except KeysError as exc:
        print(f"p1-retrain keys: {exc}", file=err)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        print(f"p1-retrain keys: {error.get('Code', 'error')}: {error.get('Message', '')}", file=err)
    except BotoCoreError as exc:
        print(f"p1-retrain keys: {exc}", file=err)
    except (EOFError, KeyboardInterrupt):
        print("p1-retrain keys: no key entered; nothing changed", file=err)
    return 1
