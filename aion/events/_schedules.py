"""The events of a schedule's history (see :mod:`aion.schedules`).

A schedule's history (the store's ``schedules`` database, see ``aion.store.ScheduleAppend``) holds only these
events; in them ``workflow_id`` is the *schedule* id. Times are aware UTC datetimes; ``spec`` and ``policy`` are
the plain dicts of ``aion.schedules.ScheduleSpec.to_dict`` / ``SchedulePolicy.to_dict``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aion.events._base import Event


@dataclass(frozen=True, kw_only=True)
class ScheduleEvent(Event):
    """Base of the events of a schedule's history."""


@dataclass(frozen=True, kw_only=True)
class ScheduleCreated(ScheduleEvent):
    """A schedule is created (or created again after its deletion): what it starts and when."""

    workflow_type: str
    args: Any
    spec: dict[str, Any]
    policy: dict[str, Any]
    search_attributes: dict[str, Any] = field(default_factory=dict)
    memo: dict[str, Any] = field(default_factory=dict)
    paused: bool = False
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class ScheduleUpdated(ScheduleEvent):
    """The schedule's spec and/or policy changed (``None``: unchanged). Fires are counted from the update on."""

    spec: dict[str, Any] | None = None
    policy: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class SchedulePaused(ScheduleEvent):
    """No fire starts anything until the schedule is unpaused (``note`` says why)."""

    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class ScheduleUnpaused(ScheduleEvent):
    """The schedule fires again, from now on (fires due while it was paused are not taken up)."""

    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class ScheduleFired(ScheduleEvent):
    """A fire started workflow ``started_workflow_id`` (run ``run_id``): recorded in the same transaction as that
    run's ``WorkflowStarted``. ``fire_at`` is the nominal fire time; ``manual`` is "trigger" or "backfill" for a
    fire asked for by hand (it does not move the schedule's position in its spec)."""

    fire_at: datetime
    started_workflow_id: str
    run_id: str
    manual: str | None = None


@dataclass(frozen=True, kw_only=True)
class ScheduleBuffered(ScheduleEvent):
    """A fire waits (overlap policy ``BUFFER_ONE``/``BUFFER_ALL``/``CANCEL_OTHER``) for the running workflow to
    close; it is started then, by a ``ScheduleFired`` with the same ``fire_at``."""

    fire_at: datetime
    manual: str | None = None


@dataclass(frozen=True, kw_only=True)
class ScheduleSkipped(ScheduleEvent):
    """A fire started nothing: ``reason`` is ``overlap`` (the overlap policy), ``paused``, ``buffer_full``,
    ``exists`` (its workflow id has a run already) or ``start_failed`` (``detail`` says why)."""

    fire_at: datetime
    reason: str
    detail: str | None = None
    manual: str | None = None


@dataclass(frozen=True, kw_only=True)
class ScheduleMissed(ScheduleEvent):
    """``count`` fires up to ``up_to`` came due while the engine was down and are older than the catch-up window:
    skipped, and counted."""

    count: int
    up_to: datetime


@dataclass(frozen=True, kw_only=True)
class ScheduleDeleted(ScheduleEvent):
    """The schedule is deleted: it fires no more (its history stays; its id may be created again)."""
