"""What a run's code waits on: the futures of its pending work by ordinal (activities, timers, children, signals
sent to other workflows), the signals that arrived while nobody waited (buffered in order), the waiters of each
signal name, and the ``wait_condition`` predicates.

This module owns :class:`PendingWork`: how a wait is registered, resolved once its outcome arrives, described
(``waits``) and failed all at once (cancellation). It never issues a command and never decides when an arrival
is applied: that is :class:`~aion.workflow._runtime.WorkflowRuntime`'s, which holds one ``PendingWork`` per run.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any


class PendingWork:
    """The waits of one run's code, each a future of the run's deterministic loop (``create_future``)."""

    def __init__(
        self,
        create_future: Callable[[], asyncio.Future[Any]],
        cancelled: Callable[[Callable[[], None]], None],
    ) -> None:
        self._create_future = create_future
        #: Told the ``on_cancel`` of a pending future that asyncio cancelled (the task awaiting it was).
        self._cancelled = cancelled
        #: The ``on_cancel`` of each future of :meth:`pending` whose outcome has not arrived.
        self._on_cancel: dict[asyncio.Future[Any], Callable[[], None]] = {}
        #: The done callback of every such future (one bound method, so that removing it finds it by identity).
        self._watch = self._watch_cancel
        #: Pending work by ordinal; an entry stays until its outcome event arrives.
        self.activities: dict[int, asyncio.Future[Any]] = {}
        self.timers: dict[int, asyncio.Future[None]] = {}
        self.children: dict[int, asyncio.Future[Any]] = {}
        self.external_signals: dict[int, asyncio.Future[None]] = {}
        self.external_targets: dict[int, str] = {}
        self._signals: dict[str, collections.deque[Any]] = collections.defaultdict(collections.deque)
        self._signal_waiters: dict[str, collections.deque[asyncio.Future[Any]]] = collections.defaultdict(
            collections.deque
        )
        self._conditions: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def pending(self, table: dict[int, Any], ordinal: int, on_cancel: Callable[[], None]) -> asyncio.Future[Any]:
        """A future of ``table`` (one of the tables above) under ``ordinal``; asyncio cancelling it (a timeout
        won, the awaiting task was cancelled) tells ``cancelled`` its ``on_cancel``."""
        future = self._create_future()
        table[ordinal] = future
        self._on_cancel[future] = on_cancel
        future.add_done_callback(self._watch)
        return future

    def _watch_cancel(self, future: asyncio.Future[Any]) -> None:
        on_cancel = self._on_cancel.pop(future, None)
        if on_cancel is not None and future.cancelled():
            self._cancelled(on_cancel)

    def signal_future(self, name: str) -> asyncio.Future[Any]:
        """A future for the next signal ``name`` (resolved at once from the buffer if one is waiting)."""
        future = self._create_future()
        buffered = self._signals[name]
        if buffered:
            future.set_result(buffered.popleft())
        else:
            self._signal_waiters[name].append(future)
        return future

    def deliver_signal(self, name: str, payload: Any) -> None:
        """Hand signal ``name`` to its first waiter still waiting, or buffer it for the next one."""
        waiters = self._signal_waiters[name]
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(payload)
                return
        self._signals[name].append(payload)

    def condition_future(self, predicate: Callable[[], bool]) -> asyncio.Future[None]:
        """A future resolved once ``predicate()`` is true (it is re-checked after every delivered event)."""
        future: asyncio.Future[None] = self._create_future()
        if predicate():
            future.set_result(None)
        else:
            self._conditions.append((predicate, future))
        return future

    def check_conditions(self) -> bool:
        """Resolve the waits whose condition now holds; True if any was."""
        if not self._conditions:
            return False
        resolved = False
        still: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        for predicate, future in self._conditions:
            if future.done():
                continue
            if predicate():
                future.set_result(None)
                resolved = True
            else:
                still.append((predicate, future))
        self._conditions = still
        return resolved

    def waits(self) -> list[str]:
        """The signal names a ``wait_signal`` is blocked on and the pending ``wait_condition`` calls (see
        ``WorkflowRuntime.waits``)."""
        found = [
            f"signal {name!r}" for name, waiters in self._signal_waiters.items() if any(not w.done() for w in waiters)
        ]
        conditions = sum(1 for _, future in self._conditions if not future.done())
        if conditions:
            found.append("the condition" if conditions == 1 else f"{conditions} conditions")
        return found

    def unfinished_work(self) -> list[str]:
        """The activities and children whose outcome is not known yet (``"activity 2"``, ``"child 1"``)."""
        pending = [f"activity {i}" for i, f in self.activities.items() if not f.done()]
        pending += [f"child {i}" for i, f in self.children.items() if not f.done()]
        return pending

    def fail_waits(self, fail: Callable[[asyncio.Future[Any]], None]) -> None:
        """``fail`` every signal waiter and condition, and forget them (the run is cancelled)."""
        for waiters in self._signal_waiters.values():
            for waiter in waiters:
                fail(waiter)
            waiters.clear()
        for _, condition in self._conditions:
            fail(condition)
        self._conditions.clear()

    def settle(self, table: dict[int, Any], ordinal: int, result: Any) -> None:
        """:meth:`resolve` with ``result``: the usual outcome (an activity's result), with fewer arguments."""
        future = self._take(table, ordinal)
        if future is not None:
            future.set_result(result)

    def resolve(
        self, table: dict[int, Any], ordinal: int, *, result: Any = None, error: BaseException | None = None
    ) -> None:
        """Settle the future of ``ordinal`` in ``table`` (one of the tables above) with ``result`` or ``error``,
        and drop it; an outcome for an ordinal no longer pending is ignored."""
        future = self._take(table, ordinal)
        if future is None:
            return
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)

    def _take(self, table: dict[int, Any], ordinal: int) -> asyncio.Future[Any] | None:
        """The future of ``ordinal``, out of ``table``, if its outcome is still to be set (else None), with its
        cancellation watch off: its outcome arrived, so it can no longer be cancelled. Left on, that callback would
        be a step of the loop for every outcome, doing nothing (a replay of 3,333 activities was 12% slower with
        it); taking it off moves no other callback in the loop's order."""
        future: asyncio.Future[Any] | None = table.pop(ordinal, None)
        if future is None or future.done():
            return None
        if self._on_cancel.pop(future, None) is not None:
            future.remove_done_callback(self._watch)
        return future
