"""The activity authoring API: declaring activities, and what an activity may call while it runs.

Activities are where side effects happen. They run in supervised worker processes, are recorded before they
are dispatched and after they finish, and run at least once: make them idempotent::

    from aion import activity

    @activity.defn
    def charge(order: dict) -> dict:
        info = activity.info()
        return payments.charge(order, idempotency_key=f"{info.workflow_id}/{info.activity_id}")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from aion._definitions import define_activity
from aion.activity._context import ActivityInfo, current_context

__all__ = ["ActivityInfo", "defn", "heartbeat", "info"]

_F = TypeVar("_F", bound=Callable[..., Any])


@overload
def defn(function: _F, /) -> _F: ...
@overload
def defn(*, name: str | None = None, task_queue: str = "default") -> Callable[[_F], _F]: ...
def defn(
    function: _F | None = None, /, *, name: str | None = None, task_queue: str = "default"
) -> _F | Callable[[_F], _F]:
    """Declare a function (sync or ``async def``) an activity type; the name defaults to the function's name.
    ``task_queue`` is the queue its calls go to unless a call names another (the engine must declare it).

    >>> @defn(name="charge-card")
    ... def charge(order: dict) -> dict:
    ...     return order
    """

    def decorate(fn: _F) -> _F:
        define_activity(fn, name, task_queue)
        return fn

    return decorate(function) if function is not None else decorate


def info() -> ActivityInfo:
    """The running activity's workflow id, run id, activity id, type and attempt."""
    return current_context().info


def heartbeat(details: Any = None) -> None:
    """Report progress; ``details`` are kept and handed to the next attempt if this one fails."""
    current_context().heartbeat(details)
