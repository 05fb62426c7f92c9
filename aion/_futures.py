"""A one-shot ``pykka.Future`` for the engine's answers, as cheap as can be: the recorder's answer to an append,
the core's (or the commit sink's) answer to a request.

It owns how a caller waits for its answer and how the answering thread wakes it. It never queues or sends
anything, and must behave exactly like ``pykka.ThreadingFuture`` to whoever holds one.
"""

from __future__ import annotations

import queue
import sys
import threading
from typing import Any

import pykka

#: Guards the creation of a :class:`OneShotFuture`'s wait lock against its resolution (held for a few
#: instructions; futures whose result nobody waits for never take it to wait).
_WAIT_LOCKS = threading.Lock()


class OneShotFuture(pykka.Future[Any]):
    """A one-shot ``pykka.Future`` resolved once by one thread, as cheap as can be on both sides.

    ``pykka.ThreadingFuture`` builds a ``threading.Condition`` per future and wakes its waiter through it; here
    a plain lock is the only wait, and it is created only when ``get`` has to wait (a writer that checks a
    future only after it is resolved never creates one). With a hundred writers these costs sit on the
    recorder's critical path, and every start or signal of a run makes one. Behaves like ``ThreadingFuture``
    (``get`` with a timeout raises ``pykka.Timeout``, a second ``set`` raises ``queue.Full``, get hooks and
    ``await`` work)."""

    _get_hook = None  # pykka's __init__ is only run for a get hook (see set_get_hook)

    def __init__(self) -> None:  # no pykka.Future.__init__: see _get_hook
        self._ready: threading.Lock | None = None
        self._value: Any = None
        self._exc_info: Any = None
        self._done = False

    def get(self, *, timeout: float | None = None) -> Any:
        """The answer once set; raises the error set instead, or ``pykka.Timeout``."""
        if not self._done:
            if self._get_hook is not None:
                return super().get(timeout=timeout)
            with _WAIT_LOCKS:
                ready = self._ready
                if ready is None and not self._done:
                    ready = self._ready = threading.Lock()
                    ready.acquire()
            if ready is not None:
                if not ready.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
                    raise pykka.Timeout(f"{timeout} seconds")
                ready.release()  # let any other waiter through too
        exc_info = self._exc_info
        if exc_info is not None:
            exc_type, exc_value, exc_traceback = exc_info
            if exc_value is None:
                exc_value = exc_type()
            if exc_value.__traceback__ is not exc_traceback:
                raise exc_value.with_traceback(exc_traceback)
            raise exc_value
        return self._value

    def _resolve(self) -> None:
        with _WAIT_LOCKS:
            self._done = True
            ready = self._ready
        if ready is not None:
            ready.release()

    def set(self, value: Any = None) -> None:
        """Resolve with ``value``."""
        if self._done or self._get_hook is not None:
            raise queue.Full
        self._value = value
        self._resolve()

    def set_exception(self, exc_info: Any = None) -> None:
        """Resolve with an error: an ``exc_info`` triple (``sys.exc_info()`` when omitted)."""
        if exc_info is None:
            exc_info = sys.exc_info()
        if self._done or self._get_hook is not None:
            raise queue.Full
        self._exc_info = exc_info
        self._resolve()

    def set_get_hook(self, func: Any) -> None:
        """See ``pykka.Future.set_get_hook``."""
        if self._done:
            raise queue.Full
        pykka.Future.__init__(self)
        super().set_get_hook(func)
