"""Child workflows, the parent's side: :func:`start_child` checks the call and its options and issues it,
:func:`execute_child` awaits its result, :class:`ChildHandle` awaits, signals or cancels one, and
:class:`ParentClosePolicy` says what becomes of a child when its parent closes. Part of the :mod:`aion.workflow`
API (import from there).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, TypeVarTuple, overload

from aion._codec import check_payload
from aion._definitions import workflow_type_name
from aion._durations import Duration, optional_seconds
from aion._ids import validate_workflow_id
from aion.errors import InvalidArgumentError
from aion.workflow._handle import PendingHandle
from aion.workflow._messages import signal_external
from aion.workflow._runtime import current_runtime

#: The result type of an activity or child, and the types of its positional arguments (mypy checks them).
_R = TypeVar("_R")
_Ts = TypeVarTuple("_Ts")


class ParentClosePolicy(enum.StrEnum):
    """What happens to a running child when its parent closes (completes, fails, is cancelled, ...)."""

    TERMINATE = "terminate"
    """The child is terminated (the default)."""
    REQUEST_CANCEL = "request_cancel"
    """The child is asked to cancel and may clean up."""
    ABANDON = "abandon"
    """The child runs on, on its own."""


class ChildHandle(PendingHandle[_R]):
    """A child workflow started by :func:`start_child`: await it for its result, signal it, or cancel it."""

    def __init__(self, child_id: int, workflow_id: str, future: asyncio.Future[Any]) -> None:
        self._future = future
        self.child_id = child_id
        self.workflow_id = workflow_id

    def signal(self, name: str, payload: Any = None) -> Awaitable[None]:
        """Send the child signal ``name`` (exactly once); await it to know it was delivered."""
        return signal_external(self.workflow_id, name, payload)

    def cancel(self) -> None:
        """Ask the child to cancel; awaiting it then raises ``aion.CancelledError`` if it ends cancelled."""
        current_runtime().cancel_child(self.child_id)


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
