"""Reset: a new run of a workflow that goes on from a copy of an earlier run's history.

``reset(workflow_id, to_seq, reason)`` appends, in ONE transaction: the old run's ``WorkflowReset`` (naming the
new run) if it is still open; the new run's ``WorkflowStarted`` (a copy of the old one with the new run id and
``reset_from_run_id``/``reset_to_seq``); copies of the old run's events after its ``WorkflowStarted`` up to
``to_seq`` (renumbered and stamped anew: the store is the sequence authority); and the signals the old run
received after ``to_seq``. The new run is then taken up by recovery's own ``take_up``, as a run after an engine
restart: its pending timers are armed, its activities resumed where the copy left them (one whose attempt was
started and not finished counts as lost and is retried; one completed before ``to_seq`` is never run again), its
children and outgoing signals repaired, and its process replays the copy with the current code.

What is not copied: the old run's holds (``WorkflowBlocked``/``Unblocked``/``Paused``/``Resumed``: the new run
starts running) and its terminal event. The copies carry the time of the reset as ``recorded_at``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pykka

from aion import events as ev
from aion._ids import new_run_id
from aion.engine._activity_manager import ActivityManager
from aion.engine._interfaces import Core
from aion.engine._lifecycle import RunLifecycle
from aion.engine._process_links import ProcessLinks
from aion.engine._recovery import Recovery
from aion.engine._runs import Run, RunState
from aion.errors import InvalidArgumentError, WorkflowNotFoundError, WorkflowNotRunningError
from aion.store import EventStore

#: Events of the old run that a reset does not copy: holds belong to the old run's code, not its progress.
_NOT_COPIED = (ev.WorkflowBlocked, ev.WorkflowUnblocked, ev.WorkflowPaused, ev.WorkflowResumed)


def default_reset_point(history: list[ev.Event]) -> int:
    """Where a reset of the run with ``history`` goes back to by default: the last event before it closed, or
    before it became blocked; its last event if it is running."""
    last = history[-1]
    if last.terminal:
        return max(history[0].seq, last.seq - 1)
    blocked = [event for event in history if isinstance(event, ev.WorkflowBlocked)]
    if blocked:
        return max(history[0].seq, blocked[-1].seq - 1)
    return last.seq


def reset_events(
    history: list[ev.Event], to_seq: int, new_run_id_: str, reason: str | None
) -> tuple[list[ev.Event], ev.WorkflowStarted]:
    """The events a reset of the run with ``history`` to ``to_seq`` appends, and the new run's start."""
    started = history[0]
    assert isinstance(started, ev.WorkflowStarted)
    last = history[-1]
    limit = last.seq - 1 if last.terminal else last.seq
    if not started.seq <= to_seq <= limit:
        raise InvalidArgumentError(
            f"cannot reset workflow {started.workflow_id!r} run {started.run_id} to seq {to_seq}: "
            f"the run's events that can be kept are seq {started.seq} to {limit}"
        )
    events: list[ev.Event] = []
    if not last.terminal:
        events.append(
            ev.WorkflowReset(workflow_id=started.workflow_id, new_run_id=new_run_id_, to_seq=to_seq, reason=reason)
        )
    opened = dataclasses.replace(
        started,
        seq=0,
        recorded_at=ev.UNSET_TIME,
        run_id=new_run_id_,
        first_run_id=started.first_run_id or started.run_id,
        reset_from_run_id=started.run_id,
        reset_to_seq=to_seq,
    )
    events.append(opened)
    for event in history[1:]:
        if event.terminal:
            break
        if isinstance(event, _NOT_COPIED):
            continue
        if event.seq <= to_seq or isinstance(event, ev.SignalReceived):
            events.append(dataclasses.replace(event, seq=0, recorded_at=ev.UNSET_TIME))
    return events, opened


class Resets:
    """Resets runs: closes the old one (if open) and takes the new one up as recovery would."""

    def __init__(
        self,
        core: Core,
        store: EventStore,
        *,
        lifecycle: RunLifecycle,
        activities: ActivityManager,
        links: ProcessLinks,
        recovery: Recovery,
    ) -> None:
        self._core = core
        self._store = store
        self._lifecycle = lifecycle
        self._activities = activities
        self._links = links
        self._recovery = recovery

    def reset(self, workflow_id: str, to_seq: int | None, reason: str | None, reply: pykka.Future[Any]) -> None:
        """Reset the workflow's current run to ``to_seq`` (see the module docstring); replies with the new
        run's id once everything is durable and the new run is taken up."""
        old = self._core.live(workflow_id)
        if old is not None and old.continuing:
            raise WorkflowNotRunningError(f"workflow {workflow_id!r} is continuing as new: reset its next run")
        if old is not None and old.state.closing:
            raise WorkflowNotRunningError(f"workflow {workflow_id!r} is closing: reset it once it has closed")
        history = self._store.read_run(workflow_id)
        if not history:
            raise WorkflowNotFoundError(workflow_id)
        point = default_reset_point(history) if to_seq is None else to_seq
        next_run_id = new_run_id()
        events, opened = reset_events(history, point, next_run_id, reason)
        if old is not None:
            # The old run is open: it closes with WorkflowReset in the same append (the core then releases it).
            old.state.closing = True
            self._links.terminate(old)
            self._activities.forget(old)
            self._lifecycle.disarm_timers(old)
            carrier = old
        else:
            head = self._store.head(workflow_id)
            carrier = Run(RunState(workflow_id, next_run_id, opened.workflow_type, head=head, started=opened))
            self._core.drive(carrier)

        def take_up(stamped: list[ev.Event]) -> None:
            first = next(i for i, event in enumerate(stamped) if isinstance(event, ev.WorkflowStarted))
            state = RunState.from_history(stamped[first:])
            if carrier is old:
                successor = Run(state)
                self._core.drive(successor)
            else:
                successor = carrier
                successor.state = state
            self._recovery.take_up(successor)
            self._activities.pump()
            reply.set(next_run_id)

        self._core.append(carrier, events, then=take_up)
