"""What the recorder's actor and its handles share: the queued items, the shared queue state, the wake-up
messages, the counters, and the delivery of outcomes to commit sinks.

It owns these types and nothing that runs: it never commits, never queues, never resolves a future itself.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import pykka

from aion.errors import AionError
from aion.events import Event
from aion.store import AppendRequest

#: Logged as ``aion.recorder``, whichever module of the recorder logs.
log: Final = logging.getLogger("aion.recorder")

#: Most append requests committed in one write transaction.
DEFAULT_MAX_BATCH: Final = 4096

#: Longest a deferrable append waits for a prompt one to share its transaction (seconds): see "Holding
#: deferrable appends" in ``aion.recorder``.
DEFAULT_HOLD: Final = 0.002

#: Weight of the newest gap in the smoothed gap between prompt appends.
_GAP_WEIGHT: Final = 0.25

BatchResult = list[list[Event] | AionError]


@dataclass(frozen=True)
class RecorderStats:
    """Counters of a recorder: write transactions committed and what they held."""

    #: Write transactions run (each one fsync).
    batches: int
    #: Append requests handled (an ``append`` is one; an ``append_batch`` counts each of its requests).
    appends: int
    #: Events committed.
    events: int
    #: Requests refused with an error.
    errors: int
    #: The most requests committed in one transaction.
    max_batch: int
    #: Times the recorder held deferrable appends, waiting for a prompt one to share their transaction.
    holds: int = 0


#: Where the outcome of a queued append goes: its future, or ``(sink, token)`` for an ``append_to`` (outcomes
#: of committed batches are gathered per sink by ``Pending``; one that fails outside a commit is delivered alone).
Target = pykka.Future[Any] | tuple["CommitSink", Any]
#: One queued ``append``, ``append_to`` (both ``single``: one request, one outcome) or ``append_batch``:
#: ``(requests, atomic, single, target)``. A tuple rather than a class because one is built per append.
Item = tuple[list[AppendRequest], bool, bool, Target]


def set_exception(target: Target, exc_info: Any) -> None:
    """Resolve ``target`` with an error that refused its append outside a commit."""
    if isinstance(target, tuple):
        sink, token = target
        deliver(sink, [(token, None, exc_info[1])])
    else:
        target.set_exception(exc_info)


class Flush:
    """Wake-up message: drain the queue."""


class GetShared:
    """Ask message: hand the shared queue state to a new handle."""


class Shared:
    """State shared by the actor and its handles."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.flush_scheduled = False
        self.stopped = False
        self.batches = 0
        self.appends = 0
        self.events = 0
        self.errors = 0
        self.max_batch = 0
        self.holds = 0
        #: Set by each prompt append (one a caller waits on): the actor waits on it while it holds deferrable ones.
        self.prompt = threading.Event()
        #: When the last prompt append was queued (``time.monotonic``), and the smoothed gap between them.
        self.last_prompt = -math.inf
        self.prompt_gap = math.inf

    def prompt_queued(self, now: float) -> None:
        """A prompt append was queued at ``now`` (the caller holds ``lock``): the stream of them moves on."""
        gap = now - self.last_prompt
        previous = self.prompt_gap
        self.prompt_gap = gap if previous == math.inf else previous + _GAP_WEIGHT * (gap - previous)
        self.last_prompt = now
        self.prompt.set()


#: The outcome of one ``append_to``: ``(token, stamped_events, None)`` once durable, or ``(token, None, error)``.
Committed = tuple[Any, list[Event] | None, BaseException | None]

#: Receives the outcomes of ``append_to`` appends, on the recorder's thread: every outcome of one committed
#: batch in one call, in queue order. It must be quick and must not write to the store.
CommitSink = Callable[[list[Committed]], None]


def deliver(sink: CommitSink, batch: list[Committed]) -> None:
    try:
        sink(batch)
    except Exception:
        log.exception("a recorder commit sink failed")
