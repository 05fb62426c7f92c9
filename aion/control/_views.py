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
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from aion import events as ev
from aion._definitions import version_of_run
from aion._tree import RUN_ROLE, parse_child_id, run_id_of_token, walk
from aion.errors import WorkflowNotFoundError
from aion.status import WorkflowStatus, status_of_run
from aion.store import EventStore, RunInfo
from aion.visibility import WorkflowCount, WorkflowPage

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


def to_jsonable(value: Any) -> Any:
    """``value`` as JSON- and msgpack-friendly data.

    datetimes and dates become ISO 8601 strings, bytes base64 strings, ``Decimal``/``UUID`` strings, tuples
    lists, dataclasses maps of their fields, enums their values; ints beyond 64 bits become decimal strings;
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
    return repr(value)


def run_view(info: RunInfo, version: int | None = None) -> dict[str, Any]:
    """One workflow's current run, as ``aion list`` prints it (``version``: the workflow version it is pinned
    to, when known)."""
    view = {
        "workflow_id": info.workflow_id,
        "run_id": info.run_id,
        "workflow_type": info.workflow_type,
        "status": info.status.value,
        "start_time": to_jsonable(info.start_time),
        "close_time": to_jsonable(info.close_time),
        "run_number": info.run_number,
        "search_attributes": to_jsonable(dict(info.search_attributes)),
        "memo": to_jsonable(info.memo),
    }
    if version is not None:
        view["version"] = version
    return view


def run_version(store: EventStore, info: RunInfo) -> int:
    """The workflow version ``info``'s run is pinned to (read from its ``WorkflowStarted``)."""
    first = store.read_history(info.workflow_id, after_seq=info.run_first_seq - 1, limit=1)
    started = first[0] if first else None
    return version_of_run(started.workflow_version if isinstance(started, ev.WorkflowStarted) else None)


def list_view(store: EventStore, runs: Sequence[RunInfo]) -> dict[str, Any]:
    """``aion list``: each run with its version."""
    return {"workflows": [run_view(info, run_version(store, info)) for info in runs]}


def block_view(history: Sequence[ev.Event]) -> dict[str, Any] | None:
    """Why a blocked run is blocked (its last ``WorkflowBlocked``), or ``None`` if it is not blocked."""
    if not history or status_of_run(history) is not WorkflowStatus.BLOCKED:
        return None
    blocked = next(event for event in reversed(history) if isinstance(event, ev.WorkflowBlocked))
    return {
        "cause": blocked.cause,
        "message": blocked.message,
        "seq": blocked.at_seq,
        "expected": blocked.expected,
        "found": blocked.found,
        "since": to_jsonable(blocked.recorded_at),
    }


def blocked_runs_view(store: EventStore) -> list[dict[str, Any]]:
    """Every blocked run with its cause (they hold no process, so the tree lists them apart)."""
    views = []
    for info in store.list_workflows(status=WorkflowStatus.BLOCKED):
        block = block_view(store.read_run(info.workflow_id, info.run_id))
        views.append({**run_view(info), "blocked": block})
    return views


def page_view(page: WorkflowPage) -> dict[str, Any]:
    """One page of ``aion list --query``: its runs and the token of the next page (``null`` on the last)."""
    return {"workflows": [run_view(info) for info in page.workflows], "next_page_token": page.next_page_token}


def count_view(found: WorkflowCount) -> dict[str, Any]:
    """``aion count``: how many runs match, and by status with ``GROUP BY Status``."""
    return {"count": found.count, "groups": dict(found.groups)}


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
            case ev.TimerStarted(timer_id=tid, fire_at=at, waiting_for=waiting_for):
                timers[tid] = {"timer_id": tid, "fire_at": to_jsonable(at), "waiting_for": waiting_for}
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
    parts += [
        f"{t['waiting_for']} (timeout: timer #{t['timer_id']} at {t['fire_at']})"
        if t.get("waiting_for")
        else f"timer #{t['timer_id']} until {t['fire_at']}"
        for t in pending["timers"]
    ]
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
    view["version"] = version_of_run(started.workflow_version if isinstance(started, ev.WorkflowStarted) else None)
    view["blocked"] = block_view(history)
    if isinstance(last, ev.WorkflowReset):
        view["reset_to"] = {"run_id": last.new_run_id, "to_seq": last.to_seq, "reason": last.reason}
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
