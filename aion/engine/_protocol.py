"""The messages between the engine and its workflow hosts and activity workers.

Frames are msgpack maps with a ``"t"`` (type) key. User values and events inside them travel as bytes from
the payload codec, so the framing layer never sees a user type. A command travels as its type's name and the
codec's bytes of its field values.

Engine → workflow host: ``run`` (the run's history), ``event`` (one recorded arrival), ``query``, ``stop``.
Workflow host → engine: ``commands``, ``diverged`` (a non-determinism failure), ``answer`` (to a query).
Engine → activity worker: ``task``, ``cancel``. Activity worker → engine: ``result``, ``heartbeat``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Final

from aion import events as ev
from aion._codec import decode_event, decode_payload, encode_event, encode_payload
from aion._gc import collector_paused
from aion.workflow._commands import (
    CancelTimer,
    CancelWorkflow,
    Command,
    CompleteUpdate,
    CompleteWorkflow,
    ContinueAsNew,
    FailWorkflow,
    RecordMarker,
    RequestCancelActivity,
    RequestCancelChild,
    ScheduleActivity,
    SignalExternal,
    StartChild,
    StartTimer,
    UpsertSearchAttributes,
)

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
    return encoded_run_message([encode_event(event) for event in history], once=once)


def encoded_run_message(history: list[bytes], *, once: bool = False) -> dict[str, Any]:
    """:func:`run_message` for a history already in the event codec's bytes, as the store holds it
    (``EventStore.read_run_encoded``): the engine sends them without decoding them, the host decodes them."""
    return {"t": RUN, "history": history, "once": once}


def event_message(event: ev.Event) -> dict[str, Any]:
    """Deliver one recorded arrival to a workflow host."""
    return {"t": EVENT, "event": encode_event(event)}


#: The commands a workflow host sends, by the name they travel under.
_COMMAND_TYPES: Final[dict[str, type[Command]]] = {
    cls.__name__: cls
    for cls in (
        ScheduleActivity,
        RequestCancelActivity,
        StartTimer,
        CancelTimer,
        StartChild,
        RequestCancelChild,
        SignalExternal,
        CompleteWorkflow,
        FailWorkflow,
        CancelWorkflow,
        ContinueAsNew,
        UpsertSearchAttributes,
        RecordMarker,
        CompleteUpdate,
    )
}
_COMMAND_FIELDS: Final = {
    cls: tuple(field.name for field in dataclasses.fields(cls)) for cls in _COMMAND_TYPES.values()
}


def commands_message(commands: Sequence[Command], at: int = 0, waits: Sequence[str] = ()) -> dict[str, Any]:
    """Commands a workflow host issued in one activation: for each, its type's name and its field values (in
    field order) encoded by the payload codec, which the values need (they are the workflow's values). ``at``
    is the sequence number of the last event the activation applied: the workflow code is then blocked,
    waiting for something after it (sent even with no commands, so the engine knows the run is parked).
    ``waits`` is what the code is then blocked on that history does not name (``WorkflowRuntime.waits``)."""
    encoded = [
        [
            type(command).__name__,
            encode_payload([getattr(command, name) for name in _COMMAND_FIELDS[type(command)]], limit=None),
        ]
        for command in commands
    ]
    return {"t": COMMANDS, "commands": encoded, "at": at, "waits": list(waits)}


def decode_commands(message: dict[str, Any]) -> list[Command]:
    """The commands of a ``commands`` message."""
    return [_COMMAND_TYPES[name](*decode_payload(values)) for name, values in message["commands"]]


def decode_waits(message: dict[str, Any]) -> list[str]:
    """The waits reported with a ``commands`` message (none from a host that does not report them)."""
    waits = message.get("waits") or []
    return [str(wait) for wait in waits]


def decode_history(message: dict[str, Any]) -> list[ev.Event]:
    """The events of a ``run`` message."""
    with collector_paused():
        return [decode_event(data) for data in message["history"]]


def failure_message(kind: str, failure: ev.Failure) -> dict[str, Any]:
    """A message carrying a failure (``diverged``)."""
    return {"t": kind, "failure": encode_payload(failure, limit=None)}


def decode_failure(message: dict[str, Any]) -> ev.Failure:
    """The failure carried by a message."""
    failure = decode_payload(message["failure"])
    assert isinstance(failure, ev.Failure)
    return failure
