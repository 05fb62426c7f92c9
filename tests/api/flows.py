"""Workflows and activities of the API tests (start policies, updates, payloads)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aion
from aion import activity, workflow


@workflow.defn
async def waits(name: str) -> str:
    """Waits for signal ``go`` and returns ``name`` and the signal's payload."""
    value = await workflow.wait_signal("go")
    return f"{name}:{value}"


@workflow.defn
async def quick(value: Any) -> Any:
    """Returns its input."""
    return value


@workflow.defn
async def fails_now(message: str) -> None:
    """Fails at once."""
    raise RuntimeError(message)


@activity.defn
def wait_for_gate(gate: str) -> str:
    """Waits until the file ``gate`` exists (the test opens it) and returns its text."""
    path = Path(gate)
    while not path.exists():
        time.sleep(0.01)
    return path.read_text()


@workflow.defn
async def counter(start: int) -> int:
    """A counter changed by updates: ``add`` (rejects negatives), ``add_later`` (awaits an activity first),
    ``fail`` (raises); signal ``stop`` ends it with the count."""
    count = start

    def add(amount: int) -> int:
        nonlocal count
        count += amount
        return count

    def positive(amount: int) -> None:
        if amount < 0:
            raise ValueError(f"cannot add {amount}")

    async def add_later(amount: int, gate: str) -> int:
        nonlocal count
        text = await workflow.execute_activity(wait_for_gate, gate, start_to_close_timeout=60)
        count += amount
        return count + len(text) * 0

    def fail() -> None:
        raise RuntimeError("no such thing")

    workflow.set_update_handler("add", add, validator=positive)
    workflow.set_update_handler("add_later", add_later)
    workflow.set_update_handler("fail", fail)
    workflow.set_query_handler("count", lambda: count)
    await workflow.wait_signal("stop")
    return count


@workflow.defn
async def cancels_a_timer_and_an_activity(gate: str) -> list[str]:
    """Cancels a durable timer and a running activity; both raise ``aion.CancelledError``."""
    caught: list[str] = []
    timer = workflow.start_timer(3600)
    timer.cancel()
    activity_call = workflow.start_activity(wait_for_gate, gate, start_to_close_timeout=60)
    await workflow.sleep(0.1)
    activity_call.cancel()
    for pending in (timer, activity_call):
        try:
            await pending
        except aion.CancelledError as error:
            caught.append(type(error).__name__)
    return caught


ALL_WORKFLOWS = [waits, quick, fails_now, counter, cancels_a_timer_and_an_activity]
ALL_ACTIVITIES = [wait_for_gate]
