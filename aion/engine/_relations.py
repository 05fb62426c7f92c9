"""Relations between workflows: child workflows and external signals, and the repairs of a crash between the
two writes each of them takes (see ``docs/architecture.md``). A mixin of the engine core: it runs in the core's
thread and uses the core's runs, store and appends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aion import events as ev
from aion.engine._runs import ChildRef, PendingSignal, Run
from aion.errors import AionError, WorkflowNotFoundError, WorkflowNotRunningError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import pykka

    from aion.store import EventStore


class Relations:
    """Children and external signals of the runs the core works on."""

    _runs: dict[str, Run]
    _store: EventStore

    if TYPE_CHECKING:

        def _append(
            self,
            run: Run,
            events: Sequence[ev.Event],
            *,
            then: Callable[[list[ev.Event]], None] | None = None,
            reply: pykka.Future[Any] | None = None,
        ) -> None: ...

        def _start_run(
            self,
            workflow_type: str,
            workflow_id: str,
            args: list[Any],
            options: dict[str, Any],
            *,
            parent: tuple[str, str] | None = None,
            run_id: str | None = None,
            signal: tuple[str, Any] | None = None,
            reply: pykka.Future[Any] | None = None,
        ) -> None: ...

        def _end_run(self, run: Run, terminal: ev.Event, reply: pykka.Future[Any] | None = None) -> bool: ...

        def _request_cancel(self, run: Run, reason: str | None, reply: pykka.Future[Any] | None = None) -> bool: ...

        def _live(self, workflow_id: str) -> Run | None: ...

    def _start_child(self, parent: Run, ref: ChildRef) -> None:
        """Start a child whose ``ChildWorkflowStarted`` is durable in its parent (exactly once)."""
        try:
            self._start_run(
                ref.workflow_type,
                ref.workflow_id,
                ref.args,
                ref.options,
                parent=(parent.workflow_id, parent.run_id),
                run_id=ref.run_id,
            )
        except AionError as error:
            self._record_child_outcome(parent, ref, ev.Failure(type(error).__name__, str(error)))

    def _record_child_outcome(self, parent: Run, ref: ChildRef, outcome: Any, *, cancelled: bool = False) -> None:
        if parent.closing or parent.children.pop(ref.child_id, None) is None:
            return
        wf = parent.workflow_id
        event: ev.Event
        if cancelled:
            event = ev.ChildWorkflowCancelled(workflow_id=wf, child_id=ref.child_id)
        elif isinstance(outcome, ev.Failure):
            event = ev.ChildWorkflowFailed(workflow_id=wf, child_id=ref.child_id, failure=outcome)
        else:
            event = ev.ChildWorkflowCompleted(workflow_id=wf, child_id=ref.child_id, result=outcome)
        self._append(parent, [event])

    def _notify_parent(self, child: Run, terminal: ev.Event) -> None:
        link = child.parent
        if link is None:
            return
        parent = self._live(link[0])
        if parent is None or parent.run_id != link[1]:
            return
        ref = next((r for r in parent.children.values() if r.workflow_id == child.workflow_id), None)
        if ref is not None:
            outcome, cancelled = _child_outcome(terminal)
            self._record_child_outcome(parent, ref, outcome, cancelled=cancelled)

    def _apply_parent_close_policy(self, child_workflow_id: str, policy: str) -> None:
        child = self._live(child_workflow_id)
        if child is None or child.closing:
            return
        if policy == "terminate":
            self._end_run(child, ev.WorkflowTerminated(workflow_id=child_workflow_id, reason="its parent closed"))
        elif policy == "request_cancel":
            self._request_cancel(child, "its parent closed")

    def _deliver_external(self, sender: Run, pending: PendingSignal, *, recovering: bool = False) -> None:
        """Deliver a recorded ``SignalExternalSent`` once, then record ``SignalExternalDelivered``."""
        dedup_key = f"{sender.workflow_id}:{sender.run_id}:{pending.signal_id}"

        def delivered(failure: ev.Failure | None = None) -> None:
            if sender.closing or sender.signals_out.pop(pending.signal_id, None) is None:
                return
            event = ev.SignalExternalDelivered(
                workflow_id=sender.workflow_id, signal_id=pending.signal_id, failure=failure
            )
            self._append(sender, [event])

        target_id = pending.target_workflow_id
        if recovering and any(
            isinstance(e, ev.SignalReceived) and e.dedup_key == dedup_key for e in self._store.read_history(target_id)
        ):
            delivered()
            return
        target = self._live(target_id)
        if target is None or target.closing:
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
        self._append(target, [signal], then=lambda _: delivered())

    def _repair_child(self, parent: Run, ref: ChildRef) -> None:
        try:
            self._store.read_run(ref.workflow_id, ref.run_id)
        except WorkflowNotFoundError:
            self._start_child(parent, ref)  # the parent recorded it, the crash came before the child started
            return
        info = self._store.get_run(ref.workflow_id)
        if info is not None and not info.is_running:
            terminal = self._store.read_run(ref.workflow_id)[-1]
            outcome, cancelled = _child_outcome(terminal)
            self._record_child_outcome(parent, ref, outcome, cancelled=cancelled)

    def _repair_orphan(self, child: Run) -> None:
        """A running child whose parent closed before applying its policy: apply it now."""
        link = child.parent
        if link is None or self._live(link[0]) is not None:
            return
        try:
            parent_history = self._store.read_run(link[0], link[1])
        except WorkflowNotFoundError:
            return
        for event in parent_history:
            if isinstance(event, ev.ChildWorkflowStarted) and event.child_workflow_id == child.workflow_id:
                self._apply_parent_close_policy(child.workflow_id, event.parent_close_policy)

    def _cancel_child(self, child_workflow_id: str) -> None:
        child = self._live(child_workflow_id)
        if child is not None:
            self._request_cancel(child, "cancelled by its parent")


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
