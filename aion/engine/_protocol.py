"""The messages between the engine and its workflow hosts and activity workers.

Frames are msgpack maps with a ``"t"`` (type) key. User values and events inside them travel as bytes from
the payload codec, so the framing layer never sees a user type.

Engine → workflow host: ``run`` (the run's history), ``event`` (one recorded arrival), ``query``, ``stop``.
Workflow host → engine: ``commands``, ``diverged`` (a non-determinism failure), ``answer`` (to a query).
Engine → activity worker: ``task``, ``cancel``. Activity worker → engine: ``result``, ``heartbeat``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aion import events as ev
from aion._codec import decode_event, decode_payload, encode_event, encode_payload
from aion.workflow._commands import Command

RUN = "run"
EVENT = "event"
QUERY = "query"
STOP = "stop"
COMMANDS = "commands"
DIVERGED = "diverged"
ANSWER = "answer"
TASK = "task"
CANCEL = "cancel"
RESULT = "result"
HEARTBEAT = "heartbeat"


def run_message(history: Sequence[ev.Event], *, once: bool = False) -> dict[str, Any]:
    """Tell a workflow host to replay ``history`` and go live (``once``: answer one query, then exit)."""
    return {"t": RUN, "history": [encode_event(event) for event in history], "once": once}


def event_message(event: ev.Event) -> dict[str, Any]:
    """Deliver one recorded arrival to a workflow host."""
    return {"t": EVENT, "event": encode_event(event)}


def commands_message(commands: Sequence[Command]) -> dict[str, Any]:
    """Commands a workflow host issued in one activation."""
    return {"t": COMMANDS, "commands": encode_payload(list(commands), limit=None)}


def decode_commands(message: dict[str, Any]) -> list[Command]:
    """The commands of a ``commands`` message."""
    commands = decode_payload(message["commands"])
    return [command for command in commands if isinstance(command, Command)]


def decode_history(message: dict[str, Any]) -> list[ev.Event]:
    """The events of a ``run`` message."""
    return [decode_event(data) for data in message["history"]]


def failure_message(kind: str, failure: ev.Failure) -> dict[str, Any]:
    """A message carrying a failure (``diverged``)."""
    return {"t": kind, "failure": encode_payload(failure, limit=None)}


def decode_failure(message: dict[str, Any]) -> ev.Failure:
    """The failure carried by a message."""
    failure = decode_payload(message["failure"])
    assert isinstance(failure, ev.Failure)
    return failure
