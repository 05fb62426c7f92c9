"""The control server's operations: one function per ``op``, each taking the engine, the request map and the
server's :class:`OpContext`.

Every operation returns a JSON-able map (see ``docs/cli.md``) or raises an :class:`~aion.errors.AionError`,
which the server turns into ``{"ok": false, "code": ..., "message": ...}``. Operations see the engine only
through :class:`~aion.control._engine_api.ControlledEngine`, and time only through the context's clock.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aion
from aion.clock import Clock
from aion.control._engine_api import ControlledEngine
from aion.control._views import annotate_tree, describe_view, history_view, run_view, to_jsonable
from aion.errors import ControlError, InvalidArgumentError, ResultTimeoutError

#: The longest a single ``history`` long-poll waits for new events before answering, in seconds.
MAX_HISTORY_WAIT = 10.0
_SLICE = 0.25


@dataclass(frozen=True)
class OpContext:
    """What an operation gets of the server besides the request: its stop flag and its clock."""

    #: Set when the server stops: a waiting operation returns (or fails) at once.
    stopping: threading.Event
    #: The clock long waits are measured on.
    clock: Clock


Op = Callable[[ControlledEngine, dict[str, Any], OpContext], dict[str, Any]]


def _text(request: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = request.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"request field {key!r} must be a non-empty string, got {value!r}")
    return value


def _required(request: dict[str, Any], key: str) -> str:
    value = _text(request, key)
    assert value is not None
    return value


def _number(request: dict[str, Any], key: str, default: float | None) -> float | None:
    value = request.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InvalidArgumentError(f"request field {key!r} must be a non-negative number, got {value!r}")
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
    root = annotate_tree(engine.supervision_tree(), engine.store)
    return {
        "pid": os.getpid(),
        "data_dir": str(engine.data_dir),
        "residency": engine.residency(),
        "root": to_jsonable(root),
    }


def op_list(engine: ControlledEngine, request: dict[str, Any], context: OpContext) -> dict[str, Any]:
    """Current runs, newest first, filtered by ``status`` / ``workflow_type``, at most ``limit``."""
    limit = _number(request, "limit", None)
    runs = engine.list_workflows(
        status=_text(request, "status", required=False),
        workflow_type=_text(request, "workflow_type", required=False),
        limit=None if limit is None else int(limit),
    )
    return {"workflows": [run_view(info) for info in runs]}


def op_describe(engine: ControlledEngine, request: dict[str, Any], context: OpContext) -> dict[str, Any]:
    """The current run of ``workflow_id`` in detail."""
    return describe_view(engine.store, _required(request, "workflow_id"))


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
    signal = _text(request, "signal", required=False)
    if signal is not None:
        signalled = engine.signal_with_start(
            _required(request, "workflow_type"),
            *_list(request, "args"),
            workflow_id=_text(request, "workflow_id", required=False) or str(uuid.uuid4()),
            signal=signal,
            payload=request.get("payload"),
        )
        return {"workflow_id": signalled.workflow_id, "run_id": signalled.run_id, "signal": signal}
    handle = engine.start_workflow(
        _required(request, "workflow_type"),
        *_list(request, "args"),
        workflow_id=_text(request, "workflow_id", required=False),
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
    took_effect = handle.cancel(reason=_text(request, "reason", required=False))
    return {"workflow_id": handle.workflow_id, "run_id": handle.run_id, "took_effect": took_effect}


def op_terminate(engine: ControlledEngine, request: dict[str, Any], context: OpContext) -> dict[str, Any]:
    """Terminate the current run; ``took_effect`` is false if it had already closed."""
    handle = engine.get_workflow(_required(request, "workflow_id"))
    took_effect = handle.terminate(reason=_text(request, "reason", required=False))
    return {"workflow_id": handle.workflow_id, "run_id": handle.run_id, "took_effect": took_effect}


def op_result(engine: ControlledEngine, request: dict[str, Any], context: OpContext) -> dict[str, Any]:
    """Wait (up to ``timeout`` seconds, forever if absent) for the current run's result."""
    handle = engine.get_workflow(_required(request, "workflow_id"))
    timeout = _number(request, "timeout", None)
    deadline = None if timeout is None else context.clock.monotonic() + timeout
    while True:
        remaining = _SLICE if deadline is None else min(_SLICE, max(deadline - context.clock.monotonic(), 0.0))
        try:
            result = handle.result(timeout=remaining)
        except ResultTimeoutError:
            if context.stopping.is_set():
                raise ControlError("the engine is stopping") from None
            if deadline is not None and context.clock.monotonic() >= deadline:
                raise ResultTimeoutError(
                    f"workflow {handle.workflow_id!r} did not close within {timeout:g} s (it is still running)"
                ) from None
            continue
        return {"workflow_id": handle.workflow_id, "run_id": handle.run_id, "result": to_jsonable(result)}


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
    "update": op_update,
}
