"""One activity attempt, run where it was sent: a local worker process or a Ray worker.

Both executors run the same code: the activity's context (``activity.info()``, ``activity.heartbeat()``) is
entered, the function is called (sync or ``async def``), and the outcome becomes a ``result`` frame: the result
encoded within the payload limit, or the failure (type, message, traceback). A result that cannot be serialised
fails the attempt as non-retryable: running it again would not help.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

from aion._codec import decode_payload, encode_payload
from aion.activity import _context
from aion.engine import _protocol as protocol
from aion.errors import CancelledError, PayloadError
from aion.workflow._runtime import failure_from_exception

#: Sends a heartbeat's encoded details; returns whether the attempt was cancelled.
Beat = Callable[[bytes], bool]


def run_attempt(task: dict[str, Any], function: Callable[..., Any], is_async: bool, beat: Beat) -> dict[str, Any]:
    """Run the attempt ``task`` (a ``task`` frame) of ``function``; returns its ``result`` frame."""
    task_id = task["task"]
    reply: dict[str, Any] = {"t": protocol.RESULT, "task": task_id}
    info = _context.ActivityInfo(**task["info"], heartbeat_details=decode_payload(task["heartbeat"]))

    last: list[bytes] = []

    def send_heartbeat(details: Any) -> None:
        encoded = encode_payload(details)
        last[:] = [encoded]
        if beat(encoded):
            raise CancelledError(f"activity {info.activity_type} (task {task_id}) was cancelled")

    token = _context.enter(_context.ActivityContext(info, send_heartbeat))
    trace = _enter_trace(task.get("trace"))
    try:
        args = decode_payload(task["args"])
        result = asyncio.run(function(*args)) if is_async else function(*args)
    except Exception as error:
        reply.update(ok=False, failure=encode_payload(failure_from_exception(error), limit=None))
        return reply
    finally:
        _context.leave(token)
        if trace is not None:
            trace()
        if last:  # the outcome carries the last heartbeat, which a Ray attempt's may otherwise overtake
            reply["heartbeat"] = last[0]
    try:
        reply.update(ok=True, result=encode_payload(result, path=f"{info.activity_type} result"))
    except PayloadError as error:
        failure = failure_from_exception(error)
        failure = dataclasses.replace(failure, non_retryable=True)
        reply.update(ok=False, failure=encode_payload(failure, limit=None))
    return reply


def failure_reply(task_id: int, error: Exception) -> dict[str, Any]:
    """The ``result`` frame of an attempt that could not even start (its activity type is unknown here)."""
    failure = encode_payload(failure_from_exception(error), limit=None)
    return {"t": protocol.RESULT, "task": task_id, "ok": False, "failure": failure}


def _enter_trace(carrier: dict[str, str] | None) -> Callable[[], None] | None:
    """Make the attempt span's context current while the activity runs (when the engine traces and
    OpenTelemetry is installed); returns what undoes it."""
    if carrier is None:
        return None
    try:
        from aion.observability import _tracing  # noqa: PLC0415 - optional extra, only when the engine traces
    except ImportError:
        return None
    token = _tracing.attach(carrier)
    return lambda: _tracing.detach(token)
