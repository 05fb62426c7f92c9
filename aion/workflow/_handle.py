"""What every handle of a run's pending work shares (:class:`~aion.workflow.ActivityHandle`,
:class:`~aion.workflow.ChildHandle`, :class:`~aion.workflow.TimerHandle`): the future of the run's deterministic
loop that its outcome resolves, awaited through the handle and asked whether it is done."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any, Generic, TypeVar

_R = TypeVar("_R")


class PendingHandle(Generic[_R]):
    """A handle on one piece of a run's pending work: awaiting it awaits its outcome."""

    #: Not a future: ``asyncio.isfuture`` (which ``gather`` asks of every awaitable) then answers without an
    #: attribute miss.
    _asyncio_future_blocking = None

    #: The future its outcome resolves, set by each subclass's ``__init__``: no shared ``__init__``, since a replay
    #: makes thousands of handles and a ``super().__init__`` call each cost it ~2%.
    _future: asyncio.Future[Any]

    def done(self) -> bool:
        """True once its outcome (a result, a failure or a cancellation) is known to the workflow."""
        return self._future.done()

    def __await__(self) -> Generator[Any, None, _R]:
        return self._future.__await__()
