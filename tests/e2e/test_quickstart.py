"""The README's quick start, run as printed: bash, the real AWS CLI and ``p1-retrain keys`` against
``p1-retrain serve``.

Each step's snippet is read from README.md (the fenced block after its ``<!-- quickstart:NAME -->``
marker), so a command that stops working fails here. The only edits are the ones a user makes too: the
stack name and region of step 2 are the served stack's and ``<retrain_job_id>`` is the job just archived.
The shell is pointed at the stack by the README's own "Try it without AWS" lines (serve.json read with
``jq``; without ``jq`` the same variables are set here), whose ``aws`` function adds ``--endpoint-url``.
``.venv/bin/p1-retrain`` of the scratch folder the commands run in is this interpreter's ``p1-retrain``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.serve_support import ROOT, Served, start_serve, wait_for

README = ROOT / "README.md"
SAMPLE = ROOT / "events" / "data" / "sample.csv"
MODEL = "churn"
RUN_SECONDS = 60.0
COMMAND_SECONDS = 60.0
STATE_VARIABLES = ("STACK", "REGION", "BUCKET", "RETRAIN_ARN", "TOPIC_ARN")

pytestmark = pytest.mark.slow


# -- the README's snippets ----------------------------------------------------------------------------------
def snippet(name: str) -> str:
    """The fenced bash block right after ``<!-- quickstart:NAME -->``."""
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"<!-- quickstart:{name} -->\n```bash\n(.*?)\n```", text, re.DOTALL)
    assert found, f"README.md has no ```bash block after <!-- quickstart:{name} -->"
    return found.group(1)


def commands(block: str) -> list[str]:
    """The block's commands: continuation lines joined, comment-only lines dropped."""
    found: list[str] = []
    current = ""
    for line in block.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line + "\n"
        if not line.endswith("\\"):
            found.append(current.rstrip("\n"))
            current = ""
    assert not current, f"unterminated command: {current!r}"
    return found


def pick(found: list[str], start: str) -> str:
    """The one command of ``found`` that starts with ``start``."""
    matches = [command for command in found if command.startswith(start)]
    assert len(matches) == 1, f"expected one command starting {start!r}, found {matches}"
    return matches[0]


# -- a shell at the served stack ----------------------------------------------------------------------------
class Shell:
    """Runs README commands in bash with the state a user's shell would have after step 2."""

    def __init__(self, cwd: Path, env: dict[str, str], prelude: str) -> None:
        self.cwd = cwd
        self.env = env
        self.prelude = prelude
        self.outputs: list[str] = []

    def run(self, command: str, stdin: str = "") -> subprocess.CompletedProcess:
        done = subprocess.run(
            ["bash", "-c", f"{self.prelude}\n{command}"],
            cwd=self.cwd,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=COMMAND_SECONDS,
        )
        self.outputs += [done.stdout, done.stderr]
        return done

    def ok(self, command: str, stdin: str = "") -> str:
        done = self.run(command, stdin)
        assert done.returncode == 0, f"{command}\nexit {done.returncode}\n{done.stdout}{done.stderr}"
        return done.stdout


def aws_cli() -> Path:
    found = Path(sys.executable).parent / "aws"
    if not found.exists():
        which = shutil.which("aws")
        assert which, "the AWS CLI is not installed: make install (awscli is a dev dependency)"
        found = Path(which)
    return found


def empty_secret(served: Served) -> None:
    """The secret as a fresh deploy creates it (``{}``): serve filled it from ``--model``, the README's
    ``keys set`` must put the key there itself."""
    secret_id = f"{served.first['stack_name']}/prediction-one-api-keys"
    served.client("secretsmanager").put_secret_value(SecretId=secret_id, SecretString="{}")


def shell_at(first: dict, cwd: Path) -> Shell:
    """Step 2 run once (stack name and region set to the served stack's), its variables and ``out``
    kept for every later command, as in one terminal."""
    bin_dir = cwd / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    wrapper = bin_dir / "p1-retrain"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m p1_retrain.cli "$@"\n')
    wrapper.chmod(0o755)
    env = {
        "PATH": f"{aws_cli().parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(cwd),
        "LANG": "C.UTF-8",
        "AWS_CONFIG_FILE": str(cwd / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(cwd / "no-aws-credentials"),
    }
    serve = commands(snippet("serve"))
    assert serve[0].startswith(".venv/bin/p1-retrain serve ") and serve[0].endswith("> serve.json &")
    assert serve[1].startswith("until [ -s serve.json ]")
    assert serve[-1].startswith("aws() {"), "the serve snippet ends with the aws function"
    (cwd / "serve.json").write_text(json.dumps(first) + "\n")
    if shutil.which("jq"):
        function = "\n".join(serve[1:])  # the README's own lines read serve.json
    else:
        env.update(
            AWS_ENDPOINT_URL=first["endpoint_url"],
            AWS_ACCESS_KEY_ID=first["aws_access_key_id"],
            AWS_SECRET_ACCESS_KEY=first["aws_secret_access_key"],
        )
        function = serve[-1]
    outputs = snippet("outputs")
    outputs, stacks = re.subn(r"(?m)^STACK=\S+", f"STACK={first['stack_name']}", outputs)
    outputs, regions = re.subn(r"(?m)^REGION=\S+", f"REGION={first['region']}", outputs)
    assert (stacks, regions) == (1, 1), "step 2 no longer sets STACK= and REGION= on lines of their own"
    setup = Shell(cwd, env, function)
    state = setup.ok(f"set -eu\n{outputs}\ndeclare -p {' '.join(STATE_VARIABLES)}\ndeclare -f out")
    shell = Shell(cwd, env, f"{function}\n{state}")
    shell.outputs = setup.outputs
    return shell


# -- the test -----------------------------------------------------------------------------------------------
def test_the_readme_quick_start_runs_as_printed_against_serve(tmp_path):
    key = f"{MODEL}-{secrets.token_hex(12)}"
    served = start_serve(MODEL, key, job_seconds=1)
    first = served.first
    shell = None
    try:
        empty_secret(served)
        shell = shell_at(first, tmp_path)
        state = shell.ok('echo "$STACK $REGION $BUCKET $RETRAIN_ARN $TOPIC_ARN"').split()
        assert state[:4] == [
            first["stack_name"],
            first["region"],
            first["bucket"],
            first["state_machine_arns"]["RetrainStateMachine"],
        ]
        assert state[4].startswith(f"arn:aws:sns:{first['region']}:")

        # 3. the key from stdin (as from a password manager), then the model names
        keys = commands(snippet("keys"))
        assert [command.split()[:3] for command in keys] == [
            [".venv/bin/p1-retrain", "keys", "set"],
            [".venv/bin/p1-retrain", "keys", "list"],
        ]
        shell.ok(keys[0], stdin=key + "\n")
        assert shell.ok(keys[1]).split() == [MODEL]

        # 4. drop the file
        shutil.copyfile(SAMPLE, tmp_path / "churn-2026-11.csv")
        (drop,) = commands(snippet("drop"))
        shell.ok(drop)

        # 5. see it worked
        check = commands(snippet("check"))
        listing = pick(check, "aws stepfunctions list-executions")

        def finished():
            table = shell.ok(listing)
            statuses = re.findall(r"\b(RUNNING|SUCCEEDED|FAILED|TIMED_OUT|ABORTED)\b", table)
            return table if statuses and "RUNNING" not in statuses else None

        table = wait_for(finished, RUN_SECONDS, "the execution's end in list-executions", interval=0.5)
        assert re.findall(r"\b(RUNNING|SUCCEEDED|FAILED|TIMED_OUT|ABORTED)\b", table) == ["SUCCEEDED"], table

        results = shell.ok(pick(check, 'aws s3 ls "s3://$BUCKET/results/churn/"'))
        archived = [line.split()[-1] for line in results.splitlines() if line.strip()]
        (summary_key,) = [item for item in archived if item.endswith("/summary.json")]
        job_id = summary_key.split("/")[2]
        assert len(archived) == 2, results  # the results file and its summary.json

        read = pick(check, 'aws s3 cp "s3://$BUCKET/results/churn/<retrain_job_id>/summary.json" -')
        summary = json.loads(shell.ok(read.replace("<retrain_job_id>", job_id)))
        assert summary["source"]["key"] == "incoming/churn/churn-2026-11.csv"
        assert summary["retrain_job_id"] == job_id
        assert summary["result"]["key"] in archived

        failed = shell.run(pick(check, 'aws s3 ls "s3://$BUCKET/failed/"'))
        assert (failed.returncode, failed.stdout) == (1, ""), "README: no output, exit status 1, when none"

        shell.ok(pick(check, "aws sns list-subscriptions-by-topic"))
        assert len(check) == 5, f"step 5 has a command this test does not check: {check}"

        # 6. before removing the stack: nothing in flight, nothing in the dead-letter queue
        empty = commands(snippet("empty"))
        assert shell.ok(pick(empty, "aws stepfunctions list-executions")).strip() == "0"
        assert shell.ok(pick(empty, "aws sqs get-queue-attributes")).strip() == '"0"'
        assert [command.split()[0] for command in empty] == ["aws", "aws", "make"]  # make delete: not here
    finally:
        code = served.terminate()
    output = "".join(served.stdout + served.stderr + (shell.outputs if shell else []))
    assert code == 0, output
    assert key not in output
