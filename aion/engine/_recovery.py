"""Rebuilding runs from their histories: after an engine restart (recovery), and after a failed append (resync).

Recovery resumes the running workflows found in the store in small batches between the core's other messages, so
the first resumed workflows make progress while the rest load; a run not resumed yet is resumed at once when
anything needs it (``Core.live``). Resuming a run re-arms its timers, takes its activities up where history left
them, gives it a process, and repairs what a crash between two writes left half done. Open runs include blocked
and paused ones: a paused run gets no process; a blocked one is tried again if this engine has its type and
version (``Holds``), and ``unblock`` tries blocked runs again on request. A resync rebuilds a run
whose append failed the same way, with a new process: its old one has run ahead of its history.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import NamedTuple

from aion import events as ev
from aion.engine._activity_manager import ActivityManager
from aion.engine._holds import Holds
from aion.engine._interfaces import Core
from aion.engine._lifecycle import RunLifecycle
from aion.engine._messages import RecoverMore
from aion.engine._process_links import ProcessLinks
from aion.engine._registry import Registry
from aion.engine._relations import Relations
from aion.engine._runs import Run, RunState
from aion.errors import WorkflowNotFoundError
from aion.observability._observer import Observer
from aion.status import WorkflowStatus
from aion.store import EventStore

log = logging.getLogger("aion.engine")

#: How many runs recovery resumes per message before letting other messages through.
RECOVERY_BATCH = 32


class Recovered(NamedTuple):
    """What recovery found open at engine start: every open run is counted once."""

    #: Running runs, resumed with a process.
    resumed: int
    #: Blocked runs (tried again with this engine's code) and running runs of a type this engine does not
    #: register (they are blocked as they are resumed).
    blocked: int
    #: Paused runs (they wait without a process).
    paused: int


class Recovery:
    """Resumes running workflows from the store, and rebuilds runs whose appends failed."""

    def __init__(
        self,
        core: Core,
        store: EventStore,
        *,
        lifecycle: RunLifecycle,
        relations: Relations,
        activities: ActivityManager,
        links: ProcessLinks,
        tell: Callable[[object], None],
        holds: Holds,
        registry: Registry,
    ) -> None:
        self._core = core
        self._store = store
        self._lifecycle = lifecycle
        self._relations = relations
        self._activities = activities
        self._links = links
        self._tell = tell
        self._holds = holds
        self._registry = registry
        #: Running workflows that recovery has not resumed yet (in store order).
        self._to_recover: dict[str, None] = {}

    @property
    def pending(self) -> int:
        """How many running workflows recovery has not resumed yet."""
        return len(self._to_recover)

    def recover(self) -> Recovered:
        """Start resuming every open workflow found in the store (running, blocked or paused); returns how
        many of each (the engine's start line says them). Logs a warning for each workflow type it has runs of
        and no code for."""
        infos = list(self._store.running_workflows())
        self._to_recover = dict.fromkeys(info.workflow_id for info in infos)
        known = self._registry.workflows
        # A paused run stays paused (it gets no process, so a missing type does not block it yet).
        missing = collections.Counter(
            info.workflow_type
            for info in infos
            if info.workflow_type not in known and info.status is not WorkflowStatus.PAUSED
        )
        for workflow_type, count in sorted(missing.items()):
            log.warning(
                "workflow type %r is not registered with this engine: %d run(s) of it are blocked until an engine "
                "that registers it starts (pass the module that defines it: aion serve --module MODULE)",
                workflow_type,
                count,
            )
        paused = sum(1 for info in infos if info.status is WorkflowStatus.PAUSED)
        blocked = sum(
            1
            for info in infos
            if info.status is WorkflowStatus.BLOCKED
            or (info.status is not WorkflowStatus.PAUSED and info.workflow_type not in known)
        )
        if self._to_recover:
            self._tell(RecoverMore())
        return Recovered(len(self._to_recover) - blocked - paused, blocked, paused)

    def recover_more(self) -> None:
        """Resume the next batch of runs, and ask for another round if some are left."""
        resumed = 0
        while self._to_recover and resumed < RECOVERY_BATCH:
            self.resume_pending(next(iter(self._to_recover)))
            resumed += 1
        self._activities.pump()
        if self._to_recover:
            self._tell(RecoverMore())

    def resume_pending(self, workflow_id: str) -> Run | None:
        """Resume ``workflow_id`` now if recovery has not reached it yet; None if it is not waiting to be."""
        if workflow_id not in self._to_recover:
            return None
        del self._to_recover[workflow_id]
        history = self._store.read_run(workflow_id)
        run = Run(RunState.from_history(history))
        Observer.resumed(run)
        self._core.drive(run)
        self.take_up(run)
        return run

    def take_up(self, run: Run) -> None:
        """Go on with ``run``, just rebuilt from its history and driven by the core (a recovered run, or a reset's
        new one): its pending timers armed, its activities resumed, a process for it unless it is held, and the
        repairs of its relations that a crash may have left half done."""
        self._lifecycle.arm_timers(run)
        self._activities.recover(run)
        # A paused run waits without a process; a blocked one is tried again if the engine has its code.
        process = not run.state.paused and self._holds.fits(run)
        self._lifecycle.begin(run, resumed=True, process=process)
        self._relations.repair(run)

    def unblock(self, workflow_id: str | None) -> int:
        """Try the blocked run of ``workflow_id`` again (every blocked run for ``None``): each whose code the
        engine has is given a process, whose replay decides. Returns how many were."""
        if workflow_id is not None:
            run = self._core.live(workflow_id)
            if run is None:
                if self._store.get_run(workflow_id) is None:
                    raise WorkflowNotFoundError(workflow_id)
                return 0
            return int(self._holds.retry(run))
        for pending in list(self._to_recover):
            self.resume_pending(pending)
        blocked = [info.workflow_id for info in self._store.list_workflows(WorkflowStatus.BLOCKED)]
        retried = 0
        for blocked_id in blocked:
            run = self._core.live(blocked_id)
            if run is not None and self._holds.retry(run):
                retried += 1
        return retried

    def resync(self, run: Run) -> None:
        """After an unexpected append failure, rebuild the run from the store and give it a new process, which
        replays what was recorded. Its old process is killed for good: it has run ahead of its history (or has
        already exited, after sending its closing command), and nothing it sends is taken any more. Its
        activities are taken up again from history as after an engine restart (an attempt whose start was
        recorded counts as lost); the appends it still has in flight fail, and are not resynced again."""
        self._links.replace(run)
        run.generation += 1
        self._activities.forget(run)
        self._lifecycle.disarm_timers(run)
        try:
            history = self._store.read_run(run.workflow_id)
        except WorkflowNotFoundError:
            history = []
        opened = history[0] if history else None
        if not isinstance(opened, ev.WorkflowStarted) or opened.run_id != run.run_id:
            # Its WorkflowStarted is what failed (the caller was told): the run never existed.
            self._core.drop(run)
            return
        run.state = RunState.from_history(history)
        if run.state.closing:
            self._core.closed(run, history[-1])
            return
        self._lifecycle.arm_timers(run)
        self._activities.recover(run)
        self._activities.pump()
        if not run.state.held:
            self._links.want(run, started=True)
