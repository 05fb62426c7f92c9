"""Activities and workflows for the activity tests: each activity logs ``name:attempt`` per execution."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import aion
from aion import activity, workflow
from tests.engine.flows import log_execution


class CardDeclinedError(Exception):
    """A business error named in non_retryable_error_types."""


def _log(log: str, name: str) -> int:
    attempt = activity.info().attempt
    log_execution(log, f"{name}:{attempt}")
    return attempt


@activity.defn
def flaky(log: str, failures: int) -> int:
    """Fails its first ``failures`` attempts, then returns its attempt number."""
    attempt = _log(log, "flaky")
    if attempt <= failures:
        raise ConnectionError(f"attempt {attempt} failed")
    return attempt


@activity.defn
def declines(log: str, how: str) -> None:
    _log(log, "declines")
    if how == "application":
        raise aion.ApplicationError("card declined", type="Declined", non_retryable=True, details={"code": 51})
    raise CardDeclinedError("card declined")


@activity.defn
def sleeps(log: str, seconds: float) -> str:
    _log(log, "sleeps")
    time.sleep(seconds)
    return "woke"


@activity.defn
def heartbeats_then_fails(log: str) -> Any:
    """Attempt 1 heartbeats progress then fails; attempt 2 returns the details it was handed."""
    attempt = _log(log, "heartbeats_then_fails")
    if attempt == 1:
        activity.heartbeat({"progress": 41})
        raise ConnectionError("lost the connection after some progress")
    return activity.info().heartbeat_details


@activity.defn
def heartbeats_once_then_stalls(log: str) -> None:
    _log(log, "stalls")
    activity.heartbeat("alive")
    time.sleep(30)


@activity.defn
def heartbeats_until_cancelled(log: str, gate_dir: str) -> str:
    _log(log, "heartbeating")
    Path(gate_dir, "heartbeating.started").touch()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            activity.heartbeat()
        except aion.CancelledError:
            log_execution(log, "heartbeating:saw-cancel")
            raise
        time.sleep(0.01)
    return "never cancelled"


@activity.defn
def ignores_cancellation(log: str, gate_dir: str) -> str:
    _log(log, "ignores")
    Path(gate_dir, "ignores.started").touch()
    time.sleep(30)
    return "finished anyway"


@activity.defn
def waits_for_gate(log: str, gate_dir: str) -> int:
    """Writes its pid to ``pid.<attempt>``, then waits for ``open.<attempt>``."""
    attempt = _log(log, "gated")
    _pid_then_gate(gate_dir, "", attempt)
    return attempt


def _pid_then_gate(gate_dir: str, prefix: str, attempt: int) -> None:
    """Write this process's pid to ``<prefix>pid.<attempt>``, then wait for ``<prefix>open.<attempt>``."""
    Path(gate_dir, f"{prefix}pid.{attempt}").write_text(str(os.getpid()))
    deadline = time.monotonic() + 30
    while not Path(gate_dir, f"{prefix}open.{attempt}").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("gate never opened")
        time.sleep(0.005)


@activity.defn
def fails_then_waits_for_gate(log: str, gate_dir: str) -> int:
    """Fails attempt 1; later attempts write their pid to ``retry.pid.<attempt>``, then wait for
    ``retry.open.<attempt>``."""
    attempt = _log(log, "retried")
    if attempt == 1:
        raise ConnectionError("attempt 1 failed")
    _pid_then_gate(gate_dir, "retry.", attempt)
    return attempt


@activity.defn
def returns_unserialisable(log: str) -> object:
    _log(log, "unserialisable")
    return object()


@workflow.defn
async def call(log: str, name: str, args: list[Any], options: dict[str, Any]) -> Any:
    """Run activity ``name`` with ``options`` (``retry_policy`` as a dict); report an ActivityError as data."""
    policy = options.pop("retry_policy", None)
    try:
        return await workflow.execute_activity(
            name, log, *args, retry_policy=aion.RetryPolicy(**policy) if policy else None, **options
        )
    except aion.ActivityError as error:
        return {"error": error.type, "attempt": getattr(error, "attempt", None), "details": error.details}


@workflow.defn
async def cancels(log: str, name: str, gate_dir: str) -> str:
    """Start an activity, cancel it when signalled, and report how it ended."""
    handle = workflow.start_activity(name, log, gate_dir, start_to_close_timeout=60)
    await workflow.wait_signal("cancel")
    handle.cancel()
    try:
        return str(await handle)
    except aion.CancelledError:
        return "cancelled"


@workflow.defn
async def bad_timeouts(log: str, which: str) -> str:
    try:
        if which == "none":
            await workflow.execute_activity(flaky, log, 0)
        elif which == "zero":
            await workflow.execute_activity(flaky, log, 0, start_to_close_timeout=0)
        else:
            await workflow.execute_activity(flaky, log, 0, start_to_close_timeout=-1)
    except aion.InvalidArgumentError as error:
        return f"refused: {error}"
    return "accepted"


ACTIVITIES = [
    flaky, declines, sleeps, heartbeats_then_fails, heartbeats_once_then_stalls, heartbeats_until_cancelled,
    ignores_cancellation, waits_for_gate, fails_then_waits_for_gate, returns_unserialisable,
]  # fmt: skip
WORKFLOWS = [call, cancels, bad_timeouts]
