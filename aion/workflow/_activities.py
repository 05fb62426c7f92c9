"""Activities, the workflow side: :func:`start_activity` checks the call and its options and issues it,
:func:`execute_activity` is the same under the name that reads well awaited, :class:`ActivityHandle` awaits or
cancels one. Part of the :mod:`aion.workflow` API (import from there).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, TypeVarTuple, overload

from aion._codec import check_payload
from aion._definitions import activity_type_name
from aion._durations import Duration, to_seconds
from aion.errors import InvalidArgumentError
from aion.retry import RetryPolicy
from aion.workflow._handle import PendingHandle
from aion.workflow._runtime import current_runtime

#: The result type of an activity or child, and the types of its positional arguments (mypy checks them).
_R = TypeVar("_R")
_Ts = TypeVarTuple("_Ts")


class ActivityHandle(PendingHandle[_R]):
    """A scheduled activity: await it for its result, or :meth:`cancel` it.

    The outcome is whatever history records first: after ``cancel()`` the await raises
    :class:`aion.CancelledError`, unless the activity completed before the cancellation reached it.
    """

    def __init__(self, activity_id: int, future: asyncio.Future[Any]) -> None:
        self._future = future
        self.activity_id = activity_id

    def cancel(self) -> None:
        """Request cancellation (the running attempt sees it at its next ``activity.heartbeat()``)."""
        current_runtime().cancel_activity(self.activity_id)


@overload
def start_activity(
    activity: Callable[[*_Ts], Awaitable[_R]],
    *args: *_Ts,
    start_to_close_timeout: Duration | None = None,
    schedule_to_close_timeout: Duration | None = None,
    heartbeat_timeout: Duration | None = None,
    retry_policy: RetryPolicy | None = None,
    task_queue: str | None = None,
    priority: int = 0,
) -> ActivityHandle[_R]: ...
@overload
def start_activity(
    activity: Callable[[*_Ts], _R],
    *args: *_Ts,
    start_to_close_timeout: Duration | None = None,
    schedule_to_close_timeout: Duration | None = None,
    heartbeat_timeout: Duration | None = None,
    retry_policy: RetryPolicy | None = None,
    task_queue: str | None = None,
    priority: int = 0,
) -> ActivityHandle[_R]: ...
@overload
def start_activity(
    activity: str,
    *args: Any,
    start_to_close_timeout: Duration | None = None,
    schedule_to_close_timeout: Duration | None = None,
    heartbeat_timeout: Duration | None = None,
    retry_policy: RetryPolicy | None = None,
    task_queue: str | None = None,
    priority: int = 0,
) -> ActivityHandle[Any]: ...
def start_activity(  # type: ignore[misc]  # mypy: an implementation never matches *Ts overloads
    activity: str | Callable[..., Any],
    *args: Any,
    start_to_close_timeout: Duration | None = None,
    schedule_to_close_timeout: Duration | None = None,
    heartbeat_timeout: Duration | None = None,
    retry_policy: RetryPolicy | None = None,
    task_queue: str | None = None,
    priority: int = 0,
) -> ActivityHandle[Any]:
    """Schedule an activity (a decorated function or its type name) and return its :class:`ActivityHandle`.

    At least one of ``start_to_close_timeout`` (one attempt) and ``schedule_to_close_timeout`` (all attempts,
    backoffs included) is required. ``heartbeat_timeout`` fails an attempt that stops heartbeating.
    ``retry_policy`` defaults to :class:`aion.RetryPolicy` (unlimited attempts, 1 s doubling up to 100 s).
    An argument that cannot be serialised raises :class:`aion.PayloadError` here.
    ``task_queue`` overrides the activity's own (``@activity.defn(task_queue=...)``); a queue the engine does not
    declare raises :class:`aion.InvalidArgumentError` here. ``priority``: higher is dispatched first within the
    queue (an int, default 0).
    """
    return _schedule(
        activity,
        args,
        start_to_close_timeout,
        schedule_to_close_timeout,
        heartbeat_timeout,
        retry_policy,
        task_queue,
        priority,
    )


@overload
def execute_activity(
    activity: Callable[[*_Ts], Awaitable[_R]],
    *args: *_Ts,
    start_to_close_timeout: Duration | None = None,
    schedule_to_close_timeout: Duration | None = None,
    heartbeat_timeout: Duration | None = None,
    retry_policy: RetryPolicy | None = None,
    task_queue: str | None = None,
    priority: int = 0,
) -> ActivityHandle[_R]: ...
@overload
def execute_activity(
    activity: Callable[[*_Ts], _R],
    *args: *_Ts,
    start_to_close_timeout: Duration | None = None,
    schedule_to_close_timeout: Duration | None = None,
    heartbeat_timeout: Duration | None = None,
    retry_policy: RetryPolicy | None = None,
    task_queue: str | None = None,
    priority: int = 0,
) -> ActivityHandle[_R]: ...
@overload
def execute_activity(
    activity: str,
    *args: Any,
    start_to_close_timeout: Duration | None = None,
    schedule_to_close_timeout: Duration | None = None,
    heartbeat_timeout: Duration | None = None,
    retry_policy: RetryPolicy | None = None,
    task_queue: str | None = None,
    priority: int = 0,
) -> ActivityHandle[Any]: ...
def execute_activity(  # type: ignore[misc]  # mypy: an implementation never matches *Ts overloads
    activity: str | Callable[..., Any],
    *args: Any,
    start_to_close_timeout: Duration | None = None,
    schedule_to_close_timeout: Duration | None = None,
    heartbeat_timeout: Duration | None = None,
    retry_policy: RetryPolicy | None = None,
    task_queue: str | None = None,
    priority: int = 0,
) -> ActivityHandle[Any]:
    """Run an activity and await its result: :func:`start_activity` under the name that reads well in
    ``result = await workflow.execute_activity(charge, order, start_to_close_timeout=30)``.

    When retries end, the await raises :class:`aion.ActivityError` with the last cause (type, message,
    details, traceback) and the attempt count.
    """
    return _schedule(
        activity,
        args,
        start_to_close_timeout,
        schedule_to_close_timeout,
        heartbeat_timeout,
        retry_policy,
        task_queue,
        priority,
    )


def _schedule(  # noqa: PLR0917 (start_activity's options by position: this runs for every activity call)
    activity: str | Callable[..., Any],
    args: tuple[Any, ...],
    start_to_close_timeout: Duration | None,
    schedule_to_close_timeout: Duration | None,
    heartbeat_timeout: Duration | None,
    retry_policy: RetryPolicy | None,
    task_queue: str | None,
    priority: int,
) -> ActivityHandle[Any]:
    """What :func:`start_activity` and :func:`execute_activity` do: check the call and its options, issue it."""
    runtime = current_runtime()
    name = activity_type_name(activity)
    # The options recorded, in this order, without the ones not given.
    options: dict[str, Any] = {}
    if start_to_close_timeout is not None:
        options["start_to_close_timeout"] = to_seconds(
            start_to_close_timeout, "start_to_close_timeout", allow_zero=False
        )
    if schedule_to_close_timeout is not None:
        options["schedule_to_close_timeout"] = to_seconds(
            schedule_to_close_timeout, "schedule_to_close_timeout", allow_zero=False
        )
    if heartbeat_timeout is not None:
        options["heartbeat_timeout"] = to_seconds(heartbeat_timeout, "heartbeat_timeout", allow_zero=False)
    if start_to_close_timeout is None and schedule_to_close_timeout is None:
        raise InvalidArgumentError(
            f"activity {name!r} needs start_to_close_timeout or schedule_to_close_timeout (or both): "
            "an activity without a timeout could hang its workflow forever"
        )
    if retry_policy is not None:
        if not isinstance(retry_policy, RetryPolicy):
            raise InvalidArgumentError(f"retry_policy must be an aion.RetryPolicy, got {retry_policy!r}")
        options["retry_policy"] = retry_policy.to_dict()
    if task_queue is not None:
        if not isinstance(task_queue, str) or not task_queue:
            raise InvalidArgumentError(f"task_queue must be a non-empty string, got {task_queue!r}")
        options["task_queue"] = task_queue
    if type(priority) is not int and (isinstance(priority, bool) or not isinstance(priority, int)):
        raise InvalidArgumentError(f"priority must be an int, got {priority!r}")
    if priority:
        options["priority"] = priority
    arguments = list(args)
    if arguments:
        check_payload(arguments, path=f"{name}.args")
    activity_id, future = runtime.schedule_activity(name, arguments, options)
    return ActivityHandle(activity_id, future)
