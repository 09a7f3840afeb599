"""The results: one flat JSON object for ``bench/results.json`` and a printed table."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Target:
    """A bound a metric must stay within, and how to say it."""

    text: str
    check: Callable[[float], bool]


def at_most(limit: float, unit: str = "") -> Target:
    return Target(f"≤ {limit:g}{unit}", lambda value: value <= limit)


def at_least(limit: float, unit: str = "") -> Target:
    return Target(f"≥ {limit:g}{unit}", lambda value: value >= limit)


@dataclass
class Metric:
    key: str
    value: float | int | None
    target: Target | None = None
    note: str = ""

    @property
    def met(self) -> bool | None:
        if (
            self.target is None
            or self.value is None
            or (isinstance(self.value, float) and math.isnan(self.value))
        ):
            return None
        return self.target.check(self.value)


@dataclass
class Report:
    metrics: list[Metric] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def add(self, key: str, value: float | int | None, target: Target | None = None, note: str = "") -> None:
        self.metrics.append(Metric(key, value, target, note))

    def as_json(self, header: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = dict(header)
        for metric in self.metrics:
            result[metric.key] = metric.value
        result["targets"] = {
            m.key: {"target": m.target.text, "met": m.met} for m in self.metrics if m.target is not None
        }
        result["details"] = self.details
        result["notes"] = self.notes
        result["errors"] = self.errors
        return result

    def write(self, path: Path, header: dict[str, Any]) -> None:
        path.write_text(json.dumps(self.as_json(header), indent=2, sort_keys=False) + "\n")

    def table(self) -> str:
        rows = [("metric", "value", "target", "met?")]
        for m in self.metrics:
            met = {True: "yes", False: "NO", None: "-"}[m.met]
            rows.append((m.key, _format(m.value), m.target.text if m.target else "", met))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        for key, message in self.errors.items():
            lines.append(f"! {key}: {message}")
        for note in self.notes:
            lines.append(f"* {note}")
        return "\n".join(lines)


def _format(value: float | int | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    if value == 0 or abs(value) >= 100:
        return f"{value:.1f}"
    if abs(value) >= 0.01:
        return f"{value:.3f}"
    return f"{value:.2e}"
