"""``RetryPolicy``: how often and how soon a failed activity attempt is tried again."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aion._durations import Duration, to_seconds
from aion.errors import InvalidArgumentError


@dataclass(frozen=True)
class RetryPolicy:
    """Retry behaviour of an activity (Temporal's model).

    The delay before attempt *n + 1* is ``initial_interval * backoff_coefficient ** (n - 1)``, capped at
    ``maximum_interval`` (default: 100 times ``initial_interval``). ``maximum_attempts=0`` means no limit.
    A failure whose exception type name is in ``non_retryable_error_types``, or an
    ``aion.ApplicationError`` raised with ``non_retryable=True``, ends the retries at once.

    The default policy (no ``retry_policy`` given) retries without limit: 1 s, 2 s, 4 s, ... up to 100 s.

    >>> RetryPolicy(initial_interval=1, maximum_attempts=3).delay_after(2)
    2.0
    """

    initial_interval: Duration = 1.0
    backoff_coefficient: float = 2.0
    maximum_interval: Duration | None = None
    maximum_attempts: int = 0
    non_retryable_error_types: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        initial = to_seconds(self.initial_interval, "initial_interval", allow_zero=False)
        object.__setattr__(self, "initial_interval", initial)
        maximum = (
            100 * initial if self.maximum_interval is None else to_seconds(self.maximum_interval, "maximum_interval")
        )
        if maximum < initial:
            raise InvalidArgumentError(f"maximum_interval ({maximum:g} s) is below initial_interval ({initial:g} s)")
        object.__setattr__(self, "maximum_interval", maximum)
        coefficient = self.backoff_coefficient
        if not isinstance(coefficient, int | float) or not math.isfinite(coefficient) or coefficient < 1:
            raise InvalidArgumentError(f"backoff_coefficient must be a number >= 1, got {coefficient!r}")
        if not isinstance(self.maximum_attempts, int) or self.maximum_attempts < 0:
            raise InvalidArgumentError(f"maximum_attempts must be 0 (unlimited) or more, got {self.maximum_attempts!r}")
        names = self.non_retryable_error_types
        if isinstance(names, str) or not all(isinstance(name, str) for name in names):
            raise InvalidArgumentError(f"non_retryable_error_types must be a list of type names, got {names!r}")
        object.__setattr__(self, "non_retryable_error_types", tuple(names))

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based) before the next one."""
        initial = float(self.initial_interval)  # type: ignore[arg-type]
        delay = initial * self.backoff_coefficient ** (attempt - 1)
        return min(delay, float(self.maximum_interval))  # type: ignore[arg-type]

    def allows_another(self, attempt: int) -> bool:
        """Whether an attempt may follow failed attempt ``attempt``."""
        return self.maximum_attempts == 0 or attempt < self.maximum_attempts

    def retries(self, error_type: str, non_retryable: bool) -> bool:
        """Whether a failure of ``error_type`` may be retried at all."""
        return not non_retryable and error_type not in self.non_retryable_error_types

    def to_dict(self) -> dict[str, Any]:
        """The policy as recorded in ``ActivityScheduled.options``."""
        return {
            "initial_interval": self.initial_interval,
            "backoff_coefficient": self.backoff_coefficient,
            "maximum_interval": self.maximum_interval,
            "maximum_attempts": self.maximum_attempts,
            "non_retryable_error_types": list(self.non_retryable_error_types),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> RetryPolicy:
        """The policy recorded by :meth:`to_dict` (the default policy for ``None``)."""
        return cls() if not data else cls(**data)
