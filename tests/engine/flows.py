"""Workflows and activities the engine tests run. Activities log every execution to a file so tests can
count them, and 'gate' activities block until the test opens a gate file (no sleeps in the tests)."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import aion
from aion import activity, workflow


def log_execution(log: str, entry: str) -> None:
    with open(log, "a") as f:
        f.write(entry + "\n")
        f.flush()
        os.fsync(f.fileno())


def executions(log: str | Path) -> list[str]:
    path = Path(log)
    return path.read_text().splitlines() if path.exists() else []


@activity.defn
def charge(log: str, order: dict[str, Any]) -> dict[str, Any]:
    log_execution(log, f"charge:{order['id']}")
    return {"charged": order["id"], "amount": order.get("amount", 0)}


@activity.defn
def double(log: str, x: int) -> int:
    log_execution(log, f"double:{x}")
    return 2 * x


@activity.defn
async def async_add(log: str, a: int, b: int) -> int:
    log_execution(log, f"add:{a}+{b}")
    return a + b


@activity.defn
def gate(log: str, name: str, gate_dir: str) -> str:
    """Mark itself started, then wait until the test creates ``<gate_dir>/<name>.open``."""
    Path(gate_dir, f"{name}.started").touch()
    deadline = time.monotonic() + 30
    while not Path(gate_dir, f"{name}.open").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {name} never opened")
        time.sleep(0.005)
    log_execution(log, f"gate:{name}")
    return name


@activity.defn
def fails(log: str, message: str) -> None:
    log_execution(log, f"fails:{message}")
    raise ValueError(message)


@workflow.defn
async def checkout(log: str, order: dict[str, Any]) -> dict[str, Any]:
    stage = "charging"
    workflow.set_query_handler("stage", lambda: stage)
    receipt = await workflow.execute_activity(charge, log, order, start_to_close_timeout=timedelta(seconds=30))
    stage = "waiting"
    approval = await workflow.wait_signal("approve", timeout=timedelta(hours=1))
    stage = "sleeping"
    await workflow.sleep(0.2)
    a, b = await workflow.gather(
        workflow.execute_activity(double, log, 1, start_to_close_timeout=30),
        workflow.execute_activity(double, log, 2, start_to_close_timeout=30),
    )
    stage = "done"
    return {"receipt": receipt, "by": approval, "sum": a + b, "at": workflow.now().isoformat()}


@workflow.defn
async def chain(log: str, n: int) -> int:
    total = 0
    for i in range(n):
        total += await workflow.execute_activity(double, log, i, start_to_close_timeout=30)
    return total


@workflow.defn
async def gated(log: str, gate_dir: str) -> list[str]:
    """Waits at each await kind in turn: an activity, a sleep, a signal, a gather of two activities."""
    stage = "activity"
    workflow.set_query_handler("stage", lambda: stage)
    first = await workflow.execute_activity(gate, log, "a", gate_dir, start_to_close_timeout=30)
    stage = "sleep"
    await workflow.sleep(0.3)
    stage = "signal"
    by = await workflow.wait_signal("go")
    stage = "gather"
    rest = await workflow.gather(
        workflow.execute_activity(gate, log, "b", gate_dir, start_to_close_timeout=30),
        workflow.execute_activity(gate, log, "c", gate_dir, start_to_close_timeout=30),
    )
    stage = "done"
    return [first, by, *rest]


@workflow.defn
async def uses_async_activity(log: str) -> int:
    return await workflow.execute_activity(async_add, log, 2, 3, start_to_close_timeout=30)


@workflow.defn
async def catches_failure(log: str) -> str:
    try:
        await workflow.execute_activity(
            fails, log, "nope", start_to_close_timeout=30, retry_policy=aion.RetryPolicy(maximum_attempts=1)
        )
    except Exception as error:
        return f"caught {type(error).__name__}: {getattr(error, 'type', '?')}"
    return "no error"


@workflow.defn
async def raises(log: str) -> None:
    raise RuntimeError("workflow code raised")


@workflow.defn
async def reads_wall_clock(log: str) -> float:
    return time.time()


@workflow.defn
async def calls_unknown_activity(log: str) -> Any:
    return await workflow.execute_activity("no-such-activity", log, start_to_close_timeout=30)


@workflow.defn
async def crash_loop(log: str) -> None:
    log_execution(log, "crash_loop started")
    os._exit(3)


@workflow.defn
async def waits_for_signals(log: str, count: int) -> list[Any]:
    received = []
    for _ in range(count):
        received.append(await workflow.wait_signal("item"))
    return received


@workflow.defn
async def sleeper(log: str, seconds: float) -> str:
    await workflow.sleep(seconds)
    return workflow.now().isoformat()


@activity.defn
def step(log: str, i: int) -> int:
    info = activity.info()
    log_execution(log, f"{info.workflow_id}:{info.activity_id}")
    return i


@workflow.defn
async def steps(log: str, n: int) -> int:
    total = 0
    for i in range(n):
        total += await workflow.execute_activity(step, log, i, start_to_close_timeout=30)
    return total


@workflow.defn(name="versioned")
async def versioned_v1(log: str) -> int:
    value = await workflow.execute_activity(double, log, 21, start_to_close_timeout=30)
    await workflow.wait_signal("finish")
    return value


@workflow.defn(name="versioned")
async def versioned_v2(log: str) -> int:
    value = await workflow.execute_activity(async_add, log, 20, 22, start_to_close_timeout=30)
    await workflow.wait_signal("finish")
    return value


ALL_WORKFLOWS = [
    checkout, chain, gated, uses_async_activity, catches_failure, raises, reads_wall_clock,
    calls_unknown_activity, crash_loop, waits_for_signals, sleeper, steps,
]  # fmt: skip
ALL_ACTIVITIES = [charge, double, async_add, gate, fails, step]
