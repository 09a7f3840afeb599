"""What polling a job costs: polls, state transitions, dollars and detection latency, at full scale.

1. A real execution of the template's retrain state machine on the local stack (``bench.stack_worker``), with
   the template's polling parameters scaled down, gives the shape of an execution from its history: the
   transitions every execution pays once, the transitions and Lambda invocations each poll adds.
2. The polling schedule is a pure function (``retrain_pipeline.polling``): stepping it with a simulated clock
   gives the polls and the detection latency of a job of any length at the template's real parameters.
3. Cross-check: the same simulation at the scaled parameters must predict the scaled run's poll count.
Prices: ``bench.pricing``. The API examples' approach (a fixed 30 s sleep between status calls) is priced
with the same per-poll shape for comparison.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.pricing import SFN_STANDARD_PER_TRANSITION, OrchestrationCost
from bench.procs import BenchError, Service, run_json
from bench.report import Report, at_most
from bench.template import function_architecture, function_memory_mb, load

CHECK_STATE = "CheckStatus"
FIXED_INTERVAL_SECONDS = 30
#: Billed Lambda duration assumed for one status check: one HTTPS round trip to the API plus JSON, rounded up
#: generously (on loopback it takes a few milliseconds; the real service is farther away).
ASSUMED_CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class Detection:
    """When a job of ``job_seconds`` is seen finished, counted from the end of its upload."""

    job_seconds: float
    polls: int
    detected_at: float
    previous_poll_at: float
    waits: tuple[float, ...] = field(repr=False)

    @property
    def latency_s(self) -> float:
        """For a job ending exactly at ``job_seconds``."""
        return self.detected_at - self.job_seconds

    @property
    def worst_latency_s(self) -> float:
        """For a job ending anywhere in the same wait (just after the previous poll): the wait's length."""
        return self.detected_at - self.previous_poll_at

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_seconds": self.job_seconds,
            "polls": self.polls,
            "detected_at_s": round(self.detected_at, 1),
            "latency_s": round(self.latency_s, 1),
            "worst_latency_s": round(self.worst_latency_s, 1),
            "longest_wait_s": max(self.waits) if self.waits else 0,
        }


WaitFunction = Callable[[int, float], float]
"""``(polls so far, seconds since upload) -> seconds to wait before the next status check``."""


def detect(
    job_seconds: float, next_wait: WaitFunction, overhead: float = 0.0, limit: int = 100_000
) -> Detection:
    """Step a polling schedule with a simulated clock until a check happens at or after the job's end.

    ``overhead`` is the time each cycle spends outside its wait (the status check, the transitions).
    """
    now, previous, polls, waits = 0.0, 0.0, 0, []
    while polls < limit:
        wait = next_wait(polls, now)
        if wait <= 0:
            raise BenchError(f"the schedule asked for a wait of {wait} s after {polls} polls")
        waits.append(wait)
        previous, now, polls = now, now + wait + overhead, polls + 1
        if now >= job_seconds:
            return Detection(job_seconds, polls, now, previous, tuple(waits))
    raise BenchError(f"no detection of a {job_seconds} s job within {limit} polls")


def cycle_overhead(history: list[dict[str, Any]]) -> float:
    """Mean seconds a poll cycle of a real run took beyond its scheduled wait (from upload to each check)."""
    waits: list[float] = []
    checks: list[datetime] = []
    started: datetime | None = None
    for event in history:
        details = event.get("stateEnteredEventDetails") or {}
        if event["type"] == "WaitStateEntered":
            poll = json.loads(details["input"])["poll"]
            waits.append(float(poll["wait_seconds"]))
            started = started or _parse_time(poll["started_at"])
        elif event["type"] == "TaskStateEntered" and details.get("name") == CHECK_STATE:
            checks.append(_parse_time(event["timestamp"]))
    if started is None or not checks:
        raise BenchError("the history has no poll cycle to time")
    moments = [started, *checks]
    excess = [(moments[i + 1] - moments[i]).total_seconds() - waits[i] for i in range(len(checks))]
    return max(0.0, sum(excess) / len(excess))


def _parse_time(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def fixed_wait(seconds: float) -> WaitFunction:
    return lambda _polls, _now: seconds


def pipeline_wait(environment: Mapping[str, str]) -> WaitFunction:
    """The deployed schedule: ``retrain_pipeline.polling`` with settings read from ``environment``."""
    from retrain_pipeline import polling
    from retrain_pipeline.settings import PipelineSettings

    settings = PipelineSettings.from_env(environment)
    start = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
    state: dict[str, Any] = {}

    def next_wait(polls: int, now: float) -> float:
        moment = start + timedelta(seconds=now)
        if polls == 0:
            state["poll"] = polling.initial_poll(moment, settings)
        else:
            state["poll"] = polling.next_poll(state["poll"], "job_running", polling.RUNNING, moment, settings)
        return float(_get(state["poll"], "wait_seconds"))

    return next_wait


def _get(poll: Any, name: str) -> Any:
    return poll[name] if isinstance(poll, Mapping) else getattr(poll, name)


@dataclass(frozen=True)
class ExecutionShape:
    """Counts read from one real execution history."""

    polls: int
    state_entries: dict[str, int]
    fixed_transitions: int
    transitions_per_poll: int
    fixed_lambda_invocations: int
    lambda_invocations_per_poll: int
    status: str

    @property
    def total_transitions(self) -> int:
        return self.fixed_transitions + self.transitions_per_poll * self.polls

    def cost(self, polls: int, check_memory_mb: int, architecture: str) -> OrchestrationCost:
        """Cost of an execution making ``polls`` status checks (the transfers' own compute excluded)."""
        checks = polls * self.lambda_invocations_per_poll
        return OrchestrationCost(
            transitions=self.fixed_transitions + self.transitions_per_poll * polls,
            lambda_requests=self.fixed_lambda_invocations + checks,
            lambda_gb_seconds=checks * check_memory_mb / 1024 * ASSUMED_CHECK_SECONDS,
            architecture=architecture,
        )


def shape_of(history: list[dict[str, Any]], definition: dict[str, Any]) -> ExecutionShape:
    """Transitions once vs per poll, from the ``*StateEntered`` events of a history (one per transition)."""
    entries: Counter[str] = Counter()
    status = "RUNNING"
    for event in history:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            entries[event["stateEnteredEventDetails"]["name"]] += 1
        elif kind.startswith("Execution") and kind != "ExecutionStarted":
            status = kind.removeprefix("Execution").upper()
    polls = entries.get(CHECK_STATE, 0)
    if polls < 2:
        raise BenchError(f"the execution polled {polls} times; at least 2 are needed to tell the loop apart")
    loop = {name for name, count in entries.items() if count >= polls}
    odd = {name: entries[name] for name in loop if entries[name] != polls}
    if odd:
        raise BenchError(
            f"loop states entered unevenly ({odd}, {polls} polls): retries or faults in the run?"
        )
    states = definition.get("States", {})
    unknown = set(entries) - set(states)
    if unknown:
        raise BenchError(f"history names states the definition lacks: {sorted(unknown)}")
    lambdas = {name for name, state in states.items() if _invokes_lambda(state)}
    return ExecutionShape(
        polls=polls,
        state_entries=dict(entries),
        fixed_transitions=sum(count for name, count in entries.items() if name not in loop),
        transitions_per_poll=len(loop),
        fixed_lambda_invocations=sum(entries[name] for name in lambdas if name not in loop),
        lambda_invocations_per_poll=len(lambdas & loop),
        status=status,
    )


def _invokes_lambda(state: Mapping[str, Any]) -> bool:
    resource = str(state.get("Resource", ""))
    return state.get("Type") == "Task" and (":lambda:" in resource or ":function:" in resource)


def latency_limit(job_seconds: float) -> float:
    """The target: at most max(30 s, 10 % of the job's elapsed time), and never above 5 min."""
    return min(300.0, max(30.0, 0.1 * job_seconds))


def minimum_polls(job_seconds: float) -> int:
    """The fewest checks any schedule needs to meet the latency target for every job up to ``job_seconds``.

    Greedy: each wait as long as the target allows for a job ending just after the previous check.
    """
    return detect(job_seconds, lambda _p, now: latency_limit(now)).polls


# -- the measurement ---------------------------------------------------------------------------------------

JOBS = {"1min": 60.0, "30min": 1800.0, "6h": 21600.0}
COST_TARGET_USD = 0.001


def _parameter_defaults(template: dict[str, Any]) -> dict[str, str]:
    parameters = template.get("Parameters", {})
    names = ("PollIntervalSeconds", "MaxPollIntervalSeconds", "PollBackoffRatio", "JobDeadlineHours")
    missing = [name for name in names if "Default" not in parameters.get(name, {})]
    if missing:
        raise BenchError(f"template.yaml lacks defaults for {', '.join(missing)}")
    return {name: str(parameters[name]["Default"]) for name in names}


def polling_env(parameters: Mapping[str, str]) -> dict[str, str]:
    """The functions' environment for these template parameters (names from docs/architecture.md)."""
    return {
        "POLL_INTERVAL_SECONDS": parameters["PollIntervalSeconds"],
        "MAX_POLL_INTERVAL_SECONDS": parameters["MaxPollIntervalSeconds"],
        "POLL_BACKOFF_RATIO": parameters["PollBackoffRatio"],
        "JOB_DEADLINE_HOURS": parameters["JobDeadlineHours"],
        "DATA_BUCKET": "bench-bucket",
        "SECRET_ID": "bench-secret",
        "STATE_TABLE": "bench-table",
    }


def scaled(parameters: Mapping[str, str]) -> tuple[dict[str, str], float]:
    """Parameters with the floor at 1 s and the cap shrunk by the same factor; returns them and the factor."""
    floor = float(parameters["PollIntervalSeconds"])
    factor = max(1.0, floor)
    small = dict(parameters)
    small["PollIntervalSeconds"] = "1"
    small["MaxPollIntervalSeconds"] = str(max(1, round(float(parameters["MaxPollIntervalSeconds"]) / factor)))
    return small, factor


def run(report: Report, quick: bool, timeout: float) -> None:
    """Measure the scaled run, then report full-scale polls, transitions, cost and latency per job length."""
    template = load()
    memory = function_memory_mb("check_status", template)
    architecture = function_architecture("check_status", template)
    full = _parameter_defaults(template)
    small, factor = scaled(full)
    represented = 360.0 if quick else JOBS["30min"]  # --quick: a 6-minute job, scaled
    job_seconds = represented / factor
    api_key = "bench-polling-key"
    emulator_args = ["emulator", "--job-seconds", f"{job_seconds:g}", "--model", f"demo={api_key}"]
    with Service("emulator-polling", emulator_args) as emulator:
        settings = {
            "api_base_url": emulator.endpoint,
            "api_keys": {"demo": api_key},
            "parameters": small,
            "model": "demo",
            "files": 1,
            "timeout": job_seconds * 3 + 60,
            "history": True,
        }
        result = run_json(
            "stack-polling",
            ["bench.stack_worker"],
            timeout,
            {"BENCH_WORKER": json.dumps(settings)},
        )
    if result["runs"][0]["status"] != "SUCCEEDED":
        raise BenchError(f"the scaled execution ended {result['runs'][0]['status']}")
    history = result["histories"][0]
    shape = shape_of(history, result["definition"])
    overhead = cycle_overhead(history)
    predicted = detect(job_seconds, pipeline_wait(polling_env(small)), overhead)
    predicted_ideal = detect(job_seconds, pipeline_wait(polling_env(small)))

    full_wait = pipeline_wait(polling_env(full))
    rows: dict[str, Any] = {}
    for name, seconds in JOBS.items():
        ours = detect(seconds, full_wait)
        fixed = detect(seconds, fixed_wait(FIXED_INTERVAL_SECONDS))
        ours_cost = shape.cost(ours.polls, memory, architecture)
        fixed_cost = shape.cost(fixed.polls, memory, architecture)
        rows[name] = {
            "ours": {**ours.as_dict(), **_cost_dict(ours_cost)},
            "fixed_30s": {**fixed.as_dict(), **_cost_dict(fixed_cost)},
            "latency_limit_s": latency_limit(seconds),
            "fewest_polls_meeting_latency_target": minimum_polls(seconds),
        }
        report.add(f"polls_{name}_job", ours.polls)
        report.add(f"transitions_{name}_job", ours_cost.transitions)
        report.add(
            f"cost_usd_{name}_job",
            round(ours_cost.total_usd, 6),
            at_most(COST_TARGET_USD, " $") if name == "30min" else None,
        )
        report.add(
            f"detection_latency_s_{name}_job",
            round(ours.worst_latency_s, 1),
            at_most(latency_limit(seconds), " s"),
        )
        report.add(f"polls_{name}_job_fixed_30s", fixed.polls)
        report.add(f"cost_usd_{name}_job_fixed_30s", round(fixed_cost.total_usd, 6))
    report.add("polls_scaled_run_observed", shape.polls)
    report.add("polls_scaled_run_predicted", predicted.polls)
    report.details["orchestration"] = {
        "template_parameters": full,
        "scaled_parameters": small,
        "scale_factor": factor,
        "scaled_job_seconds": job_seconds,
        "represents_job_seconds": represented,
        "check_status_memory_mb": memory,
        "architecture": architecture,
        "assumed_billed_seconds_per_check": ASSUMED_CHECK_SECONDS,
        "execution_shape": {
            "state_entries": shape.state_entries,
            "fixed_transitions": shape.fixed_transitions,
            "transitions_per_poll": shape.transitions_per_poll,
            "fixed_lambda_invocations": shape.fixed_lambda_invocations,
            "lambda_invocations_per_poll": shape.lambda_invocations_per_poll,
            "status": shape.status,
        },
        "scaled_run": {
            "observed_polls": shape.polls,
            "predicted_polls": predicted.polls,
            "predicted_polls_without_overhead": predicted_ideal.polls,
            "measured_cycle_overhead_s": round(overhead, 3),
            "wall_seconds": round(result["seconds"], 1),
        },
        "jobs": rows,
    }
    report.notes.append(_bound_note(shape, memory, architecture))
    if abs(shape.polls - predicted.polls) > 1:
        report.errors["orchestration_cross_check"] = (
            f"the scaled run polled {shape.polls} times, the schedule predicts {predicted.polls}"
        )


def _cost_dict(cost: OrchestrationCost) -> dict[str, Any]:
    return {
        "transitions": cost.transitions,
        "lambda_requests": cost.lambda_requests,
        "lambda_gb_seconds": round(cost.lambda_gb_seconds, 3),
        "step_functions_usd": round(cost.step_functions_usd, 7),
        "lambda_usd": round(cost.lambda_usd, 7),
        "total_usd": round(cost.total_usd, 7),
    }


def _bound_note(shape: ExecutionShape, memory: int, architecture: str) -> str:
    """What bounds the 30-minute job's cost, from the measured shape and the latency target."""
    seconds = JOBS["30min"]
    fewest = minimum_polls(seconds)
    floor_cost = shape.cost(fewest, memory, architecture)
    lambda_usd = floor_cost.lambda_usd
    allowed = (COST_TARGET_USD - lambda_usd) / SFN_STANDARD_PER_TRANSITION
    per_check = (allowed - shape.fixed_transitions) / fewest
    return (
        f"Polling: {shape.fixed_transitions} transitions once + {shape.transitions_per_poll} per check "
        f"(scaled run's history), status checks at {memory} MB {architecture}. Any schedule meeting the "
        f"latency target needs >= {fewest} checks for a 30-min job: >= {floor_cost.transitions} "
        f"transitions = ${floor_cost.total_usd:.5f}; ${COST_TARGET_USD:g} allows {allowed:.0f} transitions, "
        f"i.e. <= {per_check:.2f} per check."
    )
