"""The messages of the schedule service (``aion.schedules._service``): the API's calls, the timer thread's
wake-up, and what the core and the engine's ``Closures`` tell it back."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pykka

from aion import events as ev
from aion._futures import OneShotFuture
from aion.errors import AionError

if TYPE_CHECKING:
    from aion.schedules._service import ScheduleService


@dataclass(frozen=True)
class Call:
    """Run ``action(service)`` in the service's thread once schedule ``schedule_id`` has nothing on its way
    (``None``: at once); ``reply`` gets its return value or error."""

    schedule_id: str | None
    action: Callable[[ScheduleService], Any]
    reply: pykka.Future[Any] = field(default_factory=OneShotFuture)


@dataclass(frozen=True)
class Due:
    """Wake-up: the timer thread has queued due schedule ids (``ScheduleService._due``)."""


@dataclass(frozen=True)
class Started:
    """The core answered a fire's start: recorded (``error`` None) or refused."""

    schedule_id: str
    fired: ev.ScheduleFired
    error: BaseException | None
    #: When the transaction that recorded the fire committed.
    recorded_at: datetime | None = None


@dataclass(frozen=True)
class Closed:
    """A run the service started has closed with ``terminal``."""

    workflow_id: str
    terminal: ev.Event


class StartNotifier(pykka.ThreadingFuture[Any]):
    """A reply future that tells the service when the core sets it."""

    def __init__(self, tell: Callable[[Any], None], schedule_id: str, fired: ev.ScheduleFired) -> None:
        super().__init__()
        self._tell, self._schedule_id, self._fired = tell, schedule_id, fired

    def set(self, value: Any = None) -> None:
        super().set(value)
        recorded_at = value[0].recorded_at if isinstance(value, list) and value else None
        with contextlib.suppress(pykka.ActorDeadError):
            self._tell(Started(self._schedule_id, self._fired, None, recorded_at))

    def set_exception(self, exc_info: Any = None) -> None:
        super().set_exception(exc_info)
        error = exc_info[1] if isinstance(exc_info, tuple) else exc_info
        with contextlib.suppress(pykka.ActorDeadError):
            self._tell(Started(self._schedule_id, self._fired, error or AionError("start failed")))
