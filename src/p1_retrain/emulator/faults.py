"""Fault injection on the API and storage routes: a seeded PRNG decides per request if and how to fail."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

API_ENDPOINTS = ("upload_url", "retrain_status", "update_model", "training_status")
STORAGE_ENDPOINTS = ("upload", "download")
ENDPOINTS = (*API_ENDPOINTS, *STORAGE_ENDPOINTS)

_GATEWAY_KINDS = ("500", "502", "503", "429", "reset", "slow")
KINDS = (*_GATEWAY_KINDS, "expired_url", "lost_answer")
_APPLICABLE = {
    **{endpoint: _GATEWAY_KINDS for endpoint in API_ENDPOINTS},
    "download": (*_GATEWAY_KINDS, "expired_url"),
    "upload": (*_GATEWAY_KINDS, "expired_url", "lost_answer"),
}
DEFAULT_SLOW_SECONDS = 2.0


@dataclass(frozen=True)
class FaultPlan:
    """``rate`` is the chance that one request of a chosen endpoint gets one of the chosen kinds."""

    rate: float
    seed: int = 0
    kinds: tuple[str, ...] = KINDS
    endpoints: tuple[str, ...] = ENDPOINTS
    slow_seconds: float = DEFAULT_SLOW_SECONDS

    @classmethod
    def build(
        cls,
        rate: float,
        seed: int = 0,
        kinds: Iterable[str] | None = None,
        endpoints: Iterable[str] | None = None,
        slow_seconds: float | None = None,
    ) -> FaultPlan:
        """Validate and normalise admin input; raises ValueError naming the bad value."""
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be a number from 0 to 1, got {rate!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        chosen_kinds = tuple(kinds) if kinds is not None else KINDS
        unknown = sorted(set(chosen_kinds) - set(KINDS))
        if unknown or not chosen_kinds:
            raise ValueError(f"unknown fault kinds {unknown or '(none given)'}; choose from {list(KINDS)}")
        chosen_endpoints = tuple(endpoints) if endpoints is not None else ENDPOINTS
        unknown = sorted(set(chosen_endpoints) - set(ENDPOINTS))
        if unknown or not chosen_endpoints:
            raise ValueError(f"unknown endpoints {unknown or '(none given)'}; choose from {list(ENDPOINTS)}")
        slow = DEFAULT_SLOW_SECONDS if slow_seconds is None else slow_seconds
        if isinstance(slow, bool) or not isinstance(slow, int | float) or slow <= 0:
            raise ValueError(f"slow_seconds must be a positive number, got {slow_seconds!r}")
        return cls(float(rate), seed, chosen_kinds, chosen_endpoints, float(slow))

    def as_dict(self) -> dict[str, object]:
        return {
            "rate": self.rate,
            "seed": self.seed,
            "kinds": list(self.kinds),
            "endpoints": list(self.endpoints),
            "slow_seconds": self.slow_seconds,
        }


class FaultInjector:
    """Thread-safe; the same plan and the same order of requests give the same faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plan: FaultPlan | None = None
        self._rng = random.Random(0)
        self._counts: Counter[str] = Counter()

    def configure(self, plan: FaultPlan) -> None:
        with self._lock:
            self._plan = plan
            self._rng = random.Random(plan.seed)

    def clear(self) -> None:
        """Stop injecting; the counts are kept (``reset`` clears them)."""
        with self._lock:
            self._plan = None

    def reset(self) -> None:
        with self._lock:
            self._plan = None
            self._counts.clear()

    @property
    def plan(self) -> FaultPlan | None:
        with self._lock:
            return self._plan

    @property
    def slow_seconds(self) -> float:
        with self._lock:
            return self._plan.slow_seconds if self._plan else DEFAULT_SLOW_SECONDS

    def draw(self, endpoint: str) -> str | None:
        """The fault kind for one request to ``endpoint``, or None."""
        with self._lock:
            plan = self._plan
            if plan is None or plan.rate <= 0 or endpoint not in plan.endpoints:
                return None
            applicable = [kind for kind in plan.kinds if kind in _APPLICABLE[endpoint]]
            if not applicable:
                return None
            if self._rng.random() >= plan.rate:
                return None
            return self._rng.choice(applicable)

    def record(self, kind: str) -> None:
        """Count a fault that was actually applied."""
        with self._lock:
            self._counts[kind] += 1

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))
