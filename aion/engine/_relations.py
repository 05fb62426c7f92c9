"""Relations between workflows: child workflows and external signals, and the repairs of a crash between the
two writes each of them takes (see ``docs/architecture.md``).

Builds the events a parent records of its children (``ChildWorkflowCompleted``, ``ChildWorkflowFailed``,
``ChildWorkflowCancelled``) and those of an external signal's delivery (the target's ``SignalReceived`` with its
dedup key, the sender's ``SignalExternalDelivered``). Runs inside the core's thread.
"""

from __future__ import annotations

from typing import Any

from aion import events as ev
from aion.engine._interfaces import Core
from aion.engine._lifecycle import RunLifecycle
from aion.engine._runs import ChildRef, PendingSignal, Run
from aion.errors import AionError, WorkflowNotFoundError, WorkflowNotRunningError
from aion.store import EventStore


class Relations:
    """Children and external signals of the runs the core works on."""

    def __init__(self, core: Core, store: EventStore, lifecycle: RunLifecycle) -> None:
        self._core = core
        self._store = store
        self._lifecycle = lifecycle

    # -- children -------------------------------------------------------------------------------------------

    def start_child(self, parent: Run, ref: ChildRef) -> None:
        """Start a child whose ``ChildWorkflowStarted`` is durable in its parent (exactly once). Not while the
        parent is paused: its resume repairs it (starts the child then)."""
        if parent.state.paused:
            return
        try:
            self._lifecycle.start(
                ref.workflow_type,
                ref.workflow_id,
                ref.args,
                ref.options,
                parent=(parent.workflow_id, parent.run_id),
                run_id=ref.run_id,
            )
        except AionError as error:
            self._record_child_outcome(parent, ref, ev.Failure(type(error).__name__, str(error)))

    def cancel_child(self, child_workflow_id: str) -> None:
        """The parent's ``ChildWorkflowCancelRequested`` is durable: ask the child to cancel."""
        child = self._core.live(child_workflow_id)
        if child is not None:
            self._lifecycle.request_cancel(child, "cancelled by its parent")

    def closed(self, run: Run, terminal: ev.Event) -> None:
        """``run`` closed with ``terminal``: apply its children's parent-close policies and tell its parent (not
        for a reset: the run that goes on from its history keeps its children and its parent)."""
        if isinstance(terminal, ev.WorkflowReset):
            return
        for ref in list(run.state.children.values()):
            self._apply_parent_close_policy(ref.workflow_id, ref.parent_close_policy)
        if not isinstance(terminal, ev.WorkflowContinuedAsNew):
            self._notify_parent(run, terminal)

    def _record_child_outcome(self, parent: Run, ref: ChildRef, outcome: Any, *, cancelled: bool = False) -> None:
        if parent.state.closing or parent.state.children.pop(ref.child_id, None) is None:
            return
        wf = parent.workflow_id
        event: ev.Event
        if cancelled:
            event = ev.ChildWorkflowCancelled(workflow_id=wf, child_id=ref.child_id)
        elif isinstance(outcome, ev.Failure):
            event = ev.ChildWorkflowFailed(workflow_id=wf, child_id=ref.child_id, failure=outcome)
        else:
            event = ev.ChildWorkflowCompleted(workflow_id=wf, child_id=ref.child_id, result=outcome)
        self._core.append(parent, [event])

    def _notify_parent(self, child: Run, terminal: ev.Event) -> None:
        link = child.state.parent
        if link is None:
            return
        parent = self._core.live(link[0])
        if parent is None or parent.run_id != link[1]:
            return
        ref = next((r for r in parent.state.children.values() if r.workflow_id == child.workflow_id), None)
        if ref is not None:
            outcome, cancelled = _child_outcome(terminal)
            self._record_child_outcome(parent, ref, outcome, cancelled=cancelled)

    def _apply_parent_close_policy(self, child_workflow_id: str, policy: str) -> None:
        child = self._core.live(child_workflow_id)
        if child is None or child.state.closing:
            return
        if policy == "terminate":
            self._lifecycle.terminate_run(child, "its parent closed")
        elif policy == "request_cancel":
            self._lifecycle.request_cancel(child, "its parent closed")

    # -- external signals -----------------------------------------------------------------------------------

    def deliver_external(self, sender: Run, pending: PendingSignal, *, recovering: bool = False) -> None:
        """Deliver a recorded ``SignalExternalSent`` once, then record ``SignalExternalDelivered``. Not while the
        sender is paused: its resume repairs it (delivers the signal then)."""
        if sender.state.paused:
            return
        dedup_key = f"{sender.workflow_id}:{sender.run_id}:{pending.signal_id}"

        def delivered(failure: ev.Failure | None = None) -> None:
            if sender.state.closing or sender.state.signals_out.pop(pending.signal_id, None) is None:
                return
            event = ev.SignalExternalDelivered(
                workflow_id=sender.workflow_id, signal_id=pending.signal_id, failure=failure
            )
            self._core.append(sender, [event])

        target_id = pending.target_workflow_id
        if recovering and any(
            isinstance(e, ev.SignalReceived) and e.dedup_key == dedup_key for e in self._store.read_history(target_id)
        ):
            delivered()
            return
        target = self._core.live(target_id)
        if target is None or target.state.closing:
            info = self._store.get_run(target_id)
            if info is None:
                delivered(ev.Failure(WorkflowNotFoundError.__name__, f"workflow {target_id!r} not found"))
            else:
                delivered(
                    ev.Failure(WorkflowNotRunningError.__name__, f"workflow {target_id!r} is {info.status.value}")
                )
            return
        signal = ev.SignalReceived(
            workflow_id=target_id, name=pending.name, payload=pending.payload, dedup_key=dedup_key
        )
        self._core.append(target, [signal], then=lambda _: delivered())

    # -- repairs after a crash ------------------------------------------------------------------------------

    def repair(self, run: Run) -> None:
        """A resumed run: finish what a crash between two writes left half done (a child recorded but not
        started, or closed but not reported; a signal recorded as sent but not delivered; a parent closed
        before applying its policy to this run)."""
        for ref in list(run.state.children.values()):
            self._repair_child(run, ref)
        for pending in list(run.state.signals_out.values()):
            self.deliver_external(run, pending, recovering=True)
        self._repair_orphan(run)

    def _repair_child(self, parent: Run, ref: ChildRef) -> None:
        try:
            self._store.read_run(ref.workflow_id, ref.run_id)
        except WorkflowNotFoundError:
            self.start_child(parent, ref)  # the parent recorded it, the crash came before the child started
            return
        info = self._store.get_run(ref.workflow_id)
        if info is not None and not info.is_running:
            terminal = self._store.read_run(ref.workflow_id)[-1]
            outcome, cancelled = _child_outcome(terminal)
            self._record_child_outcome(parent, ref, outcome, cancelled=cancelled)

    def _repair_orphan(self, child: Run) -> None:
        """A running child whose parent closed before applying its policy: apply it now."""
        link = child.state.parent
        if link is None or self._core.live(link[0]) is not None:
            return
        try:
            parent_history = self._store.read_run(link[0], link[1])
        except WorkflowNotFoundError:
            return
        for event in parent_history:
            if isinstance(event, ev.ChildWorkflowStarted) and event.child_workflow_id == child.workflow_id:
                self._apply_parent_close_policy(child.workflow_id, event.parent_close_policy)


def _child_outcome(terminal: ev.Event) -> tuple[Any, bool]:
    """``(result or Failure, cancelled)`` of a child whose run closed with ``terminal``."""
    match terminal:
        case ev.WorkflowCompleted(result=result):
            return result, False
        case ev.WorkflowFailed(failure=failure):
            return failure, False
        case ev.WorkflowCancelled():
            return None, True
        case ev.WorkflowTerminated(reason=reason):
            return ev.Failure("WorkflowTerminated", f"the child was terminated: {reason}"), False
        case ev.WorkflowTimedOut(kind=kind):
            return ev.Failure("WorkflowTimedOut", f"the child timed out ({kind} timeout)"), False
    return ev.Failure(terminal.type, "the child closed"), False
