"""Every message the engine core handles, each by the one method named for it (``EngineCore._on_<message>``).

Requests come from the Python API (and the CLI through it): each carries the future its caller waits on, which
the core resolves (with the error, if handling it raises). Notices come from the supervisors' hub (workflow
processes and activity workers), the timer thread and the recorder's commit callback; nobody waits on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pykka

from aion import events as ev
from aion._futures import OneShotFuture
from aion.engine._options import StartOptions
from aion.engine._timer_keys import TimerKey
from aion.store import AppendRequest

# -- requests -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """A call into the core; ``reply`` resolves with its outcome."""

    reply: pykka.Future[Any] = field(default_factory=OneShotFuture, kw_only=True)


@dataclass(frozen=True)
class Recover(Request):
    """Resume every running workflow found in the store; replies with how many."""


@dataclass(frozen=True)
class StartWorkflow(Request):
    """Record a new run's ``WorkflowStarted``; replies with the stamped events once durable."""

    workflow_type: str
    workflow_id: str
    args: list[Any]
    options: StartOptions


@dataclass(frozen=True)
class StartScheduled(Request):
    """A schedule's fire: record the run's ``WorkflowStarted`` and the schedule's ``fire`` (its
    ``ScheduleFired``) in one transaction; replies like :class:`StartWorkflow`."""

    workflow_type: str
    workflow_id: str
    args: list[Any]
    options: StartOptions
    run_id: str
    fire: AppendRequest


@dataclass(frozen=True)
class StartScheduledMany:
    """Several schedules' fires due together, each handled as its own :class:`StartScheduled` (each replies on
    its own future): one message so that the core handles a burst of fires in one go, and the recorder commits
    them in one transaction."""

    fires: tuple[StartScheduled, ...]


@dataclass(frozen=True)
class SignalWithStart(Request):
    """Record signal ``name`` for the workflow, starting it first (in the same transaction) if it is not
    running; replies with the stamped events (``WorkflowStarted`` first when it was started)."""

    workflow_type: str
    workflow_id: str
    args: list[Any]
    options: StartOptions
    name: str
    payload: Any


@dataclass(frozen=True)
class SignalWorkflow(Request):
    """Record ``SignalReceived``; replies once it is durable."""

    workflow_id: str
    name: str
    payload: Any


@dataclass(frozen=True)
class CancelWorkflowRequest(Request):
    """Request cancellation of the workflow's run; replies True once recorded, False if it was closed."""

    workflow_id: str
    reason: str | None


@dataclass(frozen=True)
class TerminateWorkflow(Request):
    """End the workflow's run now; replies True once ``WorkflowTerminated`` is recorded, False if closed."""

    workflow_id: str
    reason: str | None


@dataclass(frozen=True)
class QueryWorkflow(Request):
    """Ask the run's process (or a one-off replay of a closed run) to answer query ``name``."""

    workflow_id: str
    name: str
    args: list[Any]


@dataclass(frozen=True)
class UpdateWorkflow(Request):
    """Validate update ``name`` in the run's process, record ``UpdateAccepted`` and reply with the handler's
    result once ``UpdateCompleted`` is durable. ``update_id`` identifies it: one already recorded is not applied
    again (its recorded result is the reply)."""

    workflow_id: str
    name: str
    args: list[Any]
    update_id: str
    #: The id was drawn for this call (no earlier call can have recorded it).
    fresh: bool = False


@dataclass(frozen=True)
class GetResidency(Request):
    """Replies with the residency figures (see ``Engine.residency``)."""


@dataclass(frozen=True)
class GetQuiescence(Request):
    """Replies with a :class:`Quiescence`: whether the engine has settled (the testing kit's time skipping)."""


@dataclass(frozen=True)
class GetWaits(Request):
    """Replies, for each (workflow id, run id) of ``runs``, with what the run's code last reported waiting on
    beyond its history (a list of phrases), or ``None`` when that run is not open in the core or has not
    reported yet (``ProcessLinks.waits``)."""

    runs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Quiescence:
    """Whether anything is under way in the engine but activity attempts and time itself."""

    #: Every append is recorded and settled, every due timer handled, every resident run's process up and done
    #: with what it was sent, no run waits for a process, recovery is over.
    settled: bool
    #: Some activity attempt is queued or running (it runs in real time).
    activities_busy: bool
    #: When the next armed deadline is due (epoch seconds of the engine's clock), if any.
    next_due: float | None


@dataclass(frozen=True)
class UnblockWorkflows(Request):
    """Try blocked runs again (``workflow_id``'s, or every blocked run for ``None``); replies with how many
    were given a process to replay."""

    workflow_id: str | None


@dataclass(frozen=True)
class PauseWorkflow(Request):
    """Record ``WorkflowPaused`` for the workflow's open run; replies True once recorded (False if paused)."""

    workflow_id: str
    reason: str | None


@dataclass(frozen=True)
class ResumeWorkflow(Request):
    """Record ``WorkflowResumed`` for the workflow's paused run; replies True once recorded (False if it was
    not paused)."""

    workflow_id: str


@dataclass(frozen=True)
class ResetWorkflow(Request):
    """Start a new run from a copy of the current run's history up to ``to_seq`` (see ``_reset``); replies
    with the new run's id."""

    workflow_id: str
    to_seq: int | None
    reason: str | None


# -- notices --------------------------------------------------------------------------------------------------


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
    """A workflow process crashed more often than its restart intensity allows (or could not be started)."""

    child_id: str
    reason: str


@dataclass(frozen=True)
class WorkerUp:
    """An activity worker (re)started."""

    worker_id: str
    channel: Any
    #: The local task queue the worker serves.
    queue: str = "default"


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
    """A deadline armed by the core has come (told from the timer thread)."""

    key: TimerKey


@dataclass(frozen=True)
class AppendsCommitted:
    """The outcomes of the core's appends in one committed batch of the recorder (told from its thread): each
    is ``(token, stamped events or None, error or None)``."""

    outcomes: list[tuple[Any, list[ev.Event] | None, BaseException | None]]


@dataclass(frozen=True)
class RecoverMore:
    """Resume the next batch of the running workflows recovery has not reached yet."""


@dataclass(frozen=True)
class RayAttemptDone:
    """A Ray queue's attempt ended (told from a Ray thread): its ``result`` frame, or why it was lost (its Ray
    worker or node died, or the engine killed it)."""

    queue: str
    task_id: int
    reply: dict[str, Any] | None
    lost: str | None


@dataclass(frozen=True)
class RayHeartbeats:
    """Heartbeats of a Ray queue's attempts, drained from its hub: ``(task_id, encoded details)`` each, with
    ``None`` for the notice an attempt sends when it starts running."""

    queue: str
    beats: list[tuple[int, bytes | None]]
