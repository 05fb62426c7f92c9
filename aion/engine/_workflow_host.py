"""The workflow process: hosts one run, replays it from history, then runs it live.

It is a process child of the workflow type's supervisor. Its mailbox is its channel: the engine first sends the
run's history, then each recorded arrival, queries and at last ``stop``. Whatever the workflow code asks for goes
back as commands. A crash of this process loses nothing: the supervisor restarts it and it replays.

When the run's closing command is sent (or the engine says ``stop``), `run_workflow_host` returns and the zygote
keeps the process for a later run (a *recycled* process child): one process hosts one run at a time, several
over its life. Nothing of a run outlives it but module state, which workflow code must not keep (see the
authoring guide).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from aion import events as ev
from aion._codec import decode_event, decode_payload, encode_payload
from aion._definitions import version_of_run
from aion.engine import _protocol as protocol
from aion.engine._holds import INTERNAL, NON_DETERMINISM, UNKNOWN_TYPE, UNKNOWN_VERSION, failure_details
from aion.engine._placement import set_own_cpus
from aion.engine._registry import installed
from aion.engine._timers import precise_waits
from aion.errors import (
    CorruptEventError,
    NonDeterminismError,
    QueryError,
    UnknownWorkflowTypeError,
    UnknownWorkflowVersionError,
)
from aion.workflow import _guard
from aion.workflow._runtime import WorkflowRuntime, failure_from_exception
from supervisors import Channel, ChannelClosedError


def run_workflow_host(channel: Channel, workflow_id: str, cpus: list[int] | None = None) -> None:
    """Process target: serve the run of ``workflow_id`` until it closes or the engine says ``stop``, on ``cpus``
    (the CPUs other than the engine's: see ``aion.engine._placement``)."""
    set_own_cpus(cpus)
    _guard.install()
    try:
        _serve(channel)
    except ChannelClosedError:
        return


def _serve(channel: Channel) -> None:
    """Replay, then apply arrivals until the run's closing command is sent or the engine says ``stop``."""
    message = channel.recv()
    while message.get("t") != protocol.RUN:
        if message.get("t") == protocol.STOP:
            return
        message = channel.recv()
    once = bool(message.get("once"))
    try:
        history = protocol.decode_history(message)  # a stored event it cannot decode is a CorruptEventError
        started = history[0]
        if not isinstance(started, ev.WorkflowStarted):
            raise CorruptEventError(f"the run's history starts with {started.type}, not WorkflowStarted")
    except Exception as error:  # the engine blocks the run (or fails it), naming the error
        channel.send(_cannot_replay(error))
        return
    _hold_recorded_ahead(history)
    registry = installed()
    closed = history[-1].terminal
    try:
        # The run's own version of its type: a run always replays and runs on the version it started on.
        definition = registry.workflow_version(started.workflow_type, version_of_run(started.workflow_version))
        runtime = WorkflowRuntime(definition.function, started)
        runtime.check_activity = registry.activity
        runtime.check_task_queue = registry.task_queue
        runtime.check_workflow = registry.workflow
        commands = runtime.replay(history)
    except Exception as error:  # the run cannot be replayed here: the engine blocks it (or fails it)
        channel.send(_cannot_replay(error))
        return
    if once:
        closed = True
    elif not closed:
        channel.send(protocol.commands_message(commands, history[-1].seq, runtime.waits()))
        if _closing(runtime):
            return  # the run's closing command is sent: nothing is left for this process to do
    while True:
        message = channel.recv()
        kind = message.get("t")
        if kind == protocol.EVENT:
            if closed:
                continue
            event = decode_event(message["event"])
            if type(event) is ev.TimerFired and event.due_at is not None:
                _hold_until(event.due_at)
            try:
                commands = runtime.apply(event)
            except NonDeterminismError as error:
                channel.send(_cannot_replay(error))
                return
            channel.send(protocol.commands_message(commands, event.seq, runtime.waits()))
            if _closing(runtime):
                return
        elif kind == protocol.QUERY:
            channel.send(_answer(runtime, message))
            if once:
                return
        elif kind == protocol.STOP:
            return


def _hold_until(due: datetime) -> None:
    """Wait until ``due`` (real time): a ``TimerFired`` recorded ahead of its timer is applied no earlier than the
    timer is due (see ``aion.engine._timer_lead``)."""
    global _precise
    left = due.timestamp() - time.clock_gettime(time.CLOCK_REALTIME)
    if left <= 0:
        return
    if not _precise:
        precise_waits()
        _precise = True
    while left > 0:
        time.sleep(left)
        left = due.timestamp() - time.clock_gettime(time.CLOCK_REALTIME)


#: Whether this process asked for precise timed waits yet (the first hold asks).
_precise = False


def _hold_recorded_ahead(history: list[ev.Event]) -> None:
    """Before replaying ``history``, wait for the due time of a ``TimerFired`` in it recorded ahead of its timer:
    such an event can only be among the last recorded (it is at most ``TIMER_LEAD_S`` early), so the scan stops
    at the first event older than a second."""
    horizon = time.clock_gettime(time.CLOCK_REALTIME) - 1.0
    for event in reversed(history):
        if type(event) is ev.TimerFired and event.due_at is not None:
            _hold_until(event.due_at)
            return
        if event.recorded_at.timestamp() < horizon:
            return


def _cannot_replay(error: Exception) -> dict[str, Any]:
    """The ``diverged`` frame for a run this process cannot replay, its cause in the failure's details."""
    if isinstance(error, NonDeterminismError):
        cause = NON_DETERMINISM
    elif isinstance(error, UnknownWorkflowVersionError):
        cause = UNKNOWN_VERSION
    elif isinstance(error, UnknownWorkflowTypeError):
        cause = UNKNOWN_TYPE
    else:
        cause = INTERNAL
    failure = failure_from_exception(error)
    failure = ev.Failure(failure.type, failure.message, failure.traceback, failure_details(cause, error))
    return protocol.failure_message(protocol.DIVERGED, failure)


def _closing(runtime: WorkflowRuntime) -> bool:
    """Whether the run's closing command has been sent, which ends this run in this process (the process is
    then kept, idle, for the next run of any workflow type: see ``recycle`` in ``Engine._workflow_spec``)."""
    return runtime.closed


def _answer(runtime: WorkflowRuntime, message: dict[str, Any]) -> dict[str, Any]:
    reply: dict[str, Any] = {"t": protocol.ANSWER, "id": message["id"]}
    try:
        value = runtime.query(message["name"], decode_payload(message["args"]))
        reply.update(ok=True, value=encode_payload(value, path=f"query {message['name']!r} result"))
    except QueryError as error:
        reply.update(ok=False, error=str(error))
    except Exception as error:
        reply.update(ok=False, error=f"{type(error).__name__}: {error}")
    return reply


async def _warm_up_workflow(value: int) -> int:
    """A tiny workflow for :func:`warm_up`: an activity, a timer, a query handler and a signal."""
    from aion import workflow  # noqa: PLC0415 - the SDK imports this module's package

    result: int = await workflow.execute_activity("warm-up", value, start_to_close_timeout=1)
    await workflow.sleep(1)
    workflow.set_query_handler("warm-up", lambda: result)
    signalled: int = await workflow.wait_signal("warm-up")
    return result + signalled


def warm_up() -> None:
    """Run, in an idle pool host, what a workflow process does: decode a history, replay it, encode the
    commands, then go live (a timer fires, a query, a signal completes the run); and walk the modules the way
    installing the guard will (``_guard.prepare``). The copy-on-write page faults this causes then happen
    before the host is handed a run, not on the crash-restart path or on the way from a signal to the run's
    result (``Zygote.start(warm_up=...)``)."""
    _guard.prepare()
    workflow_id, run_id = "warm-up", "00000000-0000-4000-8000-000000000000"
    at = ev.UNSET_TIME
    history: list[ev.Event] = [
        ev.WorkflowStarted(
            workflow_id=workflow_id, seq=1, recorded_at=at, workflow_type="warm-up", input=[1], run_id=run_id
        ),
        ev.ActivityScheduled(
            workflow_id=workflow_id, seq=2, recorded_at=at, activity_id=1, activity_type="warm-up", input=[1]
        ),
        ev.ActivityCompleted(workflow_id=workflow_id, seq=3, recorded_at=at, activity_id=1, result=1, attempt=1),
    ]
    decoded = protocol.decode_history(protocol.run_message(history))
    started = decoded[0]
    assert isinstance(started, ev.WorkflowStarted)
    runtime = WorkflowRuntime(_warm_up_workflow, started)
    protocol.decode_commands(protocol.commands_message(runtime.replay(decoded)))
    arrivals: list[ev.Event] = [
        ev.TimerFired(workflow_id=workflow_id, seq=5, recorded_at=at, timer_id=1),
        ev.SignalReceived(workflow_id=workflow_id, seq=6, recorded_at=at, name="warm-up", payload=1),
    ]
    for arrival in arrivals:
        commands = runtime.apply(decode_event(protocol.event_message(arrival)["event"]))
        _answer(runtime, {"id": 0, "name": "warm-up", "args": encode_payload([])})
        if commands:
            protocol.decode_commands(protocol.commands_message(commands))
