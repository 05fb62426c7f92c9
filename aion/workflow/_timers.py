"""Durable time in workflow code: :func:`start_timer` and its :class:`TimerHandle`, :func:`sleep`, the
:class:`timeout` block and :func:`with_timeout`, and :func:`first_or_timeout` (a wait raced against a durable
timer, used by the timed waits). Part of the :mod:`aion.workflow` API (import from there).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from aion._durations import Duration, to_seconds
from aion.workflow._handle import PendingHandle
from aion.workflow._runtime import current_runtime


class TimerHandle(PendingHandle[None]):
    """A durable timer started by :func:`start_timer`: await it to wait for it, or :meth:`cancel` it."""

    def __init__(self, timer_id: int, future: asyncio.Future[None]) -> None:
        self._future = future
        self.timer_id = timer_id

    def cancel(self) -> None:
        """Cancel the timer (records ``TimerCancelled``); awaiting it then raises ``aion.CancelledError`` (as a
        cancelled activity or child does)."""
        current_runtime().cancel_timer(self.timer_id)


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


async def first_or_timeout(waited: asyncio.Future[Any], seconds: float | None, what: str) -> Any:
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
