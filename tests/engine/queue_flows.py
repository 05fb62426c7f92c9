"""Activities and workflows for the task-queue tests."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import aion
from aion import activity, workflow
from tests.engine.flows import log_execution


@activity.defn(task_queue="media")
def where(name: str) -> dict[str, Any]:
    """Reports the process it ran in."""
    return {"name": name, "pid": os.getpid(), "queue_info": activity.info().activity_type}


@activity.defn
def quick(i: int) -> int:
    return i


@activity.defn
def logged(log: str, name: str) -> str:
    log_execution(log, name)
    return name


@activity.defn
def span(log: str, i: int) -> int:
    """Logs ``+i`` as it begins and ``-i`` as it ends, a few milliseconds later; returns ``i``."""
    log_execution(log, f"+{i}")
    time.sleep(0.005)
    log_execution(log, f"-{i}")
    return i


@activity.defn
def blocker(gate: str) -> str:
    """Creates ``<gate>.started``, then waits until the file ``gate`` exists."""
    Path(f"{gate}.started").touch()
    deadline = time.monotonic() + 30
    while not Path(gate).exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the gate never opened")
        time.sleep(0.005)
    return "open"


@activity.defn
def rendezvous(meeting: str, count: int) -> int:
    """Marks its arrival in the directory ``meeting``, then waits until ``count`` attempts have arrived there: it
    returns only if ``count`` attempts run at the same time. Returns its pid."""
    Path(meeting, str(os.getpid())).touch()
    deadline = time.monotonic() + 20
    while len(os.listdir(meeting)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(os.listdir(meeting))} of {count} attempts ever ran at once")
        time.sleep(0.005)
    return os.getpid()


@workflow.defn
async def meet(meeting: str, count: int) -> list[int]:
    """``count`` :func:`rendezvous` activities at once, on the default queue, without retries."""
    handles = [
        workflow.start_activity(
            rendezvous, meeting, count, start_to_close_timeout=60, retry_policy=aion.RetryPolicy(maximum_attempts=1)
        )
        for _ in range(count)
    ]
    return list(await workflow.gather(*handles))


@workflow.defn
async def routed() -> list[Any]:
    """``where`` on its own queue, then on ``default`` by a per-call override."""
    on_media = await workflow.execute_activity(where, "media", start_to_close_timeout=30)
    on_default = await workflow.execute_activity(where, "default", start_to_close_timeout=30, task_queue="default")
    return [on_media, on_default]


@workflow.defn
async def undeclared() -> str:
    """Route an activity to a queue the engine does not declare."""
    try:
        workflow.start_activity(quick, 1, start_to_close_timeout=30, task_queue="gpu")
    except aion.InvalidArgumentError as error:
        return str(error)
    return "accepted"


@workflow.defn
async def fan_out(count: int, queue: str) -> int:
    """``count`` quick activities at once on ``queue``."""
    handles = [workflow.start_activity(quick, i, start_to_close_timeout=60, task_queue=queue) for i in range(count)]
    results = await workflow.gather(*handles)
    return sum(results)


@workflow.defn
async def fan_out_spans(log: str, count: int, queue: str) -> int:
    """``count`` :func:`span` activities at once on ``queue``."""
    handles = [workflow.start_activity(span, log, i, start_to_close_timeout=60, task_queue=queue) for i in range(count)]
    return sum(await workflow.gather(*handles))


@workflow.defn
async def prioritised(log: str, gate: str, priorities: list[int]) -> list[str]:
    """A blocker holds the queue's one worker while activities of ``priorities`` queue up behind it."""
    first = workflow.start_activity(blocker, gate, start_to_close_timeout=60, task_queue="single", priority=100)
    handles = [
        workflow.start_activity(logged, log, f"p{p}-{i}", start_to_close_timeout=60, task_queue="single", priority=p)
        for i, p in enumerate(priorities)
    ]
    await first
    return list(await workflow.gather(*handles))


@workflow.defn
async def blocks_on(queue: str, gate: str) -> str:
    """``blocker`` on ``queue``; the type of its failure, if it fails."""
    try:
        return str(await workflow.execute_activity(blocker, gate, start_to_close_timeout=60, task_queue=queue))
    except aion.ActivityError as error:
        return str(error.type)


WORKFLOWS = [routed, undeclared, fan_out, fan_out_spans, prioritised, blocks_on, meet]
ACTIVITIES = [where, quick, logged, span, blocker, rendezvous]
