"""What workflow code knows and does about its own run: its identity (:func:`info`), time (:func:`now`), replayable
randomness (:func:`random`, :func:`uuid4`), cancellation (:func:`is_cancel_requested`), search attributes, patches
(:func:`patched`, :func:`deprecate_patch`; docs/versioning.md), :func:`continue_as_new`, and :func:`gather`.
Part of the :mod:`aion.workflow` API (import from there).
"""

from __future__ import annotations

import asyncio
import random as _random
import uuid as _uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, NoReturn

from aion._codec import check_payload
from aion._definitions import workflow_type_name
from aion.errors import InvalidArgumentError
from aion.workflow._patches import check_patch_id
from aion.workflow._runtime import WorkflowInfo, current_runtime


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
