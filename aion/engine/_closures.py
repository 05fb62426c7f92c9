"""How the core wakes whoever waits for a run to close (``handle.result()``), handing over the terminal event."""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Final

from aion.events import Event, WorkflowCompleted

#: How many recently closed runs keep their terminal event in memory, for ``result()`` calls made after the
#: close (the usual "start many, then collect the results"); only completions with a small result are kept.
RECENT_CLOSURES: Final = 1024
#: The longest ``str`` or ``bytes`` result such a completion may have.
RECENT_RESULT_MAX: Final = 1024


class ClosureWaiter:
    """One ``result()`` call waiting for one run to close (see :meth:`Closures.watch`)."""

    __slots__ = ("_ready", "_woken", "key", "open", "terminal")

    def __init__(self, key: tuple[str, str], open_: bool) -> None:
        self.key = key
        #: The engine drives the run and it had not closed when the waiter registered: the terminal event will
        #: be handed over, there is no need to look for it in the store first.
        self.open = open_
        #: The run's terminal event, once it is durable (at once if the run closed a moment ago); ``None`` after a
        #: wake-up that only says "look again".
        self.terminal: Event | None = None
        self._woken = False
        self._ready = threading.Lock()
        self._ready.acquire()

    def wait(self, timeout: float | None) -> bool:
        """Block until woken (True) or until ``timeout`` seconds pass (False)."""
        if self._ready.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            self._ready.release()
            return True
        return False

    def wake(self, terminal: Event | None) -> None:
        if not self._woken:  # callers hold the Closures lock
            self._woken = True
            self.terminal = terminal
            self._ready.release()


class Closures:
    """Wakes whoever waits for a run to close (``handle.result()``) and hands it the run's terminal event, so
    that it need not read the store.

    The core declares each run it drives :meth:`opened` once its ``WorkflowStarted`` is durable, and calls
    :meth:`closed` (on the recorder's thread, as soon as the terminal event is durable: it must stay quick) or,
    if it rebuilt the run from the store, :meth:`forget`. A waiter registers with :meth:`watch`; unless the run
    was open at that moment, it reads the store before it waits: a run that closed before the registration is
    found there, one that closes after it is handed over. The last `RECENT_CLOSURES` completions with a small
    result are remembered: a waiter for one of them is given it at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: workflow id -> its open run's id (a dict of ids, not a set of pairs: 100,000 waiting runs are open).
        self._open: dict[str, str] = {}
        self._waiters: dict[tuple[str, str], list[ClosureWaiter]] = {}
        self._recent: collections.OrderedDict[tuple[str, str], Event] = collections.OrderedDict()
        #: Called with ``(workflow_id, terminal)`` on every close (the schedule service's way to learn of them).
        self._listeners: list[Callable[[str, Event], None]] = []
        #: Called when a waiter registers for an open run: the engine's recorder then ends a hold at once (its
        #: closing append may be held, queued before anyone waited; see ``aion.recorder``).
        self.on_wait: Callable[[], None] = _nothing

    def listen(self, listener: Callable[[str, Event], None]) -> None:
        """Call ``listener(workflow_id, terminal)`` (on the recorder's thread: it must be quick and not raise)
        whenever a run the core drives closes."""
        with self._lock:
            self._listeners = [*self._listeners, listener]

    def unlisten(self, listener: Callable[[str, Event], None]) -> None:
        """Stop calling ``listener``."""
        with self._lock:
            self._listeners = [known for known in self._listeners if known is not listener]

    @contextlib.contextmanager
    def watch(self, workflow_id: str, run_id: str) -> Iterator[ClosureWaiter]:
        """Register a waiter for run ``run_id`` of ``workflow_id`` for the duration of the ``with`` block."""
        key = (workflow_id, run_id)
        with self._lock:
            waiter = ClosureWaiter(key, self._open.get(workflow_id) == run_id)
            waiter.terminal = self._recent.get(key)
            self._waiters.setdefault(key, []).append(waiter)
        if waiter.open:
            self.on_wait()
        try:
            yield waiter
        finally:
            with self._lock:
                waiters = self._waiters.get(key)
                if waiters is not None:
                    waiters.remove(waiter)
                    if not waiters:
                        del self._waiters[key]

    def awaited(self, workflow_id: str, run_id: str) -> bool:
        """Whether someone waits for run ``run_id`` of ``workflow_id`` to close now."""
        with self._lock:
            return (workflow_id, run_id) in self._waiters

    def wake_all(self) -> None:
        """Forget which runs are open and wake every waiter without a result (the engine stopped: they look
        again, and find it stopped)."""
        with self._lock:
            self._open.clear()
            for waiters in self._waiters.values():
                for waiter in waiters:
                    waiter.wake(None)

    def reset(self) -> None:
        """A new engine core starts: no run is open until it says so (waiters keep waiting for their run)."""
        with self._lock:
            self._open.clear()

    def opened(self, workflow_id: str, run_id: str) -> None:
        """Run ``run_id`` is open and driven by the core, which will call :meth:`closed` or :meth:`forget`."""
        with self._lock:
            self._open[workflow_id] = run_id

    def closed(self, workflow_id: str, run_id: str, terminal: Event) -> None:
        """``terminal``, the last event of run ``run_id``, is durable: wake that run's waiters with it."""
        key = (workflow_id, run_id)
        with self._lock:
            self._close(workflow_id, run_id)
            for waiter in self._waiters.get(key, ()):
                waiter.wake(terminal)
            if _small_completion(terminal):
                recent = self._recent
                recent[key] = terminal
                if len(recent) > RECENT_CLOSURES:
                    recent.popitem(last=False)
            listeners = self._listeners  # replaced, never changed in place
        for listener in listeners:
            listener(workflow_id, terminal)

    def forget(self, workflow_id: str, run_id: str) -> None:
        """The run is no longer driven by the core as it was: its waiters read the store again."""
        key = (workflow_id, run_id)
        with self._lock:
            self._close(workflow_id, run_id)
            for waiter in self._waiters.get(key, ()):
                waiter.wake(None)

    def _close(self, workflow_id: str, run_id: str) -> None:
        """Run ``run_id`` is no longer open (its successor, opened already, stays so)."""
        if self._open.get(workflow_id) == run_id:
            del self._open[workflow_id]


def _nothing() -> None:
    """No one to tell."""


def _small_completion(terminal: Event) -> bool:
    """Whether ``terminal`` is a completion whose result is an immutable scalar or a short string."""
    if type(terminal) is not WorkflowCompleted:
        return False
    result = terminal.result
    if result is None or type(result) in (bool, int, float):
        return True
    return type(result) in (str, bytes) and len(result) <= RECENT_RESULT_MAX
