"""Retry policies and time limits in a definition: Temporal's retry policy, in c4c's camelCase JSON.

    "retry": {"maxAttempts": 3, "initialIntervalMs": 200, "backoffCoefficient": 2.0,
              "maxIntervalMs": 10000, "nonRetryableErrors": ["LookupError"]}

on a procedure node, or on the definition as the default of every procedure node (a node's own
policy replaces the default whole; fields are not merged). Attempt n failing waits
min(initialIntervalMs * backoffCoefficient^(n-1), maxIntervalMs) before attempt n+1; maxIntervalMs
defaults to 100 x initialIntervalMs, as Temporal's. Unlike Temporal, maxAttempts cannot be
unlimited: every wait and every stored attempt list is bounded.
"""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.alias_generators import to_camel

MAX_ATTEMPTS = 100
MAX_INTERVAL_MS = 24 * 3600 * 1000
MAX_TIMEOUT_MS = 7 * 24 * 3600 * 1000
MAX_ERROR_NAMES = 50

ErrorName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class RetryPolicy(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    max_attempts: int = Field(default=3, ge=1, le=MAX_ATTEMPTS)
    initial_interval_ms: int = Field(default=1000, ge=0, le=MAX_INTERVAL_MS)
    backoff_coefficient: float = Field(default=2.0, ge=1.0, le=100.0)
    max_interval_ms: int | None = Field(default=None, ge=0, le=MAX_INTERVAL_MS)
    non_retryable_errors: tuple[ErrorName, ...] = Field(default=(), max_length=MAX_ERROR_NAMES)

    @model_validator(mode="after")
    def _interval_order(self) -> "RetryPolicy":
        if self.max_interval_ms is not None and self.max_interval_ms < self.initial_interval_ms:
            raise ValueError("maxIntervalMs must be at least initialIntervalMs")
        return self

    def delay_ms(self, attempt: int) -> float:
        """How long to wait after attempt `attempt` (1-based) failed, before the next one."""
        cap = self.max_interval_ms
        if cap is None:
            cap = min(100 * self.initial_interval_ms, MAX_INTERVAL_MS)
        return min(self.initial_interval_ms * self.backoff_coefficient ** (attempt - 1), cap)

    def excludes(self, exc: BaseException) -> bool:
        """Whether `exc` is named in nonRetryableErrors, by its class or any base class's name."""
        if not self.non_retryable_errors:
            return False
        return any(cls.__name__ in self.non_retryable_errors for cls in type(exc).__mro__)
