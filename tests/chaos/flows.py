"""The chaos soak's workflows and activities.

Every workflow takes one ``spec`` dict built by :mod:`tests.chaos.plan` from the seed, and its outcome is a pure
function of that spec (and, for ``signals``, of the planned payloads), whatever gets killed on the way; the plan
computes it ahead as the expected outcome.

Every activity appends to the execution log (``spec["log"]``, one line per event, ``O_APPEND`` + fsync):

* ``start <workflow_id> <run_id> <activity_id> <attempt> <time_ns> <pid>`` when an execution begins, and
* ``done  <workflow_id> <run_id> <activity_id> <attempt> <time_ns> <pid>`` right before it returns a result.

:mod:`tests.chaos.checker` compares those lines with the recorded history.
"""

from __future__ import annotations

import os
import time
from typing import Any

import aion
from aion import activity, workflow


def _log(log: str, what: str) -> activity.ActivityInfo:
    info = activity.info()
    line = f"{what} {info.workflow_id} {info.run_id} {info.activity_id} {info.attempt} {time.time_ns()} {os.getpid()}\n"
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one small write: a SIGKILL cannot tear it
        os.fsync(fd)
    finally:
        os.close(fd)
    return info


# -- activities --------------------------------------------------------------------------------------------


@activity.defn
def step(log: str, value: int, fail_first: int, delay: float) -> int:
    """Sleeps ``delay`` s (so kills land mid-attempt), fails attempts up to ``fail_first``, then returns ``value``."""
    info = _log(log, "start")
    time.sleep(delay)
    if info.attempt <= fail_first:
        raise ConnectionError(f"planned failure of attempt {info.attempt}")
    _log(log, "done")
    return value


@activity.defn
def declines(log: str) -> None:
    """Fails for good: a non-retryable application error."""
    _log(log, "start")
    raise aion.ApplicationError("declined by plan", type="Declined", non_retryable=True)


@activity.defn
def heartbeats_until_cancelled(log: str) -> str:
    """Heartbeats until it is cancelled (it is only used by workflows that get cancelled)."""
    _log(log, "start")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        activity.heartbeat()  # raises aion.CancelledError once cancellation reaches this attempt
        time.sleep(0.05)
    _log(log, "done")
    return "never cancelled"


ACTIVITIES = [step, declines, heartbeats_until_cancelled]


# -- workflows ---------------------------------------------------------------------------------------------


def _retry(spec: dict[str, Any]) -> aion.RetryPolicy:
    return aion.RetryPolicy(initial_interval=spec["retry_interval"], backoff_coefficient=2.0, maximum_interval=0.5)


async def _step(spec: dict[str, Any], value: int, fail_first: int, delay: float) -> int:
    result: int = await workflow.execute_activity(
        step, spec["log"], value, fail_first, delay, start_to_close_timeout=30, retry_policy=_retry(spec)
    )
    return result


async def _steps(spec: dict[str, Any], steps: list[list[Any]], parallel: bool) -> int:
    if parallel:
        return sum(await workflow.gather(*(_step(spec, *s) for s in steps)))
    total = 0
    for s in steps:
        total += await _step(spec, *s)
    return total


@workflow.defn
async def chain(spec: dict[str, Any]) -> int:
    """Activities with planned failures (retried), in sequence or gathered; optionally a final non-retryable
    failure that fails the workflow."""
    total = await _steps(spec, spec["steps"], spec["parallel"])
    if spec["decline"]:
        await workflow.execute_activity(declines, spec["log"], start_to_close_timeout=30, retry_policy=_retry(spec))
    return total


@workflow.defn
async def sleeper(spec: dict[str, Any]) -> int:
    """Durable sleeps between activities; optionally a long timer that is cancelled at the end."""
    long_timer = workflow.start_timer(3600) if spec["cancel_timer"] else None
    total = 0
    for seconds, s in zip(spec["sleeps"], spec["steps"], strict=True):
        await workflow.sleep(seconds)
        total += await _step(spec, *s)
    if long_timer is not None:
        long_timer.cancel()
    return total


@workflow.defn
async def signals(spec: dict[str, Any]) -> list[Any]:
    """Waits for ``count`` signals ``item`` (the driver's engine sends them), an activity after each."""
    received = []
    for index in range(spec["count"]):
        received.append(await workflow.wait_signal("item"))
        await _step(spec, index, 0, spec["delay"])
    return received


@workflow.defn
async def child(spec: dict[str, Any]) -> int:
    """A child: its activities, optionally a signal from its parent, optionally a planned failure."""
    total = await _steps(spec, spec["steps"], False)
    if spec["wait_signal"]:
        total += await workflow.wait_signal("bonus")
    if spec["fail"]:
        raise ValueError("planned child failure")
    return total


@workflow.defn
async def parent(spec: dict[str, Any]) -> list[Any]:
    """Starts its children (ids ``<id>.c<j>``), signals the ones that wait for it, and collects the outcomes."""
    me = workflow.info().workflow_id
    handles = [workflow.start_child(child, kid, workflow_id=f"{me}.c{j}") for j, kid in enumerate(spec["children"])]
    for handle, kid in zip(handles, spec["children"], strict=True):
        if kid["wait_signal"]:
            await handle.signal("bonus", kid["bonus"])
    outcomes: list[Any] = []
    for handle in handles:
        try:
            outcomes.append(await handle)
        except aion.errors.ChildWorkflowError as error:
            outcomes.append(f"failed:{error.type}")
    return outcomes


@workflow.defn
async def looper(spec: dict[str, Any], n: int, acc: int) -> int:
    """A continue-as-new chain of ``runs`` runs: an activity and a sleep per run, the sum carried along."""
    acc += await _step(spec, *spec["steps"][n])
    await workflow.sleep(spec["sleep"])
    if n + 1 < spec["runs"]:
        workflow.continue_as_new(spec, n + 1, acc)
    return acc


@workflow.defn
async def cancellable(spec: dict[str, Any]) -> str:
    """Runs an activity, then waits for ever (a heartbeating activity, a long sleep or a signal that never comes)
    until the driver's engine cancels it; then cleans up with an activity and completes, or lets it escape."""
    try:
        await _step(spec, *spec["steps"][0])
        if spec["wait"] == "activity":
            await workflow.execute_activity(
                heartbeats_until_cancelled,
                spec["log"],
                start_to_close_timeout=600,
                heartbeat_timeout=5,
                retry_policy=_retry(spec),
            )
        elif spec["wait"] == "sleep":
            await workflow.sleep(3600)
        else:
            await workflow.wait_signal("never")
    except aion.CancelledError:
        if spec["mode"] != "cleanup":
            raise
        await _step(spec, *spec["steps"][1])
        return "cleaned up"
    return "not cancelled"


WORKFLOWS = [chain, sleeper, signals, child, parent, looper, cancellable]
