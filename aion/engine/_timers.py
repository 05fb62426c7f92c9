"""The timer service: a heap of due times in memory and one thread that waits for the earliest.

The durable part of a timer is its ``TimerStarted`` event (and the timer row the store derives from it in the
same transaction); this service only wakes the core when one is due. On engine start the core re-arms every
pending timer from history, so past-due timers fire at once and future ones at their time.
"""

from __future__ import annotations

import heapq
import sys
import threading
from collections.abc import Callable, Hashable
from typing import Any

from aion._libc import libc_function
from aion.clock import SYSTEM_CLOCK, Clock

Callback = Callable[[Any], None]

#: The heap is rebuilt from the armed keys when it holds more than twice as many entries as there are armed keys,
#: and more than this many: a disarmed or moved key's entry otherwise stays in it until its time comes, and an
#: activity's timeout of an hour, disarmed as the activity completes, would keep an hour's worth of dead entries
#: (and the ids of runs long closed) in memory at any throughput.
COMPACT_ABOVE = 1024

#: ``prctl`` option setting the calling thread's timer slack (Linux): how late the kernel may wake a timed wait
#: to coalesce wake-ups; 50 µs by default.
_PR_SET_TIMERSLACK = 29


def precise_waits() -> None:
    """Ask the kernel to wake this thread's timed waits on time (a 1 ns timer slack instead of 50 µs): a timer's
    median wake-up comes ~45 µs sooner. Linux only; elsewhere (or if refused) waits keep the default slack."""
    prctl = libc_function("prctl") if sys.platform.startswith("linux") else None
    if prctl is not None:
        prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)


class TimerService:
    """Calls ``on_due(key)`` (from its own thread) when an armed key's time (epoch seconds of ``clock``) has
    come."""

    def __init__(self, on_due: Callback, clock: Clock = SYSTEM_CLOCK) -> None:
        self._on_due = on_due
        self._clock = clock
        self._heap: list[tuple[float, int, Hashable]] = []
        self._armed: dict[Hashable, float] = {}
        self._counter = 0
        #: Keys handed to ``on_due`` (written by the timer thread only) and those whose handling the owner has
        #: confirmed (:meth:`handled`, written by the owner's thread only): they differ while a due key is on its
        #: way.
        self._fired = 0
        self._handled = 0
        self._condition = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="aion-timers", daemon=True)

    def start(self) -> None:
        """Start the timer thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the timer thread; armed timers are dropped (they are durable in history)."""
        with self._condition:
            self._stopped = True
            self._condition.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def arm(self, fire_at: float, key: Hashable) -> None:
        """Call back with ``key`` at ``fire_at`` (seconds since the epoch); re-arming moves the time.

        The thread is woken only when ``fire_at`` becomes the earliest time in the heap: otherwise it already
        waits for an earlier one, and looks at the heap again then.
        """
        with self._condition:
            armed = self._armed
            moved = key in armed
            armed[key] = fire_at
            self._counter += 1
            entry = (fire_at, self._counter, key)
            heap = self._heap
            heapq.heappush(heap, entry)
            if heap[0] is entry:
                self._condition.notify()
            if moved:  # its earlier entry is dead now
                self._compact_if_mostly_dead()

    def disarm(self, key: Hashable) -> None:
        """Forget ``key``; a no-op if it is not armed."""
        with self._condition:
            if self._armed.pop(key, None) is not None:
                self._compact_if_mostly_dead()

    def _compact_if_mostly_dead(self) -> None:
        """Rebuild the heap from the armed keys once most of its entries are dead (see ``COMPACT_ABOVE``): O(n)
        each time the dead entries have outgrown the live ones, so O(1) per disarm over time. The earliest entry
        can only get later, so the thread, waiting for it, needs no wake-up."""
        armed = self._armed
        if len(self._heap) > COMPACT_ABOVE and len(self._heap) > 2 * len(armed):
            heap = [(fire_at, order, key) for order, (key, fire_at) in enumerate(armed.items())]
            heapq.heapify(heap)
            self._heap = heap

    def entries(self) -> int:
        """How many entries the heap holds: the armed keys', and dead ones (a disarmed or moved key's earlier
        entry) not yet dropped."""
        with self._condition:
            return len(self._heap)

    def handled(self) -> None:
        """The owner has handled one key it was called back with (see :meth:`settled`)."""
        self._handled += 1

    def settled(self) -> bool:
        """Whether every key called back so far has been handled by the owner."""
        return self._fired == self._handled

    def next_due(self) -> float | None:
        """When the earliest armed key is due (epoch seconds), if any is armed."""
        with self._condition:
            armed = self._armed
            while self._heap and armed.get(self._heap[0][2]) != self._heap[0][0]:
                heapq.heappop(self._heap)  # a disarmed or moved key's stale entry
            return self._heap[0][0] if self._heap else None

    def pending(self) -> int:
        """How many timers are armed."""
        with self._condition:
            return len(self._armed)

    def _run(self) -> None:
        precise_waits()
        while True:
            due: list[Hashable] = []
            with self._condition:
                while not self._stopped:
                    now = self._clock.time()
                    while self._heap and self._heap[0][0] <= now:
                        fire_at, _, key = heapq.heappop(self._heap)
                        if self._armed.get(key) == fire_at:
                            del self._armed[key]
                            due.append(key)
                    if due:
                        self._fired += len(due)
                        break
                    self._clock.wait_until(self._condition, self._heap[0][0] if self._heap else None)
                if self._stopped:
                    return
            for key in due:
                self._on_due(key)
