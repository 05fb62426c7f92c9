"""The forker thread: one long-lived thread of the owner process from which every zygote is forked.

``PR_SET_PDEATHSIG`` fires when the *thread* that forked a process exits, not when its process does. A zygote
forked by a short-lived thread (an owner started from a worker thread, or a restart made by the hub thread of a
zygote that died) would get its parent-death signal as soon as that thread ended. Forking every zygote from this
thread, which lives as long as the process, ties the signal to the process's death.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

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
