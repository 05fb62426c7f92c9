"""Workflows and activities for the tests that drive the engine with a manual clock (no real time passes)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import aion
from aion import activity, workflow


@workflow.defn
async def sleeps_a_month() -> str:
    await workflow.sleep(timedelta(days=30))
    return "woke up"


@workflow.defn
async def waits_for_approval() -> str:
    try:
        return str(await workflow.wait_signal("approve", timeout=timedelta(hours=1)))
    except TimeoutError:
        return "nobody approved"


@activity.defn
def fails_once(marker: str) -> str:
    """Fails its first attempt (leaving ``marker`` behind), succeeds on the next."""
    path = Path(marker)
    if not path.exists():
        path.write_text("tried")
        raise RuntimeError("first attempt fails")
    return "second attempt"


@workflow.defn
async def retries_after_ten_minutes(marker: str) -> str:
    return str(
        await workflow.execute_activity(
            fails_once,
            marker,
            start_to_close_timeout=timedelta(hours=1),
            retry_policy=aion.RetryPolicy(initial_interval=600.0, maximum_attempts=2),
        )
    )


@workflow.defn
async def runs_forever() -> None:
    await workflow.wait_signal("never")
