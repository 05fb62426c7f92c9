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
import enum
import random as _random
import uuid as _uuid
from collections.abc import Awaitable, Callable, Generator
from datetime import datetime
from typing import Any, Generic, NoReturn, TypeVar, TypeVarTuple, overload

from aion._codec import check_payload
from aion._definitions import activity_type_name, define_workflow, workflow_type_name
from aion._durations import Duration, optional_seconds, to_seconds
from aion._ids import validate_workflow_id
from aion.errors import InvalidArgumentError
from aion.retry import RetryPolicy
from aion.workflow._patches import check_patch_id
from aion.workflow._runtime import WorkflowInfo, current_runtime
from aion.workflow._updates import UpdateHandler

__all__ = [
    "ActivityHandle",
    "ChildHandle",
    "ParentClosePolicy",
    "TimerHandle",
    "WorkflowInfo",
    "continue_as_new",
    "defn",
    "deprecate_patch",
    "execute_activity",
    "execute_child",
    "gather",
    "info",
    "is_cancel_requested",
    "now",
    "patched",
    "random",
    "set_query_handler",
    "set_update_handler",
    "signal_external",
    "sleep",
    "start_activity",
    "start_child",
    "start_timer",
    "timeout",
    "upsert_search_attributes",
    "uuid4",
    "wait_condition",
    "wait_signal",
    "with_timeout",
]

_F = TypeVar("_F", bound=Callable[..., Any])
#: The result type of an activity or child, and the types of its positional arguments (mypy checks them).
_R = TypeVar("_R")
_Ts = TypeVarTuple("_Ts")


@overload
def defn(function: _F, /) -> _F: ...
@overload
def defn(*, name: str | None = None, version: int | None = None) -> Callable[[_F], _F]: ...
def defn(
    function: _F | None = None, /, *, name: str | None = None, version: int | None = None
) -> _F | Callable[[_F], _F]:
    """Declare an ``async def`` function a workflow type; the type name defaults to the function's name.

    ``version`` pins a version of the type (see docs/versioning.md): several versions of one name can be
    registered, a run keeps the version it started on, new runs take the highest.

    >>> @defn(name="checkout")
    ... async def checkout_v1(order: dict) -> dict:
    ...     return order
    """

    def decorate(fn: _F) -> _F:
        define_workflow(fn, name, version)
        return fn

    return decorate(function) if function is not None else decorate


class ActivityHandle(Generic[_R]):
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

    def __await__(self) -> Generator[Any, None, _R]:
        return self._future.__await__()


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
    if task_queue is not None:
        if not isinstance(task_queue, str) or not task_queue:
            raise InvalidArgumentError(f"task_queue must be a non-empty string, got {task_queue!r}")
        options["task_queue"] = task_queue
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise InvalidArgumentError(f"priority must be an int, got {priority!r}")
    if priority:
        options["priority"] = priority
    arguments = list(args)
    check_payload(arguments, path=f"{name}.args")
    recorded = {key: value for key, value in options.items() if value is not None}
    activity_id, future = runtime.schedule_activity(name, arguments, recorded)
    return ActivityHandle(activity_id, future)


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
    return start_activity(
        activity,
        *args,
        start_to_close_timeout=start_to_close_timeout,
        schedule_to_close_timeout=schedule_to_close_timeout,
        heartbeat_timeout=heartbeat_timeout,
        retry_policy=retry_policy,
        task_queue=task_queue,
        priority=priority,
    )


class TimerHandle:
    """A durable timer started by :func:`start_timer`: await it to wait for it, or :meth:`cancel` it."""

    def __init__(self, timer_id: int, future: asyncio.Future[None]) -> None:
        self.timer_id = timer_id
        self._future = future

    def cancel(self) -> None:
        """Cancel the timer (records ``TimerCancelled``); awaiting it then raises ``aion.CancelledError`` (as a
        cancelled activity or child does)."""
        current_runtime().cancel_timer(self.timer_id)

    def done(self) -> bool:
        """True once the timer fired or was cancelled."""
        return self._future.done()

    def __await__(self) -> Generator[Any, None, None]:
        return self._future.__await__()


def start_timer(duration: Duration) -> TimerHandle:
    """Start a durable timer of ``duration`` (more than zero) and return its handle."""
    seconds = to_seconds(duration, "timer duration", allow_zero=False)
    timer_id, future = current_runtime().start_timer(seconds)
    return TimerHandle(timer_id, future)


async def sleep(duration: Duration) -> None:
    """Sleep durably for ``duration`` (a ``timedelta`` or seconds): the timer survives engine restarts and fires
    once, at the time recorded when it started."""
    seconds = to_seconds(duration, "sleep duration")
    if seconds == 0:
        await asyncio.sleep(0)
        return
    await start_timer(seconds)


async def _first_or_timeout(waited: asyncio.Future[Any], seconds: float | None, what: str) -> Any:
    """Wait for ``waited``; with ``seconds``, race it against a durable timer and raise ``TimeoutError``."""
    if waited.done() or seconds is None:
        return await waited
    runtime = current_runtime()
    timer_id, timer = runtime.start_timer(seconds, waiting_for=what)
    await asyncio.wait([waited, timer], return_when=asyncio.FIRST_COMPLETED)
    if waited.done():
        runtime.cancel_timer(timer_id)
        return waited.result()
    waited.cancel()
    raise TimeoutError(f"{what} did not happen within {seconds:g} s")


async def wait_signal(name: str, *, timeout: Duration | None = None) -> Any:
    """Wait for the next signal called ``name`` and return its payload.

    Signals that arrive while nobody waits are buffered in order. With ``timeout``, raises ``TimeoutError`` if
    no signal comes in time.
    """
    seconds = optional_seconds(timeout, "timeout")
    return await _first_or_timeout(current_runtime().signal_future(name), seconds, f"signal {name!r}")


async def wait_condition(predicate: Callable[[], bool], *, timeout: Duration | None = None) -> None:
    """Wait until ``predicate()`` is true. It is re-evaluated whenever the workflow's state may have changed
    (after every delivered event), so it should only read workflow state. ``TimeoutError`` on timeout."""
    seconds = optional_seconds(timeout, "timeout")
    await _first_or_timeout(current_runtime().condition_future(predicate), seconds, "the condition")


class timeout:  # noqa: N801 - used like asyncio.timeout
    """``async with workflow.timeout(seconds):`` - the block is cancelled if a durable timer fires first.

    The first of the block and the deadline wins; the loser is cancelled (an activity the block was awaiting is
    sent a cancellation) and a block that lost raises ``TimeoutError``. The winner is decided by the order the
    engine recorded the two, so replay reaches the same winner even when they were 1 ms apart.
    """

    def __init__(self, duration: Duration) -> None:
        self._seconds = to_seconds(duration, "timeout", allow_zero=False)
        self._timer_id: int | None = None
        self._task: asyncio.Task[Any] | None = None
        self._fired = False

    async def __aenter__(self) -> timeout:
        runtime = current_runtime()
        self._task = asyncio.current_task()
        self._timer_id, timer = runtime.start_timer(self._seconds)
        timer.add_done_callback(self._on_timer)
        return self

    def _on_timer(self, timer: asyncio.Future[None]) -> None:
        if timer.cancelled() or timer.exception() is not None or self._task is None:
            return
        self._fired = True
        self._task.cancel()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if self._fired:
            if self._task is not None:
                self._task.uncancel()
            if exc_type is None or issubclass(exc_type, asyncio.CancelledError):
                raise TimeoutError(f"the block did not finish within {self._seconds:g} s") from exc
            return
        if self._timer_id is not None:
            current_runtime().cancel_timer(self._timer_id)


async def with_timeout(duration: Duration, awaitable: Awaitable[Any]) -> Any:
    """Await ``awaitable`` with a durable deadline: its result, or ``TimeoutError`` (it is then cancelled)."""
    async with timeout(duration):
        return await awaitable


class ParentClosePolicy(enum.StrEnum):
    """What happens to a running child when its parent closes (completes, fails, is cancelled, ...)."""

    TERMINATE = "terminate"
    """The child is terminated (the default)."""
    REQUEST_CANCEL = "request_cancel"
    """The child is asked to cancel and may clean up."""
    ABANDON = "abandon"
    """The child runs on, on its own."""


class ChildHandle(Generic[_R]):
    """A child workflow started by :func:`start_child`: await it for its result, signal it, or cancel it."""

    def __init__(self, child_id: int, workflow_id: str, future: asyncio.Future[Any]) -> None:
        self.child_id = child_id
        self.workflow_id = workflow_id
        self._future = future

    def signal(self, name: str, payload: Any = None) -> Awaitable[None]:
        """Send the child signal ``name`` (exactly once); await it to know it was delivered."""
        return signal_external(self.workflow_id, name, payload)

    def cancel(self) -> None:
        """Ask the child to cancel; awaiting it then raises ``aion.CancelledError`` if it ends cancelled."""
        current_runtime().cancel_child(self.child_id)

    def done(self) -> bool:
        """True once the child's outcome is known to this workflow."""
        return self._future.done()

    def __await__(self) -> Generator[Any, None, _R]:
        return self._future.__await__()


@overload
def start_child(
    workflow: Callable[[*_Ts], Awaitable[_R]],
    *args: *_Ts,
    workflow_id: str | None = None,
    parent_close_policy: ParentClosePolicy | str = ParentClosePolicy.TERMINATE,
    execution_timeout: Duration | None = None,
    search_attributes: dict[str, Any] | None = None,
    memo: Any = None,
) -> ChildHandle[_R]: ...
@overload
def start_child(
    workflow: str,
    *args: Any,
    workflow_id: str | None = None,
    parent_close_policy: ParentClosePolicy | str = ParentClosePolicy.TERMINATE,
    execution_timeout: Duration | None = None,
    search_attributes: dict[str, Any] | None = None,
    memo: Any = None,
) -> ChildHandle[Any]: ...
def start_child(  # type: ignore[misc]  # mypy: an implementation never matches *Ts overloads
    workflow: str | Callable[..., Any],
    *args: Any,
    workflow_id: str | None = None,
    parent_close_policy: ParentClosePolicy | str = ParentClosePolicy.TERMINATE,
    execution_timeout: Duration | None = None,
    search_attributes: dict[str, Any] | None = None,
    memo: Any = None,
) -> ChildHandle[Any]:
    """Start a child workflow and return its :class:`ChildHandle`.

    The child is recorded in this workflow's history (``ChildWorkflowStarted``) before it starts, and starts
    exactly once across crashes. Its id defaults to one derived from this run and the child's ordinal. Awaiting
    the handle returns its result or raises ``aion.ChildWorkflowError`` with the cause.

    ``search_attributes`` and ``memo`` are the child's, as for ``Engine.start_workflow``: the engine checks the
    attributes against its declared ones, and a refused one fails the child (``ChildWorkflowError`` of type
    ``InvalidArgumentError`` naming the attribute) without starting it.
    """
    runtime = current_runtime()
    name = workflow_type_name(workflow)
    try:
        policy = ParentClosePolicy(parent_close_policy)
    except ValueError:
        known = ", ".join(p.value for p in ParentClosePolicy)
        raise InvalidArgumentError(f"unknown parent_close_policy {parent_close_policy!r} (one of: {known})") from None
    if workflow_id is not None:
        workflow_id = validate_workflow_id(workflow_id)
    arguments = list(args)
    check_payload(arguments, path=f"{name} input")
    options: dict[str, Any] = {}
    seconds = optional_seconds(execution_timeout, "execution_timeout")
    if seconds is not None:
        options["execution_timeout"] = seconds
    if search_attributes:
        if not isinstance(search_attributes, dict) or not all(isinstance(key, str) for key in search_attributes):
            raise InvalidArgumentError(f"search attributes must be a dict of name to value, not {search_attributes!r}")
        check_payload(search_attributes, path=f"{name} search attributes")
        options["search_attributes"] = dict(search_attributes)
    if memo is not None:
        check_payload(memo, path=f"{name} memo")
        options["memo"] = memo
    child_id, child_workflow_id, future = runtime.start_child(name, workflow_id, arguments, policy.value, options)
    return ChildHandle(child_id, child_workflow_id, future)


@overload
async def execute_child(
    workflow: Callable[[*_Ts], Awaitable[_R]],
    *args: *_Ts,
    workflow_id: str | None = None,
    parent_close_policy: ParentClosePolicy | str = ParentClosePolicy.TERMINATE,
    execution_timeout: Duration | None = None,
    search_attributes: dict[str, Any] | None = None,
    memo: Any = None,
) -> _R: ...
@overload
async def execute_child(
    workflow: str,
    *args: Any,
    workflow_id: str | None = None,
    parent_close_policy: ParentClosePolicy | str = ParentClosePolicy.TERMINATE,
    execution_timeout: Duration | None = None,
    search_attributes: dict[str, Any] | None = None,
    memo: Any = None,
) -> Any: ...
async def execute_child(  # type: ignore[misc]  # mypy: an implementation never matches *Ts overloads
    workflow: str | Callable[..., Any],
    *args: Any,
    workflow_id: str | None = None,
    parent_close_policy: ParentClosePolicy | str = ParentClosePolicy.TERMINATE,
    execution_timeout: Duration | None = None,
    search_attributes: dict[str, Any] | None = None,
    memo: Any = None,
) -> Any:
    """Start a child workflow and wait for its result (see :func:`start_child`)."""
    return await start_child(
        workflow,
        *args,
        workflow_id=workflow_id,
        parent_close_policy=parent_close_policy,
        execution_timeout=execution_timeout,
        search_attributes=search_attributes,
        memo=memo,
    )


def signal_external(workflow_id: str, name: str, payload: Any = None) -> Awaitable[None]:
    """Send signal ``name`` to another workflow, exactly once across crashes.

    The intent is recorded first (``SignalExternalSent``) and the delivery deduplicated, so a crash never sends
    it twice nor loses it. Await the result to know it was delivered; a target that is not running raises
    ``WorkflowNotRunningError`` (``WorkflowNotFoundError`` for an unknown id).
    """
    validate_workflow_id(workflow_id)
    check_payload(payload, path=f"signal {name!r} payload")
    return current_runtime().signal_external(workflow_id, name, payload)


def continue_as_new(
    *args: Any, workflow: str | Callable[..., Any] | None = None, version: int | None = None
) -> NoReturn:
    """End this run and start a new run of the same workflow id with ``args`` (and a fresh, short history).

    Raises ``ContinueAsNewError`` while activities or children are pending. The new run is of the same type
    unless ``workflow`` names another one, and on that type's highest registered version unless ``version``
    names one (see docs/versioning.md).
    """
    arguments = list(args)
    check_payload(arguments, path="continue_as_new input")
    name = None if workflow is None else workflow_type_name(workflow)
    raise current_runtime().continue_as_new(arguments, name, version)


def is_cancel_requested() -> bool:
    """True once cancellation of this workflow was requested (for clean-up code that must know)."""
    return current_runtime().cancel_requested


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


def upsert_search_attributes(attributes: dict[str, Any]) -> None:
    """Set search attributes of this run (a ``None`` value removes one); recorded as ``SearchAttributesUpserted``
    and done once across replays. The engine checks the values against its declared attributes: an undeclared
    name or a value of the wrong type fails the run with ``InvalidArgumentError`` (see docs/visibility.md)."""
    if not isinstance(attributes, dict) or not all(isinstance(name, str) for name in attributes):
        raise InvalidArgumentError(f"search attributes must be a dict of name to value, not {attributes!r}")
    check_payload(attributes, path="search attributes")
    current_runtime().upsert_search_attributes(attributes)


def patched(patch_id: str) -> bool:
    """Whether this run takes the code a change guards (a *patch*, see docs/versioning.md): a run executing
    live records a marker for ``patch_id`` and gets True; a run replaying a history recorded before the change
    (no marker at this point) gets False and keeps the old code. The same answer for every call in one run."""
    patch_id = check_patch_id(patch_id)
    return current_runtime().patched(patch_id)


def deprecate_patch(patch_id: str) -> None:
    """Mark patch ``patch_id`` done once no run that could take its old branch is left: replace
    ``if workflow.patched(id): new else: old`` by ``workflow.deprecate_patch(id)`` and ``new``."""
    patch_id = check_patch_id(patch_id)
    current_runtime().deprecate_patch(patch_id)


def set_update_handler(
    name: str, handler: Callable[..., Any], validator: Callable[..., Any] | None = None
) -> None:
    """Apply updates called ``name`` with ``handler(*args)`` (sync or ``async``; it may change workflow state
    and await activities, timers, children): the caller of ``WorkflowHandle.execute_update`` gets its result.

    ``validator(*args)`` runs first, like a query (it must not change state): if it raises, the update is
    rejected (``aion.UpdateRejectedError``) and nothing is recorded. An accepted update is recorded
    (``UpdateAccepted``) before the handler runs, and its result (``UpdateCompleted``) once it returns.
    """
    if not callable(handler) or (validator is not None and not callable(validator)):
        raise TypeError(f"update handler and validator for {name!r} must be callable, got {handler!r}, {validator!r}")
    current_runtime().update_handlers[name] = UpdateHandler(handler, validator)
