"""Workflows and activities of the observability tests."""

from __future__ import annotations

import os
import time

import aion
from aion import activity, workflow


@activity.defn
def double(value: int) -> int:
    """Twice ``value``."""
    return value * 2


@activity.defn
def flaky(fail_times: int) -> str:
    """Fail the first ``fail_times`` attempts, then succeed."""
    attempt = activity.info().attempt
    if attempt <= fail_times:
        raise RuntimeError(f"flaky attempt {attempt}")
    return f"ok after {attempt}"


@workflow.defn
async def leaf(value: int) -> int:
    """A child: one activity."""
    result: int = await workflow.execute_activity(double, value, start_to_close_timeout=30)
    return result


@activity.defn
def current_span_id() -> str:
    """The span id the attempt runs under (hex), as OpenTelemetry sees it in the worker."""
    from opentelemetry import trace

    return format(trace.get_current_span().get_span_context().span_id, "016x")


@workflow.defn
async def tree(value: int) -> list[object]:
    """Two activities and a child workflow."""
    first: int = await workflow.execute_activity(double, value, start_to_close_timeout=30)
    span_id: str = await workflow.execute_activity(current_span_id, start_to_close_timeout=30)
    child: int = await workflow.execute_child(leaf, first, workflow_id=f"{workflow.info().workflow_id}-child")
    return [child, span_id]


@workflow.defn
async def retrying(fail_times: int) -> str:
    """One activity that fails ``fail_times`` times before it succeeds."""
    policy = aion.RetryPolicy(initial_interval=0.01, maximum_attempts=10)
    result: str = await workflow.execute_activity(flaky, fail_times, start_to_close_timeout=30, retry_policy=policy)
    return result


@workflow.defn
async def failing(message: str) -> None:
    """Fail with ``message``."""
    raise RuntimeError(message)


@workflow.defn
async def waiting() -> str:
    """Wait for a ``go`` signal (its process can be killed meanwhile)."""
    value: str = await workflow.wait_signal("go")
    return value


@activity.defn
def slow(seconds: float) -> str:
    """Sleep ``seconds`` (longer than the start-to-close timeout it is given)."""
    time.sleep(seconds)
    return "late"


@workflow.defn
async def times_out() -> str:
    """One attempt of ``slow`` that outlives its start-to-close timeout: the run fails."""
    policy = aion.RetryPolicy(maximum_attempts=1)
    result: str = await workflow.execute_activity(slow, 30.0, start_to_close_timeout=0.5, retry_policy=policy)
    return result


@workflow.defn
async def crash_loop() -> None:
    """Its process exits at every replay: past its restart intensity, the run fails."""
    os._exit(3)
