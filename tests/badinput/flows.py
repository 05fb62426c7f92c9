"""Workflows and activities of the bad-input tests: ``attempt`` makes one bad call inside workflow code and
returns the class and code of the error it got (so that its history shows nothing was recorded for the call)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aion import RetryPolicy, activity, workflow
from aion.errors import AionError, ApplicationError
from aion.workflow._runtime import current_runtime


@activity.defn
def noop() -> None:
    """An activity that does nothing."""


@activity.defn
def huge_error(size: int) -> None:
    """Fails with a message of ``size`` characters."""
    raise RuntimeError("x" * size)


@activity.defn
def huge_details(size: int) -> None:
    """Fails for good with details of ``size`` characters."""
    raise ApplicationError("too much detail", details="d" * size, non_retryable=True)


def _bad_calls() -> dict[str, Callable[[], Any]]:
    minutes = timedelta(minutes=1)
    return {
        "sleep-1e12": lambda: workflow.sleep(1e12),
        "sleep-nan": lambda: workflow.sleep(float("nan")),
        "sleep-inf": lambda: workflow.sleep(float("inf")),
        "sleep-negative": lambda: workflow.sleep(-1),
        "sleep-huge-int": lambda: workflow.sleep(10**400),
        "sleep-string": lambda: workflow.sleep("5"),  # type: ignore[arg-type]
        "sleep-bool": lambda: workflow.sleep(True),
        "sleep-timedelta-3e6-days": lambda: workflow.sleep(timedelta(days=3e6)),
        "wait-signal-timeout-3e6-days": lambda: workflow.wait_signal("go", timeout=timedelta(days=3e6)),
        "wait-signal-timeout-nan": lambda: workflow.wait_signal("go", timeout=float("nan")),
        "wait-signal-timeout-zero": lambda: workflow.wait_signal("go", timeout=0),
        "wait-condition-timeout-inf": lambda: workflow.wait_condition(lambda: False, timeout=float("inf")),
        "start-timer-zero": lambda: workflow.start_timer(0),
        "timeout-negative": lambda: workflow.timeout(-5),
        "activity-no-timeout": lambda: workflow.start_activity(noop),
        "activity-timeout-nan": lambda: workflow.start_activity(noop, start_to_close_timeout=float("nan")),
        "activity-timeout-1e300": lambda: workflow.start_activity(noop, start_to_close_timeout=1e300),
        "activity-heartbeat-negative": lambda: workflow.start_activity(
            noop, start_to_close_timeout=minutes, heartbeat_timeout=-1
        ),
        "activity-retry-policy-dict": lambda: workflow.start_activity(
            noop,
            start_to_close_timeout=minutes,
            retry_policy={"maximum_attempts": 1},  # type: ignore[arg-type]
        ),
        "retry-backoff-nan": lambda: RetryPolicy(backoff_coefficient=float("nan")),
        "retry-attempts-negative": lambda: RetryPolicy(maximum_attempts=-1),
        "activity-args-object": lambda: workflow.start_activity(noop, object(), start_to_close_timeout=minutes),
        "child-policy-unknown": lambda: workflow.start_child("attempt", "x", parent_close_policy="explode"),
        "child-id-empty": lambda: workflow.start_child("attempt", "x", workflow_id=""),
        "child-execution-timeout-inf": lambda: workflow.start_child("attempt", "x", execution_timeout=float("inf")),
        "signal-external-bad-id": lambda: workflow.signal_external("bad\nid", "go"),
        "signal-external-payload-set": lambda: workflow.signal_external("someone", "go", {1, 2}),
        "continue-as-new-object": lambda: workflow.continue_as_new(object()),
    }


#: The names of the bad calls ``attempt`` knows.
BAD_CALLS = sorted(_bad_calls())


@workflow.defn
async def attempt(case: str) -> dict[str, str]:
    """Make the bad call ``case`` and return the class and code of the error it raised."""
    try:
        made = _bad_calls()[case]()
        if asyncio.iscoroutine(made):
            await made
    except AionError as error:
        return {"class": type(error).__name__, "code": error.code}
    return {"class": "none", "code": "none"}


@workflow.defn
async def waiter() -> Any:
    """Waits for signal ``go`` and returns its payload; its query ``slow`` takes a second to answer."""

    def slow() -> str:
        time.sleep(1.0)  # not a clock read: the guard lets it be, and the query's caller times out first
        return "late"

    workflow.set_query_handler("slow", slow)
    return await workflow.wait_signal("go")


@workflow.defn
async def returns_nan() -> Any:
    """Returns floats that JSON has no numbers for."""
    return {"nan": float("nan"), "inf": float("inf"), "list": [float("-inf"), 1.5]}


@workflow.defn
async def bypasses_validation() -> None:
    """Asks the runtime directly (under the SDK's checks) for a timer past datetime's range, then an activity, in
    one batch: the engine must fail the run with the cause, not drop the commands."""
    runtime = current_runtime()
    runtime.start_timer(1e12)
    runtime.schedule_activity("noop", [], {"start_to_close_timeout": 60.0})
    await workflow.wait_signal("never")


@workflow.defn
async def returns_object() -> Any:
    """Returns a value that cannot be serialised."""
    return object()


@workflow.defn
async def calls_huge_error(size: int, activity_type: str = "huge_error") -> dict[str, Any]:
    """Runs ``activity_type`` once and reports what the workflow saw of its failure."""
    try:
        await workflow.execute_activity(
            activity_type, size, start_to_close_timeout=60, retry_policy=RetryPolicy(maximum_attempts=1)
        )
    except AionError as error:
        details = getattr(error, "details", None)
        return {"class": type(error).__name__, "type": getattr(error, "type", ""), "details": str(details)[:200]}
    return {}


WORKFLOWS = [attempt, waiter, returns_object, calls_huge_error, returns_nan, bypasses_validation]
ACTIVITIES = [noop, huge_error, huge_details]
