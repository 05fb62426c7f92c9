"""The link between runs and their workflow processes: the one place where a run gets, keeps and loses a process.

A run is given a process when residency gives it a slot (:meth:`ProcessLinks.want`); the process comes up and is
sent the run's history; recorded arrivals are forwarded to it as they become durable (each exactly once);
queries go to it, or to a one-off process that replays a closed run. A parked run is evicted (its process told
to stop), a run whose append failed gets a new process (:meth:`ProcessLinks.replace`), a closed run's process is
killed (:meth:`ProcessLinks.terminate`). Each new process of a run has a new child id, so nothing sent by an
earlier one is taken as the current one's.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import pykka

from aion import events as ev
from aion._codec import decode_payload, encode_event, encode_payload
from aion.clock import Clock
from aion.engine import _protocol as protocol
from aion.engine._child_ids import ProcessRole, parse_child_id, query_child_id, run_child_id
from aion.engine._interfaces import Core, Processes
from aion.engine._memory_return import MemoryReturner
from aion.engine._residency import Residency
from aion.engine._runs import Run, next_query_id, shared_waits
from aion.engine._timer_keys import RESIDENCY_RECHECK
from aion.engine._timers import TimerService
from aion.errors import QueryError, WorkflowNotFoundError
from aion.observability._observer import Observer
from aion.store import EventStore
from aion.workflow._commands import Command, is_arrival
from aion.workflow._failures import truncated
from supervisors import ChannelClosedError

log = logging.getLogger(__name__)

#: What the links report to the core's other collaborators.
OnCommands = Callable[[Run, list[Command]], None]
OnFailure = Callable[[Run, ev.Failure], None]


class ProcessLinks:
    """Gives runs processes within the residency bound, and carries everything between runs and processes."""

    def __init__(
        self,
        core: Core,
        store: EventStore,
        processes: Processes,
        timers: TimerService,
        clock: Clock,
        *,
        max_resident: int,
        evict_idle_after: float | None = None,
        on_commands: OnCommands,
        on_failure: OnFailure,
        on_diverged: OnFailure | None = None,
        observer: Observer | None = None,
    ) -> None:
        self._core = core
        self._observer = observer if observer is not None else Observer()
        self._store = store
        self._processes = processes
        self._on_commands = on_commands
        self._on_failure = on_failure
        #: A run's code does not fit it (diverged, or cannot be replayed): blocked, or failed (``Holds``).
        self._on_diverged = on_diverged or on_failure
        self._one_off_queries: dict[int, tuple[dict[str, Any], pykka.Future[Any]]] = {}
        self.residency = Residency(
            max_resident,
            self._spawn,
            self._evict,
            lambda at: timers.arm(at, RESIDENCY_RECHECK),
            clock,
            idle_after=evict_idle_after,
            after_idle_evictions=MemoryReturner(store.release_cached_pages, now=clock.time).give_back,
        )

    # -- slots and processes --------------------------------------------------------------------------------

    def want(self, run: Run, *, started: bool) -> None:
        """``run`` needs a process: now, or when a slot frees (see :mod:`aion.engine._residency`)."""
        self.residency.want(run, started=started)

    def release(self, run: Run) -> None:
        """``run`` needs no process any more: its slot goes to the next in line."""
        self.residency.release(run)

    def terminate(self, run: Run) -> None:
        """Kill the run's process for good (no restart): the run was closed from outside its code."""
        self._processes.terminate_run_process(run.workflow_type, run_child_id(run.process_token, run.workflow_id))

    def replace(self, run: Run) -> None:
        """Kill the run's process for good and forget it: the run is rebuilt and given a new process, which
        replays what was recorded. Its queries fail (the process that had them is gone)."""
        self.terminate(run)
        run.link.channel = None
        run.link.incarnation += 1
        self.fail_queries(run, "the run's process was replaced before answering")
        self.residency.release(run)

    def fail_queries(self, run: Run, why: str) -> None:
        """Fail every query sent to the run's process and not answered yet."""
        for query in run.link.queries.values():
            query.set_exception((QueryError, QueryError(why), None))
        run.link.queries.clear()

    def _spawn(self, run: Run) -> None:
        """Start the process of a run that was given a slot."""
        parent = run.state.parent
        meta = {"parent_workflow_id": parent[0]} if parent else {}
        self._processes.start_run_process(run.workflow_type, run_child_id(run.process_token, run.workflow_id), meta)

    def _evict(self, run: Run) -> None:
        """Tell a parked run's process to stop (it is then kept for another run); the run's state is its history,
        and anything that arrives for it gives it a process again, which replays."""
        self._observer.evicted(run)
        run.state.shed_started()
        channel, run.link.channel = run.link.channel, None
        run.link.incarnation += 1
        with contextlib.suppress(ChannelClosedError):
            channel.send({"t": protocol.STOP})

    def settled(self) -> bool:
        """Whether no run waits for a process, every resident run's process is up and has answered everything
        it was sent, and no one-off query process is under way."""
        residency = self.residency
        return (
            not residency.waiting
            and not self._one_off_queries
            and all(_answered(run) for run in residency.resident_runs())
        )

    # -- what processes say ---------------------------------------------------------------------------------

    def run_of_child(self, child_id: str) -> Run | None:
        """The run whose current process is ``child_id`` (None for an earlier process or a one-off query)."""
        role, token, workflow_id = parse_child_id(child_id)
        run = self._core.run_of(workflow_id)
        if role is not ProcessRole.RUN or run is None or run.process_token != token:
            return None
        return run

    def up(self, child_id: str, channel: Any) -> None:
        """A process came up: send it its run's history (and the queries that waited for it)."""
        role, token, workflow_id = parse_child_id(child_id)
        if role is ProcessRole.QUERY:
            pending = self._one_off_queries.get(int(token))
            if pending is None:
                channel.send({"t": protocol.STOP})
                return
            channel.send(protocol.encoded_run_message(self._store.read_run_encoded(workflow_id)[0], once=True))
            channel.send(pending[0])
            return
        run = self.run_of_child(child_id)
        if run is None:
            # No longer wanted (paused or released as it came up): it may have been stopped already.
            with contextlib.suppress(ChannelClosedError):
                channel.send({"t": protocol.STOP})
            return
        # A run that has recorded nothing since it started (the common case: a new run) needs no store read.
        # Otherwise the history goes as the store holds it: the process decodes it, the engine does not.
        started = run.state.started
        if started is not None and run.state.head == started.seq:
            history, last = [encode_event(started)], started.seq
        else:
            history, last = self._store.read_run_encoded(workflow_id)
        link = run.link
        link.connected(channel, last)
        self.send(run, protocol.encoded_run_message(history))
        for _, message in link.take_waiting_queries():
            self.send(run, message)

    def down(self, child_id: str) -> None:
        """A process exited: its run has no channel until its restart comes up."""
        run = self.run_of_child(child_id)
        if run is not None:
            run.link.channel = None

    def received(self, child_id: str, message: dict[str, Any]) -> None:
        """A frame from a process: commands (to the command handler), a query's answer, or a divergence."""
        kind = message.get("t")
        role, token, _ = parse_child_id(child_id)
        if role is ProcessRole.QUERY:
            pending = self._one_off_queries.pop(int(token), None)
            if kind == protocol.ANSWER and pending is not None:
                _resolve_query(pending[1], message)
            elif pending is not None:
                error = QueryError(f"the run cannot be replayed to answer: {protocol.decode_failure(message).message}")
                pending[1].set_exception((QueryError, error, None))
            return
        run = self.run_of_child(child_id)
        if run is None:
            return
        if kind == protocol.COMMANDS:
            residency = self.residency
            residency.touch(run)
            run.link.acked = max(run.link.acked, message["at"])
            run.waits = shared_waits(protocol.decode_waits(message))
            try:
                commands = protocol.decode_commands(message)
            except Exception as error:  # a frame the engine cannot read fails the run, recorded, never dropped
                log.exception("workflow %r: undecodable commands", run.workflow_id)
                reason = f"the engine could not decode the run's commands: {type(error).__name__}: {error}"
                self._on_failure(run, ev.Failure(type="CommandRefused", message=truncated(reason)))
            else:
                self._on_commands(run, commands)
            residency.settled(run)
        elif kind == protocol.ANSWER:
            reply = run.link.queries.pop(message["id"], None)
            if reply is not None:
                _resolve_query(reply, message)
        elif kind == protocol.DIVERGED:
            self._on_diverged(run, protocol.decode_failure(message))

    def waits(self, runs: tuple[tuple[str, str], ...]) -> list[list[str] | None]:
        """For each (workflow id, run id): what its code last reported waiting on beyond its history, ``None``
        if that run is not one the core works on (closed, not yet recovered) or has not reported yet."""
        found: list[list[str] | None] = []
        for workflow_id, run_id in runs:
            run = self._core.run_of(workflow_id)
            waits = run.waits if run is not None and run.run_id == run_id else None
            found.append(None if waits is None else list(waits))
        return found

    def gave_up(self, child_id: str, reason: str) -> None:
        """A process crashed more often than its restart intensity allows, or could not be started."""
        role, token, _ = parse_child_id(child_id)
        if role is ProcessRole.QUERY:
            pending = self._one_off_queries.pop(int(token), None)
            if pending is not None:
                error = QueryError(f"the replay to answer the query crashed: {reason}")
                pending[1].set_exception((QueryError, error, None))
            return
        run = self.run_of_child(child_id)
        if run is not None:
            failure = ev.Failure(
                type="WorkflowProcessCrashed",
                message=f"the workflow process crashed more often than its restart intensity allows; last: {reason}",
            )
            self._on_failure(run, failure)

    # -- what goes to processes -----------------------------------------------------------------------------

    @staticmethod
    def send(run: Run, message: dict[str, Any]) -> None:
        """Send to the run's process; if it just died, forget it: its restart is sent the history anew."""
        try:
            run.link.channel.send(message)
        except ChannelClosedError:
            run.link.channel = None

    def forward(self, run: Run, event: ev.Event) -> None:
        """Deliver a recorded event to the run's process unless it has seen it already; an arrival for a run
        without a process (evicted) gives it one, which is sent the whole history."""
        link = run.link
        if link.channel is None:
            state = run.state
            if is_arrival(event) and not state.closing and not state.held and not self.residency.is_resident(run):
                self.residency.want(run, started=True)
            return
        if event.seq <= link.delivered:
            return
        link.delivered = event.seq
        if is_arrival(event):
            link.sent = event.seq
            self.residency.touch(run)
            self.send(run, protocol.event_message(event))
        elif link.delivered == run.state.head:
            self.residency.settled(run)  # its last append is in: it may be parked now

    def query(self, workflow_id: str, run: Run | None, name: str, args: list[Any], reply: pykka.Future[Any]) -> None:
        """Ask the open ``run``'s process to answer query ``name`` (giving it one if it has none), or, when the
        workflow has no open run, a one-off process that replays its last run."""
        query_id = next_query_id()
        message = {"t": protocol.QUERY, "id": query_id, "name": name, "args": encode_payload(args)}
        if run is not None and run.state.blocked:
            raise QueryError(f"workflow {workflow_id!r} is blocked: its code does not fit it (aion describe)")
        if run is not None and not run.state.closing and not run.state.paused:
            run.link.queries[query_id] = reply
            if run.link.channel is not None:
                self.send(run, message)
            else:
                run.link.waiting_queries.append((query_id, message))
                self.residency.want(run, started=True)
            return
        info = self._store.get_run(workflow_id)
        if info is None:
            raise WorkflowNotFoundError(workflow_id)
        self._one_off_queries[query_id] = (message, reply)
        self._processes.start_query_process(info.workflow_type, query_child_id(query_id, workflow_id))


def _answered(run: Run) -> bool:
    link = run.link
    return link.channel is not None and link.acked >= link.sent and link.delivered >= run.state.head


def _resolve_query(reply: pykka.Future[Any], message: dict[str, Any]) -> None:
    if message.get("ok"):
        reply.set(decode_payload(message["value"]))
    else:
        error = QueryError(message.get("error", "query failed"))
        reply.set_exception((QueryError, error, None))
