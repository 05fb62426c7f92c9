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

    def __init__(self, create_future: Callable[[], asyncio.Future[Any]]) -> None:
        self._create_future = create_future
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

    @staticmethod
    def settle(table: dict[int, Any], ordinal: int, result: Any) -> None:
        """:meth:`resolve` with ``result``: the usual outcome (an activity's result), with fewer arguments."""
        future = table.pop(ordinal, None)
        if future is not None and not future.done():
            future.set_result(result)

    @staticmethod
    def resolve(table: dict[int, Any], ordinal: int, *, result: Any = None, error: BaseException | None = None) -> None:
        """Settle the future of ``ordinal`` in ``table`` (one of the tables above) with ``result`` or ``error``,
        and drop it; an outcome for an ordinal no longer pending is ignored."""
        if error is None:
            PendingWork.settle(table, ordinal, result)
            return
        future = table.pop(ordinal, None)
        if future is not None and not future.done():
            future.set_exception(error)
