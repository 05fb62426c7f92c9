"""``aion serve --task-queue``: a local task queue declared on the command line.

It owns turning ``NAME[:OPTION,...]`` into the ``(name, LocalQueue)`` that ``Engine(task_queues=...)`` takes, and
nothing else: the queue's own checks (``LocalQueue``, the queue name's) say what a bad value is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import click

from aion.engine import LocalQueue
from aion.engine._task_queues import check_queue_name
from aion.errors import InvalidArgumentError

#: The options a queue takes, each with what its value must be and the ``LocalQueue`` field it sets.
_VALUED: dict[str, tuple[str, str, Callable[[str], Any]]] = {
    "workers": ("workers", "an integer", int),
    "max-concurrent": ("max_concurrent", "an integer", int),
    "rate-limit": ("rate_limit", "a number", float),
}
#: The option that takes no value: the queue's workers may also run on the engine's CPU.
_ENGINE_CPU = "engine-cpu"
KNOWN_OPTIONS = (*_VALUED, _ENGINE_CPU)


def parse_task_queue(spec: str) -> tuple[str, LocalQueue]:
    """``"mail:workers=2,rate-limit=5"`` → ``("mail", LocalQueue(workers=2, rate_limit=5.0))``; a bad spec raises
    ``InvalidArgumentError`` naming the spec and what is wrong with it::

        parse_task_queue("cpu:workers=4,engine-cpu")  # 4 workers, allowed on the engine's CPU too
    """
    name, _, options = spec.partition(":")
    name = name.strip()
    try:
        check_queue_name(name)
    except InvalidArgumentError as error:
        raise InvalidArgumentError(f"{spec!r}: {error}") from None
    fields: dict[str, Any] = {}
    for option in (part.strip() for part in options.split(",")) if options.strip() else ():
        key, equals, text = (piece.strip() for piece in option.partition("="))
        if key == _ENGINE_CPU:
            if equals:
                raise InvalidArgumentError(f"{spec!r}: {_ENGINE_CPU} takes no value")
            if "use_engine_cpu" in fields:
                raise InvalidArgumentError(f"{spec!r}: {key} given twice")
            fields["use_engine_cpu"] = True
            continue
        if key not in _VALUED:
            raise InvalidArgumentError(f"{spec!r}: unknown option {key!r} (known: {', '.join(KNOWN_OPTIONS)})")
        field, kind, convert = _VALUED[key]
        if field in fields:
            raise InvalidArgumentError(f"{spec!r}: {key} given twice")
        try:
            fields[field] = convert(text)
        except ValueError:
            raise InvalidArgumentError(f"{spec!r}: {key} must be {kind}, got {text!r}") from None
    try:
        return name, LocalQueue(**fields)
    except InvalidArgumentError as error:
        raise InvalidArgumentError(f"{spec!r}: {error}") from None


def declared_queues(
    parsed: Sequence[tuple[str, LocalQueue]], *, activities_on_engine_cpu: bool
) -> dict[str, LocalQueue] | None:
    """The queues of ``--task-queue`` options, as :func:`parse_task_queue` gave them (a name given twice is refused),
    the default queue's workers also on the engine's CPU with ``--activities-on-engine-cpu``; ``None`` when neither
    is given (the engine's default)."""
    queues: dict[str, LocalQueue] = {}
    for name, queue in parsed:
        if name in queues:
            raise InvalidArgumentError(f"queue {name!r} is declared twice")
        queues[name] = queue
    if activities_on_engine_cpu:
        queues["default"] = dataclasses.replace(queues.get("default", LocalQueue()), use_engine_cpu=True)
    return queues or None


class TaskQueueOption(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click stubs
    """``--task-queue NAME[:OPTION,...]``: parsed as it is read (``(name, LocalQueue)``), so a bad one is a usage
    error (exit 2)."""

    name = "NAME[:OPTION,...]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, LocalQueue]:
        if isinstance(value, tuple):  # already parsed (click may convert a value twice)
            return value
        try:
            return parse_task_queue(str(value))
        except InvalidArgumentError as error:
            self.fail(str(error), param, ctx)
