"""What a schedule fires on (:class:`ScheduleSpec`) and what it does when fires overlap (:class:`SchedulePolicy`).

Cron expressions are parsed and iterated by ``croniter`` (the standard 5 fields; DST gaps and folds handled in
the spec's IANA ``timezone`` through ``zoneinfo``). Both classes validate on construction, raising
``InvalidArgumentError`` that names the field, and are recorded as plain dicts (:meth:`ScheduleSpec.to_dict`).
Pure: nothing here reads a clock or a store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from aion._durations import Duration, to_seconds
from aion.errors import InvalidArgumentError

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: How many fire times a search looks at before giving up (a spec whose every fire is skipped).
_SEARCH_LIMIT: Final = 10_000


class Overlap(StrEnum):
    """What a fire does while a workflow the schedule started is still running."""

    #: Start nothing; the fire is skipped and counted.
    SKIP = "skip"
    #: Start it once the running one closes; at most one fire waits (later ones are skipped).
    BUFFER_ONE = "buffer_one"
    #: Start each in turn once the one before closes.
    BUFFER_ALL = "buffer_all"
    #: Request cancellation of the running one and start this one when it has closed.
    CANCEL_OTHER = "cancel_other"
    #: Terminate the running one and start this one at once.
    TERMINATE_OTHER = "terminate_other"
    #: Start it at once, beside the running one.
    ALLOW_ALL = "allow_all"


def parse_overlap(value: object, what: str = "overlap") -> Overlap:
    """An :class:`Overlap` from itself or its name (``"skip"``, ``"BUFFER_ONE"``, ...)."""
    if isinstance(value, Overlap):
        return value
    try:
        return Overlap(str(value).lower())
    except ValueError:
        known = ", ".join(member.name for member in Overlap)
        raise InvalidArgumentError(f"{what}: unknown overlap policy {value!r} (one of: {known})") from None


def _seconds(value: Duration | None, what: str, *, positive: bool = False) -> float:
    seconds = 0.0 if value is None else to_seconds(value, what)
    if positive and seconds <= 0:
        raise InvalidArgumentError(f"{what} must be > 0, got {value!r}")
    if seconds < 0:
        raise InvalidArgumentError(f"{what} must be >= 0, got {value!r}")
    return seconds


def _cron(value: object, what: str) -> str:
    if not isinstance(value, str) or len(value.split()) != 5 or not croniter.is_valid(value):
        raise InvalidArgumentError(f"{what}: {value!r} is not a 5-field cron expression")
    return " ".join(value.split())


def _crons(value: str | Sequence[str] | None, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    return tuple(
        _cron(item, f"{what}[{index}]" if not isinstance(value, str) else what) for index, item in enumerate(items)
    )


def _aware(value: datetime | None, what: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgumentError(f"{what} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


def fire_id(schedule_id: str, fire_at: datetime) -> str:
    """The workflow id a fire starts: ``<schedule_id>-<fire time, UTC ISO 8601>`` (deterministic)."""
    at = fire_at.astimezone(UTC)
    text = at.strftime("%Y-%m-%dT%H:%M:%S")
    if at.microsecond:
        text += f".{at.microsecond:06d}"
    return f"{schedule_id}-{text}Z"


@dataclass(frozen=True, init=False)
class ScheduleSpec:
    """When a schedule fires: the union of its ``cron`` expressions and its ``interval``, from ``start_at`` to
    ``end_at``, less the times matching a ``skip`` expression.

    ``interval`` fires at every multiple of it since the epoch, plus ``offset`` (``interval=60, offset=5``: at
    second 5 of every minute). ``cron`` is one or more standard 5-field expressions read in ``timezone`` (IANA,
    default UTC). ``jitter`` delays each fire by a deterministic amount below it (the workflow id keeps the
    nominal time)."""

    cron: tuple[str, ...]
    interval: float | None
    offset: float
    start_at: datetime | None
    end_at: datetime | None
    jitter: float
    timezone: str
    skip: tuple[str, ...]
    _zone: ZoneInfo = field(repr=False, compare=False)

    def __init__(
        self,
        *,
        cron: str | Sequence[str] | None = None,
        interval: Duration | None = None,
        offset: Duration | None = None,
        start_at: datetime | None = None,
        end_at: datetime | None = None,
        jitter: Duration | None = None,
        timezone: str = "UTC",
        skip: str | Sequence[str] | None = None,
    ) -> None:
        set_ = object.__setattr__
        set_(self, "cron", _crons(cron, "cron"))
        set_(self, "interval", None if interval is None else _seconds(interval, "interval", positive=True))
        set_(self, "offset", _seconds(offset, "offset"))
        if not self.cron and self.interval is None:
            raise InvalidArgumentError("cron/interval: a schedule spec needs a cron expression or an interval")
        set_(self, "start_at", _aware(start_at, "start_at"))
        set_(self, "end_at", _aware(end_at, "end_at"))
        if self.start_at is not None and self.end_at is not None and self.end_at < self.start_at:
            raise InvalidArgumentError(
                f"end_at ({self.end_at.isoformat()}) is before start_at ({self.start_at.isoformat()})"
            )
        set_(self, "jitter", _seconds(jitter, "jitter"))
        if not isinstance(timezone, str) or not timezone:
            raise InvalidArgumentError(f"timezone must be an IANA time zone name, got {timezone!r}")
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidArgumentError(f"timezone: unknown time zone {timezone!r}") from None
        set_(self, "timezone", timezone)
        set_(self, "_zone", zone)
        set_(self, "skip", _crons(skip, "skip"))

    # -- recording --------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The spec as recorded in ``ScheduleCreated``/``ScheduleUpdated``."""
        return {
            "cron": list(self.cron),
            "interval": self.interval,
            "offset": self.offset,
            "start_at": self.start_at,
            "end_at": self.end_at,
            "jitter": self.jitter,
            "timezone": self.timezone,
            "skip": list(self.skip),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScheduleSpec:
        """The spec :meth:`to_dict` recorded."""
        return cls(
            cron=data.get("cron") or None,
            interval=data.get("interval"),
            offset=data.get("offset"),
            start_at=data.get("start_at"),
            end_at=data.get("end_at"),
            jitter=data.get("jitter"),
            timezone=data.get("timezone", "UTC"),
            skip=data.get("skip") or None,
        )

    # -- fire times -------------------------------------------------------------------------------------------

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after ``after`` (aware, UTC), or ``None`` when there is none."""
        after = after.astimezone(UTC)
        if self.start_at is not None and after < self.start_at:
            after = self.start_at - timedelta(microseconds=1)
        for _ in range(_SEARCH_LIMIT):
            candidate = self._next_raw(after)
            if candidate is None or (self.end_at is not None and candidate > self.end_at):
                return None
            if not self._skipped(candidate):
                return candidate
            after = candidate
        return None

    def fire_times(
        self, after: datetime, until: datetime | None = None, limit: int | None = None
    ) -> Iterator[datetime]:
        """Fire times strictly after ``after`` and at most ``until``, at most ``limit`` of them."""
        count = 0
        at: datetime | None = after
        while at is not None and (limit is None or count < limit):
            at = self.next_after(at)
            if at is None or (until is not None and at > until):
                return
            count += 1
            yield at

    def jitter_of(self, schedule_id: str, fire_at: datetime) -> float:
        """The deterministic delay (seconds, below ``jitter``) of one fire."""
        if not self.jitter:
            return 0.0
        digest = hashlib.blake2b(fire_id(schedule_id, fire_at).encode(), digest_size=8).digest()
        return self.jitter * (int.from_bytes(digest, "big") / 2**64)

    def _next_raw(self, after: datetime) -> datetime | None:
        candidates: list[datetime] = []
        if self.interval is not None:
            step = timedelta(seconds=self.interval)
            base = _EPOCH + timedelta(seconds=self.offset)
            count = (after - base) // step + 1
            candidates.append(base + count * step)
        local = after.astimezone(self._zone)
        for expression in self.cron:
            found = croniter(expression, local).get_next(datetime)
            candidates.append(found.astimezone(UTC))
        return min(candidates) if candidates else None

    def _skipped(self, at: datetime) -> bool:
        local = at.astimezone(self._zone)
        return any(croniter.match(expression, local) for expression in self.skip)


@dataclass(frozen=True, init=False)
class SchedulePolicy:
    """What a schedule does with overlapping fires and missed ones.

    ``overlap`` (default ``SKIP``, see :class:`Overlap`); ``catchup_window``: fires that came due while the engine
    was down and are at most this old (default 60 s) are taken up per ``overlap``, older ones are skipped and
    counted as missed; ``pause_on_failure``: a started workflow that fails, times out or is terminated pauses the
    schedule."""

    overlap: Overlap
    catchup_window: float
    pause_on_failure: bool

    def __init__(
        self,
        *,
        overlap: Overlap | str = Overlap.SKIP,
        catchup_window: Duration = 60.0,
        pause_on_failure: bool = False,
    ) -> None:
        object.__setattr__(self, "overlap", parse_overlap(overlap, "overlap"))
        object.__setattr__(self, "catchup_window", _seconds(catchup_window, "catchup_window"))
        if not isinstance(pause_on_failure, bool):
            raise InvalidArgumentError(f"pause_on_failure must be a bool, got {pause_on_failure!r}")
        object.__setattr__(self, "pause_on_failure", pause_on_failure)

    def to_dict(self) -> dict[str, Any]:
        """The policy as recorded."""
        return {
            "overlap": self.overlap.value,
            "catchup_window": self.catchup_window,
            "pause_on_failure": self.pause_on_failure,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SchedulePolicy:
        """The policy :meth:`to_dict` recorded."""
        return cls(
            overlap=data.get("overlap", "skip"),
            catchup_window=data.get("catchup_window", 60.0),
            pause_on_failure=bool(data.get("pause_on_failure", False)),
        )
