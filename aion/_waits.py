"""What an open run waits on: from its history, and from what its workflow process last reported.

History names the activities, timers, children and external signals a run has started and not seen finish, and,
on a timeout's ``TimerStarted``, the signal or condition it races against (``waiting_for``). It does not name an
untimed ``wait_signal("approve")`` or ``wait_condition(...)``: those only the workflow code knows. Its process
reports them with every ``commands`` frame (``WorkflowRuntime.waits``), the engine core keeps the last report on
the run (valid while the run is evicted: nothing has reached its code since), and a running engine hands it to
``describe`` (``Engine.run_waits``). Without a running engine (the CLI reading the files) nothing reported is
known, and a run that waits on nothing its history names is shown as ``UNKNOWN_WITHOUT_ENGINE``.

Both the control views (``aion describe``, ``aion tree``) and ``WorkflowHandle.describe`` build their phrase here,
so they say the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from aion import events as ev

#: What a run waits on when its history names nothing and no report of its process is at hand (no engine).
UNKNOWN_WITHOUT_ENGINE: Final = "a signal or condition (which one is known only to a running engine)"
#: The same, with an engine whose core has no report of the run yet (it waits for a process, or is recovering).
NOT_REPORTED: Final = "a signal or condition (its workflow process has not reported yet)"
#: Reported: the code waits on nothing at all (it is about to be given what it was sent, or to close).
NOTHING: Final = "nothing (its code is not blocked on a wait)"


def _stamp(value: Any) -> Any:
    """A time as the views show it (ISO 8601), anything else as it is."""
    return value.isoformat() if hasattr(value, "isoformat") else value


def pending_work(history: Sequence[ev.Event]) -> dict[str, list[dict[str, Any]]]:
    """What a run has started and not yet seen finish: activities, timers, child workflows and signals sent to
    other workflows (``signals_out``)."""
    activities: dict[int, dict[str, Any]] = {}
    timers: dict[int, dict[str, Any]] = {}
    children: dict[int, dict[str, Any]] = {}
    signals_out: dict[int, dict[str, Any]] = {}
    for event in history:
        match event:
            case ev.ActivityScheduled(activity_id=aid, activity_type=name):
                activities[aid] = {
                    "activity_id": aid,
                    "activity_type": name,
                    "state": "scheduled",
                    "attempt": 1,
                    "next_attempt_at": None,
                }
            case ev.ActivityStarted(activity_id=aid, attempt=attempt) if aid in activities:
                activities[aid].update(state="started", attempt=attempt, next_attempt_at=None)
            case ev.ActivityFailed(activity_id=aid, retryable=True, next_attempt_at=at) if (
                at is not None and aid in activities
            ):
                activities[aid].update(state="backing_off", next_attempt_at=_stamp(at))
            case (
                ev.ActivityCompleted(activity_id=aid)
                | ev.ActivityFailed(activity_id=aid)
                | ev.ActivityCancelled(activity_id=aid)
            ):
                activities.pop(aid, None)
            case ev.TimerStarted(timer_id=tid, fire_at=at, waiting_for=waiting_for):
                timers[tid] = {"timer_id": tid, "fire_at": _stamp(at), "waiting_for": waiting_for}
            case ev.TimerFired(timer_id=tid) | ev.TimerCancelled(timer_id=tid):
                timers.pop(tid, None)
            case ev.ChildWorkflowStarted(child_id=cid, child_workflow_id=child, workflow_type=name):
                children[cid] = {"child_id": cid, "workflow_id": child, "workflow_type": name}
            case ev.SignalExternalSent(signal_id=sid, target_workflow_id=target, name=name):
                signals_out[sid] = {"signal_id": sid, "workflow_id": target, "name": name}
            case ev.SignalExternalDelivered(signal_id=sid):
                signals_out.pop(sid, None)
            case _ if event.type.startswith("ChildWorkflow") and isinstance(getattr(event, "child_id", None), int):
                children.pop(event.child_id, None)  # type: ignore[attr-defined]
    return {
        "activities": list(activities.values()),
        "timers": list(timers.values()),
        "children": list(children.values()),
        "signals_out": list(signals_out.values()),
    }


def waiting_on(history: Sequence[ev.Event], reported: Sequence[str] | None, *, unknown: str) -> str | None:
    """A short phrase saying what an open run waits on (``None`` once it is closed).

    ``reported`` is what its process last reported beyond history (``["signal 'approve'"]``), ``None`` if no
    report is at hand: then a run whose history names no wait is said to wait on ``unknown``.
    """
    if not history or history[-1].terminal:
        return None
    pending = pending_work(history)
    parts = [
        f"activity {a['activity_type']} #{a['activity_id']} ({a['state']}, attempt {a['attempt']})"
        for a in pending["activities"]
    ]
    timed = {t["waiting_for"] for t in pending["timers"] if t.get("waiting_for")}
    parts += [f"{wait}" for wait in reported or () if wait not in timed]
    parts += [
        f"{t['waiting_for']} (timeout: timer #{t['timer_id']} at {t['fire_at']})"
        if t.get("waiting_for")
        else f"timer #{t['timer_id']} until {t['fire_at']}"
        for t in pending["timers"]
    ]
    parts += [f"child {c['workflow_id']}" for c in pending["children"]]
    parts += [f"delivery of signal {s['name']!r} to {s['workflow_id']}" for s in pending["signals_out"]]
    if any(isinstance(event, ev.WorkflowCancelRequested) for event in history):
        parts.append("cancellation")
    if parts:
        return ", ".join(parts)
    return unknown if reported is None else NOTHING
