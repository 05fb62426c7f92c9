"""The soak's end-of-run checks, over the store (opened read-only once the last engine stopped) and the execution log.

Per planned workflow (top-level and children):

* **O. Outcome.** Its current run is closed with the planned status; a completed run's ``WorkflowCompleted.result``
  equals the planned result, a failed run's ``WorkflowFailed.failure.type`` the planned type.
* **H. History.** Sequence numbers are exactly ``1..n`` and the run record's ``head_seq`` is ``n``; every run (the
  slice from one ``WorkflowStarted`` to the next) has exactly one terminal event, and it is the run's last event;
  the number of runs is the planned one (``looper``: its continue-as-new count; otherwise 1).
* **S. Status projection.** ``aion.status.status_of_run`` over each run's events gives ``continued_as_new`` for
  every run but the last, and for the last exactly the store's run record status
  (``store.get_run(id).status``); the record's ``run_id``, ``run_first_seq`` and ``run_number`` match the last run.
* **A. Activities, per run.** Each activity ordinal has one ``ActivityScheduled`` and at most one outcome
  (``ActivityCompleted``, ``ActivityCancelled``, or a final ``ActivityFailed``: one without ``next_attempt_at``),
  and no event of that activity follows its outcome (nothing was started, failed or completed again after it).
* **T. Timers, per run.** Each timer has one ``TimerStarted`` and at most one of ``TimerFired`` / ``TimerCancelled``
  (never both, never twice); every timer of a completed ``sleeper`` / ``looper`` run fired or was cancelled.
* **G. Signals and cancellation.** A ``signals`` workflow received exactly the planned ``item`` payloads, each once,
  in the planned order; a ``cancellable`` workflow has exactly one ``WorkflowCancelRequested``, the others none.
* **K. Children.** A parent recorded ``ChildWorkflowStarted`` exactly once per planned child, in order, and one
  outcome event per child; each child's only run names its parent.
* **Z.** The store holds exactly the planned workflow ids.

**E. Execution log.** Every activity execution appends ``start`` when it begins and ``done`` right before it returns
a result (``workflow_id run_id activity_id attempt time_ns pid``, fsynced). Under SIGKILLs an activity legitimately
runs more than once (at-least-once): an attempt killed mid-run has a ``start`` and no ``done``; an attempt that
finished but whose worker or engine was killed before its result was recorded has a ``done`` too, and runs again;
after an engine kill even the same attempt number can run twice (the new engine re-dispatches an attempt whose
``ActivityStarted`` never became durable). So "an activity whose completion was recorded ran once" is checked as:
for every ``ActivityCompleted(workflow, run, activity, attempt=A)`` recorded at ``T``,

* **E1** the log has a ``done`` line for that activity with attempt ``A`` (the recorded result comes from an
  execution that really ran to its end), and
* **E2** every ``start`` and ``done`` line of that activity is earlier than ``T`` (no execution began, or was
  still running, once the completion was durable: completed work never runs again, whatever was killed after).

``T`` is the store's ``recorded_at`` and the log's ``time_ns`` is ``time.time_ns()``: the same clock, and a
legitimate execution happens-before the completion is stamped (start < done < result message < stamp), so E2 has
no false positives (``recorded_at`` has microsecond resolution, so a line counts as later from ``T`` + 1 µs).
Also **E3**: every logged execution belongs to an activity scheduled in that run (no phantom executions).
``done`` lines beyond the recorded one are *lost completions*, legal and counted in the stats.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aion import events as ev
from aion.status import WorkflowStatus, split_runs, status_of_run
from aion.store import open_store
from tests.chaos.plan import Plan, PlannedWorkflow

Key = tuple[str, str, int]  # workflow_id, run_id, activity_id
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class CheckResult:
    failures: list[str] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)


@dataclass
class _Log:
    starts: dict[Key, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))
    dones: dict[Key, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))


def read_log(path: Path) -> _Log:
    log = _Log()
    if not path.exists():
        return log
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 7 or parts[0] not in ("start", "done"):
            raise ValueError(f"{path}:{number}: malformed execution log line {line!r}")
        what, wid, run_id, aid, attempt, t_ns, _pid = parts
        table = log.starts if what == "start" else log.dones
        table[(wid, run_id, int(aid))].append((int(attempt), int(t_ns)))
    return log


def _ns(event: ev.Event) -> int:
    """``recorded_at`` in ns since the epoch, exactly (it has microsecond resolution)."""
    return (event.recorded_at - _EPOCH) // timedelta(microseconds=1) * 1000


def check(plan: Plan, data: Path) -> CheckResult:
    result = CheckResult()
    log = read_log(Path(plan.log))
    scheduled: set[Key] = set()
    store = open_store(data, readonly=True)
    try:
        for planned in plan.workflows:
            _check_workflow(store, planned, log=log, scheduled=scheduled, result=result)
        stored = {info.workflow_id for info in store.list_workflows()}
        planned_ids = {w.workflow_id for w in plan.workflows}
        if stored != planned_ids:
            result.failures.append(
                f"Z: store holds {sorted(stored - planned_ids)} not planned, misses {sorted(planned_ids - stored)}"
            )
    finally:
        store.close()
    for key in sorted(set(log.starts) | set(log.dones)):
        if key not in scheduled:
            result.failures.append(f"E3: executions logged for {key} which no history schedules")
    result.stats["executions"] = sum(len(v) for v in log.starts.values())
    result.stats["done_lines"] = sum(len(v) for v in log.dones.values())
    result.stats["lost_completions"] = result.stats["done_lines"] - result.stats["recorded_completions"]
    return result


def _check_workflow(
    store: Any, planned: PlannedWorkflow, *, log: _Log, scheduled: set[Key], result: CheckResult
) -> None:
    wid, expected = planned.workflow_id, planned.expected
    fail = result.failures.append
    info = store.get_run(wid)
    if info is None:
        fail(f"O: {wid} was never started")
        return
    history: list[ev.Event] = store.read_history(wid)
    result.stats["events"] += len(history)
    # H: gapless, one terminal event per run, as many runs as planned.
    seqs = [e.seq for e in history]
    if seqs != list(range(1, len(history) + 1)):
        fail(f"H: {wid} history is not gapless from 1: {seqs}")
    if info.head_seq != len(history):
        fail(f"H: {wid} run record head_seq {info.head_seq} but the history has {len(history)} events")
    try:
        runs = split_runs(history)
    except ValueError as error:
        fail(f"H: {wid}: {error}")
        return
    result.stats["runs"] += len(runs)
    statuses: list[WorkflowStatus | None] = []
    for run in runs:
        terminals = [e for e in run if e.terminal]
        if len(terminals) != 1 or run[-1] is not terminals[0]:
            fail(
                f"H: {wid} run {run[0].run_id} has terminal events {[(e.type, e.seq) for e in terminals]} "  # type: ignore[attr-defined]
                f"(its last event is {run[-1].type} at seq {run[-1].seq})"
            )
        try:
            statuses.append(status_of_run(run))
        except ValueError as error:
            fail(f"S: {wid}: {error}")
            statuses.append(None)
    if len(runs) != expected.runs:
        fail(f"H: {wid} has {len(runs)} runs, planned {expected.runs}")
    # S: the projection agrees with the run record.
    if any(s is not WorkflowStatus.CONTINUED_AS_NEW for s in statuses[:-1]):
        fail(f"S: {wid} earlier runs have statuses {statuses[:-1]}, expected all continued_as_new")
    last = runs[-1]
    started = last[0]
    assert isinstance(started, ev.WorkflowStarted)
    if statuses[-1] != info.status:
        fail(f"S: {wid} status_of_run gives {statuses[-1]} but the run record says {info.status}")
    if (info.run_id, info.run_first_seq, info.run_number) != (started.run_id, started.seq, len(runs)):
        fail(
            f"S: {wid} run record (run_id, run_first_seq, run_number) = "
            f"{(info.run_id, info.run_first_seq, info.run_number)}, history says "
            f"{(started.run_id, started.seq, len(runs))}"
        )
    # O: the planned outcome.
    _check_outcome(wid, expected, info.status, last[-1], fail)
    # A, T, E per run.
    for run in runs:
        run_id = run[0].run_id  # type: ignore[attr-defined]
        _check_activities(wid, run_id, run, log=log, scheduled=scheduled, result=result)
        _check_timers(wid, run_id, run, planned.workflow_type, fail)
    # G: signals and cancellation.
    items = [e.payload for e in history if isinstance(e, ev.SignalReceived) and e.name == "item"]
    if items != expected.signals:
        fail(f"G: {wid} received item signals {items}, planned {expected.signals}")
    cancels = sum(isinstance(e, ev.WorkflowCancelRequested) for e in history)
    if cancels != int(expected.cancel_requested):
        fail(f"G: {wid} has {cancels} WorkflowCancelRequested, planned {int(expected.cancel_requested)}")
    # K: children.
    kids = [e for e in history if isinstance(e, ev.ChildWorkflowStarted)]
    if [k.child_workflow_id for k in kids] != expected.children:
        fail(f"K: {wid} started children {[k.child_workflow_id for k in kids]}, planned {expected.children}")
    outcomes = Counter(
        e.child_id
        for e in history
        if isinstance(e, ev.ChildWorkflowCompleted | ev.ChildWorkflowFailed | ev.ChildWorkflowCancelled)
    )
    if any(n != 1 for n in outcomes.values()) or len(outcomes) != len(kids):
        fail(f"K: {wid} child outcome events per child {dict(outcomes)} for {len(kids)} children")
    if planned.start_at is None:  # a child: it names its parent
        parent_id = wid.rsplit(".", 1)[0]
        if started.parent_workflow_id != parent_id:
            fail(f"K: child {wid} names parent {started.parent_workflow_id!r}, expected {parent_id!r}")


def _check_outcome(wid: str, expected: Any, status: WorkflowStatus, terminal: ev.Event, fail: Any) -> None:
    if status.value != expected.status:
        detail = ""
        if isinstance(terminal, ev.WorkflowFailed):
            detail = f" ({terminal.failure.type}: {terminal.failure.message})"
        fail(f"O: {wid} ended {status.value}{detail}, planned {expected.status}")
        return
    if isinstance(terminal, ev.WorkflowCompleted) and _plain(terminal.result) != _plain(expected.result):
        fail(f"O: {wid} returned {terminal.result!r}, planned {expected.result!r}")
    if isinstance(terminal, ev.WorkflowFailed) and terminal.failure.type != expected.failure_type:
        fail(f"O: {wid} failed with {terminal.failure.type}, planned {expected.failure_type}")


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _check_activities(
    wid: str, run_id: str, run: list[ev.Event], *, log: _Log, scheduled: set[Key], result: CheckResult
) -> None:
    fail = result.failures.append
    schedules: Counter[int] = Counter()
    outcome_at: dict[int, ev.Event] = {}
    for event in run:
        aid = getattr(event, "activity_id", None)
        if aid is None:
            continue
        if isinstance(event, ev.ActivityScheduled):
            schedules[aid] += 1
            scheduled.add((wid, run_id, aid))
        if aid in outcome_at:
            fail(
                f"A: {wid} run {run_id[:8]} activity {aid}: {event.type} at seq {event.seq} after its outcome "
                f"{outcome_at[aid].type} at seq {outcome_at[aid].seq}"
            )
        final = isinstance(event, ev.ActivityCompleted | ev.ActivityCancelled) or (
            isinstance(event, ev.ActivityFailed) and event.next_attempt_at is None
        )
        if final:
            outcome_at[aid] = event
        if isinstance(event, ev.ActivityCompleted):
            result.stats["recorded_completions"] += 1
            _check_executions(wid, run_id, event, log, fail)
        elif isinstance(event, ev.ActivityFailed) and event.failure.type == "WorkerLost":
            result.stats["worker_lost_attempts"] += 1
    for aid, count in schedules.items():
        if count != 1:
            fail(f"A: {wid} run {run_id[:8]} activity {aid} scheduled {count} times")


def _check_executions(wid: str, run_id: str, completed: ev.ActivityCompleted, log: _Log, fail: Any) -> None:
    key = (wid, run_id, completed.activity_id)
    recorded = _ns(completed)
    if not any(attempt == completed.attempt for attempt, _ in log.dones.get(key, ())):
        fail(
            f"E1: {key} completion recorded for attempt {completed.attempt} but the log has no such done line "
            f"(done: {log.dones.get(key)}, start: {log.starts.get(key)})"
        )
    for what, table in (("start", log.starts), ("done", log.dones)):
        late = [(a, t) for a, t in table.get(key, ()) if t >= recorded + 1000]
        if late:
            fail(
                f"E2: {key} completion recorded at {recorded} (seq {completed.seq}, attempt {completed.attempt}) "
                f"but executions logged {what} after it: {late}"
            )


def _check_timers(wid: str, run_id: str, run: list[ev.Event], workflow_type: str, fail: Any) -> None:
    started: Counter[int] = Counter()
    ended: dict[int, ev.Event] = {}
    for event in run:
        if isinstance(event, ev.TimerStarted):
            started[event.timer_id] += 1
        elif isinstance(event, ev.TimerFired | ev.TimerCancelled):
            if event.timer_id in ended:
                fail(
                    f"T: {wid} run {run_id[:8]} timer {event.timer_id}: {event.type} at seq {event.seq} after "
                    f"{ended[event.timer_id].type} at seq {ended[event.timer_id].seq}"
                )
            ended[event.timer_id] = event
    for timer_id, count in started.items():
        if count != 1:
            fail(f"T: {wid} run {run_id[:8]} timer {timer_id} started {count} times")
    completed = bool(run) and isinstance(run[-1], ev.WorkflowCompleted | ev.WorkflowContinuedAsNew)
    if completed and workflow_type in ("sleeper", "looper") and set(started) != set(ended):
        fail(f"T: {wid} run {run_id[:8]} timers {sorted(started)} but only {sorted(ended)} fired or were cancelled")
