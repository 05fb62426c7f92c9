"""What a run receives and sends besides its steps: signals (:func:`wait_signal`, and :func:`signal_external`
to another workflow), waits on the state they change (:func:`wait_condition`), and the handlers of queries and
updates. Part of the :mod:`aion.workflow` API (import from there).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aion._codec import check_payload
from aion._durations import Duration, optional_seconds
from aion._ids import validate_workflow_id
from aion.workflow._runtime import current_runtime
from aion.workflow._timers import first_or_timeout
from aion.workflow._updates import UpdateHandler


async def wait_signal(name: str, *, timeout: Duration | None = None) -> Any:
    """Wait for the next signal called ``name`` and return its payload.

    Signals that arrive while nobody waits are buffered in order. With ``timeout``, raises ``TimeoutError`` if
    no signal comes in time.
    """
    seconds = optional_seconds(timeout, "timeout")
    return await first_or_timeout(current_runtime().signal_future(name), seconds, f"signal {name!r}")


async def wait_condition(predicate: Callable[[], bool], *, timeout: Duration | None = None) -> None:
    """Wait until ``predicate()`` is true. It is re-evaluated whenever the workflow's state may have changed
    (after every delivered event), so it should only read workflow state. ``TimeoutError`` on timeout."""
    seconds = optional_seconds(timeout, "timeout")
    await first_or_timeout(current_runtime().condition_future(predicate), seconds, "the condition")


def signal_external(workflow_id: str, name: str, payload: Any = None) -> Awaitable[None]:
    """Send signal ``name`` to another workflow, exactly once across crashes.

    The intent is recorded first (``SignalExternalSent``) and the delivery deduplicated, so a crash never sends
    it twice nor loses it. Await the result to know it was delivered; a target that is not running raises
    ``WorkflowNotRunningError`` (``WorkflowNotFoundError`` for an unknown id).
    """
    validate_workflow_id(workflow_id)
    check_payload(payload, path=f"signal {name!r} payload")
    return current_runtime().signal_external(workflow_id, name, payload)


def set_query_handler(name: str, handler: Callable[..., Any]) -> None:
    """Answer queries called ``name`` with ``handler(*args)``; it must not change workflow state."""
    if not callable(handler):
        raise TypeError(f"query handler for {name!r} must be callable, got {handler!r}")
    current_runtime().query_handlers[name] = handler


def set_update_handler(name: str, handler: Callable[..., Any], validator: Callable[..., Any] | None = None) -> None:
    """Apply updates called ``name`` with ``handler(*args)`` (sync or ``async``; it may change workflow state
    and await activities, timers, children): the caller of ``WorkflowHandle.execute_update`` gets its result.

    ``validator(*args)`` runs first, like a query (it must not change state): if it raises, the update is
    rejected (``aion.UpdateRejectedError``) and nothing is recorded. An accepted update is recorded
    (``UpdateAccepted``) before the handler runs, and its result (``UpdateCompleted``) once it returns.
    """
    if not callable(handler) or (validator is not None and not callable(validator)):
        raise TypeError(f"update handler and validator for {name!r} must be callable, got {handler!r}, {validator!r}")
    current_runtime().update_handlers[name] = UpdateHandler(handler, validator)
