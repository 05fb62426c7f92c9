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
from collections.abc import Awaitable, Callable, Generator
from datetime import datetime
from typing import Any, TypeVar, overload

from aion._codec import check_payload
from aion._definitions import activity_type_name, define_workflow
from aion._durations import Duration, optional_seconds, to_seconds
from aion.errors import InvalidArgumentError
from aion.retry import RetryPolicy
from aion.workflow._runtime import WorkflowInfo, current_runtime

__all__ = [
    "ActivityHandle",
    "WorkflowInfo",
    "defn",
    "execute_activity",
    "gather",
    "info",
    "now",
    "random",
    "set_query_handler",
    "sleep",
    "start_activity",
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


class ActivityHandle:
    """A scheduled activity: await it for its result, or :meth:`cancel` it.

    The outcome is whatever history records first: after ``cancel()`` the await raises
    :class:`aion.CancelledError`, unless the activity completed before the cancellation reached it.
    """

    def __init__(self, activity_id: int, future: asyncio.Future[Any]) -> None:
        self.activity_id = activity_id
        self._future = future

    def cancel(self) -> None:
        """Request cancellation (the running attempt sees it at its next ``activity.heartbeat()``)."""
        current_runtime().cancel_activity(self.activity_id)

    def done(self) -> bool:
        """True once the activity's outcome is known to the workflow."""
        return self._future.done()

    def __await__(self) -> Generator[Any, None, Any]:
        return self._future.__await__()


def start_activity(
    activity: str | Callable[..., Any],
    *args: Any,
    start_to_close_timeout: Duration | None = None,
    schedule_to_close_timeout: Duration | None = None,
    heartbeat_timeout: Duration | None = None,
    retry_policy: RetryPolicy | None = None,
) -> ActivityHandle:
    """Schedule an activity (a decorated function or its type name) and return its :class:`ActivityHandle`.

    At least one of ``start_to_close_timeout`` (one attempt) and ``schedule_to_close_timeout`` (all attempts,
    backoffs included) is required. ``heartbeat_timeout`` fails an attempt that stops heartbeating.
    ``retry_policy`` defaults to :class:`aion.RetryPolicy` (unlimited attempts, 1 s doubling up to 100 s).
    An argument that cannot be serialised raises :class:`aion.PayloadError` here.
    """
    runtime = current_runtime()
    name = activity_type_name(activity)
    options: dict[str, Any] = {
        "start_to_close_timeout": optional_seconds(start_to_close_timeout, "start_to_close_timeout"),
        "schedule_to_close_timeout": optional_seconds(schedule_to_close_timeout, "schedule_to_close_timeout"),
        "heartbeat_timeout": optional_seconds(heartbeat_timeout, "heartbeat_timeout"),
    }
    if options["start_to_close_timeout"] is None and options["schedule_to_close_timeout"] is None:
        raise InvalidArgumentError(
            f"activity {name!r} needs start_to_close_timeout or schedule_to_close_timeout (or both): "
            "an activity without a timeout could hang its workflow forever"
        )
    if retry_policy is not None:
        if not isinstance(retry_policy, RetryPolicy):
            raise InvalidArgumentError(f"retry_policy must be an aion.RetryPolicy, got {retry_policy!r}")
        options["retry_policy"] = retry_policy.to_dict()
    arguments = list(args)
    check_payload(arguments, path=f"{name}.args")
    recorded = {key: value for key, value in options.items() if value is not None}
    activity_id, future = runtime.schedule_activity(name, arguments, recorded)
    return ActivityHandle(activity_id, future)


def execute_activity(
    activity: str | Callable[..., Any],
    *args: Any,
    start_to_close_timeout: Duration | None = None,
    schedule_to_close_timeout: Duration | None = None,
    heartbeat_timeout: Duration | None = None,
    retry_policy: RetryPolicy | None = None,
) -> ActivityHandle:
    """Run an activity and await its result: :func:`start_activity` under the name that reads well in
    ``result = await workflow.execute_activity(charge, order, start_to_close_timeout=30)``.

    When retries end, the await raises :class:`aion.ActivityError` with the last cause (type, message,
    details, traceback) and the attempt count.
    """
    return start_activity(
        activity,
        *args,
        start_to_close_timeout=start_to_close_timeout,
        schedule_to_close_timeout=schedule_to_close_timeout,
        heartbeat_timeout=heartbeat_timeout,
        retry_policy=retry_policy,
    )


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
