"""The control server's operations: one function per ``op``, each taking the engine, the request map and the
server's :class:`OpContext`.

Every operation returns a JSON-able map (see ``docs/cli.md``) or raises an :class:`~aion.errors.AionError`,
which the server turns into ``{"ok": false, "code": ..., "message": ...}``. Operations see the engine only
through :class:`~aion.control._engine_api.ControlledEngine`, and time only through the context's clock.
"""

from __future__ import annotations

import math
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aion
from aion.clock import Clock
from aion.control._engine_api import ControlledEngine
from aion.control._fields import text_field
from aion.control._schedule_ops import SCHEDULE_OPS
from aion.control._views import (
    annotate_tree,
    blocked_runs_view,
    count_view,
    describe_view,
    history_view,
    list_view,
    page_view,
    to_jsonable,
)
from aion.errors import ControlError, InvalidArgumentError, ResultTimeoutError
from aion.visibility import count_workflows, list_workflows

#: The longest a single ``history`` long-poll waits for new events before answering, in seconds.
MAX_HISTORY_WAIT = 10.0
_SLICE = 0.25
#: The longest a single ``result`` waits before answering ``result_timeout`` (the CLI then asks again), in seconds:
#: every operation ends within a bounded time, so none holds a connection slot for ever.
MAX_RESULT_WAIT = 30.0
#: The largest number a request field may hold (a count, a sequence number or seconds); more is refused.
MAX_NUMBER = 2.0**53


@dataclass(frozen=True)
class OpContext:
    """What an operation gets of the server besides the request: its stop flag and its clock."""

    #: Set when the server stops: a waiting operation returns (or fails) at once.
    stopping: threading.Event
    #: The clock long waits are measured on.
    clock: Clock


Op = Callable[[ControlledEngine, dict[str, Any], OpContext], dict[str, Any]]


def _required(request: dict[str, Any], key: str) -> str:
    value = text_field(request, key)
    assert value is not None
    return value


def _number(request: dict[str, Any], key: str, default: float | None) -> float | None:
    value = request.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(f"request field {key!r} must be a non-negative number, got {value!r}")
    if not (
        (isinstance(value, int) or math.isfinite(value)) and 0 <= value <= MAX_NUMBER
    ):  # NaN and inf compare False: refused too
        raise InvalidArgumentError(
            f"request field {key!r} must be a finite number from 0 to {MAX_NUMBER:g}, got {value!r}"
        )
    return float(value)


def _list(request: dict[str, Any], key: str) -> list[Any]:
    value = request.get(key, [])
    if not isinstance(value, list):
        raise InvalidArgumentError(f"request field {key!r} must be a list, got {type(value).__name__}")
    return value


def op_ping(engine: ControlledEngine, request: dict[str, Any], context: OpContext) -> dict[str, Any]:
    """Who is answering: the engine's pid, data directory and aion version."""
    return {"pid": os.getpid(), "data_dir": str(engine.data_dir), "version": aion.__version__}


def op_tree(engine: ControlledEngine, request: dict[str, Any], context: OpContext) -> dict[str, Any]:
    """The live supervision tree, workflow processes annotated with their run's status and wait, and the
    residency counts (``Engine.residency()``)."""
    root = annotate_tree(engine.supervision_tree(), engine.store, engine.run_waits)
    return {
        "pid": os.getpid(),
        "data_dir": str(engine.data_dir),
        "residency": engine.residency(),
        "root": to_jsonable(root),
        "blocked": blocked_runs_view(engine.store),
    }


def op_list(engine: ControlledEngine, request: dict[str, Any], context: OpContext) -> dict[str, Any]:
    """Current runs, newest first, filtered by ``status`` / ``workflow_type``, at most ``limit``; with ``query``,
    one page of the runs matching it (``page_size``, ``next_page_token``)."""
    query = text_field(request, "query", required=False)
    if query is not None:
        return page_view(
            list_workflows(
                engine.store,
                query,
                page_size=int(_number(request, "page_size", 100) or 100),
                next_page_token=text_field(request, "next_page_token", required=False),
                schema=engine.search_attributes,
            )
        )
    limit = _number(request, "limit", None)
    runs = engine.list_workflows(
        status=text_field(request, "status", required=False),
        workflow_type=text_field(request, "workflow_type", required=False),
        limit=None if limit is None else int(limit),
    )
    return list_view(engine.store, runs)


def op_count(engine: ControlledEngine, request: dict[str, Any], context: OpContext) -> dict[str, Any]:
    """How many runs match ``query`` (by status with ``GROUP BY Status``)."""
    found = count_workflows(engine.store, text_field(request, "query", required=False), schema=engine.search_attributes)
    return count_view(found)


def op_describe(engine: ControlledEngine, request: dict[str, Any], context: OpContext) -> dict[str, Any]:
    """The current run of ``workflow_id`` in detail."""
    return describe_view(engine.store, _required(request, "workflow_id"), engine.run_waits)


def op_history(engine: ControlledEngine, request: dict[str, Any], context: OpContext) -> dict[str, Any]:
    """Events after ``after_seq``; with ``wait`` > 0, waits that long (capped) for new ones unless closed."""
    workflow_id = _required(request, "workflow_id")
    after = _number(request, "after_seq", 0) or 0
    wait = min(_number(request, "wait", 0) or 0, MAX_HISTORY_WAIT)
    deadline = context.clock.monotonic() + wait
    while True:
        view = history_view(engine.store, workflow_id, int(after))
        if view["events"] or view["closed"] or context.clock.monotonic() >= deadline or context.stopping.is_set():
            return view
        context.stopping.wait(0.05)


def op_start(engine: ControlledEngine, request: dict[str, Any], context: OpContext) -> dict[str, Any]:
    """Start ``workflow_type`` with positional ``args`` under ``workflow_id`` (new UUID if absent); with
    ``signal`` (and ``payload``), signal-with-start: the signal goes to the running run, or starts one with it."""
    texts = request.get("search_attributes") or {}
    if not isinstance(texts, dict) or not all(isinstance(value, str) for value in texts.values()):
        raise InvalidArgumentError("request field 'search_attributes' must be a map of name to text")
    signal = text_field(request, "signal", required=False)
    if signal is not None:
        signalled = engine.signal_with_start(
            _required(request, "workflow_type"),
            *_list(request, "args"),
            workflow_id=text_field(request, "workflow_id", required=False) or str(uuid.uuid4()),
            signal=signal,
            payload=request.get("payload"),
            search_attributes=engine.search_attributes.parse_texts(texts),
            memo=request.get("memo"),
        )
        return {"workflow_id": signalled.workflow_id, "run_id": signalled.run_id, "signal": signal}
    handle = engine.start_workflow(
        _required(request, "workflow_type"),
        *_list(request, "args"),
        workflow_id=text_field(request, "workflow_id", required=False),
        search_attributes=engine.search_attributes.parse_texts(texts),
        memo=request.get("memo"),
    )
    return {"workflow_id": handle.workflow_id, "run_id": handle.run_id}


def op_signal(engine: ControlledEngine, request: dict[str, Any], context: OpContext) -> dict[str, Any]:
    """Send signal ``name`` with ``payload``; answers once it is durable."""
    handle = engine.get_workflow(_required(request, "workflow_id"))
    name = _required(request, "name")
    handle.signal(name, request.get("payload"))
    return {"workflow_id": handle.workflow_id, "run_id": handle.run_id, "signal": name}


def op_query(engine: ControlledEngine, request: dict[str, Any], context: OpContext) -> dict[str, Any]:
    """Answer query ``name`` with ``args``."""
    handle = engine.get_workflow(_required(request, "workflow_id"))
    name = _required(request, "name")
    result = handle.query(name, *_list(request, "args"))
    return {"workflow_id": handle.workflow_id, "run_id": handle.run_id, "query": name, "result": to_jsonable(result)}


def op_update(engine: ControlledEngine, request: dict[str, Any], context: OpContext) -> dict[str, Any]:
    """Apply update ``name`` with ``args``; answers with the handler's result once it is durable."""
    handle = engine.get_workflow(_required(request, "workflow_id"))
    name = _required(request, "name")
    result = handle.execute_update(name, *_list(request, "args"))
    return {"workflow_id": handle.workflow_id, "run_id": handle.run_id, "update": name, "result": to_jsonable(result)}


def op_cancel(engine: ControlledEngine, request: dict[str, Any], context: OpContext) -> dict[str, Any]:
    """Request cancellation of the current run; ``took_effect`` is false if it had already closed."""
    handle = engine.get_workflow(_required(request, "workflow_id"))
    took_effect = handle.cancel(reason=text_field(request, "reason", required=False))
    return {"workflow_id": handle.workflow_id, "run_id": handle.run_id, "took_effect": took_effect}


def op_terminate(engine: ControlledEngine, request: dict[str, Any], context: OpContext) -> dict[str, Any]:
    """Terminate the current run; ``took_effect`` is false if it had already closed."""
    handle = engine.get_workflow(_required(request, "workflow_id"))
    took_effect = handle.terminate(reason=text_field(request, "reason", required=False))
    return {"workflow_id": handle.workflow_id, "run_id": handle.run_id, "took_effect": took_effect}


def op_result(engine: ControlledEngine, request: dict[str, Any], context: OpContext) -> dict[str, Any]:
    """Wait up to ``timeout`` seconds (at most :data:`MAX_RESULT_WAIT`; that long if absent) for the current run's
    result; ``result_timeout`` if it has not closed by then."""
    handle = engine.get_workflow(_required(request, "workflow_id"))
    asked = _number(request, "timeout", None)
    timeout = MAX_RESULT_WAIT if asked is None else min(asked, MAX_RESULT_WAIT)  # the client asks again
    deadline = context.clock.monotonic() + timeout
    while True:
        remaining = min(_SLICE, max(deadline - context.clock.monotonic(), 0.0))
        try:
            result = handle.result(timeout=remaining)
        except ResultTimeoutError:
            if context.stopping.is_set():
                raise ControlError("the engine is stopping") from None
            if context.clock.monotonic() >= deadline:
                raise ResultTimeoutError(
                    f"workflow {handle.workflow_id!r} did not close within {timeout:g} s (it is still running)"
                ) from None
            continue
        return {"workflow_id": handle.workflow_id, "run_id": handle.run_id, "result": to_jsonable(result)}


def op_unblock(engine: ControlledEngine, request: dict[str, Any], context: OpContext) -> dict[str, Any]:
    """Try the blocked run of ``workflow_id`` again, or every blocked run with ``all``; ``retried`` counts the
    runs given a process (whose replay decides)."""
    if request.get("all"):
        return {"retried": engine.unblock_all()}
    handle = engine.get_workflow(_required(request, "workflow_id"))
    return {"workflow_id": handle.workflow_id, "run_id": handle.run_id, "retried": int(handle.unblock())}


def op_pause(engine: ControlledEngine, request: dict[str, Any], context: OpContext) -> dict[str, Any]:
    """Pause the current run; ``took_effect`` is false if it was paused already."""
    handle = engine.get_workflow(_required(request, "workflow_id"))
    took_effect = handle.pause(text_field(request, "reason", required=False))
    return {"workflow_id": handle.workflow_id, "run_id": handle.run_id, "took_effect": took_effect}


def op_resume(engine: ControlledEngine, request: dict[str, Any], context: OpContext) -> dict[str, Any]:
    """Resume the current run; ``took_effect`` is false if it was not paused."""
    handle = engine.get_workflow(_required(request, "workflow_id"))
    took_effect = handle.resume()
    return {"workflow_id": handle.workflow_id, "run_id": handle.run_id, "took_effect": took_effect}


def op_reset(engine: ControlledEngine, request: dict[str, Any], context: OpContext) -> dict[str, Any]:
    """Reset the current run to ``to_seq`` (default: before it closed or became blocked) with ``reason``."""
    handle = engine.get_workflow(_required(request, "workflow_id"))
    to_seq = _number(request, "to_seq", None)
    new_run_id = handle.reset(to_seq=None if to_seq is None else int(to_seq), reason=_required(request, "reason"))
    return {"workflow_id": handle.workflow_id, "old_run_id": handle.run_id, "run_id": new_run_id}


#: Every operation by its ``op`` name.
OPS: dict[str, Op] = {
    "ping": op_ping,
    "tree": op_tree,
    "list": op_list,
    "describe": op_describe,
    "history": op_history,
    "start": op_start,
    "signal": op_signal,
    "query": op_query,
    "cancel": op_cancel,
    "terminate": op_terminate,
    "result": op_result,
    "count": op_count,
    "unblock": op_unblock,
    "pause": op_pause,
    "resume": op_resume,
    "reset": op_reset,
    "update": op_update,
}

OPS.update(SCHEDULE_OPS)
