"""What the HTTP server serves from: a running engine, or a store opened read-only (``aion ui``).

Every answer is built by the control server's operations (:data:`aion.control._ops.OPS`, the code the CLI's
requests run) or by the control views on the store, so the HTTP API, the UI and ``aion ... --json`` say the same.
The few operations the control socket has no use for (a start with every option, signal-with-start, the runs of
a workflow) are here, and call the engine's Python API. Read-only, only the reading operations answer; every
other one is refused with :class:`~aion.errors.ForbiddenError`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aion import events as ev
from aion.clock import SYSTEM_CLOCK
from aion.control._ops import OPS, OpContext
from aion.control._views import (
    count_view,
    describe_view,
    event_view,
    history_view,
    list_view,
    page_view,
    to_jsonable,
)
from aion.errors import EngineNotRunningError, ForbiddenError, InvalidArgumentError, WorkflowNotFoundError
from aion.status import status_of_run
from aion.store import EventStore
from aion.visibility import SearchAttributeSchema, count_workflows, list_workflows

__all__ = ["READ_OPS", "Backend"]

#: The operations that change nothing (answered in read-only mode too, and without a token on loopback).
READ_OPS = frozenset(
    {
        "ping",
        "list",
        "count",
        "describe",
        "history",
        "runs",
        "result",
        "query",
        "tree",
        "schedule_list",
        "schedule_describe",
    }
)


class Backend:
    """Runs one operation at a time for the server (from worker threads): on ``engine`` if given, else
    read-only on ``store``."""

    def __init__(self, data_dir: Path, store: EventStore, engine: Any = None) -> None:
        self.data_dir = data_dir
        self.store = store
        self.engine = engine
        #: Set when the server stops: long waits return at once.
        self.stopping = threading.Event()
        self._context = OpContext(self.stopping, SYSTEM_CLOCK)

    @property
    def schema(self) -> SearchAttributeSchema | None:
        """The engine's declared search attributes (``None`` read-only: the store's own record of them)."""
        return None if self.engine is None else self.engine.search_attributes

    @property
    def read_only(self) -> bool:
        """True without an engine: nothing can be changed."""
        return self.engine is None

    def call(self, op: str, request: dict[str, Any]) -> dict[str, Any]:
        """Run operation ``op`` with the request's fields; its JSON-able answer, or an ``AionError``."""
        if self.engine is None:
            read = _READ_ONLY.get(op)
            if read is None:
                if op in READ_OPS:
                    raise EngineNotRunningError(f"{op!r} needs a running engine; this server reads the store only")
                raise ForbiddenError(f"the server is read-only (aion ui): {op!r} is refused")
            return read(self, request)
        if op in ("list", "count"):  # also for the empty query (every run), which the control op refuses
            return _READ_ONLY[op](self, request)
        if op == "history" and request.get("run_id"):
            return _run_history(self.store, request)  # an older run's: the control op reads the current one
        own = _ENGINE_OPS.get(op)
        if own is not None:
            return own(self.engine, request)
        control = OPS.get(op)
        if control is None:
            raise InvalidArgumentError(f"unknown operation {op!r}")
        return control(self.engine, request, self._context)


# -- operations on a running engine that the control socket does not have -------------------------------------


def _seconds(request: dict[str, Any], key: str) -> float | None:
    value = request.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(f"request field {key!r} must be a number of seconds, got {value!r}")
    return float(value)


def _args(request: dict[str, Any]) -> list[Any]:
    args = request.get("args", [])
    if not isinstance(args, list):
        raise InvalidArgumentError(f"request field 'args' must be a list, got {type(args).__name__}")
    return args


def _type(request: dict[str, Any]) -> str:
    name = request.get("workflow_type")
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError(f"request field 'workflow_type' must be a non-empty string, got {name!r}")
    return name


def _attributes(request: dict[str, Any]) -> dict[str, Any] | None:
    attributes = request.get("search_attributes")
    if attributes is not None and not isinstance(attributes, dict):
        raise InvalidArgumentError("request field 'search_attributes' must be a map of name to value")
    return attributes


def op_start_workflow(engine: Any, request: dict[str, Any]) -> dict[str, Any]:
    """``Engine.start_workflow`` with every option: ``workflow_type``, ``args``, ``workflow_id``,
    ``search_attributes`` (datetimes in ISO 8601), ``memo``, ``execution_timeout``/``run_timeout`` (seconds),
    ``version``."""
    version = request.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise InvalidArgumentError(f"request field 'version' must be an int, got {version!r}")
    handle = engine.start_workflow(
        _type(request),
        *_args(request),
        workflow_id=request.get("workflow_id"),
        search_attributes=_attributes(request),
        execution_timeout=_seconds(request, "execution_timeout"),
        run_timeout=_seconds(request, "run_timeout"),
        memo=request.get("memo"),
        version=version,
    )
    return {"workflow_id": handle.workflow_id, "run_id": handle.run_id}


def op_signal_with_start(engine: Any, request: dict[str, Any]) -> dict[str, Any]:
    """``Engine.signal_with_start``: ``signal`` with ``payload`` to ``workflow_id``, started first if it is not
    running (with the start's fields)."""
    handle = engine.signal_with_start(
        _type(request),
        *_args(request),
        workflow_id=request.get("workflow_id"),
        signal=request.get("signal"),
        payload=request.get("payload"),
        search_attributes=_attributes(request),
        execution_timeout=_seconds(request, "execution_timeout"),
        run_timeout=_seconds(request, "run_timeout"),
    )
    return {"workflow_id": handle.workflow_id, "run_id": handle.run_id}


_ENGINE_OPS: dict[str, Callable[[Any, dict[str, Any]], dict[str, Any]]] = {
    "start_workflow": op_start_workflow,
    "signal_with_start": op_signal_with_start,
}


# -- reading operations on the store (a running engine's, or read-only) ---------------------------------------


def _workflow_id(request: dict[str, Any]) -> str:
    workflow_id = request.get("workflow_id")
    if not isinstance(workflow_id, str) or not workflow_id:
        raise InvalidArgumentError(f"request field 'workflow_id' must be a non-empty string, got {workflow_id!r}")
    return workflow_id


def runs_view(store: EventStore, workflow_id: str) -> dict[str, Any]:
    """Every run of ``workflow_id``, oldest first: its id, status, first seq, times and how it ended (continued
    as new, reset into another run, closed, or open)."""
    history = store.read_history(workflow_id)
    if not history:
        raise WorkflowNotFoundError(workflow_id)
    runs: list[list[ev.Event]] = []
    for event in history:
        if isinstance(event, ev.WorkflowStarted) or not runs:
            runs.append([])
        runs[-1].append(event)
    views = []
    for events in runs:
        started, last = events[0], events[-1]
        views.append(
            {
                "run_id": started.run_id if isinstance(started, ev.WorkflowStarted) else None,
                "workflow_type": started.workflow_type if isinstance(started, ev.WorkflowStarted) else None,
                "status": status_of_run(events).value,
                "first_seq": started.seq,
                "last_seq": last.seq,
                "start_time": to_jsonable(started.recorded_at),
                "close_time": to_jsonable(last.recorded_at) if last.terminal else None,
                "next_run_id": getattr(last, "new_run_id", None) if last.terminal else None,
                "ended_by": last.type if last.terminal else None,
            }
        )
    return {"workflow_id": workflow_id, "runs": views}


def _run_history(store: EventStore, request: dict[str, Any]) -> dict[str, Any]:
    """``history_view`` of the current run, or of run ``run_id`` when given."""
    workflow_id = _workflow_id(request)
    run_id = request.get("run_id")
    if not run_id:
        return history_view(store, workflow_id, int(request.get("after_seq") or 0))
    history = store.read_run(workflow_id, str(run_id))
    if not history:
        raise WorkflowNotFoundError(workflow_id, str(run_id))
    after = int(request.get("after_seq") or 0)
    return {
        "workflow_id": workflow_id,
        "run_id": run_id,
        "closed": history[-1].terminal,
        "events": [event_view(event) for event in history if event.seq > after],
    }


def _read_list(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    query = request.get("query")
    if query is not None:
        page = list_workflows(
            backend.store,
            str(query),
            page_size=int(request.get("page_size") or 100),
            next_page_token=request.get("next_page_token") or None,
            schema=backend.schema,
        )
        return page_view(page)
    limit = request.get("limit")
    runs = backend.store.list_workflows(
        status=request.get("status"),
        workflow_type=request.get("workflow_type"),
        limit=None if limit is None else int(limit),
    )
    return list_view(backend.store, runs)


def _read_count(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    query = request.get("query")
    return count_view(count_workflows(backend.store, None if query is None else str(query), schema=backend.schema))


def _read_describe(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    return describe_view(backend.store, _workflow_id(request))


def _read_history(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    return _run_history(backend.store, request)


def _read_runs(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    return runs_view(backend.store, _workflow_id(request))


def _read_ping(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    import os  # noqa: PLC0415 - only here

    import aion  # noqa: PLC0415 - only here

    return {"pid": os.getpid(), "data_dir": str(backend.data_dir), "version": aion.__version__}


_READ_ONLY: dict[str, Callable[[Backend, dict[str, Any]], dict[str, Any]]] = {
    "ping": _read_ping,
    "list": _read_list,
    "count": _read_count,
    "describe": _read_describe,
    "history": _read_history,
    "runs": _read_runs,
}


def _engine_runs(engine: Any, request: dict[str, Any]) -> dict[str, Any]:
    return runs_view(engine.store, _workflow_id(request))


_ENGINE_OPS["runs"] = _engine_runs
