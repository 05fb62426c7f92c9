"""A deterministic asyncio event loop for workflow code.

Workflow coroutines run on this loop so that ``asyncio.Future``, ``asyncio.Task`` and ``asyncio.gather`` work
as users expect, while nothing depends on wall-clock time or I/O: the loop only runs ready callbacks, in FIFO
order, until none is left (``run_until_idle``). Everything a workflow waits on is resolved from outside the loop
by the replay runtime, one history event at a time, so a replay makes exactly the same steps as the live run.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
from collections.abc import Callable, Coroutine, Generator, Iterator
from typing import Any, TypeVar

from aion.errors import NonDeterministicCallError

_T = TypeVar("_T")


class DeterministicLoop(asyncio.AbstractEventLoop):
    """An event loop with no clock and no I/O: ``call_soon`` callbacks run in order when asked to."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._ready: collections.deque[ReadyCallback] = collections.deque()
        self._clock = clock
        self._running = False
        self._closed = False
        #: Exceptions reported through ``call_exception_handler`` (never-retrieved task errors and the like).
        self.unhandled: list[dict[str, Any]] = []

    # -- what asyncio.Future and asyncio.Task need ------------------------------------------------------------

    def call_soon(  # type: ignore[override]
        self, callback: Callable[..., object], *args: Any, context: contextvars.Context | None = None
    ) -> ReadyCallback:
        """Queue ``callback(*args)`` to run in this loop's next ``run_until_idle`` pass."""
        handle = ReadyCallback(callback, args, context if context is not None else contextvars.copy_context())
        self._ready.append(handle)
        return handle

    def create_future(self) -> asyncio.Future[Any]:
        """A new future bound to this loop."""
        return asyncio.Future(loop=self)

    def create_task(
        self,
        coro: Coroutine[Any, Any, _T] | Generator[Any, None, _T],
        *,
        name: str | None = None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[_T]:
        """Wrap ``coro`` in a task that runs on this loop."""
        if name is None and context is None:  # what asyncio.gather asks for each awaitable: fewer arguments
            return asyncio.Task(coro, loop=self)
        return asyncio.Task(coro, loop=self, name=name, context=context)

    def get_debug(self) -> bool:
        """Debug mode is off: it would read the clock."""
        return False

    def is_running(self) -> bool:
        """True while ``run_until_idle`` is running callbacks, or inside ``running()``."""
        return self._running

    def is_closed(self) -> bool:
        """True once ``close`` was called."""
        return self._closed

    def close(self) -> None:
        """Drop every queued callback; the loop cannot run again."""
        self._ready.clear()
        self._closed = True

    def time(self) -> float:
        """The workflow's deterministic time (seconds since the epoch at the current replay position)."""
        return self._clock()

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        """Keep the report; the runtime decides what an unhandled error means."""
        self.unhandled.append(context)

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        """Keep the report, as ``call_exception_handler`` does."""
        self.unhandled.append(context)

    def call_later(  # type: ignore[override]
        self, delay: float, callback: Callable[..., object], *args: Any, **kwargs: Any
    ) -> Any:
        """Refused: wall-clock timers are not durable. Use ``workflow.sleep``."""
        raise NonDeterministicCallError(
            "asyncio timers (asyncio.sleep with a delay, asyncio.wait_for, asyncio.timeout) are not durable "
            "inside a workflow: use workflow.sleep(seconds) or workflow.wait_signal(name, timeout=...)"
        )

    def call_at(  # type: ignore[override]
        self, when: float, callback: Callable[..., object], *args: Any, **kwargs: Any
    ) -> Any:
        """Refused, as ``call_later``."""
        return self.call_later(0, callback, *args)

    # -- driving ------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Be this thread's running loop throughout the block, for the ``run_until_idle`` calls inside it (a replay
        makes one per arrival), instead of becoming it and ceasing to be at each call."""
        if self._running:
            yield
            return
        # asyncio has no public way to make a loop the running one without running it: these two are what
        # BaseEventLoop.run_forever itself calls.
        previous = asyncio.events._get_running_loop()  # noqa: SLF001
        asyncio.events._set_running_loop(self)  # noqa: SLF001
        self._running = True
        try:
            yield
        finally:
            self._running = False
            asyncio.events._set_running_loop(previous)  # noqa: SLF001

    def run_until_idle(self) -> None:
        """Run ready callbacks, including the ones they queue, until none is left (nothing once closed)."""
        if self._closed:
            return
        if self._running:  # inside running() (a replay, once per arrival): the running loop already
            self._run_ready()
            return
        with self.running():
            self._run_ready()

    def _run_ready(self) -> None:
        ready = self._ready
        while ready and not self._closed:
            handle = ready.popleft()
            callback = handle.callback
            if callback is None:
                continue
            try:
                handle.context.run(callback, *handle.args)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as error:  # what asyncio.Handle._run does: report, and go on
                self.call_exception_handler(
                    {"message": f"Exception in callback {callback!r}", "exception": error, "handle": handle}
                )


class ReadyCallback:
    """A callback queued by :meth:`DeterministicLoop.call_soon`: what ``asyncio.Handle`` is to asyncio's loops,
    with only what this loop needs (``cancel``, ``cancelled``, ``get_context``). A loop runs a few of these per
    event a workflow waits on, so it is a plain slotted object, cheaper to make and run than a ``Handle``."""

    __slots__ = ("args", "callback", "context")

    def __init__(self, callback: Callable[..., object], args: tuple[Any, ...], context: contextvars.Context) -> None:
        #: ``None`` once cancelled.
        self.callback: Callable[..., object] | None = callback
        self.args = args
        self.context = context

    def cancel(self) -> None:
        """Do not run the callback."""
        self.callback = None
        self.args = ()

    def cancelled(self) -> bool:
        """True once cancelled."""
        return self.callback is None

    def get_context(self) -> contextvars.Context:
        """The context the callback runs in."""
        return self.context
