"""``Replayer``: replays recorded histories against workflow code, in this process, without an engine.

A history replays the way a workflow process replays it after a crash: the code runs from the top and each command
it issues is matched, by correlation key and kind, with what the history recorded. A history that no longer fits
raises :class:`~aion.errors.NonDeterminismError` naming the sequence number, what the history has and what the
code does. For a run that closed by its own code (completed, failed, cancelled, continued as new), the code must
also close it the same way and issue nothing the history does not hold.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from aion import events as ev
from aion._definitions import version_of_run
from aion.engine._registry import Registry
from aion.errors import InvalidArgumentError, NonDeterminismError, UnknownWorkflowTypeError
from aion.workflow._commands import CancelWorkflow, Command, CompleteWorkflow, ContinueAsNew, FailWorkflow
from aion.workflow._runtime import WorkflowRuntime

#: The command each closing event of a run's own code is recorded from.
_CLOSED_BY = {
    ev.WorkflowCompleted: CompleteWorkflow,
    ev.WorkflowFailed: FailWorkflow,
    ev.WorkflowCancelled: CancelWorkflow,
    ev.WorkflowContinuedAsNew: ContinueAsNew,
}


class Replayer:
    """Replays histories against the given workflows (decorated ``async def`` functions)::

    Replayer(workflows=[checkout]).replay(handle.history())   # NonDeterminismError if the code diverged
    """

    def __init__(self, workflows: Iterable[Callable[..., Any]], activities: Iterable[Callable[..., Any]] = ()) -> None:
        self._registry = Registry.build(workflows, activities)

    def replay(self, history: Sequence[ev.Event]) -> None:
        """Replay one run's history (``WorkflowStarted`` first, as ``handle.history()`` gives it, or a whole
        workflow's history: its last run is replayed). Raises ``NonDeterminismError`` when the code no longer
        fits, ``UnknownWorkflowTypeError`` when the run's type is not among the workflows
        (``UnknownWorkflowVersionError`` when its version is not)."""
        run = _last_run(history)
        started = run[0]
        assert isinstance(started, ev.WorkflowStarted)
        # The run's own version: a run replays on the version it started on.
        definition = self._registry.workflow_version(started.workflow_type, version_of_run(started.workflow_version))
        # Activities and children never run in a replay, so their types need not be registered here.
        runtime = WorkflowRuntime(definition.function, started)
        issued = runtime.replay(run)
        _check_closing(started.workflow_id, run[-1], issued)

    def replay_file(self, path: str | os.PathLike[str]) -> None:
        """Replay a history exported with ``aion history ID --json > FILE``."""
        self.replay(load_history(path))

    def check(self, histories: Iterable[Sequence[ev.Event]]) -> list[NonDeterminismError | UnknownWorkflowTypeError]:
        """Replay every history; the divergences found (an empty list when all fit)."""
        found: list[NonDeterminismError | UnknownWorkflowTypeError] = []
        for history in histories:
            try:
                self.replay(history)
            except (NonDeterminismError, UnknownWorkflowTypeError) as error:
                found.append(error)
        return found


def _last_run(history: Sequence[ev.Event]) -> list[ev.Event]:
    starts = [index for index, event in enumerate(history) if isinstance(event, ev.WorkflowStarted)]
    if not starts:
        raise InvalidArgumentError("a history to replay must hold a WorkflowStarted event")
    return list(history[starts[-1] :])


def _check_closing(workflow_id: str, last: ev.Event, issued: list[Command]) -> None:
    """A run closed by its own code must close the same way again, with nothing new issued."""
    closed_by = _CLOSED_BY.get(type(last))
    if closed_by is None:
        return  # still running (new commands go live), or closed from outside (terminated, timed out)
    closing = [command for command in issued if isinstance(command, tuple(_CLOSED_BY.values()))]
    others = [command for command in issued if command not in closing]
    if others:
        raise NonDeterminismError(workflow_id, last.seq, f"{last.type} (the run closed)", others[0].describe())
    if not closing:
        raise NonDeterminismError(workflow_id, last.seq, last.type, "nothing (the code no longer closes the run)")
    if not isinstance(closing[0], closed_by):
        raise NonDeterminismError(workflow_id, last.seq, last.type, closing[0].describe())


def load_history(path: str | os.PathLike[str]) -> list[ev.Event]:
    """The events of a history exported with ``aion history ID --json`` (a map with ``events``, or a list)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InvalidArgumentError(f"cannot read a history from {str(path)!r}: {error}") from error
    return history_from_json(data)


def history_from_json(data: Any) -> list[ev.Event]:
    """Events from the JSON form of ``aion history --json`` (``{"events": [...]}``, or the list itself)."""
    items = data.get("events") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise InvalidArgumentError("a history in JSON is a list of events, or a map with 'events'")
    return [_event_from_json(item, index) for index, item in enumerate(items)]


def _event_from_json(item: Any, index: int) -> ev.Event:
    if not isinstance(item, dict) or not isinstance(item.get("type"), str):
        raise InvalidArgumentError(f"event {index} of the history is not a map with a 'type'")
    cls = ev.EVENT_TYPES.get(item["type"])
    if cls is None:
        raise InvalidArgumentError(f"event {index} of the history has an unknown type {item['type']!r}")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name not in item:
            continue
        value = item[field.name]
        hint = str(hints.get(field.name, ""))
        if value is not None and "datetime" in hint:
            value = datetime.fromisoformat(value)
        elif value is not None and "Failure" in hint:
            value = ev.Failure(**value)
        values[field.name] = value
    try:
        return cls(**values)
    except TypeError as error:
        raise InvalidArgumentError(f"event {index} of the history ({item['type']}) is malformed: {error}") from error
