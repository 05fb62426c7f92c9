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

from collections.abc import Callable
from typing import Any, TypeVar, overload

from aion._definitions import define_workflow
from aion.workflow._activities import ActivityHandle, execute_activity, start_activity
from aion.workflow._children import ChildHandle, ParentClosePolicy, execute_child, start_child
from aion.workflow._messages import set_query_handler, set_update_handler, signal_external, wait_condition, wait_signal
from aion.workflow._run import (
    continue_as_new,
    deprecate_patch,
    gather,
    info,
    is_cancel_requested,
    now,
    patched,
    random,
    upsert_search_attributes,
    uuid4,
)
from aion.workflow._runtime import WorkflowInfo
from aion.workflow._timers import TimerHandle, sleep, start_timer, timeout, with_timeout

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


# The API is defined by job in the modules above and is this module's, as it always was: each name gives
# ``aion.workflow`` as its module (what ``help``, ``repr`` and a stored enum name, ``aion.workflow:ParentClosePolicy``,
# show).
_MOVED: tuple[Any, ...] = (
    ActivityHandle,
    ChildHandle,
    ParentClosePolicy,
    TimerHandle,
    continue_as_new,
    deprecate_patch,
    execute_activity,
    execute_child,
    gather,
    info,
    is_cancel_requested,
    now,
    patched,
    random,
    set_query_handler,
    set_update_handler,
    signal_external,
    sleep,
    start_activity,
    start_child,
    start_timer,
    timeout,
    upsert_search_attributes,
    uuid4,
    wait_condition,
    wait_signal,
    with_timeout,
)
for _public in _MOVED:
    _public.__module__ = __name__
