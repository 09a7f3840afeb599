"""The local stack: ``template.yaml`` running on this machine, with no AWS account and no Docker.

``LocalStack(template_path, api_base_url, api_keys, parameters=None, auto_switch=False, port=0,
auto_pump=False, function_overrides=None)`` starts moto's server on a loopback port (``endpoint_url``),
deploys the template's CloudFormation translation into it and runs the real code; every client (the stack,
the functions, the user) talks to the server over HTTP:

- the SAM transform runs offline; what moto's CloudFormation leaves out is filled in from the template
  itself: the API key secret (``api_keys`` as its value), bucket versioning and EventBridge notifications,
  and the state machines, created from their ASL files with ``DefinitionSubstitutions`` evaluated by
  CloudFormation (outputs);
- IAM is enforced once the stack is built, by :mod:`p1_retrain.local.iam_gate` for every request and
  every service: the caller's identity policies against the real resource ARN, denials answered as the
  service answers them; the stack acts as an admin user of its own (``admin_credentials``, which
  ``p1-retrain serve`` prints); each function runs the real ``functions/*/app.py`` in worker processes of
  its own (``runtime``: warm and reused, a cold start the first time, several at once when invocations
  overlap) with its deployed environment and a session of its own role, its ``Timeout``
  (``Sandbox.Timedout``) and ``MemorySize`` (``Runtime.OutOfMemory``); Step Functions calls the functions
  and the topic with a session of the state machine's role; rules start their state machine with a
  session of the rule target's role;
- the template's own rule patterns decide which objects start an execution: each rule gets an SQS
  target, and ``pump_events()`` (or the background pump) starts the rule's state machine per event with
  the pipeline's deterministic execution name (``ExecutionAlreadyExists`` counts as started);
- ``wait_all(timeout)`` polls the executions until all have finished; ``runs()``, ``executions()``,
  ``execution_history(arn)``, ``read_object(key)``, ``list_keys(prefix)``, ``logs()`` (every line the
  functions wrote) and ``notifications()`` (the SNS messages) show what happened; the boto3 clients are
  attributes (``s3``, ``sfn``, ``sqs``, ``sns``, ``events``, ``secrets``, ``dynamodb``, ...).

Known differences from AWS, all outside the handlers' code:

- IAM evaluates identity-based policies only (inline and managed, AssumeRole session policies):
  resource-based policies (bucket, queue, key and topic policies; bucket and queue policies are not even
  deployed), permission boundaries, SCPs and session tags are not evaluated; ``aws:SecureTransport`` is
  always true and ``aws:SourceIp``/``aws:SourceVpc`` are absent;
- the function roles are assumed before IAM is switched on (their trust policies name services), and their
  sessions do not expire;
- a function's memory limit is the worker's data segment limit (``RLIMIT_DATA``), close to but not the
  same as Lambda's measure; CPU is not scaled with memory; ``/tmp`` is the machine's;
- at most four workers per function run at once (``runtime.DEFAULT_MAX_WORKERS``): a fifth overlapping
  invocation waits for a free worker where Lambda would start another environment (and no throttling,
  reserved concurrency, asynchronous invocation or X-Ray); workers are forked from one process that has
  already imported boto3, Powertools and the X-Ray SDK, so a cold start costs less than on Lambda;
- resources moto's CloudFormation cannot host (alarms, bucket and queue policies, e-mail subscriptions,
  metric filters, log groups' retention) are listed in ``skipped_resources``; state machine logging and
  tracing settings are not applied;
- moto's EventBridge matches the patterns (its matcher is more lenient than EventBridge's: the stack checks
  the patterns before deploying where a checker is available) and its S3 events carry a one-second
  ``time`` and a constant ``sequencer`` unless rewritten (``LocalStack._rewrite_s3_event``);
- an event a rule's role may not deliver goes straight to the rule's dead-letter queue (EventBridge retries
  first).

``p1-retrain demo`` (``demo.run``) and ``p1-retrain serve`` (``serve.run``) drive it against the
Prediction One emulator.
"""

from __future__ import annotations

from p1_retrain.local.errors import LocalStackError
from p1_retrain.local.runs import Run
from p1_retrain.local.stack import FAST_PARAMETERS, LocalStack

__all__ = ["FAST_PARAMETERS", "LocalStack", "LocalStackError", "Run"]
