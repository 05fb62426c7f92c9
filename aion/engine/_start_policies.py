"""What a start does about the runs its workflow id already has: the request id of a retried start, the
``id_conflict_policy`` for a running run and the ``id_reuse_policy`` for a closed one.

It decides before ``RunLifecycle.start`` records anything; it records nothing itself but, for
``TERMINATE_EXISTING``, the running run's ``WorkflowTerminated`` (through the lifecycle's own terminate). Runs in
the core's thread.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final

import pykka

from aion import events as ev
from aion.clock import Clock
from aion.engine._interfaces import Core
from aion.engine._options import IdConflictPolicy, IdReusePolicy, StartOptions
from aion.errors import AionError, WorkflowAlreadyStartedError
from aion.status import WorkflowStatus
from aion.store import EventStore, RunInfo, read_started

#: How long a request id finds the run it started: a start retried later than this after the first one was
#: recorded is a new start (the policies decide what it does).
REQUEST_ID_WINDOW: Final = timedelta(hours=24)

#: Terminates a running run and calls the function once its ``WorkflowTerminated`` is durable.
Terminate = Callable[[str, str, Callable[[], None]], bool]


class StartPolicies:
    """Settles a start against the id's runs: answers it with an existing run, refuses it, or lets it go on."""

    def __init__(self, core: Core, store: EventStore, clock: Clock) -> None:
        self._core = core
        self._store = store
        self._clock = clock

    def settle(
        self,
        workflow_id: str,
        options: StartOptions,
        reply: pykka.Future[Any] | None,
        *,
        terminate: Terminate,
        start_again: Callable[[], None],
        info: RunInfo | None,
    ) -> bool:
        """True when the start is settled here (``reply`` answered with an existing run's ``WorkflowStarted``,
        or a running run is being terminated first and ``start_again`` will run once that is durable); False
        when the start may go on; raises ``WorkflowAlreadyStartedError`` when a policy refuses it. ``info`` is
        the id's run record in the store (``get_run``), read once by the caller for the whole start."""
        started = self._latest_started(workflow_id, info)
        if started is None:
            return False
        if options.request_id is not None and started.request_id == options.request_id:
            recorded = started.recorded_at
            if started.seq == 0 or self._clock.now() - recorded <= REQUEST_ID_WINDOW:
                if reply is not None:
                    reply.set([started])
                return True
        running = self._running(workflow_id, info)
        if running is not None:
            policy = options.id_conflict_policy
            if policy is IdConflictPolicy.USE_EXISTING:
                if reply is not None:
                    reply.set([started])
                return True
            if policy is IdConflictPolicy.TERMINATE_EXISTING:

                def then() -> None:
                    try:
                        start_again()
                    except AionError as error:
                        if reply is not None:
                            reply.set_exception((type(error), error, error.__traceback__))

                if terminate(workflow_id, "terminated by a new start (id_conflict_policy=TERMINATE_EXISTING)", then):
                    return True
            raise WorkflowAlreadyStartedError(workflow_id, running)
        self._check_reuse(workflow_id, started, options.id_reuse_policy, info)
        return False

    def _latest_started(self, workflow_id: str, info: RunInfo | None) -> ev.WorkflowStarted | None:
        """The ``WorkflowStarted`` of the id's latest run: the core's (maybe not durable yet), else the store's."""
        run = self._core.run_of(workflow_id)
        if run is not None and run.state.started is not None:
            return run.state.started
        return None if info is None else read_started(self._store, info)

    def _running(self, workflow_id: str, info: RunInfo | None) -> str | None:
        """The run id of the id's running run (not closing), if it has one."""
        run = self._core.live(workflow_id)
        if run is not None:
            return None if run.state.closing else run.run_id
        return info.run_id if info is not None and info.is_running else None

    def _check_reuse(
        self, workflow_id: str, started: ev.WorkflowStarted, policy: IdReusePolicy, info: RunInfo | None
    ) -> None:
        """Refuse a new run of an id whose last run closed, if ``policy`` says so."""
        if policy is IdReusePolicy.ALLOW_DUPLICATE:
            return
        status = info.status if info is not None and info.run_id == started.run_id else WorkflowStatus.RUNNING
        if policy is IdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY and status not in (
            WorkflowStatus.COMPLETED,
            WorkflowStatus.RUNNING,  # still closing: its outcome is not known yet
        ):
            return
        why = f"{status.value}; id_reuse_policy={policy.name}"
        raise WorkflowAlreadyStartedError(workflow_id, started.run_id, closed=why)
