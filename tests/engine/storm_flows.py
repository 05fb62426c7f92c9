"""Workflows and activities for the activity crash-storm test (a module of its own: the zygote imports it)."""

from __future__ import annotations

import os
import time

import aion
from aion import activity, workflow


@activity.defn
def exits_its_worker() -> None:
    """Ends its worker process at once, as a crash would."""
    os._exit(3)


@activity.defn
def hangs() -> None:
    """Never returns (its attempt times out, and the engine kills its worker)."""
    while True:
        time.sleep(1)


@activity.defn
def echo(value: str) -> str:
    """Returns its argument."""
    return value


async def _failures(calls: list[workflow.ActivityHandle[None]]) -> int:
    """How many of ``calls`` raise ``aion.ActivityError``."""
    failed = 0
    for call in calls:
        try:
            await call
        except aion.ActivityError:
            failed += 1
    return failed


@workflow.defn
async def storm(count: int) -> int:
    """Runs ``count`` worker-killing activities at once (one attempt each); how many failed."""
    once = aion.RetryPolicy(maximum_attempts=1)
    return await _failures(
        [workflow.start_activity(exits_its_worker, start_to_close_timeout=60, retry_policy=once) for _ in range(count)]
    )


@workflow.defn
async def stuck(count: int) -> int:
    """Runs ``count`` activities that hang at once (one attempt of 1 s each); how many timed out."""
    once = aion.RetryPolicy(maximum_attempts=1)
    return await _failures(
        [workflow.start_activity(hangs, start_to_close_timeout=1, retry_policy=once) for _ in range(count)]
    )


@workflow.defn
async def calm(value: str) -> str:
    """One ordinary activity."""
    return await workflow.execute_activity(echo, value, start_to_close_timeout=60)
