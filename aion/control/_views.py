"""JSON-able views of runs, events, descriptions and the supervision tree.

The control server and the read-only (no engine) path of the CLI both build their answers here, so ``--json``
output is the same whichever way it was read. The schemas are documented in ``docs/cli.md``.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from aion import events as ev
from aion._codec import is_model
from aion._definitions import version_of_run
from aion._tree import RUN_ROLE, parse_child_id, run_id_of_token, walk
from aion._waits import NOT_REPORTED, UNKNOWN_WITHOUT_ENGINE, pending_work, waiting_on
from aion.errors import WorkflowNotFoundError
from aion.status import WorkflowStatus, status_of_run
from aion.store import EventStore, RunInfo, read_started
from aion.visibility import WorkflowCount, WorkflowPage

__all__ = [
    "annotate_tree",
    "count_view",
    "describe_view",
    "event_view",
    "history_view",
    "page_view",
    "pending_work",
    "run_view",
    "to_jsonable",
    "waiting_on",
]

#: For each (workflow id, run id): what the run's process last reported waiting on (``Engine.run_waits``).
WaitsOf = Callable[[Sequence[tuple[str, str]]], list[list[str] | None]]

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
    started = read_started(store, info)
    return version_of_run(started.workflow_version if started is not None else None)


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
    return {
        "workflows": [run_view(info, version_of_run(info.workflow_version)) for info in page.workflows],
        "next_page_token": page.next_page_token,
    }


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


def describe_view(store: EventStore, workflow_id: str, waits_of: WaitsOf | None = None) -> dict[str, Any]:
    """The current run of ``workflow_id`` in detail (``WorkflowNotFoundError`` if unknown). ``waits_of`` (a
    running engine's) says what an open run's code waits on beyond its history; without it, ``waits`` is null
    and an untimed wait is not named (see :mod:`aion._waits`)."""
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
    reported = None if last.terminal or waits_of is None else waits_of([(workflow_id, info.run_id)])[0]
    view["waiting_on"] = waiting_on(history, reported, unknown=_unknown(waits_of))
    view["waits"] = reported
    view["pending"] = (
        pending_work(history)
        if not last.terminal
        else {"activities": [], "timers": [], "children": [], "signals_out": []}
    )
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


def _unknown(waits_of: WaitsOf | None) -> str:
    """What a run whose history names no wait, and of which no report is at hand, is said to wait on."""
    return UNKNOWN_WITHOUT_ENGINE if waits_of is None else NOT_REPORTED


def annotate_tree(tree: dict[str, Any], store: EventStore, waits_of: WaitsOf | None = None) -> dict[str, Any]:
    """Add a ``workflow`` map (ids, type, status, what it waits on) to each workflow process node; ``waits_of``
    (a running engine's) names the signals and conditions its code waits on (one request for the whole tree)."""
    nodes: list[tuple[dict[str, Any], str, str]] = []
    for _, node in walk(tree):
        meta = node.get("meta") or {}
        workflow_id = meta.get("workflow_id")
        if not isinstance(workflow_id, str) or meta.get("role") != RUN_ROLE:
            continue
        _, token, _ = parse_child_id(str(node["id"]))
        nodes.append((node, workflow_id, run_id_of_token(token)))
    reports = waits_of([(wid, rid) for _, wid, rid in nodes]) if waits_of is not None and nodes else None
    for index, (node, workflow_id, run_id) in enumerate(nodes):
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
            "waiting_on": waiting_on(history, None if reports is None else reports[index], unknown=_unknown(waits_of)),
        }
    return tree
