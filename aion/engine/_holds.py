"""Runs held back from their code: blocked (the deployed code does not fit them) and paused (by an operator).

A run is **blocked** when its code cannot make progress for a reason that a deploy fixes: its workflow type or
its pinned version is not registered, its code diverged from its history (``NonDeterminismError``), or replaying
it failed inside aion. ``WorkflowBlocked`` is recorded once (not on each retry); the run gives up its process and
its slot, its timers and activities go on and its signals are recorded. It is tried again at every engine start
and on ``unblock``; the first retry whose replay fits records ``WorkflowUnblocked`` and the run goes on where it
was. ``Engine(on_code_mismatch="fail")`` fails such runs instead (the behaviour before blocking existed).

A run is **paused** by ``pause``: ``WorkflowPaused`` is recorded, its process is stopped, its queued activity
attempts are withdrawn and nothing new is dispatched for it; timers that come due, activity outcomes and signals
are recorded but not delivered; a child or an outgoing signal whose command was recorded as the pause came is not
started or sent. ``resume`` records ``WorkflowResumed``, gives it a process (which replays what arrived) and
dispatches what was held. Both are statuses derived from history (see ``aion.status``).

Builds ``WorkflowBlocked``, ``WorkflowUnblocked``, ``WorkflowPaused`` and ``WorkflowResumed``. Runs inside the
core's thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import pykka

from aion import events as ev
from aion.engine._activity_manager import ActivityManager
from aion.engine._interfaces import Core
from aion.engine._process_links import ProcessLinks
from aion.engine._registry import Registry
from aion.engine._runs import Run
from aion.errors import AionError, UnknownWorkflowVersionError

#: What a run whose code does not fit becomes: blocked (the default) or failed.
CodeMismatch = Literal["block", "fail"]

#: ``WorkflowBlocked.cause`` values.
UNKNOWN_TYPE = "unknown_type"
UNKNOWN_VERSION = "unknown_version"
NON_DETERMINISM = "non_determinism"
INTERNAL = "internal"


class Holds:
    """Blocks, unblocks, pauses and resumes runs."""

    def __init__(
        self,
        core: Core,
        *,
        registry: Registry,
        links: ProcessLinks,
        activities: ActivityManager,
        fail: Callable[[Run, ev.Failure], None],
        repair: Callable[[Run], None],
        on_code_mismatch: CodeMismatch = "block",
    ) -> None:
        self._core = core
        self._registry = registry
        self._links = links
        self._activities = activities
        self._fail = fail
        self._repair = repair
        self.on_code_mismatch = on_code_mismatch

    # -- blocking -------------------------------------------------------------------------------------------

    def fits(self, run: Run) -> bool:
        """Whether the engine has code for the run (its type in its version); blocks (or fails) it if not."""
        try:
            self._registry.workflow_version(run.workflow_type, run.state.version)
        except UnknownWorkflowVersionError as error:
            self.mismatch(run, ev.Failure(type(error).__name__, str(error), details={"cause": UNKNOWN_VERSION}))
            return False
        except AionError as error:
            message = f"{error}; start the engine with the module that defines it (aion serve --module MODULE)"
            self.mismatch(run, ev.Failure(type(error).__name__, message, details={"cause": UNKNOWN_TYPE}))
            return False
        return True

    def mismatch(self, run: Run, failure: ev.Failure) -> None:
        """The run's code does not fit it (``failure.details`` says how, see ``failure_details``): block it, or
        fail it under ``on_code_mismatch="fail"``."""
        if self.on_code_mismatch == "fail":
            self._fail(run, failure)
        else:
            self.block(run, failure)

    def block(self, run: Run, failure: ev.Failure) -> None:
        """Take the run's process and slot away and, unless it is blocked already, record ``WorkflowBlocked``."""
        state = run.state
        if state.closing:
            return
        self._links.replace(run)
        if state.blocked:
            return
        state.blocked = True
        details = failure.details if isinstance(failure.details, dict) else {}
        blocked = ev.WorkflowBlocked(
            workflow_id=run.workflow_id,
            cause=str(details.get("cause", INTERNAL)),
            message=failure.message,
            at_seq=details.get("seq"),
            expected=details.get("expected"),
            found=details.get("found"),
        )
        self._core.append(run, [blocked])  # the observer logs it (WARNING) and counts it once durable

    def fitted(self, run: Run) -> None:
        """A process of the blocked run replayed it without divergence: record ``WorkflowUnblocked``."""
        if run.state.blocked and not run.state.closing:
            run.state.blocked = False
            self._core.append(run, [ev.WorkflowUnblocked(workflow_id=run.workflow_id)])

    def retry(self, run: Run) -> bool:
        """Try the blocked run again: give it a process if the engine has its code (its replay decides). False
        if it is not blocked, is paused, or its code is still missing."""
        state = run.state
        if not state.blocked or state.paused or state.closing or self._links.residency.is_resident(run):
            return False
        if not self.fits(run):
            return False
        self._links.want(run, started=True)
        return True

    # -- pausing --------------------------------------------------------------------------------------------

    def pause(self, run: Run, reason: str | None, reply: pykka.Future[Any]) -> None:
        """Record ``WorkflowPaused``, stop the run's process and withdraw its queued attempts; replies False if
        it is paused already."""
        state = run.state
        if state.paused:
            reply.set(False)
            return
        state.paused = True
        self._activities.hold(run)
        self._links.replace(run)
        paused = ev.WorkflowPaused(workflow_id=run.workflow_id, reason=reason)
        self._core.append(run, [paused], then=lambda _: reply.set(True))

    def resume(self, run: Run, reply: pykka.Future[Any]) -> None:
        """Record ``WorkflowResumed``, give the run a process (which replays what arrived while it was paused)
        and dispatch what was held; replies False if it was not paused."""
        state = run.state
        if not state.paused:
            reply.set(False)
            return
        state.paused = False

        def resumed(_: list[ev.Event]) -> None:
            self._activities.release_held(run)
            self._repair(run)  # children and outgoing signals recorded while paused, held until now
            if state.blocked:
                self.retry(run)
            elif not state.closing and self.fits(run):
                self._links.want(run, started=True)
            reply.set(True)

        self._core.append(run, [ev.WorkflowResumed(workflow_id=run.workflow_id)], then=resumed)


def failure_details(cause: str, error: BaseException) -> dict[str, Any]:
    """The ``Failure.details`` a workflow host sends with a run it cannot replay: the cause, and for a
    divergence where and how (read back by :meth:`Holds.block`)."""
    details: dict[str, Any] = {"cause": cause}
    for name in ("seq", "expected", "found"):
        value = getattr(error, name, None)
        if value is not None:
            details[name] = value
    return details
