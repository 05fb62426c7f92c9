"""The context an activity runs in, inside its worker process."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ActivityInfo:
    """What an activity knows about the call it serves (``activity.info()``)."""

    workflow_id: str
    run_id: str
    activity_id: int
    activity_type: str
    attempt: int
    #: Details of the last heartbeat of the previous attempt, if any.
    heartbeat_details: Any = None


@dataclass
class ActivityContext:
    """The running activity's info and how its heartbeats leave the worker."""

    info: ActivityInfo
    send_heartbeat: Callable[[Any], None]

    def heartbeat(self, details: Any) -> None:
        """Send a heartbeat with ``details``."""
        self.send_heartbeat(details)


_current: contextvars.ContextVar[ActivityContext] = contextvars.ContextVar("aion_activity")


def current_context() -> ActivityContext:
    """The context of the activity running now; raises outside an activity."""
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("this function can only be called from an activity while it runs") from None


def enter(context: ActivityContext) -> contextvars.Token[ActivityContext]:
    """Make ``context`` current (the worker does this around each attempt)."""
    return _current.set(context)


def leave(token: contextvars.Token[ActivityContext]) -> None:
    """Undo :func:`enter`."""
    _current.reset(token)
