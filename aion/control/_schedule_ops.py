"""The control server's schedule operations (``aion schedule ...``): one function per ``op``, like ``_ops``.

They reach the engine's schedule API (``Engine.create_schedule``, ``get_schedule``, ``list_schedules``) through
:class:`ScheduleEngine`, and never import the engine.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, cast

from aion.control._fields import text_field
from aion.control._views import to_jsonable
from aion.errors import InvalidArgumentError
from aion.schedules import SchedulePolicy, ScheduleSpec


class ScheduleEngine(Protocol):
    """The schedule API of the engine, as the operations use it."""

    def create_schedule(self, schedule_id: str, workflow: str, *args: Any, **options: Any) -> Any: ...

    def get_schedule(self, schedule_id: str) -> Any: ...

    def list_schedules(self) -> list[Any]: ...


def _time(request: dict[str, Any], key: str) -> datetime:
    text = cast(str, text_field(request, key))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgumentError(f"{key}: {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise InvalidArgumentError(f"{key}: {text!r} has no UTC offset")
    return moment


def _outcome(event: Any) -> dict[str, Any]:
    fields = {k: v for k, v in vars(event).items() if k not in ("workflow_id", "seq")}
    return {"type": type(event).__name__, **cast(dict[str, Any], to_jsonable(fields))}


def op_schedule_create(engine: Any, request: dict[str, Any], context: Any) -> dict[str, Any]:
    """Create a schedule from ``spec`` and ``policy`` maps (the keyword arguments of ``ScheduleSpec`` /
    ``SchedulePolicy``; ``start_at``/``end_at`` in ISO 8601)."""
    spec_map = dict(request.get("spec") or {})
    for key in ("start_at", "end_at"):
        if spec_map.get(key) is not None:
            spec_map[key] = _time(spec_map, key)
    try:
        spec = ScheduleSpec(**spec_map)
        policy = SchedulePolicy(**dict(request.get("policy") or {}))
    except TypeError as error:
        raise InvalidArgumentError(f"spec/policy: {error}") from None
    args = request.get("args") or []
    if not isinstance(args, list):
        raise InvalidArgumentError("request field 'args' must be a list")
    schedule_id = cast(str, text_field(request, "schedule_id"))
    cast(ScheduleEngine, engine).create_schedule(
        schedule_id,
        cast(str, text_field(request, "workflow_type")),
        *args,
        spec=spec,
        policy=policy,
        paused=bool(request.get("paused", False)),
        note=text_field(request, "note", required=False),
    )
    return op_schedule_describe(engine, {"schedule_id": schedule_id}, context)


def op_schedule_list(engine: Any, request: dict[str, Any], context: Any) -> dict[str, Any]:
    """Every schedule, described."""
    return {"schedules": [to_jsonable(d.to_dict()) for d in cast(ScheduleEngine, engine).list_schedules()]}


def op_schedule_describe(engine: Any, request: dict[str, Any], context: Any) -> dict[str, Any]:
    """One schedule, described."""
    handle = cast(ScheduleEngine, engine).get_schedule(cast(str, text_field(request, "schedule_id")))
    described: dict[str, Any] = to_jsonable(handle.describe().to_dict())
    return described


def op_schedule_pause(engine: Any, request: dict[str, Any], context: Any) -> dict[str, Any]:
    """Pause a schedule (with ``note``)."""
    handle = cast(ScheduleEngine, engine).get_schedule(cast(str, text_field(request, "schedule_id")))
    handle.pause(text_field(request, "note", required=False))
    return op_schedule_describe(engine, request, context)


def op_schedule_unpause(engine: Any, request: dict[str, Any], context: Any) -> dict[str, Any]:
    """Unpause a schedule (with ``note``)."""
    handle = cast(ScheduleEngine, engine).get_schedule(cast(str, text_field(request, "schedule_id")))
    handle.unpause(text_field(request, "note", required=False))
    return op_schedule_describe(engine, request, context)


def op_schedule_trigger(engine: Any, request: dict[str, Any], context: Any) -> dict[str, Any]:
    """Fire a schedule now (``overlap`` optional); the recorded outcome."""
    handle = cast(ScheduleEngine, engine).get_schedule(cast(str, text_field(request, "schedule_id")))
    return {"outcome": _outcome(handle.trigger(text_field(request, "overlap", required=False)))}


def op_schedule_backfill(engine: Any, request: dict[str, Any], context: Any) -> dict[str, Any]:
    """Fire every time of the spec in ``[start, end]`` (``overlap`` optional); the recorded outcomes."""
    handle = cast(ScheduleEngine, engine).get_schedule(cast(str, text_field(request, "schedule_id")))
    overlap = text_field(request, "overlap", required=False)
    outcomes = handle.backfill(_time(request, "start"), _time(request, "end"), overlap)
    return {"outcomes": [_outcome(event) for event in outcomes]}


def op_schedule_delete(engine: Any, request: dict[str, Any], context: Any) -> dict[str, Any]:
    """Delete a schedule."""
    schedule_id = cast(str, text_field(request, "schedule_id"))
    cast(ScheduleEngine, engine).get_schedule(schedule_id).delete()
    return {"schedule_id": schedule_id, "deleted": True}


#: The schedule operations by ``op`` name (merged into ``_ops.OPS``).
SCHEDULE_OPS = {
    "schedule_create": op_schedule_create,
    "schedule_list": op_schedule_list,
    "schedule_describe": op_schedule_describe,
    "schedule_pause": op_schedule_pause,
    "schedule_unpause": op_schedule_unpause,
    "schedule_trigger": op_schedule_trigger,
    "schedule_backfill": op_schedule_backfill,
    "schedule_delete": op_schedule_delete,
}
