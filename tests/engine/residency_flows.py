"""Workflows for the residency tests: runs that park (a signal, a distant timer) and one held by an activity."""

from __future__ import annotations

from typing import Any

from aion import workflow
from tests.engine import flows


@workflow.defn
async def parked_waiter(log: str) -> Any:
    """Parks on a signal; the query tells the test its process is up and blocked."""
    workflow.set_query_handler("ready", lambda: True)
    return await workflow.wait_signal("go")


@workflow.defn
async def parked_sleeper(log: str, seconds: float) -> str:
    """Parks on a timer."""
    workflow.set_query_handler("ready", lambda: True)
    await workflow.sleep(seconds)
    return "woke"


@workflow.defn
async def held_by_activity(log: str, gate_dir: str, name: str) -> str:
    """Waits on a gate activity: never parked, so never evicted."""
    result: str = await workflow.execute_activity(flows.gate, log, name, gate_dir, start_to_close_timeout=30)
    return result


@workflow.defn
async def activity_then_signal(log: str, gate_dir: str, name: str) -> str:
    """Held by a gate activity, then parks on a signal."""
    opened: str = await workflow.execute_activity(flows.gate, log, name, gate_dir, start_to_close_timeout=30)
    signalled: str = await workflow.wait_signal("go")
    return f"{opened}+{signalled}"


@workflow.defn
async def activity_then_sleep(log: str, gate_dir: str, name: str, seconds: float) -> str:
    """Held by a gate activity, then parks on a timer (its TimerStarted is the last thing it records)."""
    opened: str = await workflow.execute_activity(flows.gate, log, name, gate_dir, start_to_close_timeout=30)
    await workflow.sleep(seconds)
    return opened


@workflow.defn
async def continues_when_signalled(log: str, generation: int) -> Any:
    """The first run upserts a search attribute, parks on a signal, then continues as new; the second returns
    the signal's payload with what it knows of its start."""
    workflow.set_query_handler("ready", lambda: True)
    if generation == 0:
        workflow.upsert_search_attributes({"Stage": "first"})
        payload = await workflow.wait_signal("go")
        workflow.continue_as_new(log, payload)
    return generation


@workflow.defn
async def parent_of_waiter(log: str) -> Any:
    """Waits for its child ``parked_waiter`` (id ``<own id>-child``) and returns its result."""
    return await workflow.execute_child(parked_waiter, log, workflow_id=f"{workflow.info().workflow_id}-child")


WORKFLOWS = [
    continues_when_signalled,
    parent_of_waiter,
    parked_waiter,
    parked_sleeper,
    held_by_activity,
    activity_then_signal,
    activity_then_sleep,
]
ACTIVITIES = [flows.gate]
