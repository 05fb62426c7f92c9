"""Updates inside the workflow process: the handlers workflow code registers, the validation the engine asks
for before it records anything, and the run of an accepted update's handler.

Validation travels as a query under :data:`VALIDATE_UPDATE` (it changes nothing and records nothing); an
accepted update arrives as the recorded ``UpdateAccepted`` event and its handler runs as a task of the
workflow's deterministic loop, which ends by issuing ``CompleteUpdate`` (recorded as ``UpdateCompleted``). On
replay the handler runs again at the same point; its ``CompleteUpdate`` then matches the recorded anchor.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from aion._codec import check_payload
from aion.errors import AionError, QueryError
from aion.workflow._commands import CompleteUpdate
from aion.workflow._context import Diverged
from aion.workflow._failures import failure_from_exception

#: The query name under which the engine asks the workflow process to validate an update (``[name, args]``).
VALIDATE_UPDATE: Final = "__aion_validate_update__"


@dataclass(frozen=True)
class UpdateHandler:
    """A registered update: its handler (sync or ``async``) and its optional validator."""

    handler: Callable[..., Any]
    validator: Callable[..., Any] | None = None


def validate(handlers: dict[str, UpdateHandler], workflow_id: str, request: Sequence[Any]) -> None:
    """Run the validator of update ``request[0]`` with ``request[1]``; raise ``QueryError`` naming why the
    update is refused (no such handler, or the validator raised)."""
    name, args = request[0], list(request[1])
    registered = handlers.get(name)
    if registered is None:
        known = ", ".join(sorted(handlers)) or "none"
        raise QueryError(f"workflow {workflow_id!r} has no update handler {name!r} (known: {known})")
    if registered.validator is None:
        return
    try:
        registered.validator(*args)
    except Exception as error:
        raise QueryError(f"update {name!r} rejected by its validator: {type(error).__name__}: {error}") from error


async def run_update(
    handlers: dict[str, UpdateHandler],
    issue: Callable[[CompleteUpdate], None],
    update_id: str,
    name: str,
    args: list[Any],
) -> None:
    """Run the handler of an accepted update and issue its ``CompleteUpdate`` (with the failure if it raised)."""
    try:
        registered = handlers.get(name)
        if registered is None:
            raise AionError(f"no update handler {name!r} is registered any more")
        result = registered.handler(*args)
        if inspect.isawaitable(result):
            result = await result
        check_payload(result, path=f"update {name!r} result")
    except Diverged:
        raise
    except (Exception, asyncio.CancelledError) as error:  # a cancellation too: the caller gets it as a failure
        issue(CompleteUpdate(update_id, None, failure_from_exception(error)))
        return
    issue(CompleteUpdate(update_id, result, None))
