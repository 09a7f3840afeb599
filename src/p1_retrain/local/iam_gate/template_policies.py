"""The template's IAM, offline: each role's policies after the SAM transform, the AWS calls the pipeline
makes with each role, and which policy statements those calls need.

``PIPELINE_CALLS`` is the list of (principal, action, resource) the code makes, read from
``functions/*/app.py``, ``layers/pipeline/retrain_pipeline`` and the state machines; resources are
written as ``Fn::Sub`` text over the template's logical ids, so they follow the template. Each call also
names a ``neighbour``: the same action on a resource the role must not reach.

``needed_statements(sam)`` lists, per role, the statements without which at least one pipeline call is
denied, as ``(role logical id, statement index, statement)``; ``remove_statement(sam, role, index)`` is the
template without it (a mutant), and ``write_template`` saves a mutant where the local stack can deploy it.
A statement index counts the entries of the resource's SAM ``Policies`` in order: a policy template
(``LambdaInvokePolicy: ...``) is one statement, an inline ``Statement`` list contributes each statement.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from p1_retrain.local import template as tpl
from p1_retrain.local.iam_gate.evaluator import Decision, PolicyDocument, evaluate
from p1_retrain.local.intrinsics import substitute

ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK = "p1-retrain-local"

# Scenarios: which run of the pipeline makes the call (the end-to-end mutation test runs the ones a
# statement's calls belong to).
RETRAIN = "retrain"  # a CSV under incoming/ retrained, archived and notified
SWITCH = "switch"  # the same with switching on
FAILURE = "failure"  # a file that fails (recorded under failed/, failure notified)
TRAINING = "training"  # a training request under training/ watched and archived
TRAINING_FAILURE = "training-failure"

KMS_VIA_SNS = {"kms:ViaService": f"sns.{REGION}.amazonaws.com", "kms:CallerAccount": ACCOUNT}


@dataclass(frozen=True)
class PipelineCall:
    """One AWS call the pipeline makes as ``principal`` (a function, a state machine or a rule)."""

    principal: str
    action: str
    resource: str  # Fn::Sub text
    neighbour: str  # Fn::Sub text: the same action here must be denied
    scenarios: tuple[str, ...]
    context: Mapping[str, str] = field(default_factory=dict)
    why: str = ""


def _calls() -> list[PipelineCall]:
    bucket = "${DataBucket.Arn}"
    secret, table = "${ApiKeysSecret}", "${StateTable.Arn}"
    other_table = "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/SomeOtherTable"
    other_secret = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:other-AbCdEf"  # noqa: S105 - an ARN
    other_bucket = "arn:${AWS::Partition}:s3:::some-other-bucket"
    calls: list[PipelineCall] = []

    def add(
        principal: str, action: str, resource: str, neighbour: str, *scenarios: str, **extra: Any
    ) -> None:
        calls.append(PipelineCall(principal, action, resource, neighbour, tuple(scenarios), **extra))

    def listing(principal: str, prefix: str, *scenarios: str) -> None:
        """A one-key listing of the bucket (``s3:ListBucket`` with ``s3:prefix``): does this key exist?"""
        add(principal, "s3:ListBucket", bucket, other_bucket, *scenarios, context={"s3:prefix": prefix})

    everyone = (RETRAIN, SWITCH, FAILURE, TRAINING, TRAINING_FAILURE)
    retrain = (RETRAIN, SWITCH)
    for function, scenarios in (
        ("UploadFunction", (RETRAIN, SWITCH)),
        ("CheckStatusFunction", retrain),
        ("ArchiveFunction", retrain),
        ("SwitchModelFunction", (SWITCH,)),
        ("StartWatchFunction", (TRAINING,)),
        ("CheckTrainingFunction", (TRAINING,)),
        ("ArchiveTrainingFunction", (TRAINING,)),
    ):
        add(
            function,
            "secretsmanager:GetSecretValue",
            secret,
            other_secret,
            *scenarios,
            why="API key of the model",
        )
    # Upload: which form of the key exists, by a one-key listing (a key that URL-decodes to another, such
    # as one with "+": the scenarios' keys have one); the object version (events name it: the bucket is
    # versioned), streamed; a zip's directory by ranged reads of the same version; one idempotency record.
    incoming = f"{bucket}/incoming/demo/sample+1.csv"
    listing("UploadFunction", "incoming/demo/sample+1.csv", *retrain)
    add("UploadFunction", "s3:GetObjectVersion", incoming, f"{bucket}/results/demo/sample.csv", *retrain)
    for action in ("dynamodb:PutItem", "dynamodb:UpdateItem"):
        add("UploadFunction", action, table, other_table, *retrain, why="Powertools idempotency record")
    # Archive: results file and summary.json, then ranged reads of the archived zip.
    result = f"{bucket}/results/demo/job-1/result.zip"
    add("ArchiveFunction", "s3:PutObject", result, f"{bucket}/incoming/demo/result.zip", *retrain)
    add("ArchiveFunction", "s3:GetObject", result, f"{bucket}/incoming/demo/sample.csv", *retrain)
    # SwitchModel: the per-model gate read and taken, the summary found (a listing) and updated.
    for action in ("dynamodb:GetItem", "dynamodb:UpdateItem"):
        add("SwitchModelFunction", action, table, other_table, SWITCH, why="switch gate")
    summary = f"{bucket}/results/demo/job-1/summary.json"
    listing("SwitchModelFunction", "results/demo/job-1/summary.json", SWITCH)
    add("SwitchModelFunction", "s3:GetObject", summary, f"{bucket}/incoming/demo/sample.csv", SWITCH)
    add("SwitchModelFunction", "s3:PutObject", summary, f"{bucket}/incoming/demo/summary.json", SWITCH)
    # RecordFailure: the failure record.
    record = f"{bucket}/failed/demo/sample.csv.json"
    add(
        "RecordFailureFunction",
        "s3:PutObject",
        record,
        f"{bucket}/results/demo/x.json",
        FAILURE,
        TRAINING_FAILURE,
    )
    # StartWatch: which form of the key exists (a listing, as Upload), the request object version, one
    # idempotency record.
    request = f"{bucket}/training/demo/run+1.json"
    listing("StartWatchFunction", "training/demo/run+1.json", TRAINING)
    add("StartWatchFunction", "s3:GetObjectVersion", request, f"{bucket}/incoming/demo/run.json", TRAINING)
    for action in ("dynamodb:PutItem", "dynamodb:UpdateItem"):
        add("StartWatchFunction", action, table, other_table, TRAINING, why="Powertools idempotency record")
    # ArchiveTraining: "already archived?" listing, results file, ranged reads.
    trained = f"{bucket}/results/demo/training/run-1/result.zip"
    listing("ArchiveTrainingFunction", "results/demo/training/run-1/summary.json", TRAINING)
    for action in ("s3:PutObject", "s3:GetObject"):
        add("ArchiveTrainingFunction", action, trained, f"{bucket}/results/demo/job-1/result.zip", TRAINING)
    # The state machines: their tasks and notifications (SNS encrypts with the topic's key for them).
    for machine, functions in (
        ("RetrainStateMachine", ("UploadFunction", "CheckStatusFunction", "ArchiveFunction")),
        (
            "TrainWatchStateMachine",
            ("StartWatchFunction", "CheckTrainingFunction", "ArchiveTrainingFunction"),
        ),
    ):
        scenarios = retrain if machine == "RetrainStateMachine" else (TRAINING,)
        neighbour = (
            "${SwitchModelFunction.Arn}"
            if machine == "TrainWatchStateMachine"
            else "${CheckTrainingFunction.Arn}"
        )
        for function in functions:
            add(machine, "lambda:InvokeFunction", f"${{{function}.Arn}}", neighbour, *scenarios)
        failing = FAILURE if machine == "RetrainStateMachine" else TRAINING_FAILURE
        add(machine, "lambda:InvokeFunction", "${RecordFailureFunction.Arn}", neighbour, failing)
        topic_neighbour = "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:some-other-topic"
        key_neighbour = "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/other-key"
        notified = (*scenarios, failing)
        add(machine, "sns:Publish", "${NotificationTopic}", topic_neighbour, *notified)
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            add(machine, action, "${NotificationKey.Arn}", key_neighbour, *notified, context=KMS_VIA_SNS)
    add(
        "RetrainStateMachine",
        "lambda:InvokeFunction",
        "${SwitchModelFunction.Arn}",
        "${CheckTrainingFunction.Arn}",
        SWITCH,
    )
    # The rules start their state machine.
    for rule, machine, other in (
        ("RetrainStateMachineObjectCreated", "RetrainStateMachine", "TrainWatchStateMachine"),
        ("TrainWatchStateMachineTrainingRequestCreated", "TrainWatchStateMachine", "RetrainStateMachine"),
    ):
        scenarios = everyone[:3] if machine == "RetrainStateMachine" else everyone[3:]
        add(rule, "states:StartExecution", f"${{{machine}}}", f"${{{other}}}", *scenarios)
    return calls


PIPELINE_CALLS: tuple[PipelineCall, ...] = tuple(_calls())


# -- the template's roles, offline ------------------------------------------------------------------------


def translate(
    sam: Mapping[str, Any], base: Path, parameters: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The SAM document's CloudFormation translation (local artefact paths relative to ``base``)."""
    key = json.dumps([sam, str(base), dict(parameters or {})], sort_keys=True, default=str)
    return copy.deepcopy(_translate(key))


@functools.lru_cache(maxsize=64)
def _translate(key: str) -> dict[str, Any]:
    sam, base, parameters = json.loads(key)
    prepared, _ = tpl.prepare(sam, Path(base) / "template.yaml")
    return tpl.translate(prepared, parameters, REGION)


def placeholder_values(cfn: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Physical names and ARNs shaped like CloudFormation's, for every resource a policy can name."""
    values: dict[str, dict[str, str]] = {}
    arn = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:{{}}"
    for name, resource in cfn.get("Resources", {}).items():
        kind = resource.get("Type", "")
        physical = f"{STACK}-{name}-ABCDEF123456"
        if kind == "AWS::S3::Bucket":
            bucket = physical.lower()
            values[name] = {"Ref": bucket, "Arn": f"arn:aws:s3:::{bucket}"}
        elif kind == "AWS::DynamoDB::Table":
            values[name] = {"Ref": physical, "Arn": arn.format("dynamodb", f"table/{physical}")}
        elif kind == "AWS::SecretsManager::Secret":
            secret = arn.format("secretsmanager", f"secret:{STACK}/prediction-one-api-keys-AbCdEf")
            values[name] = {"Ref": secret, "Id": secret}
        elif kind == "AWS::SNS::Topic":
            values[name] = {
                "Ref": arn.format("sns", physical),
                "TopicName": physical,
                "TopicArn": arn.format("sns", physical),
            }
        elif kind == "AWS::KMS::Key":
            key = "0d5c7a1e-0000-4000-8000-000000000001"
            values[name] = {"Ref": key, "KeyId": key, "Arn": arn.format("kms", f"key/{key}")}
        elif kind == "AWS::Lambda::Function":
            values[name] = {"Ref": physical, "Arn": arn.format("lambda", f"function:{physical}")}
        elif kind == "AWS::StepFunctions::StateMachine":
            machine = arn.format("states", f"stateMachine:{physical}")
            values[name] = {"Ref": machine, "Arn": machine, "Name": physical}
        elif kind == "AWS::IAM::Role":
            values[name] = {"Ref": physical, "Arn": f"arn:aws:iam::{ACCOUNT}:role/{physical}"}
        elif kind == "AWS::SQS::Queue":
            url = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{physical}"
            values[name] = {"Ref": url, "Arn": arn.format("sqs", physical), "QueueName": physical}
        elif kind == "AWS::Events::Rule":
            values[name] = {"Ref": physical, "Arn": arn.format("events", f"rule/{physical}")}
        elif kind == "AWS::Logs::LogGroup":
            values[name] = {"Ref": physical, "Arn": arn.format("logs", f"log-group:{physical}:*")}
        else:
            values[name] = {"Ref": physical}
    return values


def _pseudo(cfn: Mapping[str, Any]) -> dict[str, str]:
    refs = {
        name: str(spec["Default"]) for name, spec in cfn.get("Parameters", {}).items() if "Default" in spec
    }
    refs.update(
        {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": "aws",
            "AWS::StackName": STACK,
            "AWS::URLSuffix": "amazonaws.com",
        }
    )
    return refs


def resolve(node: Any, values: Mapping[str, Mapping[str, str]], refs: Mapping[str, str]) -> Any:
    """Ref, Fn::GetAtt, Fn::Sub, Fn::Join over literal resource values (enough for policy documents)."""
    if isinstance(node, list):
        return [resolve(item, values, refs) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((name, body),) = node.items()
        if name == "Ref":
            return refs[body] if body in refs else values[body]["Ref"]
        if name == "Fn::GetAtt":
            logical, attribute = body if isinstance(body, list) else str(body).split(".", 1)
            return values[logical][attribute]
        if name == "Fn::Join":
            separator, items = body
            return str(separator).join(str(item) for item in resolve(items, values, refs))
        if name == "Fn::Sub":
            text, local = (body[0], resolve(body[1], values, refs)) if isinstance(body, list) else (body, {})

            def lookup(reference: str) -> str:
                if reference in local:
                    return str(local[reference])
                if reference in refs:
                    return refs[reference]
                logical, _, attribute = reference.partition(".")
                return values[logical][attribute or "Ref"]

            return substitute(text, lookup)
    return {key: resolve(value, values, refs) for key, value in node.items()}


@functools.cache
def _managed_policies() -> dict[str, Any]:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return json.loads(aws_managed_policies_data)


def _managed_policy(arn: str) -> PolicyDocument:
    name = arn.rsplit("/", 1)[-1]
    data = _managed_policies()
    if name not in data:
        raise KeyError(f"managed policy {arn} is unknown")
    return PolicyDocument.parse(arn, data[name]["Document"])


def role_of(cfn: Mapping[str, Any], principal: str) -> str:
    """The role logical id a function, state machine or rule (its first target) acts as."""
    resource = cfn["Resources"][principal]
    properties = resource.get("Properties", {})
    role = properties.get("Role") or properties.get("RoleArn")
    if role is None:
        role = next(target["RoleArn"] for target in properties.get("Targets", []) if "RoleArn" in target)
    if isinstance(role, dict) and "Fn::GetAtt" in role:
        target = role["Fn::GetAtt"]
        return target[0] if isinstance(target, list) else str(target).split(".")[0]
    raise ValueError(f"{principal}: its role is not a role of the template ({role!r})")


def role_documents(
    cfn: Mapping[str, Any],
    values: Mapping[str, Mapping[str, str]] | None = None,
    *,
    skip: tuple[str, str, int | None] | None = None,
) -> dict[str, list[PolicyDocument]]:
    """Every role's inline and managed policy documents, evaluated. ``skip=(role, policy name,
    statement index or None)`` leaves one statement (or one whole policy) out."""
    values = values or placeholder_values(cfn)
    refs = _pseudo(cfn)
    documents: dict[str, list[PolicyDocument]] = {}
    for name, resource in cfn["Resources"].items():
        if resource.get("Type") != "AWS::IAM::Role":
            continue
        properties = resource.get("Properties", {})
        policies: list[PolicyDocument] = []
        for index, policy in enumerate(properties.get("Policies", [])):
            document = resolve(policy["PolicyDocument"], values, refs)
            if skip is not None and skip[0] == name and skip[1] == policy.get("PolicyName"):
                if skip[2] is None:
                    continue
                statements = (
                    document["Statement"]
                    if isinstance(document["Statement"], list)
                    else [document["Statement"]]
                )
                document = {**document, "Statement": [s for i, s in enumerate(statements) if i != skip[2]]}
            policies.append(PolicyDocument(str(policy.get("PolicyName", index)), document))
        for arn in resolve(properties.get("ManagedPolicyArns", []), values, refs):
            policies.append(_managed_policy(str(arn)))
        documents[name] = policies
    return documents


def decide_call(
    cfn: Mapping[str, Any],
    documents: Mapping[str, list[PolicyDocument]],
    call: PipelineCall,
    values: Mapping[str, Mapping[str, str]] | None = None,
    *,
    neighbour: bool = False,
) -> Decision:
    """The decision for one pipeline call (or its neighbour) under ``documents``."""
    values = values or placeholder_values(cfn)
    resource = resolve({"Fn::Sub": call.neighbour if neighbour else call.resource}, values, _pseudo(cfn))
    return evaluate(documents[role_of(cfn, call.principal)], call.action, resource, call.context)


# -- which statements the pipeline needs ------------------------------------------------------------------


class NeededStatement(NamedTuple):
    role: str
    index: int
    statement: dict[str, Any]


@dataclass(frozen=True)
class _Slot:
    resource: str
    role: str
    policy: int
    statement: int | None  # None: a policy template (one statement)
    body: dict[str, Any]

    @property
    def skip(self) -> tuple[str, str, int | None]:
        """SAM names the role policy of ``Policies[i]`` ``<role>Policy<i>``."""
        return (self.role, f"{self.role}Policy{self.policy}", self.statement)


def _slots(sam: Mapping[str, Any]) -> list[_Slot]:
    slots: list[_Slot] = []
    for name, resource in sam.get("Resources", {}).items():
        if resource.get("Type") not in {tpl.SERVERLESS_FUNCTION, tpl.SERVERLESS_STATE_MACHINE}:
            continue
        properties = resource.get("Properties", {})
        if "Role" in properties:
            continue  # a role of its own, not one SAM generates from Policies
        policies = properties.get("Policies", [])
        for policy_index, policy in enumerate(policies if isinstance(policies, list) else [policies]):
            if isinstance(policy, dict) and "Statement" in policy:
                statements = (
                    policy["Statement"] if isinstance(policy["Statement"], list) else [policy["Statement"]]
                )
                for statement_index, statement in enumerate(statements):
                    slots.append(_Slot(name, f"{name}Role", policy_index, statement_index, statement))
            elif isinstance(policy, dict):
                slots.append(_Slot(name, f"{name}Role", policy_index, None, policy))
    return slots


def denied_calls(
    sam: Mapping[str, Any], base: Path, role: str, index: int, calls: Iterable[PipelineCall] = PIPELINE_CALLS
) -> list[PipelineCall]:
    """The pipeline calls denied once statement ``index`` of ``role`` is removed."""
    cfn = translate(sam, base)
    values = placeholder_values(cfn)
    slot = _slot(sam, role, index)
    documents = role_documents(cfn, values, skip=slot.skip)
    return [
        call
        for call in calls
        if role_of(cfn, call.principal) == role and not decide_call(cfn, documents, call, values).allowed
    ]


def _slot(sam: Mapping[str, Any], role: str, index: int) -> _Slot:
    slots = [slot for slot in _slots(sam) if slot.role == role]
    if not 0 <= index < len(slots):
        raise IndexError(f"{role} has {len(slots)} statement(s); there is no statement {index}")
    return slots[index]


def ungranted_calls(
    sam: Mapping[str, Any], base: Path, calls: Iterable[PipelineCall] = PIPELINE_CALLS
) -> list[PipelineCall]:
    """Pipeline calls the unmodified template does not allow (should be none)."""
    cfn = translate(sam, base)
    values = placeholder_values(cfn)
    documents = role_documents(cfn, values)
    return [call for call in calls if not decide_call(cfn, documents, call, values).allowed]


def needed_statements(
    sam: Mapping[str, Any], base: Path, calls: Iterable[PipelineCall] = PIPELINE_CALLS
) -> list[NeededStatement]:
    """The statements of the template's ``Policies`` without which some pipeline call is denied."""
    calls = list(calls)
    cfn = translate(sam, base)
    values = placeholder_values(cfn)
    needed: list[NeededStatement] = []
    counters: dict[str, int] = {}
    for slot in _slots(sam):
        index = counters.get(slot.role, 0)
        counters[slot.role] = index + 1
        documents = role_documents(cfn, values, skip=slot.skip)
        if any(
            role_of(cfn, call.principal) == slot.role
            and not decide_call(cfn, documents, call, values).allowed
            for call in calls
        ):
            needed.append(NeededStatement(slot.role, index, copy.deepcopy(slot.body)))
    return needed


def remove_statement(sam: Mapping[str, Any], role: str, index: int) -> dict[str, Any]:
    """A copy of the SAM document without statement ``index`` of ``role`` (an emptied policy goes too)."""
    slot = _slot(sam, role, index)
    mutant = copy.deepcopy(dict(sam))
    properties = mutant["Resources"][slot.resource]["Properties"]
    policies = properties["Policies"]
    if slot.statement is None:
        del policies[slot.policy]
    else:
        statements = policies[slot.policy]["Statement"]
        if isinstance(statements, list) and len(statements) > 1:
            del statements[slot.statement]
        else:
            del policies[slot.policy]
    if not policies:
        del properties["Policies"]
    return mutant


_LOCAL_PATHS = ("CodeUri", "ContentUri", "DefinitionUri")


def write_template(sam: Mapping[str, Any], path: Path, base: Path) -> Path:
    """Save ``sam`` as JSON at ``path`` with its local artefact paths made absolute (relative to ``base``,
    the folder of the original template), so the local stack deploys it from anywhere."""
    document = copy.deepcopy(dict(sam))
    for resource in document.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        for name in _LOCAL_PATHS:
            value = properties.get(name)
            if isinstance(value, str) and not value.startswith("s3://"):
                properties[name] = str((Path(base) / value).resolve())
    path = Path(path)
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return path
