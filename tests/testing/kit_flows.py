"""Workflows and activities the tests of ``aion.testing`` run."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import aion
from aion import activity, workflow
from tests.engine.clock_flows import fails_once


@workflow.defn
async def month_then_approval() -> str:
    """Sleeps 30 days, then waits an hour for an approval."""
    await workflow.sleep(timedelta(days=30))
    try:
        return "approved by " + str(await workflow.wait_signal("approve", timeout=timedelta(hours=1)))
    except TimeoutError:
        return "timed out at " + workflow.now().isoformat()


@workflow.defn
async def retries_slowly(marker: str) -> str:
    return str(
        await workflow.execute_activity(
            fails_once,
            marker,
            start_to_close_timeout=timedelta(hours=1),
            retry_policy=aion.RetryPolicy(initial_interval=timedelta(minutes=10), maximum_attempts=3),
        )
    )


@workflow.defn
async def waits_forever() -> None:
    await workflow.wait_signal("never")


@workflow.defn
async def sleeps_then_tells_time(hours: float) -> str:
    await workflow.sleep(timedelta(hours=hours))
    return workflow.now().isoformat()


@activity.defn
def charge(amount: int) -> str:
    """The real charge: never called in these tests (a fake stands in)."""
    raise AssertionError("the real charge ran")


@workflow.defn
async def pays(amount: int) -> str:
    return str(await workflow.execute_activity(charge, amount, start_to_close_timeout=10))


@activity.defn
def hangs(gate: str) -> str:
    """Waits (in real time) for ``gate`` to exist; only a timeout ends it in the tests."""
    import time

    while not Path(gate).exists():
        time.sleep(0.01)
    return "gate opened"


@workflow.defn
async def calls_a_hanging_activity(gate: str) -> str:
    try:
        return str(
            await workflow.execute_activity(
                hangs,
                gate,
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=aion.RetryPolicy(maximum_attempts=1),
            )
        )
    except aion.ActivityError as error:
        return f"failed: {error.type}"


@activity.defn
def reports_progress(steps: int) -> dict[str, Any]:
    info = activity.info()
    for step in range(steps):
        activity.heartbeat({"step": step})
    return {"attempt": info.attempt, "workflow_id": info.workflow_id, "previous": info.heartbeat_details}


@activity.defn
async def reports_progress_async(steps: int) -> int:
    for step in range(steps):
        activity.heartbeat(step)
    return steps


@activity.defn
def greet(name: str) -> str:
    return f"hello {name}"


@workflow.defn(name="greeter")
async def greeter_v1(name: str) -> str:
    first = await workflow.execute_activity(greet, name, start_to_close_timeout=10)
    await workflow.sleep(timedelta(minutes=1))
    return first


@activity.defn
def shout(name: str) -> str:
    return f"HELLO {name.upper()}"


@workflow.defn(name="greeter")
async def greeter_v2(name: str) -> str:
    """Changed: another activity in the first step (the recorded v1 histories no longer fit)."""
    first = await workflow.execute_activity(shout, name, start_to_close_timeout=10)
    await workflow.sleep(timedelta(minutes=1))
    return str(first)
