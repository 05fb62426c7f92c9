"""Activities and workflows of the Ray queue tests (the activity tests' own activities run on Ray by a per-call
``task_queue``; these add what only Ray has: nodes)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import aion
from aion import activity, workflow
from tests.engine.flows import log_execution


@activity.defn(task_queue="ray")
def where_am_i(tag: str) -> dict[str, Any]:
    """Where the attempt ran (Ray node and pid) and what ``activity.info()`` says there."""
    import ray

    info = activity.info()
    return {
        "tag": tag,
        "node": ray.get_runtime_context().get_node_id(),
        "pid": os.getpid(),
        "info": [info.workflow_id, info.activity_id, info.activity_type, info.attempt],
    }


@activity.defn(task_queue="ray")
def gated(log: str, gates: str, index: int) -> int:
    """Logs ``start:<index>:<attempt>``, waits for ``open.<index>``, logs ``end:<index>``."""
    attempt = activity.info().attempt
    log_execution(log, f"start:{index}:{attempt}")
    while not Path(gates, f"open.{index}").exists():
        activity.heartbeat()
        time.sleep(0.01)
    log_execution(log, f"end:{index}")
    return index


@activity.defn(task_queue="ray")
def beats(log: str, gates: str, seconds: float) -> Any:
    """Attempt 1 heartbeats ``{"progress": 7}`` every 10 ms for ``seconds`` (up to 30 s when 0), counting its
    heartbeats in ``beats``; a later attempt returns the details it was handed."""
    info = activity.info()
    if info.attempt > 1:
        return info.heartbeat_details
    Path(gates, "pid").write_text(str(os.getpid()))
    began, count = time.monotonic(), 0
    while time.monotonic() - began < (seconds or 30):
        activity.heartbeat({"progress": 7})
        count += 1
        Path(gates, "beats").write_text(str(count))
        time.sleep(0.01)
    return "done"


@workflow.defn
async def routed(tag: str) -> list[Any]:
    """``where_am_i`` on the ``ray`` queue, then on the ``media_node`` queue."""
    anywhere = await workflow.execute_activity(where_am_i, tag, start_to_close_timeout=60)
    media = await workflow.execute_activity(where_am_i, tag, start_to_close_timeout=60, task_queue="media_node")
    return [anywhere, media]


@workflow.defn
async def fan_out_gated(log: str, gates: str, count: int) -> list[int]:
    handles = [
        workflow.start_activity(gated, log, gates, i, start_to_close_timeout=60, heartbeat_timeout=30)
        for i in range(count)
    ]
    return list(await workflow.gather(*handles))


@workflow.defn(name="cancels_on_ray")
async def cancels(log: str, name: str, gate_dir: str) -> str:
    """Start an activity on the ``ray`` queue, cancel it when signalled, report how it ended."""
    handle = workflow.start_activity(name, log, gate_dir, start_to_close_timeout=60, task_queue="ray")
    await workflow.wait_signal("cancel")
    handle.cancel()
    try:
        return str(await handle)
    except aion.CancelledError:
        return "cancelled"


WORKFLOWS = [routed, fan_out_gated, cancels]
ACTIVITIES = [where_am_i, gated, beats]
