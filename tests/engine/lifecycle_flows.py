"""Workflows for the lifecycle tests: timers, conditions, timeouts, children, continue-as-new, cancellation."""

from __future__ import annotations

import asyncio
from typing import Any

import aion
from aion import workflow
from tests.engine import activity_flows as af
from tests.engine import flows


@workflow.defn
async def timers(log: str) -> list[str]:
    cancelled = workflow.start_timer(60)
    cancelled.cancel()
    await workflow.sleep(0.05)
    fired = workflow.start_timer(0.05)
    await fired
    return ["cancelled" if cancelled.done() else "?", "fired" if fired.done() else "?"]


@workflow.defn
async def counts_signals(log: str, target: int, timeout: float | None) -> int:
    count = 0

    async def consume() -> None:
        nonlocal count
        while True:
            await workflow.wait_signal("inc")
            count += 1

    consumer = asyncio.ensure_future(consume())
    try:
        await workflow.wait_condition(lambda: count >= target, timeout=timeout)
    except TimeoutError:
        return -count
    finally:
        consumer.cancel()
    return count


@workflow.defn
async def races_an_activity(log: str, gate_dir: str, seconds: float) -> str:
    try:
        return await workflow.with_timeout(
            seconds, workflow.execute_activity(af.heartbeats_until_cancelled, log, gate_dir, start_to_close_timeout=60)
        )
    except TimeoutError:
        await workflow.sleep(0.5)  # linger so the losing activity's cancellation is seen and recorded
        return "timed out"


@workflow.defn
async def timeout_block(log: str, seconds: float) -> str:
    try:
        async with workflow.timeout(seconds):
            return str(await workflow.wait_signal("go"))
    except TimeoutError:
        return "timed out"


@workflow.defn
async def long_activity(log: str, gate_dir: str) -> str:
    return await workflow.execute_activity(af.ignores_cancellation, log, gate_dir, start_to_close_timeout=60)


@workflow.defn
async def waits_forever(log: str) -> Any:
    return await workflow.wait_signal("finish")


@workflow.defn
async def forever_continuing(log: str, n: int) -> None:
    await workflow.sleep(0.1)
    workflow.continue_as_new(log, n + 1)


@workflow.defn
async def child_echo(log: str, value: Any) -> Any:
    if value == "fail":
        raise ValueError("the child failed")
    return {"echo": value}


@workflow.defn
async def child_waits(log: str) -> str:
    try:
        return str(await workflow.wait_signal("finish"))
    except aion.CancelledError:
        flows.log_execution(log, "child saw cancellation")
        raise


@workflow.defn
async def parent(log: str, mode: str) -> Any:
    if mode == "echo":
        return await workflow.execute_child(child_echo, log, 42)
    if mode == "fail":
        try:
            await workflow.execute_child(child_echo, log, "fail")
        except aion.errors.ChildWorkflowError as error:
            return f"child failed: {error.type}"
    if mode == "signal-and-cancel":
        first = workflow.start_child(child_waits, log, workflow_id="kid-signalled")
        await first.signal("finish", "from parent")
        second = workflow.start_child(child_waits, log, workflow_id="kid-cancelled")
        await workflow.sleep(0.2)
        second.cancel()
        outcome = "?"
        try:
            await second
        except aion.CancelledError:
            outcome = "cancelled"
        return [await first, outcome]
    # Start a waiting child with the policy named by ``mode`` and return at once.
    workflow.start_child(child_waits, log, workflow_id=f"kid-{mode}", parent_close_policy=mode)
    await workflow.sleep(0.2)
    return "parent done"


@workflow.defn
async def signals_another(log: str, target: str) -> str:
    try:
        await workflow.signal_external(target, "finish", "from a sibling")
    except (aion.WorkflowNotFoundError, aion.WorkflowNotRunningError) as error:
        return type(error).__name__
    return "delivered"


@workflow.defn
async def counter(log: str, n: int, stop: int) -> int:
    if n >= stop:
        return n
    workflow.continue_as_new(log, n + 1, stop)


@workflow.defn
async def continue_while_busy(log: str, gate_dir: str) -> str:
    pending = workflow.start_activity(af.ignores_cancellation, log, gate_dir, start_to_close_timeout=60)
    try:
        workflow.continue_as_new(log, gate_dir)
    except aion.errors.ContinueAsNewError as error:
        pending.cancel()
        return f"refused: {'activity 1' in str(error)}"
    return "continued"


@workflow.defn
async def cleans_up(log: str, gate_dir: str, swallow: bool) -> str:
    try:
        await workflow.execute_activity(af.heartbeats_until_cancelled, log, gate_dir, start_to_close_timeout=60)
    except aion.CancelledError:
        await workflow.execute_activity(af.waits_for_gate, log, gate_dir, start_to_close_timeout=60)
        if not swallow:
            raise
        return "cleaned up"
    return "not cancelled"


@workflow.defn
async def racer(log: str, seconds: float) -> str:
    await workflow.sleep(seconds)
    return "completed"


@workflow.defn
async def continues_per_signal(log: str, n: int) -> None:
    await workflow.wait_signal("next")
    workflow.continue_as_new(log, n + 1)


WORKFLOWS = [
    timers, counts_signals, races_an_activity, timeout_block, long_activity, waits_forever, forever_continuing,
    child_echo, child_waits, parent, signals_another, counter, continue_while_busy, cleans_up, racer,
    continues_per_signal,
]  # fmt: skip
