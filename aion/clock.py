"""Time as an argument: the one place the engine reads the clock.

Every component that stamps or waits (the store stamping events, the engine core, the activity manager,
residency, the timer service) is handed a :class:`Clock` and never calls ``time.time``, ``datetime.now`` or
``time.monotonic`` itself. :data:`SYSTEM_CLOCK` is the real one and the default everywhere; :class:`ManualClock`
is a clock that moves only when told, so that timers, timeouts and backoffs can be driven without sleeping.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Wall time, monotonic time, and the waits of whoever sleeps until a wall time."""

    def time(self) -> float:
        """Wall time, in seconds since the epoch."""

    def now(self) -> datetime:
        """Wall time as an aware UTC ``datetime``."""

    def monotonic(self) -> float:
        """A clock for measuring intervals: never goes back."""

    def wait_until(self, condition: threading.Condition, deadline: float | None) -> None:
        """Wait on ``condition`` (held by the caller) until it is notified or wall time reaches ``deadline``
        (epoch seconds; ``None``: until notified). May return early: callers look at the time again."""


class SystemClock:
    """The real clock of the machine."""

    def time(self) -> float:
        """``time.time()``."""
        return time.time()

    def now(self) -> datetime:
        """``datetime.now(UTC)``."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def wait_until(self, condition: threading.Condition, deadline: float | None) -> None:
        """``condition.wait`` for the seconds left until ``deadline``."""
        condition.wait(None if deadline is None else max(deadline - time.time(), 0.0))


#: The real clock: the default of every component.
SYSTEM_CLOCK: Clock = SystemClock()


class ManualClock:
    """A clock that stands still until :meth:`advance` or :meth:`set` moves it (wall and monotonic together).

    Waits in :meth:`wait_until` are woken whenever the clock moves, so a timer service on this clock fires what
    came due at once, without any real time passing.
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._lock = threading.Lock()
        self._now = float(start)
        self._origin = float(start)
        self._waiting: set[threading.Condition] = set()

    def time(self) -> float:
        """The clock's wall time (epoch seconds)."""
        with self._lock:
            return self._now

    def now(self) -> datetime:
        """The clock's wall time as an aware UTC ``datetime``."""
        return datetime.fromtimestamp(self.time(), UTC)

    def monotonic(self) -> float:
        """Seconds since the clock was made (moves with the wall time)."""
        return self.time() - self._origin

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (≥ 0) and wake every wait."""
        if seconds < 0:
            raise ValueError(f"a clock does not go back: advance({seconds!r})")
        self.set(self.time() + seconds)

    def set(self, at: float) -> None:
        """Move the clock to ``at`` (epoch seconds, not before its time) and wake every wait."""
        with self._lock:
            if at < self._now:
                raise ValueError(f"a clock does not go back: set({at!r}) before {self._now!r}")
            self._now = float(at)
            waiting = list(self._waiting)
        for condition in waiting:
            with condition:
                condition.notify_all()

    def wait_until(self, condition: threading.Condition, deadline: float | None) -> None:
        """Wait on ``condition`` until notified, or until the clock is moved (real time does not count)."""
        with self._lock:  # registered before the time is read: a move after the read wakes this wait
            self._waiting.add(condition)
        try:
            if deadline is None or self.time() < deadline:
                condition.wait()
        finally:
            with self._lock:
                self._waiting.discard(condition)
