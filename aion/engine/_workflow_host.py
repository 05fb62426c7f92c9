"""The workflow process: hosts one run, replays it from history, then runs it live.

It is a process child of the workflow type's supervisor. Its mailbox is its channel: the engine first sends the
run's history, then each recorded arrival, queries and at last ``stop``. Whatever the workflow code asks for goes
back as commands. A crash of this process loses nothing: the supervisor restarts it and it replays.
"""

from __future__ import annotations

from typing import Any

from aion import events as ev
from aion._codec import decode_event, decode_payload, encode_payload
from aion.engine import _protocol as protocol
from aion.engine._registry import installed
from aion.errors import NonDeterminismError, QueryError
from aion.workflow import _guard
from aion.workflow._runtime import WorkflowRuntime, failure_from_exception
from supervisors import Channel, ChannelClosedError


def run_workflow_host(channel: Channel, workflow_id: str) -> None:
    """Process target: serve the run of ``workflow_id`` until it closes or the engine says ``stop``."""
    _guard.install()
    try:
        _serve(channel)
    except ChannelClosedError:
        return


def _serve(channel: Channel) -> None:
    message = channel.recv()
    while message.get("t") != protocol.RUN:
        if message.get("t") == protocol.STOP:
            return
        message = channel.recv()
    history = protocol.decode_history(message)
    started = history[0]
    assert isinstance(started, ev.WorkflowStarted)
    registry = installed()
    runtime = WorkflowRuntime(registry.workflow(started.workflow_type).function, started)
    runtime.check_activity = registry.activity
    runtime.check_workflow = registry.workflow
    closed = history[-1].terminal
    once = bool(message.get("once"))
    try:
        commands = runtime.replay(history)
    except NonDeterminismError as error:
        channel.send(protocol.failure_message(protocol.DIVERGED, failure_from_exception(error)))
        return
    if once:
        closed = True
    elif not closed and commands:
        channel.send(protocol.commands_message(commands))
        if runtime.closed:
            return  # the run's closing command is sent: nothing is left for this process to do
    while True:
        message = channel.recv()
        kind = message.get("t")
        if kind == protocol.EVENT:
            if closed:
                continue
            try:
                commands = runtime.apply(decode_event(message["event"]))
            except NonDeterminismError as error:
                channel.send(protocol.failure_message(protocol.DIVERGED, failure_from_exception(error)))
                return
            if commands:
                channel.send(protocol.commands_message(commands))
            if runtime.closed:
                return
        elif kind == protocol.QUERY:
            channel.send(_answer(runtime, message))
            if once:
                return
        elif kind == protocol.STOP:
            return


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
