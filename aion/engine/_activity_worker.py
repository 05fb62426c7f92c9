"""The activity worker process: runs one activity attempt at a time, sync or ``async def``.

It is a permanent child of its local queue's activity supervisor. A task arrives on its channel; the result (or
the failure, with type, message and traceback) goes back (``_attempt.run_attempt``). Heartbeats go out on the
same channel, and a ``cancel`` frame waiting there is seen at the next heartbeat.
"""

from __future__ import annotations

from typing import Any

from aion.engine import _protocol as protocol
from aion.engine._attempt import failure_reply, run_attempt
from aion.engine._placement import set_own_cpus
from aion.engine._registry import installed
from supervisors import Channel, ChannelClosedError


def run_activity_worker(channel: Channel, cpus: list[int] | None = None) -> None:
    """Process target: take tasks from ``channel`` until it closes, on ``cpus`` (the CPUs other than the engine's,
    or every CPU the engine's caller may run on for a queue with ``use_engine_cpu``: see ``LocalQueue``)."""
    set_own_cpus(cpus)
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
    cancelled = False

    def beat(details: bytes) -> bool:
        nonlocal cancelled
        channel.send({"t": protocol.HEARTBEAT, "task": task_id, "details": details})
        while not cancelled and channel.poll(0):
            message = channel.recv()
            cancelled = message.get("t") == protocol.CANCEL and message.get("task") == task_id
        return cancelled

    try:
        definition = installed().activity(task["info"]["activity_type"])
    except Exception as error:
        return failure_reply(task_id, error)
    return run_attempt(task, definition.function, definition.is_async, beat)
