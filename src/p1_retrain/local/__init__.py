"""The local stack: ``template.yaml`` running in one process, with no AWS account and no Docker.

``LocalStack(template_path, api_base_url, api_keys, parameters=None, auto_switch=False)`` deploys the
template's CloudFormation translation into moto (fake credentials, region us-east-1, nothing ever leaves
the machine) and runs the real code:

- the SAM transform runs offline; function code, layer content and state machine definitions are
  placeholders for moto, and the real ``functions/*/app.py`` handlers answer every Lambda invocation
  in-process (``runtime``), with each function's deployed environment, a Lambda-like context, and
  Lambda's error payload (``errorType`` = the exception's class name, so Retry/Catch by name work);
- what moto's CloudFormation leaves out is filled in from the template itself: the API key secret
  (``api_keys`` as its value), bucket versioning and EventBridge notifications, and the state machines,
  created from their ASL files with ``DefinitionSubstitutions`` evaluated by CloudFormation (outputs);
- the template's own rule patterns decide which objects start an execution: each rule gets an SQS
  target, and ``pump_events()`` starts the rule's state machine per event with the pipeline's
  deterministic execution name (``ExecutionAlreadyExists`` counts as started);
- ``wait_all(timeout)`` polls the executions until all have finished; ``runs()``, ``executions()``,
  ``execution_history(arn)``, ``read_object(key)``, ``list_keys(prefix)``, ``logs()`` (every line the
  handlers wrote) and ``notifications()`` (the SNS messages) show what happened; the boto3 clients are
  attributes (``s3``, ``sfn``, ``sqs``, ``sns``, ``events``, ``secrets``, ``dynamodb``, ...).

Known differences from AWS, all outside the handlers' code: handlers share one process, so the
Powertools logger's per-invocation keys (function name, cold start, correlation id) and its metric set
are shared by functions running at the same moment (``log_lines()`` names the function reliably);
resources moto's CloudFormation cannot host (alarms, bucket and queue policies, e-mail subscriptions,
metric filters) are listed in ``skipped_resources``; function timeouts are not enforced; state machine
logging and tracing settings are not applied; moto's S3 events carry a one-second ``time`` and a
constant ``sequencer``.

``p1-retrain demo`` (``demo.run``) drives it against the Prediction One emulator.
"""

from __future__ import annotations

from p1_retrain.local.errors import LocalStackError
from p1_retrain.local.runs import Run
from p1_retrain.local.stack import FAST_PARAMETERS, LocalStack

__all__ = ["FAST_PARAMETERS", "LocalStack", "LocalStackError", "Run"]
