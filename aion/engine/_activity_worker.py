"""The activity worker process: runs one activity attempt at a time, sync or ``async def``.

It is a permanent child of the activity supervisor. A task arrives on its channel; the result (or the failure,
with type, message and traceback) goes back. A result that cannot be serialised fails the attempt as
non-retryable: running it again would not help.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

from aion._codec import decode_payload, encode_payload
from aion.activity import _context
from aion.engine import _protocol as protocol
from aion.engine._registry import installed
from aion.errors import CancelledError, PayloadError
from aion.workflow._runtime import failure_from_exception
from supervisors import Channel, ChannelClosedError


def run_activity_worker(channel: Channel) -> None:
    """Process target: take tasks from ``channel`` until it closes."""
    try:
        while True:
            message = channel.recv()
            if message.get("t") == protocol.TASK:
                channel.send(_run_task(channel, message))
            elif message.get("t") == protocol.STOP:
                return
    except ChannelClosedError:
        return


def _run_task(channel: Channel, task: dict[str, Any]) -> dict[str, Any]:
    task_id = task["task"]
    reply: dict[str, Any] = {"t": protocol.RESULT, "task": task_id}
    info = _context.ActivityInfo(**task["info"], heartbeat_details=decode_payload(task["heartbeat"]))

    cancelled = False

    def send_heartbeat(details: Any) -> None:
        nonlocal cancelled
        channel.send({"t": protocol.HEARTBEAT, "task": task_id, "details": encode_payload(details)})
        while not cancelled and channel.poll(0):
            message = channel.recv()
            cancelled = message.get("t") == protocol.CANCEL and message.get("task") == task_id
        if cancelled:
            raise CancelledError(f"activity {info.activity_type} (task {task_id}) was cancelled")

    token = _context.enter(_context.ActivityContext(info, send_heartbeat))
    trace = _enter_trace(task.get("trace"))
    try:
        definition = installed().activity(info.activity_type)
        args = decode_payload(task["args"])
        result = asyncio.run(definition.function(*args)) if definition.is_async else definition.function(*args)
    except Exception as error:
        reply.update(ok=False, failure=encode_payload(failure_from_exception(error), limit=None))
        return reply
    finally:
        _context.leave(token)
        if trace is not None:
            trace()
    try:
        reply.update(ok=True, result=encode_payload(result, path=f"{info.activity_type} result"))
    except PayloadError as error:
        failure = failure_from_exception(error)
        failure = dataclasses.replace(failure, non_retryable=True)
        reply.update(ok=False, failure=encode_payload(failure, limit=None))
    return reply


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
