"""`Batch`: what the I/O hub's callbacks produce in one round of its loop, handed over in one call.

The hub thread wakes up (one ``select``), reads every channel that is ready and the zygote's reports, and runs
the callbacks (``on_start``, ``on_message``, ``on_exit``) for all of them: a *round*. A callback that forwards
each frame to another thread (an actor's ``tell``) wakes that thread once per frame, and each wake-up costs
both threads a context switch and a handover of the GIL. A callback that adds to a `Batch` instead has its
items handed to the batch's ``flush`` in one call when the round ends, so the consumer is woken once per round.

The hub hands a batch over:

* at the end of each round;
* before it reports any process's exit (``on_exit``, monitors' `Down`): what a process sent always reaches
  the consumer before anything that learns of its exit;

each batch's items in the order they were added. Outside a round (`Batch.add` called by any other thread, e.g. from a
supervisor's ``on_exit``), ``flush`` is called at once with the one item.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

logger = logging.getLogger("supervisors")

T = TypeVar("T")

_local = threading.local()


class Batch(Generic[T]):
    """Collects items added by I/O hub callbacks during one round and passes them to ``flush(items)`` once.

    ``flush`` runs in the thread that added the items (the hub thread for hub callbacks); like any hub
    callback it must be quick and must not wait on a supervisor. Its exceptions are logged and the items
    dropped. One batch may be shared by the callbacks of any number of processes, and by several hubs: each
    hub thread keeps its own items.
    """

    __slots__ = ("_flush",)

    def __init__(self, flush: Callable[[list[T]], None]) -> None:
        self._flush = flush

    def add(self, item: T) -> None:
        """Hand ``item`` over at the end of the hub's current round, or now when not called in one."""
        pending: dict[Batch[Any], list[Any]] | None = getattr(_local, "pending", None)
        if pending is None:
            self.hand_over([item])
            return
        items = pending.get(self)
        if items is None:
            pending[self] = [item]
        else:
            items.append(item)

    def hand_over(self, items: list[T]) -> None:
        """Pass ``items`` to ``flush`` now (its exceptions are logged); what a round's end does for each batch."""
        try:
            self._flush(items)
        except Exception:
            logger.exception("flushing a batch of %d hub callback items failed", len(items))


class Round:
    """The hub thread's side: `begin` once in the thread, `end` at the end of each round (and before an exit
    is reported) to hand over every batch that has items."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: dict[Batch[Any], list[Any]] = {}

    def begin(self) -> None:
        """From now on, `Batch.add` calls in this thread collect their items until `end`."""
        _local.pending = self._pending

    def end(self) -> None:
        """Hand over every batch's items, in the order the batches got their first item."""
        pending = self._pending
        while pending:  # a flush may add to a batch again
            batches = list(pending.items())
            pending.clear()
            for batch, items in batches:
                batch.hand_over(items)

    def close(self) -> None:
        """Hand over what is left; `Batch.add` in this thread hands over at once again."""
        self.end()
        _local.pending = None
