"""The workflow authoring API: what workflow code calls.

A workflow is an ``async def`` function decorated with :func:`defn`. Its every step goes through this module, so
that it can be recorded and replayed::

    from datetime import timedelta
    from aion import workflow

    @workflow.defn
    async def checkout(order: dict) -> dict:
        receipt = await workflow.execute_activity(charge, order, start_to_close_timeout=timedelta(seconds=30))
        approval = await workflow.wait_signal("approve", timeout=timedelta(hours=1))
        await workflow.sleep(5)
        return {"receipt": receipt, "by": approval, "at": workflow.now().isoformat()}

Workflow code must be deterministic: see ``docs/workflows.md`` for the rules and what the guard catches.
"""

from __future__ import annotations

import asyncio
import random as _random
import uuid as _uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar, overload

from aion._codec import check_payload
from aion._definitions import activity_type_name, define_workflow
from aion._durations import Duration, optional_seconds, to_seconds
from aion.workflow._runtime import WorkflowInfo, current_runtime

__all__ = [
    "WorkflowInfo",
    "defn",
    "execute_activity",
    "gather",
    "info",
    "now",
    "random",
    "set_query_handler",
    "sleep",
    "uuid4",
    "wait_signal",
]

_F = TypeVar("_F", bound=Callable[..., Any])


@overload
def defn(function: _F, /) -> _F: ...
@overload
def defn(*, name: str | None = None) -> Callable[[_F], _F]: ...
def defn(function: _F | None = None, /, *, name: str | None = None) -> _F | Callable[[_F], _F]:
    """Declare an ``async def`` function a workflow type; the type name defaults to the function's name.

    >>> @defn(name="checkout")
    ... async def checkout_v1(order: dict) -> dict:
    ...     return order
    """

    def decorate(fn: _F) -> _F:
        define_workflow(fn, name)
        return fn

    return decorate(function) if function is not None else decorate


def execute_activity(
    activity: str | Callable[..., Any],
    *args: Any,
    start_to_close_timeout: Duration | None = None,
    schedule_to_close_timeout: Duration | None = None,
    heartbeat_timeout: Duration | None = None,
) -> Awaitable[Any]:
    """Run an activity (a decorated function or its type name) with ``args``; await the result.

    The activity is scheduled when this is called, so several calls before awaiting run in parallel. A failure
    raises :class:`aion.ActivityError` at the ``await``; an argument that cannot be serialised raises
    :class:`aion.PayloadError` here.
    """
    runtime = current_runtime()
    name = activity_type_name(activity)
    options = {
        "start_to_close_timeout": optional_seconds(start_to_close_timeout, "start_to_close_timeout"),
        "schedule_to_close_timeout": optional_seconds(schedule_to_close_timeout, "schedule_to_close_timeout"),
        "heartbeat_timeout": optional_seconds(heartbeat_timeout, "heartbeat_timeout"),
    }
    arguments = list(args)
    check_payload(arguments, path=f"{name}.args")
    return runtime.schedule_activity(name, arguments, {k: v for k, v in options.items() if v is not None})


async def sleep(duration: Duration) -> None:
    """Sleep durably for ``duration`` (a ``timedelta`` or seconds): the timer survives engine restarts."""
    seconds = to_seconds(duration, "sleep duration")
    if seconds == 0:
        await asyncio.sleep(0)
        return
    await current_runtime().start_timer(seconds)


async def wait_signal(name: str, *, timeout: Duration | None = None) -> Any:
    """Wait for the next signal called ``name`` and return its payload.

    Signals that arrive while nobody waits are buffered in order. With ``timeout``, raises ``TimeoutError`` if
    no signal comes in time.
    """
    runtime = current_runtime()
    seconds = optional_seconds(timeout, "timeout")
    signal = runtime.signal_future(name)
    if signal.done() or seconds is None:
        return await signal
    timer = runtime.start_timer(seconds)
    await asyncio.wait([signal, timer], return_when=asyncio.FIRST_COMPLETED)
    if signal.done():
        runtime.cancel_timer(timer)
        return signal.result()
    signal.cancel()
    raise TimeoutError(f"no signal {name!r} arrived within {seconds:g} s")


def gather(*awaitables: Awaitable[Any], return_exceptions: bool = False) -> Awaitable[list[Any]]:
    """Wait for all ``awaitables`` and return their results in order (``asyncio.gather`` semantics)."""
    return asyncio.gather(*awaitables, return_exceptions=return_exceptions)


def set_query_handler(name: str, handler: Callable[..., Any]) -> None:
    """Answer queries called ``name`` with ``handler(*args)``; it must not change workflow state."""
    if not callable(handler):
        raise TypeError(f"query handler for {name!r} must be callable, got {handler!r}")
    current_runtime().query_handlers[name] = handler


def now() -> datetime:
    """The workflow's current time: the recorded time of the event being replayed (an aware UTC datetime)."""
    return current_runtime().now


def info() -> WorkflowInfo:
    """The running workflow's id, run id, type and attempt."""
    return current_runtime().info


def random() -> _random.Random:
    """A ``random.Random`` seeded from the run id: the same numbers on every replay."""
    return current_runtime().random


def uuid4() -> _uuid.UUID:
    """A version-4 UUID drawn from :func:`random`, so replay yields the same one."""
    return _uuid.UUID(int=current_runtime().random.getrandbits(128), version=4)
