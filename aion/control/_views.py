"""JSON-able views of runs, events, descriptions and the supervision tree.

The control server and the read-only (no engine) path of the CLI both build their answers here, so ``--json``
output is the same whichever way it was read. The schemas are documented in ``docs/cli.md``.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from aion import events as ev
from aion._codec import is_model
from aion._tree import RUN_ROLE, parse_child_id, run_id_of_token, walk
from aion.errors import WorkflowNotFoundError
from aion.status import status_of_run
from aion.store import EventStore, RunInfo

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


def to_jsonable(value: Any) -> Any:
    """``value`` as JSON- and msgpack-friendly data.

    datetimes and dates become ISO 8601 strings, bytes base64 strings, ``Decimal``/``UUID`` strings, tuples
    lists, dataclasses and pydantic models maps of their fields, enums their values, timedeltas their seconds;
    ints beyond 64 bits become decimal strings;
    anything else its ``repr``.
    """
    if value is None or isinstance(value, bool | str | float):
        return value
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, int):
        return value if _INT_MIN <= value <= _INT_MAX else str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: to_jsonable(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, timedelta):
        return value.total_seconds()
    if is_model(type(value)):
        return {name: to_jsonable(getattr(value, name)) for name in type(value).model_fields}
    return repr(value)


def run_view(info: RunInfo) -> dict[str, Any]:
    """One workflow's current run, as ``aion list`` prints it."""
    return {
        "workflow_id": info.workflow_id,
        "run_id": info.run_id,
        "workflow_type": info.workflow_type,
        "status": info.status.value,
        "start_time": to_jsonable(info.start_time),
        "close_time": to_jsonable(info.close_time),
        "run_number": info.run_number,
        "search_attributes": to_jsonable(dict(info.search_attributes)),
    }


def event_view(event: ev.Event) -> dict[str, Any]:
    """One history event: ``type``, ``seq``, ``recorded_at``, ``workflow_id`` and the event's own fields."""
    view: dict[str, Any] = {"type": event.type, "seq": event.seq, "recorded_at": to_jsonable(event.recorded_at)}
    for field in dataclasses.fields(event):
        if field.name not in view:
            view[field.name] = to_jsonable(getattr(event, field.name))
    return view


def pending_work(history: Sequence[ev.Event]) -> dict[str, list[dict[str, Any]]]:
    """What a run has started and not yet seen finish: activities, timers and child workflows."""
    activities: dict[int, dict[str, Any]] = {}
    timers: dict[int, dict[str, Any]] = {}
    children: dict[int, dict[str, Any]] = {}
    for event in history:
        match event:
            case ev.ActivityScheduled(activity_id=aid, activity_type=name):
                activities[aid] = {
                    "activity_id": aid,
                    "activity_type": name,
                    "state": "scheduled",
                    "attempt": 1,
                    "next_attempt_at": None,
                }
            case ev.ActivityStarted(activity_id=aid, attempt=attempt) if aid in activities:
                activities[aid].update(state="started", attempt=attempt, next_attempt_at=None)
            case ev.ActivityFailed(activity_id=aid, retryable=True, next_attempt_at=at) if (
                at is not None and aid in activities
            ):
                activities[aid].update(state="backing_off", next_attempt_at=to_jsonable(at))
            case (
                ev.ActivityCompleted(activity_id=aid)
                | ev.ActivityFailed(activity_id=aid)
                | ev.ActivityCancelled(activity_id=aid)
            ):
                activities.pop(aid, None)
            case ev.TimerStarted(timer_id=tid, fire_at=at):
                timers[tid] = {"timer_id": tid, "fire_at": to_jsonable(at)}
            case ev.TimerFired(timer_id=tid) | ev.TimerCancelled(timer_id=tid):
                timers.pop(tid, None)
            case ev.ChildWorkflowStarted(child_id=cid, child_workflow_id=child, workflow_type=name):
                children[cid] = {"child_id": cid, "workflow_id": child, "workflow_type": name}
            case _ if event.type.startswith("ChildWorkflow") and isinstance(getattr(event, "child_id", None), int):
                children.pop(event.child_id, None)  # type: ignore[attr-defined]
    return {
        "activities": list(activities.values()),
        "timers": list(timers.values()),
        "children": list(children.values()),
    }


def waiting_on(history: Sequence[ev.Event]) -> str | None:
    """A short phrase saying what an open run waits on (``None`` once it is closed)."""
    if not history or history[-1].terminal:
        return None
    pending = pending_work(history)
    parts = [
        f"activity {a['activity_type']} #{a['activity_id']} ({a['state']}, attempt {a['attempt']})"
        for a in pending["activities"]
    ]
    parts += [f"timer #{t['timer_id']} until {t['fire_at']}" for t in pending["timers"]]
    parts += [f"child {c['workflow_id']}" for c in pending["children"]]
    if any(isinstance(event, ev.WorkflowCancelRequested) for event in history):
        parts.append("cancellation")
    return ", ".join(parts) if parts else "signal or condition"


def describe_view(store: EventStore, workflow_id: str) -> dict[str, Any]:
    """The current run of ``workflow_id`` in detail (``WorkflowNotFoundError`` if unknown)."""
    info = store.get_run(workflow_id)
    if info is None:
        raise WorkflowNotFoundError(workflow_id)
    history = store.read_run(workflow_id, info.run_id)
    started = history[0]
    last = history[-1]
    view = run_view(info)
    view["status"] = status_of_run(history).value
    view["history_length"] = len(history)
    view["input"] = to_jsonable(started.input) if isinstance(started, ev.WorkflowStarted) else None
    view["result"] = to_jsonable(last.result) if isinstance(last, ev.WorkflowCompleted) else None
    view["failure"] = to_jsonable(last.failure) if isinstance(last, ev.WorkflowFailed) else None
    view["waiting_on"] = waiting_on(history)
    view["pending"] = pending_work(history) if not last.terminal else {"activities": [], "timers": [], "children": []}
    return view


def history_view(store: EventStore, workflow_id: str, after_seq: int = 0) -> dict[str, Any]:
    """The current run's events after ``after_seq``, and whether the run is closed."""
    info = store.get_run(workflow_id)
    if info is None:
        raise WorkflowNotFoundError(workflow_id)
    history = store.read_run(workflow_id, info.run_id)
    return {
        "workflow_id": workflow_id,
        "run_id": info.run_id,
        "closed": bool(history) and history[-1].terminal,
        "events": [event_view(event) for event in history if event.seq > after_seq],
    }


def annotate_tree(tree: dict[str, Any], store: EventStore) -> dict[str, Any]:
    """Add a ``workflow`` map (ids, type, status, what it waits on) to each workflow process node."""
    for _, node in walk(tree):
        meta = node.get("meta") or {}
        workflow_id = meta.get("workflow_id")
        if not isinstance(workflow_id, str) or meta.get("role") != RUN_ROLE:
            continue
        _, token, _ = parse_child_id(str(node["id"]))
        run_id = run_id_of_token(token)
        try:
            history = store.read_run(workflow_id, run_id)
        except WorkflowNotFoundError:
            continue
        started = history[0] if history else None
        node["workflow"] = {
            "workflow_id": workflow_id,
            "run_id": run_id,
            "workflow_type": started.workflow_type if isinstance(started, ev.WorkflowStarted) else None,
            "status": status_of_run(history).value if history else None,
            "waiting_on": waiting_on(history),
        }
    return tree
