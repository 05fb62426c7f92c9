"""The engine core: the actor that turns workflow commands into recorded events and recorded events into effects.

It is the one place that appends for a workflow (through the Recorder), so it knows every run's head and can
pipeline appends. Every effect waits for its record: an activity is dispatched, a timer armed, a result or a
signal delivered to the workflow process only after the event that implies it is durable (record before effect).

Threads never block here on I/O: the recorder calls back when a commit is durable and the callback re-enters
this actor as a message; process callbacks from the supervisors' hub arrive the same way.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pykka

from aion import events as ev
from aion._codec import check_payload, decode_payload, encode_payload
from aion._ids import new_run_id
from aion.engine import _protocol as protocol
from aion.engine._activities import ActivityPool
from aion.engine._activity_manager import ActivityManager
from aion.engine._registry import Registry
from aion.engine._runs import PendingActivity, Run, next_query_id
from aion.engine._timers import TimerService
from aion.errors import (
    AionError,
    PayloadError,
    QueryError,
    WorkflowAlreadyStartedError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)
from aion.recorder import RecorderHandle
from aion.store import EventStore
from aion.workflow._commands import (
    CancelTimer,
    Command,
    CompleteWorkflow,
    FailWorkflow,
    RequestCancelActivity,
    ScheduleActivity,
    StartTimer,
    is_arrival,
)
from supervisors import ChannelClosedError

log = logging.getLogger(__name__)


class Processes(Protocol):
    """How the core starts and stops workflow processes (the engine implements it with supervisors)."""

    def start_run_process(self, workflow_type: str, child_id: str) -> None:
        """Start, under the type's supervisor, the process ``child_id`` hosting a run."""

    def start_query_process(self, workflow_type: str, child_id: str) -> None:
        """Start a temporary process ``child_id`` that replays a run to answer one query."""

    def stop_run_process(self, workflow_type: str, child_id: str) -> None:
        """Kill the process ``child_id`` if it runs (its supervisor restarts it if the run is open)."""

    def kill_worker(self, worker_id: str) -> None:
        """SIGKILL activity worker ``worker_id`` (its supervisor replaces it)."""


class Closures:
    """Wakes whoever waits for a run to close (``handle.result()``)."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.generation = 0

    def notify(self) -> None:
        """A run closed: wake every waiter so it re-reads the store."""
        with self.condition:
            self.generation += 1
            self.condition.notify_all()


# --- messages told to the core ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Appended:
    workflow_id: str
    events: list[ev.Event] | None
    error: BaseException | None
    then: Callable[[list[ev.Event]], None] | None
    reply: pykka.Future[Any] | None


@dataclass(frozen=True)
class ProcessUp:
    """A workflow process (re)started and can be sent its history."""

    child_id: str
    channel: Any


@dataclass(frozen=True)
class ProcessMessage:
    """A frame from a workflow process."""

    child_id: str
    message: dict[str, Any]


@dataclass(frozen=True)
class ProcessDown:
    """A workflow process exited."""

    child_id: str
    reason: str


@dataclass(frozen=True)
class ProcessGaveUp:
    """A workflow process crashed more often than its restart intensity allows."""

    child_id: str
    reason: str


@dataclass(frozen=True)
class WorkerUp:
    """An activity worker (re)started."""

    worker_id: str
    channel: Any


@dataclass(frozen=True)
class WorkerMessage:
    """A frame from an activity worker."""

    worker_id: str
    message: dict[str, Any]


@dataclass(frozen=True)
class WorkerDown:
    """An activity worker exited (its attempt, if any, is lost)."""

    worker_id: str
    reason: str


@dataclass(frozen=True)
class Due:
    """A timer of the core is due: ``key[0]`` says which kind, ``key[1:3]`` the workflow and run."""

    key: tuple[Any, ...]


def run_child_id(run_id: str, workflow_id: str) -> str:
    """The supervisor child id of the process hosting one run."""
    return f"run:{run_id}:{workflow_id}"


def query_child_id(query_id: int, workflow_id: str) -> str:
    """The supervisor child id of a one-off process that replays a closed run to answer a query."""
    return f"query:{query_id}:{workflow_id}"


def parse_child_id(child_id: str) -> tuple[str, str, str]:
    """``(kind, token, workflow_id)`` of a child id made by :func:`run_child_id` or :func:`query_child_id`."""
    kind, token, workflow_id = child_id.split(":", 2)
    return kind, token, workflow_id


class EngineCore(pykka.ThreadingActor):
    """The sequencer of every workflow's history and the dispatcher of its effects."""

    def __init__(
        self,
        store: EventStore,
        recorder: RecorderHandle,
        registry: Registry,
        processes: Processes,
        closures: Closures,
        *,
        cancel_grace: float = 5.0,
    ) -> None:
        super().__init__()
        self._store = store
        self._recorder = recorder
        self._registry = registry
        self._processes = processes
        self._closures = closures
        self._runs: dict[str, Run] = {}
        self._pool = ActivityPool()
        self._timers = TimerService(self._timer_due)
        self._activities = ActivityManager(self._append, self._timers, self._pool, processes, cancel_grace=cancel_grace)
        self._one_off_queries: dict[int, tuple[str, dict[str, Any], pykka.Future[Any]]] = {}

    # -- lifecycle ------------------------------------------------------------------------------------------

    def on_start(self) -> None:
        self._timers.start()

    def on_stop(self) -> None:
        self._timers.stop()

    def recover(self) -> int:
        """Resume every running workflow found in the store; returns how many."""
        count = 0
        for info in list(self._store.running_workflows()):
            history = self._store.read_run(info.workflow_id)
            run = Run.from_history(history)
            self._runs[run.workflow_id] = run
            for timer_id, fire_at in run.timers.items():
                self._timers.arm(fire_at, ("timer", run.workflow_id, run.run_id, timer_id))
            self._activities.recover(run, history)
            self._pump()
            self._processes.start_run_process(run.workflow_type, run_child_id(run.run_id, run.workflow_id))
            count += 1
        return count

    # -- API (asked through the proxy) ----------------------------------------------------------------------

    def start_workflow(
        self, workflow_type: str, workflow_id: str, args: list[Any], options: dict[str, Any]
    ) -> pykka.Future[Any]:
        """Record a new run's ``WorkflowStarted``; the returned future resolves when it is durable."""
        existing = self._runs.get(workflow_id)
        if existing is not None and not existing.closing:
            raise WorkflowAlreadyStartedError(workflow_id, existing.run_id)
        info = self._store.get_run(workflow_id)
        if info is not None and info.is_running:
            raise WorkflowAlreadyStartedError(workflow_id, info.run_id)
        head = self._store.head(workflow_id)
        started = ev.WorkflowStarted(
            workflow_id=workflow_id,
            workflow_type=workflow_type,
            input=args,
            run_id=new_run_id(),
            search_attributes=dict(options.get("search_attributes") or {}),
        )
        run = Run(workflow_id, started.run_id, workflow_type, head=head)
        self._runs[workflow_id] = run
        reply: pykka.Future[Any] = pykka.ThreadingFuture()

        def spawn(_: list[ev.Event]) -> None:
            self._processes.start_run_process(workflow_type, run_child_id(run.run_id, workflow_id))

        self._append(run, [started], then=spawn, reply=reply)
        return reply

    def signal(self, workflow_id: str, name: str, payload: Any) -> pykka.Future[Any]:
        """Record ``SignalReceived``; the future resolves once it is durable (then it is delivered)."""
        run = self._resident(workflow_id)
        reply: pykka.Future[Any] = pykka.ThreadingFuture()
        self._append(run, [ev.SignalReceived(workflow_id=workflow_id, name=name, payload=payload)], reply=reply)
        return reply

    def query(self, workflow_id: str, name: str, args: list[Any]) -> pykka.Future[Any]:
        """Ask the run's process (or a one-off replay of a closed run) to answer query ``name``."""
        reply: pykka.Future[Any] = pykka.ThreadingFuture()
        query_id = next_query_id()
        message = {"t": protocol.QUERY, "id": query_id, "name": name, "args": encode_payload(args)}
        run = self._runs.get(workflow_id)
        if run is not None and not run.closing:
            run.queries[query_id] = reply
            if run.channel is not None:
                self._send(run, message)
            else:
                run.waiting_queries.append((query_id, message))
            return reply
        info = self._store.get_run(workflow_id)
        if info is None:
            raise WorkflowNotFoundError(workflow_id)
        self._one_off_queries[query_id] = (workflow_id, message, reply)
        self._processes.start_query_process(info.workflow_type, query_child_id(query_id, workflow_id))
        return reply

    def resident_count(self) -> int:
        """How many runs the core is working on."""
        return len(self._runs)

    # -- messages -------------------------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        try:
            self._handle(message)
        except Exception:
            # One bad message must not take the sequencer down; the run it concerns is resynced if needed.
            log.exception("engine core failed to handle %r", message)
        return None

    def _handle(self, message: Any) -> None:
        match message:
            case _Appended():
                self._on_appended(message)
            case ProcessUp(child_id=child_id, channel=channel):
                self._on_process_up(child_id, channel)
            case ProcessMessage(child_id=child_id, message=frame):
                self._on_process_message(child_id, frame)
            case ProcessDown(child_id=child_id):
                run = self._run_of_child(child_id)
                if run is not None:
                    run.channel = None
            case ProcessGaveUp(child_id=child_id, reason=reason):
                self._on_gave_up(child_id, reason)
            case WorkerUp(worker_id=worker_id, channel=channel):
                self._pool.worker_up(worker_id, channel)
                self._pump()
            case WorkerMessage(worker_id=worker_id, message=frame):
                self._on_worker_message(worker_id, frame)
            case WorkerDown(worker_id=worker_id, reason=reason):
                lost = self._pool.worker_down(worker_id)
                if lost is not None:
                    log.warning("activity worker %s lost (%s) while running %s", worker_id, reason, lost)
                    self._activities.worker_lost(self._runs.get(lost.workflow_id), lost, reason)
                self._pump()
            case Due(key=key):
                self._on_due(key)

    # -- recording ------------------------------------------------------------------------------------------

    def _append(
        self,
        run: Run,
        events: Sequence[ev.Event],
        *,
        then: Callable[[list[ev.Event]], None] | None = None,
        reply: pykka.Future[Any] | None = None,
    ) -> None:
        expected = run.head
        run.head += len(events)
        workflow_id = run.workflow_id
        actor = self.actor_ref

        def done(stamped: list[ev.Event] | None, error: BaseException | None) -> None:
            actor.tell(_Appended(workflow_id, stamped, error, then, reply))

        self._recorder.append(workflow_id, events, expected, on_done=done)

    def _on_appended(self, message: _Appended) -> None:
        run = self._runs.get(message.workflow_id)
        if message.error is not None or message.events is None:
            error = message.error or AionError("append failed")
            if message.reply is not None:
                message.reply.set_exception((type(error), error, error.__traceback__))
            log.error("append for workflow %s failed: %r", message.workflow_id, error)
            if run is not None:
                self._resync(run)
            return
        if message.then is not None:
            message.then(message.events)
        if message.reply is not None:
            message.reply.set(message.events)
        if run is None:
            return
        for event in message.events:
            self._forward(run, event)
            if event.terminal:
                self._close(run)

    def _forward(self, run: Run, event: ev.Event) -> None:
        """Deliver a recorded event to the run's process unless it has seen it already."""
        if run.channel is None or event.seq <= run.delivered:
            return
        run.delivered = event.seq
        if is_arrival(event):
            self._send(run, protocol.event_message(event))

    def _close(self, run: Run) -> None:
        for timer_id in list(run.timers):
            self._timers.disarm(("timer", run.workflow_id, run.run_id, timer_id))
        self._activities.forget(run)
        for query in run.queries.values():
            query.set_exception((QueryError, QueryError("the run closed before answering"), None))
        if self._runs.get(run.workflow_id) is run:
            del self._runs[run.workflow_id]
        self._closures.notify()

    def _resync(self, run: Run) -> None:
        """After an unexpected append failure, rebuild the run from the store and restart its process."""
        history = self._store.read_run(run.workflow_id)
        fresh = Run.from_history(history)
        run.head, run.issued, run.activities, run.closing = fresh.head, fresh.issued, fresh.activities, fresh.closing
        if run.closing:
            self._close(run)
        self._processes.stop_run_process(run.workflow_type, run_child_id(run.run_id, run.workflow_id))

    # -- workflow processes ---------------------------------------------------------------------------------

    def _run_of_child(self, child_id: str) -> Run | None:
        kind, token, workflow_id = parse_child_id(child_id)
        run = self._runs.get(workflow_id)
        if kind != "run" or run is None or run.run_id != token:
            return None
        return run

    def _on_process_up(self, child_id: str, channel: Any) -> None:
        kind, token, workflow_id = parse_child_id(child_id)
        if kind == "query":
            pending = self._one_off_queries.get(int(token))
            if pending is None:
                channel.send({"t": protocol.STOP})
                return
            channel.send(protocol.run_message(self._store.read_run(workflow_id), once=True))
            channel.send(pending[1])
            return
        run = self._run_of_child(child_id)
        if run is None:
            channel.send({"t": protocol.STOP})
            return
        history = self._store.read_run(workflow_id)
        run.channel = channel
        run.delivered = history[-1].seq
        self._send(run, protocol.run_message(history))
        for _, message in run.waiting_queries:
            self._send(run, message)
        run.waiting_queries.clear()

    @staticmethod
    def _send(run: Run, message: dict[str, Any]) -> None:
        """Send to the run's process; if it just died, forget it: its restart is sent the history anew."""
        try:
            run.channel.send(message)
        except ChannelClosedError:
            run.channel = None

    def _on_process_message(self, child_id: str, message: dict[str, Any]) -> None:
        kind = message.get("t")
        child_kind, token, _ = parse_child_id(child_id)
        if child_kind == "query":
            pending = self._one_off_queries.pop(int(token), None)
            if kind == protocol.ANSWER and pending is not None:
                _resolve_query(pending[2], message)
            return
        run = self._run_of_child(child_id)
        if run is None:
            return
        if kind == protocol.COMMANDS:
            for command in protocol.decode_commands(message):
                self._on_command(run, command)
        elif kind == protocol.ANSWER:
            reply = run.queries.pop(message["id"], None)
            if reply is not None:
                _resolve_query(reply, message)
        elif kind == protocol.DIVERGED:
            self._fail_run(run, protocol.decode_failure(message))

    def _on_gave_up(self, child_id: str, reason: str) -> None:
        kind, token, _ = parse_child_id(child_id)
        if kind == "query":
            pending = self._one_off_queries.pop(int(token), None)
            if pending is not None:
                error = QueryError(f"the replay to answer the query crashed: {reason}")
                pending[2].set_exception((QueryError, error, None))
            return
        run = self._run_of_child(child_id)
        if run is not None:
            failure = ev.Failure(
                type="WorkflowProcessCrashed",
                message=f"the workflow process crashed more often than its restart intensity allows; last: {reason}",
            )
            self._fail_run(run, failure)

    def _fail_run(self, run: Run, failure: ev.Failure) -> None:
        if run.closing:
            return
        run.closing = True
        self._append(run, [ev.WorkflowFailed(workflow_id=run.workflow_id, failure=failure)])

    # -- commands -------------------------------------------------------------------------------------------

    def _on_command(self, run: Run, command: Command) -> None:
        if run.closing:
            return
        key = command.key
        if key in run.issued and not isinstance(command, CompleteWorkflow | FailWorkflow):
            return  # issued already (by an earlier incarnation of the process): never twice
        run.issued.add(key)
        wf = run.workflow_id
        match command:
            case ScheduleActivity(activity_id=aid, activity_type=name, args=args, options=options):
                activity = PendingActivity(aid, name, args, options)
                run.activities[aid] = activity
                scheduled = ev.ActivityScheduled(
                    workflow_id=wf, activity_id=aid, activity_type=name, input=args, options=options
                )

                def dispatch(stamped: list[ev.Event]) -> None:
                    self._activities.scheduled(run, activity, stamped[0].recorded_at)
                    self._pump()

                self._append(run, [scheduled], then=dispatch)
            case RequestCancelActivity(activity_id=aid):
                if aid in run.activities:

                    def cancel(_: list[ev.Event]) -> None:
                        self._activities.cancel(run, aid)
                        self._pump()

                    requested = ev.ActivityCancelRequested(workflow_id=wf, activity_id=aid)
                    self._append(run, [requested], then=cancel)
            case StartTimer(timer_id=tid, seconds=seconds):
                fire_at = datetime.now(UTC) + timedelta(seconds=seconds)
                run.timers[tid] = fire_at.timestamp()
                started = ev.TimerStarted(workflow_id=wf, timer_id=tid, fire_at=fire_at)
                key_ = ("timer", wf, run.run_id, tid)
                self._append(run, [started], then=lambda _: self._timers.arm(fire_at.timestamp(), key_))
            case CancelTimer(timer_id=tid):
                if run.timers.pop(tid, None) is not None:
                    self._timers.disarm(("timer", wf, run.run_id, tid))
                    self._append(run, [ev.TimerCancelled(workflow_id=wf, timer_id=tid)])
            case CompleteWorkflow(result=result):
                try:
                    check_payload(result, path="workflow result")
                except PayloadError as error:
                    self._fail_run(run, ev.Failure(type(error).__name__, str(error)))
                    return
                run.closing = True
                self._append(run, [ev.WorkflowCompleted(workflow_id=wf, result=result)])
            case FailWorkflow(failure=failure):
                self._fail_run(run, failure)

    # -- activities ---------------------------------------------------------------------------------------

    def _pump(self) -> None:
        """Hand queued attempts to idle workers."""
        for worker_id, worker_channel, task in self._pool.assignments():
            # A worker that just died drops the task here; its WorkerDown reports the attempt lost.
            with contextlib.suppress(ChannelClosedError):
                worker_channel.send(task.message())
            self._activities.assigned(self._runs.get(task.workflow_id), worker_id, task)

    def _on_worker_message(self, worker_id: str, message: dict[str, Any]) -> None:
        kind = message.get("t")
        if kind == protocol.RESULT:
            task = self._pool.finished(worker_id)
            if task is not None and task.task_id == message.get("task"):
                self._activities.result(self._runs.get(task.workflow_id), task, message)
            self._pump()
        elif kind == protocol.HEARTBEAT:
            task = self._pool.task_of(worker_id)
            if task is not None and task.task_id == message.get("task"):
                details = decode_payload(message["details"])
                self._activities.heartbeat(self._runs.get(task.workflow_id), task, details)

    # -- timers ---------------------------------------------------------------------------------------------

    def _timer_due(self, key: tuple[Any, ...]) -> None:
        """Called on the timer thread: hand over to the actor."""
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(Due(key))

    def _on_due(self, key: tuple[Any, ...]) -> None:
        kind, workflow_id, run_id = key[0], key[1], key[2]
        run = self._runs.get(workflow_id)
        if run is None or run.run_id != run_id or run.closing:
            return
        if kind == "timer":
            timer_id = key[3]
            if run.timers.pop(timer_id, None) is not None:
                self._append(run, [ev.TimerFired(workflow_id=workflow_id, timer_id=timer_id)])
            return
        self._activities.due(run, key)
        self._pump()

    def _resident(self, workflow_id: str) -> Run:
        run = self._runs.get(workflow_id)
        if run is not None and not run.closing:
            return run
        info = self._store.get_run(workflow_id)
        if info is None:
            raise WorkflowNotFoundError(workflow_id)
        raise WorkflowNotRunningError(f"workflow {workflow_id!r} is {info.status.value}: it takes no signals")


def _resolve_query(reply: pykka.Future[Any], message: dict[str, Any]) -> None:
    if message.get("ok"):
        reply.set(decode_payload(message["value"]))
    else:
        error = QueryError(message.get("error", "query failed"))
        reply.set_exception((QueryError, error, None))
