"""Workflows for the tests of code changes under live runs: one workflow type ("order") in its first form, a
form changed without care (it diverges), the same change behind a patch, two pinned versions of "billing", a
workflow to reset and one to pause. Activities log every execution (``<workflow id>:<label>``)."""

from __future__ import annotations

from pathlib import Path

import aion
from aion import activity, workflow
from tests.engine.flows import log_execution


@activity.defn
def note(log: str, label: str) -> str:
    log_execution(log, f"{activity.info().workflow_id}:{label}")
    return label


@activity.defn
def other_note(log: str, label: str) -> str:
    log_execution(log, f"{activity.info().workflow_id}:{label}")
    return label


@activity.defn
def fails_while_flagged(log: str, label: str, flag: str) -> str:
    log_execution(log, f"{activity.info().workflow_id}:{label}")
    if Path(flag).exists():
        raise aion.ApplicationError(f"{label} refused while {flag} exists", non_retryable=True)
    return label


@workflow.defn(name="order")
async def order_v1(log: str) -> list[str]:
    first = await workflow.execute_activity(note, log, "a", start_to_close_timeout=30)
    await workflow.wait_signal("go")
    second = await workflow.execute_activity(note, log, "b", start_to_close_timeout=30)
    return [first, second]


@workflow.defn(name="order")
async def order_changed(log: str) -> list[str]:
    """Changed without a patch: its first activity is another type, so a run of ``order_v1`` diverges."""
    first = await workflow.execute_activity(other_note, log, "x", start_to_close_timeout=30)
    await workflow.wait_signal("go")
    second = await workflow.execute_activity(note, log, "b", start_to_close_timeout=30)
    return [first, second]


@workflow.defn(name="order")
async def order_patched(log: str) -> list[str]:
    """The same change behind a patch: runs recorded before it keep the old first step."""
    if workflow.patched("first-step"):
        first = await workflow.execute_activity(other_note, log, "x", start_to_close_timeout=30)
    else:
        first = await workflow.execute_activity(note, log, "a", start_to_close_timeout=30)
    await workflow.wait_signal("go")
    second = await workflow.execute_activity(note, log, "b", start_to_close_timeout=30)
    return [first, second]


@workflow.defn(name="billing", version=1)
async def billing_v1(log: str) -> str:
    await workflow.execute_activity(note, log, "v1", start_to_close_timeout=30)
    mode = await workflow.wait_signal("go")
    if mode == "continue":
        workflow.continue_as_new(log, False)
    return "v1"


@workflow.defn(name="billing", version=2)
async def billing_v2(log: str, wait: bool = True) -> str:
    await workflow.execute_activity(note, log, "v2", start_to_close_timeout=30)
    if wait:
        await workflow.wait_signal("go")
    return "v2"


@workflow.defn
async def resettable(log: str, flag: str) -> list[str]:
    first = await workflow.execute_activity(note, log, "a", start_to_close_timeout=30)
    second = await workflow.execute_activity(note, log, "b", start_to_close_timeout=30)
    third = await workflow.execute_activity(fails_while_flagged, log, "c", flag, start_to_close_timeout=30)
    return [first, second, third]


@workflow.defn
async def pausable(log: str) -> str:
    await workflow.wait_signal("go")
    return await workflow.execute_activity(note, log, "after", start_to_close_timeout=30)


@workflow.defn(name="order")
async def order_deprecated(log: str) -> list[str]:
    """The clean-up step: every run recorded before the patch is closed, so only the new branch is left."""
    workflow.deprecate_patch("first-step")
    first = await workflow.execute_activity(other_note, log, "x", start_to_close_timeout=30)
    await workflow.wait_signal("go")
    second = await workflow.execute_activity(note, log, "b", start_to_close_timeout=30)
    return [first, second]


@workflow.defn(name="order")
async def order_new_signature(log: str, extra: str) -> list[str]:
    """A new required parameter: a recorded run cannot even be called with its recorded input."""
    return [extra]


@activity.defn
def refuses_while_flagged(log: str, flag: str) -> str:
    log_execution(log, f"{activity.info().workflow_id}:attempt")
    if Path(flag).exists():
        raise ValueError(f"{flag} exists")
    return "done"


@workflow.defn
async def retries_an_activity(log: str, flag: str) -> str:
    policy = aion.RetryPolicy(initial_interval=1.5, backoff_coefficient=1.0)
    return await workflow.execute_activity(
        refuses_while_flagged, log, flag, start_to_close_timeout=30, retry_policy=policy
    )


ACTIVITIES = [note, other_note, fails_while_flagged, refuses_while_flagged]
