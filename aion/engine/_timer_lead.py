"""When a durable timer's ``TimerFired`` is recorded: a moment before the timer is due, so that it is durable by then.

Recording an event costs a commit (two fsyncs, ~0.5-1 ms here), and the workflow must not resume before the
event is durable. Recorded at the due time, every timer would overshoot by that commit. So the core records
``TimerFired`` :data:`TIMER_LEAD_S` early, with the due time in its ``due_at``; the workflow process holds the
event until ``due_at`` before applying it (on delivery and on replay alike), and the workflow's clock reads
``due_at``. Nothing resumes early, after a crash either: the hold is in the process that applies the event.

The lead applies on the system clock only: on a virtual clock (``aion.testing``) timers are recorded at their
time, as the clock moves.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from aion.clock import SYSTEM_CLOCK, Clock

#: How long before a durable timer is due its ``TimerFired`` is recorded (system clock only). Longer than a
#: commit takes nearly always, short enough that a signal arriving in that window (ordered after the timer) is
#: delayed no more than this.
TIMER_LEAD_S: Final = 0.005


def record_at(fire_at: float, clock: Clock) -> float:
    """When to record the ``TimerFired`` of a timer due at ``fire_at`` (epoch seconds)."""
    return fire_at - TIMER_LEAD_S if clock is SYSTEM_CLOCK else fire_at


def due_at(fire_at: float, clock: Clock) -> datetime | None:
    """The ``due_at`` of a ``TimerFired`` recorded for a timer due at ``fire_at``: set on the system clock only."""
    return datetime.fromtimestamp(fire_at, UTC) if clock is SYSTEM_CLOCK else None
