"""A cheaper inbox for busy pykka actors.

pykka's `ThreadingActor` gives every actor a ``queue.Queue``: each ``tell`` takes its mutex and notifies a
``threading.Condition``, and each ``get`` that finds the queue empty allocates a lock to wait on. An actor's
inbox needs none of what that buys (``maxsize``, ``task_done``/``join``): pykka only calls ``put``, ``get``
and ``empty``, which ``queue.SimpleQueue`` (implemented in C, one lock) provides with the same semantics.
"""

from __future__ import annotations

import queue
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pykka._actor import ActorInbox


class SimpleInbox:
    """Mixin for a `pykka.ThreadingActor` subclass: its inbox is a ``queue.SimpleQueue``.

    Put it before the actor base class::

        class Busy(SimpleInbox, pykka.ThreadingActor): ...

    Messages are handled in the same order and with the same guarantees; only ``tell``/``ask`` and the
    actor's wait for its next message get cheaper.
    """

    @staticmethod
    def _create_actor_inbox() -> ActorInbox:
        inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        return inbox
