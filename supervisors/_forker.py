"""The forker thread: one long-lived thread of the owner process from which every zygote is forked.

``PR_SET_PDEATHSIG`` fires when the *thread* that forked a process exits, not when its process does. A zygote
forked by a short-lived thread (an owner started from a worker thread, or a restart made by the hub thread of a
zygote that died) would get its parent-death signal as soon as that thread ended. Forking every zygote from this
thread, which lives as long as the process, ties the signal to the process's death.

So the owner always has threads when it forks a zygote (this one at least), and Python 3.12 and later warn at
every such fork (a ``DeprecationWarning``: a lock another thread holds at that instant stays held in the child).
:func:`fork` silences that one warning: the thread that asked for the zygote waits for this one, holding no lock
the zygote takes, and what other threads of the program may hold is the caveat ``docs/supervisors.md`` states.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar, cast

T = TypeVar("T")

#: The text of Python's warning at a fork of a process with threads (3.12 and later).
_THREADS_AT_FORK = r"This process \(pid=\d+\) is multi-threaded, use of fork\(\) may lead to deadlocks"

#: Where that warning points, for a fork made here (the filter leaves the program's own forks alone).
_THIS_MODULE = rf"{__name__.replace('.', '[.]')}$"

_lock = threading.Lock()
_jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
_thread: threading.Thread | None = None


def _serve() -> None:
    while True:
        job, future = _jobs.get()
        if not future.set_running_or_notify_cancel():
            continue
        try:
            future.set_result(job())
        except BaseException as exc:  # handed to the caller
            future.set_exception(exc)


def in_forker(job: Callable[[], T]) -> T:
    """Run ``job`` in the forker thread (started on first use) and return its result or raise its error."""
    global _thread
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_serve, name="supervisors-forker", daemon=True)
            _thread.start()
        if threading.current_thread() is _thread:
            return job()
    future: Future[T] = Future()
    _jobs.put((job, future))
    return future.result()


def fork() -> int:
    """``os.fork()`` without Python's warning that the process has threads (see the module's docstring); other
    warnings, and the warning filters of the program (a test runner's among them), are left as they are."""
    warnings.filterwarnings("ignore", message=_THREADS_AT_FORK, category=DeprecationWarning, module=_THIS_MODULE)
    ours = warnings.filters[0]
    try:
        return os.fork()
    finally:  # in the child as in the parent: only this entry goes, whatever other threads did to the filters
        with contextlib.suppress(ValueError):
            cast(list[Any], warnings.filters).remove(ours)  # a list, which typeshed calls a Sequence
