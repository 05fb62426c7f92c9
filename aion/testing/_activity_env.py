"""``ActivityEnvironment``: runs an activity function in this process, with a real ``activity.info()``.

The activity runs as a worker runs it: sync or ``async def``, inside an activity context whose heartbeats are
captured (:attr:`ActivityEnvironment.heartbeats`) instead of sent to an engine. :meth:`ActivityEnvironment.cancel`
makes the activity's next heartbeat raise ``aion.CancelledError``, as a cancellation does in the engine.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from aion._definitions import activity_definition
from aion.activity import _context
from aion.activity._context import ActivityInfo
from aion.errors import CancelledError, RegistrationError

P = ParamSpec("P")
R = TypeVar("R")


class ActivityEnvironment:
    """Runs activities alone, with their context::

    env = ActivityEnvironment(attempt=2)
    assert env.run(charge, {"id": 1}) == {...}
    assert env.heartbeats == [...]
    """

    def __init__(
        self,
        *,
        workflow_id: str = "test-workflow",
        run_id: str = "00000000-0000-4000-8000-000000000000",
        activity_id: int = 1,
        attempt: int = 1,
        heartbeat_details: Any = None,
        on_heartbeat: Callable[[Any], None] | None = None,
    ) -> None:
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.activity_id = activity_id
        self.attempt = attempt
        #: Details of the previous attempt's last heartbeat, as ``activity.info().heartbeat_details`` gives them.
        self.heartbeat_details = heartbeat_details
        #: Every heartbeat's details, in order.
        self.heartbeats: list[Any] = []
        self._on_heartbeat = on_heartbeat
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Cancel the activity: its next ``activity.heartbeat()`` raises ``aion.CancelledError`` (callable from
        another thread while the activity runs, or before it starts)."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._cancelled.is_set()

    def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn`` (an activity, sync or ``async def``) with ``args`` in an activity context; its result, or
        its exception."""
        try:
            name = activity_definition(fn).name
        except RegistrationError:  # a plain function runs too, under its own name
            name = getattr(fn, "__name__", "activity")
        info = ActivityInfo(
            workflow_id=self.workflow_id,
            run_id=self.run_id,
            activity_id=self.activity_id,
            activity_type=str(name),
            attempt=self.attempt,
            heartbeat_details=self.heartbeat_details,
        )
        token = _context.enter(_context.ActivityContext(info, self._heartbeat))
        try:
            if inspect.iscoroutinefunction(fn):
                result: R = asyncio.run(fn(*args, **kwargs))
                return result
            return fn(*args, **kwargs)
        finally:
            _context.leave(token)

    def _heartbeat(self, details: Any) -> None:
        self.heartbeats.append(details)
        if self._on_heartbeat is not None:
            self._on_heartbeat(details)
        if self._cancelled.is_set():
            raise CancelledError("the activity was cancelled (ActivityEnvironment.cancel)")
