"""List prices that turn counts into dollars (us-east-1, no free tier).

- Step Functions standard workflows: $0.025 per 1,000 state transitions.
- Lambda requests: $0.20 per 1M. Lambda duration on arm64 (Graviton): $0.0000133334 per GB-second for the
  first 7.5 billion GB-seconds a month (x86_64: $0.0000166667).
"""

from __future__ import annotations

from dataclasses import dataclass

SFN_STANDARD_PER_TRANSITION = 0.025 / 1000
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
LAMBDA_PER_GB_SECOND = {"arm64": 0.0000133334, "x86_64": 0.0000166667}


@dataclass(frozen=True)
class OrchestrationCost:
    transitions: int
    lambda_requests: int
    lambda_gb_seconds: float
    architecture: str = "arm64"

    @property
    def step_functions_usd(self) -> float:
        return self.transitions * SFN_STANDARD_PER_TRANSITION

    @property
    def lambda_usd(self) -> float:
        return (
            self.lambda_requests * LAMBDA_PER_REQUEST
            + self.lambda_gb_seconds * LAMBDA_PER_GB_SECOND[self.architecture]
        )

    @property
    def total_usd(self) -> float:
        return self.step_functions_usd + self.lambda_usd
