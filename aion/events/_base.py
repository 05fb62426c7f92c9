"""The base of every history event: :class:`Event` (which registers each subclass in :data:`EVENT_TYPES` by its
type name, the name events are stored under), :class:`Failure` (a recorded error) and :data:`UNSET_TIME`.

The event classes themselves are in ``_runs`` (a run's lifecycle and holds), ``_steps`` (activities, timers,
signals, children, updates) and ``_schedules`` (a schedule's history); import them all from :mod:`aion.events`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

#: The placeholder ``recorded_at`` of an event not yet appended.
UNSET_TIME = datetime(1970, 1, 1, tzinfo=UTC)

#: Every concrete event class by its ``type`` name, filled in as the classes are defined.
EVENT_TYPES: dict[str, type[Event]] = {}


@dataclass(frozen=True)
class Failure:
    """A recorded error: the exception's type name, message, formatted traceback and optional details."""

    type: str
    message: str
    traceback: str | None = None
    details: Any = None
    non_retryable: bool = False


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every history event: which workflow, its position in the history and when it was recorded."""

    workflow_id: str
    seq: int = 0
    recorded_at: datetime = UNSET_TIME

    #: Format version of the event's encoding; bump it on a subclass when a field is added (with a default).
    version: ClassVar[int] = 1
    #: True for the events that close a run.
    terminal: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        EVENT_TYPES[cls.__name__] = cls

    @property
    def type(self) -> str:
        """The event's type name, as stored."""
        return type(self).__name__


def terminal_event_types() -> frozenset[str]:
    """The type names of the events that close a run."""
    return frozenset(name for name, cls in EVENT_TYPES.items() if cls.terminal)
