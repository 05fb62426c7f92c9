"""Workflows of the timer-lead tests (importable by workflow processes)."""

from __future__ import annotations

import time

from aion import workflow


def real_time() -> float:
    """The machine's real time, read the way the workflow guard allows for measurements (never decided on)."""
    return time.clock_gettime(time.CLOCK_REALTIME)


@workflow.defn
async def punctual(count: int, seconds: float) -> list[list[float]]:
    """Sleep ``count`` times; after each sleep, the real time it resumed at and the workflow's clock."""
    seen = []
    for _ in range(count):
        await workflow.sleep(seconds)
        seen.append([real_time(), workflow.now().timestamp()])
    return seen
