"""Synthetic training data for the demo: small, valid CSVs (100+ rows, 2-200 columns), reproducible."""

from __future__ import annotations

import io
import random

HEADER = ("tenure_months", "monthly_charges", "contract", "support_calls", "payment_method", "churned")
CONTRACTS = ("month-to-month", "one-year", "two-year")
PAYMENTS = ("card", "bank_transfer", "invoice")
DEFAULT_ROWS = 150


def synthetic_csv(seed: int, rows: int = DEFAULT_ROWS) -> bytes:
    """A churn-like table with ``rows`` records; the same ``seed`` gives the same bytes."""
    generator = random.Random(seed)
    out = io.StringIO()
    out.write(",".join(HEADER) + "\n")
    for _ in range(rows):
        tenure = generator.randint(1, 72)
        contract = generator.choice(CONTRACTS)
        calls = generator.randint(0, 5)
        churn_odds = 0.5 if contract == "month-to-month" else 0.1
        churn_odds += 0.08 * calls - 0.004 * tenure
        churned = "yes" if generator.random() < churn_odds else "no"
        charges = f"{generator.uniform(20, 120):.2f}"
        out.write(f"{tenure},{charges},{contract},{calls},{generator.choice(PAYMENTS)},{churned}\n")
    return out.getvalue().encode("utf-8")


def model_names(count: int) -> list[str]:
    """``demo``, ``churn``, ``sales``, then ``model-4``, ``model-5``, ..."""
    if count < 1:
        raise ValueError("at least one model is needed")
    names = ["demo", "churn", "sales"][:count]
    names += [f"model-{index}" for index in range(len(names) + 1, count + 1)]
    return names
