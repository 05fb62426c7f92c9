"""The append pipeline: the core's only way to record.

The core is the one place that appends for a workflow, so it knows every run's head and sends appends without
waiting for the previous one (pipelining): ``RunState.head`` counts what was sent. The recorder reports the
outcomes of one committed batch in one call on its own thread (the commit sink), which tells the core one
:class:`~aion.engine._messages.AppendsCommitted` message, then hands closed runs' terminal events straight to
their ``result()`` waiters and answers the callers waiting for a durable append (``start_workflow``, ``signal``,
...). Back in the core, :meth:`AppendPipeline.settle` resolves each append's ``then`` (and the reply of a failed
one).

Each append carries the run's *generation*: after a failed append the run is rebuilt from the store (a new
generation), and the appends it still had in flight fail as a consequence of that failure, needing no rebuild of
their own.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pykka

from aion import events as ev
from aion.engine._closures import Closures
from aion.engine._interfaces import Then
from aion.engine._messages import AppendsCommitted
from aion.engine._runs import Run
from aion.errors import AionError
from aion.observability._observer import Observer
from aion.recorder import CommitSink, Committed, RecorderHandle
from aion.store import AppendRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AppendToken:
    """What the core needs back with the outcome of one append (its token with the recorder)."""

    run: Run
    then: Then | None
    reply: pykka.Future[Any] | None
    closing: bool
    #: The run's generation when the append was sent.
    generation: int


class AppendPipeline:
    """Sends a run's events to the recorder after its head, and settles each append once its batch commits."""

    def __init__(
        self, recorder: RecorderHandle, closures: Closures, tell: Callable[[Any], None], observer: Observer
    ) -> None:
        self._recorder = recorder
        self._observer = observer
        self._closures = closures
        self._sink = _commit_sink(tell, closures)
        #: Appends sent and not settled yet.
        self.in_flight = 0

    def append(
        self,
        run: Run,
        events: Sequence[ev.Event],
        *,
        then: Then | None = None,
        reply: pykka.Future[Any] | None = None,
        companion: AppendRequest | None = None,
        deferrable: bool = False,
    ) -> None:
        """Queue ``events`` after the run's head (see ``Core.append``)."""
        state = run.state
        expected = state.head
        state.head += len(events)
        closing = any(event.terminal for event in events)
        token = AppendToken(run, then, reply, closing, run.generation)
        if deferrable and closing and self._closures.awaited(state.workflow_id, run.run_id):
            deferrable = False  # its result() is awaited (a waiter coming later expedites the recorder itself)
        self._recorder.append_to(
            self._sink, token, state.workflow_id, events, expected, companion=companion, deferrable=deferrable
        )
        self.in_flight += 1

    def settle(self, token: AppendToken, stamped: list[ev.Event] | None, error: BaseException | None) -> bool:
        """Resolve one append's ``then``; True when it is durable (its reply was set by the commit sink). A
        failed append's reply gets the error and its run's ``result()`` waiters look in the store; the caller
        rebuilds the run if :meth:`needs_resync`."""
        run = token.run
        self.in_flight -= 1
        if error is not None or stamped is None:
            error = error or AionError("append failed")
            if token.reply is not None:
                token.reply.set_exception((type(error), error, error.__traceback__))
            log.error(
                "append for workflow %s failed: %r",
                run.workflow_id,
                error,
                extra={"workflow_id": run.workflow_id, "run_id": run.run_id, "error": repr(error)},
            )
            self._closures.forget(run.workflow_id, run.run_id)
            self._observer.append_failed()
            return False
        self._observer.recorded(run, stamped)
        if token.then is not None:
            token.then(stamped)
        return True

    @staticmethod
    def needs_resync(token: AppendToken, current: Run | None) -> bool:
        """Whether a failed append calls for rebuilding its run: it is still the workflow's run, and nothing
        rebuilt it since the append was sent."""
        return current is token.run and token.generation == token.run.generation


def _commit_sink(tell: Callable[[Any], None], closures: Closures) -> CommitSink:
    """Where the recorder hands the outcomes of the core's appends: one message per committed batch."""

    def committed(outcomes: list[Committed]) -> None:
        # On the recorder's thread, once durable: tell the core first (whoever a reply or ``result()`` wakes may
        # ask it something next, which then reaches it after this commit), then hand closed runs' terminal
        # events straight to their waiters and answer the callers that wait for their append to be durable: no
        # wait for the core to reach this message behind the others in its mailbox.
        with contextlib.suppress(pykka.ActorDeadError):
            tell(AppendsCommitted(outcomes))
        for token, stamped, error in outcomes:
            if stamped is None or error is not None:
                continue
            if token.closing:
                terminal = next(event for event in stamped if event.terminal)
                run = token.run  # its ids never change, so reading them on this thread is safe
                closures.closed(run.workflow_id, run.run_id, terminal)
            if token.reply is not None:
                token.reply.set(stamped)

    return committed
