"""The schedule service: an actor of its own (its own thread and timer service, on the engine's clock) that fires
every schedule and records what each fire did.

* **State** is each schedule's history (``aion.store.ScheduleAppend``), rebuilt with
  :meth:`ScheduleState.from_history` on start; the service is the only writer of schedule histories, so it knows
  each head.
* **Exactly once.** A fire that starts a workflow is a :class:`~aion.engine._messages.StartScheduled` request to
  the engine core, carrying the schedule's ``ScheduleFired``: the core records it in the same transaction as the
  run's ``WorkflowStarted`` (deterministic workflow id ``<schedule_id>-<fire time>``). Every other outcome of a fire
  (buffered, skipped, missed) is one schedule append. The schedule's position in its spec moves only with those
  records, so after a crash at any instant each fire is either recorded (and not repeated) or not (and taken up).
* **Never blocks the core.** The service tells the core and hears back through the request's reply (a future that
  tells the service when set); at most one append per schedule is on its way, and whatever else concerns that
  schedule waits its turn (``_Slot.deferred``). Runs closing are heard from the engine's ``Closures``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pykka

from aion import events as ev
from aion._ids import new_run_id
from aion.clock import Clock
from aion.engine._closures import Closures
from aion.engine._messages import CancelWorkflowRequest, StartScheduled, StartScheduledMany, TerminateWorkflow
from aion.engine._options import StartOptions
from aion.engine._timers import TimerService
from aion.observability._schedules import ScheduleObserver
from aion.recorder import RecorderHandle
from aion.schedules._messages import Call, Closed, Due, Started, StartNotifier
from aion.schedules._spec import Overlap, fire_id
from aion.schedules._state import ScheduleState
from aion.store import EventStore, ScheduleAppend

log = logging.getLogger(__name__)

_FAILED = (ev.WorkflowFailed, ev.WorkflowTimedOut, ev.WorkflowTerminated)


@dataclass
class _Slot:
    """The service's working memory of one schedule."""

    state: ScheduleState
    #: A fire's start is on its way to the core.
    busy: bool = False
    deferred: deque[Callable[[], None]] = field(default_factory=deque)
    #: Workflows it started that are still running.
    running: set[str] = field(default_factory=set)
    #: Manual fires (trigger, backfill) waiting their turn: ``(fire_at, manual, overlap, reply)``.
    manual: deque[tuple[datetime, str, Overlap, pykka.Future[Any] | None]] = field(default_factory=deque)


class ScheduleService(pykka.ThreadingActor):
    """Fires the schedules of one engine (see the module docstring)."""

    def __init__(
        self,
        store: EventStore,
        recorder: RecorderHandle,
        core: pykka.ActorRef[Any],
        clock: Clock,
        closures: Closures,
        *,
        observer: ScheduleObserver | None = None,
    ) -> None:
        super().__init__()
        self._observer = observer if observer is not None else ScheduleObserver(None)
        self._store = store
        self._recorder = recorder
        self._core = core
        self._clock = clock
        self._closures = closures
        self._slots: dict[str, _Slot] = {}
        #: workflow id -> the schedule that started it (while it runs).
        self._owners: dict[str, str] = {}
        self._timers = TimerService(self._timer_due, clock)
        #: Schedule ids the timer thread found due, taken all at once by one ``Due`` (see ``_timer_due``).
        self._due: list[str] = []
        self._due_lock = threading.Lock()
        #: Starts decided while handling one message, told to the core together when it is handled.
        self._outbox: list[StartScheduled] = []
        self._starting = 0
        #: The API's reply futures of manual fires whose start is on its way.
        self._pending_replies: dict[tuple[str, str], pykka.Future[Any] | None] = {}
        #: Messages handled so far: two quiescence reads with only the second one handled between them bracket
        #: a moment in which the service did nothing (see ``ActorSystem.quiescence``).
        self._messages_handled = 0

    # -- actor ----------------------------------------------------------------------------------------------

    def on_start(self) -> None:
        self._closures.listen(self._closed_listener)
        for schedule_id in self._store.schedule_ids():
            state = ScheduleState.from_history(self._store.read_schedule(schedule_id))
            if state is None or state.deleted:
                continue
            slot = _Slot(state)
            self._slots[schedule_id] = slot
            for action in state.actions:
                info = self._store.get_run(action.workflow_id)
                if info is not None and info.is_running:
                    slot.running.add(action.workflow_id)
                    self._owners[action.workflow_id] = schedule_id
            self._consider(slot)
        self._send_starts()
        self._timers.start()

    def on_stop(self) -> None:
        self._closures.unlisten(self._closed_listener)
        self._timers.stop()

    def on_receive(self, message: Any) -> Any:
        self._messages_handled += 1
        try:
            if isinstance(message, Call):
                self._on_call(message)
            elif isinstance(message, Due):
                with self._due_lock:
                    due, self._due = self._due, []
                for schedule_id in due:
                    self._timers.handled()
                    slot = self._slots.get(schedule_id)
                    if slot is not None:
                        self._consider(slot)  # a busy schedule looks again when its start lands
            elif isinstance(message, Started):
                self._on_started(message)
            elif isinstance(message, Closed):
                self._on_closed(message)
        except Exception:
            log.exception("the schedule service failed to handle %r", message)
        finally:
            self._send_starts()
        return None

    def _timer_due(self, key: Any) -> None:
        # A burst of fires due at once (a hundred schedules on the same second) becomes one message here, and
        # one StartScheduledMany to the core: the recorder then commits them in one transaction.
        with self._due_lock:
            self._due.append(key)
            wake = len(self._due) == 1
        if wake:
            with contextlib.suppress(pykka.ActorDeadError):
                self.actor_ref.tell(Due())

    def _send_starts(self) -> None:
        outbox = self._outbox
        if not outbox:
            return
        self._outbox = []
        self._core.tell(outbox[0] if len(outbox) == 1 else StartScheduledMany(tuple(outbox)))

    def _closed_listener(self, workflow_id: str, terminal: ev.Event) -> None:
        if workflow_id in self._owners and not isinstance(terminal, ev.WorkflowContinuedAsNew):
            with contextlib.suppress(pykka.ActorDeadError):
                self.actor_ref.tell(Closed(workflow_id, terminal))

    # -- what the API asks ----------------------------------------------------------------------------------

    def _on_call(self, call: Call) -> None:
        def run() -> None:
            try:
                call.reply.set(call.action(self))
            except BaseException as error:  # the caller gets it
                call.reply.set_exception((type(error), error, error.__traceback__))

        def run_and_consider() -> None:
            run()
            slot = self._slots.get(call.schedule_id) if call.schedule_id is not None else None
            if slot is not None:
                self._consider(slot)

        slot = self._slots.get(call.schedule_id) if call.schedule_id is not None else None
        if slot is None:
            run_and_consider()
        else:
            self._when_idle(slot, run_and_consider)

    def now(self) -> datetime:
        """The engine clock's now."""
        return self._clock.now()

    def slots(self) -> list[_Slot]:
        """The live schedules, by id."""
        return [self._slots[sid] for sid in sorted(self._slots)]

    def tree_node(self) -> dict[str, Any]:
        """The service's node in the supervision tree, a child per schedule."""
        pid = os.getpid()
        children = []
        for slot in self.slots():
            state = slot.state
            nxt = None if state.paused or state.cursor is None else state.spec.next_after(state.cursor)
            children.append(
                {
                    "id": f"schedule:{state.schedule_id}",
                    "kind": "schedule",
                    "pid": pid,
                    "state": "paused" if state.paused else ("buffering" if state.buffer else "active"),
                    "meta": {
                        "schedule_id": state.schedule_id,
                        "workflow_type": state.workflow_type,
                        "next_fire": None if nxt is None else nxt.isoformat(),
                        "running": sorted(slot.running),
                        "fired": state.fired,
                        "skipped": state.skipped,
                        "missed": state.missed,
                    },
                    "children": [],
                }
            )
        return {
            "id": "schedules",
            "kind": "service",
            "pid": pid,
            "state": "running",
            "meta": {"schedules": len(children)},
            "children": children,
        }

    def slot(self, schedule_id: str) -> _Slot | None:
        """The live schedule ``schedule_id`` (not deleted), if any."""
        return self._slots.get(schedule_id)

    def record(self, schedule_id: str, events: list[ev.ScheduleEvent], head: int) -> list[ev.Event]:
        """Append ``events`` to the schedule's history (waiting until durable) and move its state."""
        future = self._recorder.append_batch([ScheduleAppend(schedule_id, events, head)], atomic=True)
        stamped = future.get()[0]
        assert isinstance(stamped, list)
        slot = self._slots.get(schedule_id)
        if slot is not None:
            self._observer.recorded(schedule_id, slot.state.workflow_type, stamped)
        for event in stamped:
            if isinstance(event, ev.ScheduleCreated):
                slot = self._slots[schedule_id] = _Slot(ScheduleState.created(event))
            elif slot is not None:
                slot.state.apply(event)
        if slot is not None and slot.state.deleted:
            del self._slots[schedule_id]
            self._timers.disarm(schedule_id)
        return stamped

    def enqueue_manual(
        self, slot: _Slot, fire_at: datetime, manual: str, overlap: Overlap, reply: pykka.Future[Any] | None
    ) -> None:
        """Queue a manual fire (trigger, backfill); it is handled in turn, ``reply`` gets its outcome event."""
        slot.manual.append((fire_at, manual, overlap, reply))

    def quiescence(self) -> tuple[bool, float | None, int]:
        """Whether nothing is on its way (every due fire handled, no start in flight), the next due time, and
        how many messages the service has handled (this one included)."""
        settled = (
            self._timers.settled()
            and not self._starting
            and not any(slot.busy or slot.deferred or slot.manual for slot in self._slots.values())
        )
        return settled, self._timers.next_due(), self._messages_handled

    # -- firing ---------------------------------------------------------------------------------------------

    def _when_idle(self, slot: _Slot, action: Callable[[], None]) -> None:
        if slot.busy:
            slot.deferred.append(action)
        else:
            action()

    def _idle(self, slot: _Slot) -> None:
        """The schedule's append landed: run what waited for it, then look at the schedule again."""
        while slot.deferred and not slot.busy:
            slot.deferred.popleft()()
        self._consider(slot)

    def _consider(self, slot: _Slot) -> None:
        """Do the schedule's next things, until a start is on its way or nothing is due (then arm its timer)."""
        while self._slots.get(slot.state.schedule_id) is slot and self._step(slot):
            pass

    def _step(self, slot: _Slot) -> bool:
        """Do the schedule's next thing (one append at most); True when it was recorded and there may be more."""
        if slot.busy or slot.state.deleted:
            return False
        state = slot.state
        if slot.manual:
            fire_at, manual, overlap, reply = slot.manual.popleft()
            self._fire(slot, fire_at, manual, overlap, reply)
            return True
        if state.buffer and not slot.running:
            fire_at, buffered_manual = state.buffer[0]
            self._start(slot, fire_at, buffered_manual)
            return True
        if state.paused or state.cursor is None:
            self._timers.disarm(state.schedule_id)
            return False
        now = self._clock.now()
        spec = state.spec
        nxt = spec.next_after(state.cursor)
        if nxt is None:
            self._timers.disarm(state.schedule_id)
            return False
        due_at = nxt + timedelta(seconds=spec.jitter_of(state.schedule_id, nxt))
        if due_at > now:
            self._timers.arm(due_at.timestamp(), state.schedule_id)
            return False
        window = timedelta(seconds=state.policy.catchup_window)
        if nxt < now - window:
            missed = list(spec.fire_times(state.cursor, until=now - window))
            if missed:
                self.record(
                    state.schedule_id,
                    [ev.ScheduleMissed(workflow_id=state.schedule_id, count=len(missed), up_to=missed[-1])],
                    state.head,
                )
                return True
        self._observer.late(state.workflow_type, (now - due_at).total_seconds())
        self._fire(slot, nxt, None, state.policy.overlap, None)
        return True

    def _fire(
        self, slot: _Slot, fire_at: datetime, manual: str | None, overlap: Overlap, reply: pykka.Future[Any] | None
    ) -> None:
        state = slot.state
        sid = state.schedule_id
        outcome: list[ev.ScheduleEvent] = []
        if slot.running and overlap is not Overlap.ALLOW_ALL:
            if overlap is Overlap.SKIP:
                outcome = [ev.ScheduleSkipped(workflow_id=sid, fire_at=fire_at, reason="overlap", manual=manual)]
            elif overlap is Overlap.TERMINATE_OTHER:
                for workflow_id in sorted(slot.running):
                    self._core.tell(TerminateWorkflow(workflow_id, f"schedule {sid}: overlap policy TERMINATE_OTHER"))
            elif overlap is Overlap.BUFFER_ALL or not state.buffer:
                if overlap is Overlap.CANCEL_OTHER:
                    for workflow_id in sorted(slot.running):
                        self._core.tell(CancelWorkflowRequest(workflow_id, f"schedule {sid}: overlap CANCEL_OTHER"))
                outcome = [ev.ScheduleBuffered(workflow_id=sid, fire_at=fire_at, manual=manual)]
            else:
                outcome = [ev.ScheduleSkipped(workflow_id=sid, fire_at=fire_at, reason="buffer_full", manual=manual)]
        if outcome:
            stamped = self.record(sid, outcome, state.head)
            if reply is not None:
                reply.set(stamped[0])
            return
        self._start(slot, fire_at, manual, reply)

    def _start(
        self, slot: _Slot, fire_at: datetime, manual: str | None, reply: pykka.Future[Any] | None = None
    ) -> None:
        state = slot.state
        sid = state.schedule_id
        workflow_id = fire_id(sid, fire_at)
        if self._store.get_run(workflow_id) is not None:
            stamped = self.record(
                sid, [ev.ScheduleSkipped(workflow_id=sid, fire_at=fire_at, reason="exists", manual=manual)], state.head
            )
            if reply is not None:
                reply.set(stamped[0])
            return
        run_id = new_run_id()
        fired = ev.ScheduleFired(
            workflow_id=sid, fire_at=fire_at, started_workflow_id=workflow_id, run_id=run_id, manual=manual
        )
        options = StartOptions(search_attributes=dict(state.search_attributes))
        notify = StartNotifier(self.actor_ref.tell, sid, fired)
        slot.busy = True
        self._starting += 1
        self._pending_replies[(sid, workflow_id)] = reply
        self._outbox.append(
            StartScheduled(
                state.workflow_type,
                workflow_id,
                list(state.args),
                options,
                run_id,
                ScheduleAppend(sid, [fired], state.head),
                reply=notify,
            )
        )

    def _on_started(self, message: Started) -> None:
        self._starting -= 1
        slot = self._slots.get(message.schedule_id)
        fired = message.fired
        reply = self._pending_replies.pop((message.schedule_id, fired.started_workflow_id), None)
        if slot is None:
            return
        slot.busy = False
        if message.error is None:
            # Recorded with the run's WorkflowStarted: the schedule's head moved by one.
            stamped = ev.ScheduleFired(
                workflow_id=fired.workflow_id,
                fire_at=fired.fire_at,
                started_workflow_id=fired.started_workflow_id,
                run_id=fired.run_id,
                manual=fired.manual,
                seq=slot.state.head + 1,
                recorded_at=message.recorded_at or self._clock.now(),
            )
            slot.state.apply(stamped)
            self._observer.fired(message.schedule_id, slot.state.workflow_type, stamped)
            slot.running.add(fired.started_workflow_id)
            self._owners[fired.started_workflow_id] = message.schedule_id
            if reply is not None:
                reply.set(stamped)
        else:
            log.warning(
                "schedule %s: the start of %s failed: %r", message.schedule_id, fired.started_workflow_id, message.error
            )
            skipped = self.record(
                message.schedule_id,
                [
                    ev.ScheduleSkipped(
                        workflow_id=message.schedule_id,
                        fire_at=fired.fire_at,
                        reason="start_failed",
                        detail=str(message.error),
                        manual=fired.manual,
                    )
                ],
                slot.state.head,
            )
            if reply is not None:
                reply.set(skipped[0])
        self._idle(slot)

    def _on_closed(self, message: Closed) -> None:
        schedule_id = self._owners.pop(message.workflow_id, None)
        slot = self._slots.get(schedule_id) if schedule_id is not None else None
        if slot is None:
            return
        slot.running.discard(message.workflow_id)

        def after() -> None:
            state = slot.state
            if state.policy.pause_on_failure and isinstance(message.terminal, _FAILED) and not state.paused:
                note = f"paused on failure of {message.workflow_id} ({message.terminal.type})"
                self.record(
                    state.schedule_id, [ev.SchedulePaused(workflow_id=state.schedule_id, note=note)], state.head
                )
            self._consider(slot)

        self._when_idle(slot, after)
