"""``aion serve --task-queue``: a task queue declared on the command line.

It owns turning ``NAME[:OPTION,...]`` (a name may hold ``:``: see `_split_name`) into the
``(name, LocalQueue | RayQueue)`` that ``Engine(task_queues=...)`` takes, and nothing else: the queue's own checks
(``LocalQueue``, ``RayQueue``, the queue name's) say what a bad value is. The option ``ray`` makes it a Ray queue;
without it, a local one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import click

from aion.engine import LocalQueue, RayQueue
from aion.engine._task_queues import check_queue_name
from aion.errors import InvalidArgumentError

QueueConfig = LocalQueue | RayQueue

#: The options both kinds of queue take: what each value must be, and the queue's field it sets.
_LIMITS: dict[str, tuple[str, str, Callable[[str], Any]]] = {
    "max-concurrent": ("max_concurrent", "an integer", int),
    "rate-limit": ("rate_limit", "a number", float),
}
#: A local queue's own valued options.
_LOCAL: dict[str, tuple[str, str, Callable[[str], Any]]] = {"workers": ("workers", "an integer", int)}
#: A Ray queue's own valued options (``resource.NAME=AMOUNT`` besides: a custom resource each attempt asks for).
_RAY: dict[str, tuple[str, str, Callable[[str], Any]]] = {
    "address": ("address", "an address", str),
    "num-cpus": ("num_cpus", "a number", float),
    "num-gpus": ("num_gpus", "a number", float),
}
#: Every option that takes a value, but a Ray queue's custom resources.
_VALUED = {**_LIMITS, **_LOCAL, **_RAY}
#: The option that takes no value and makes the queue a Ray queue.
_RAY_FLAG = "ray"
#: The option that takes no value: a local queue's workers may also run on the engine's CPU.
_ENGINE_CPU = "engine-cpu"
#: The prefix of a Ray queue's custom resource option.
_RESOURCE = "resource."
KNOWN_OPTIONS = (*_LOCAL, *_LIMITS, _ENGINE_CPU, _RAY_FLAG, *_RAY, f"{_RESOURCE}NAME")


def parse_task_queue(spec: str) -> tuple[str, QueueConfig]:
    """``"mail:workers=2,rate-limit=5"`` → ``("mail", LocalQueue(workers=2, rate_limit=5.0))``,
    ``"gpu:ray,num-gpus=1"`` → ``("gpu", RayQueue(num_gpus=1.0))``; a bad spec raises ``InvalidArgumentError``
    naming the spec and what is wrong with it::

        parse_task_queue("cpu:workers=4,engine-cpu")  # 4 workers, allowed on the engine's CPU too
        parse_task_queue("media:ray,address=auto,resource.media_node=0.01")
    """
    name, options = _split_name(spec)
    try:
        check_queue_name(name)
    except InvalidArgumentError as error:
        raise InvalidArgumentError(f"{spec!r}: {error}") from None
    parts = options.split(",") if options.strip() else []
    pairs = [tuple(piece.strip() for piece in part.partition("=")) for part in parts]
    on_ray = any(key == _RAY_FLAG for key, _, _ in pairs)
    fields: dict[str, Any] = {}
    resources: dict[str, float] = {}
    seen: set[str] = set()
    for key, equals, text in pairs:
        if key in seen:
            raise InvalidArgumentError(f"{spec!r}: {key} given twice")
        seen.add(key)
        if key in (_RAY_FLAG, _ENGINE_CPU):
            if equals:
                raise InvalidArgumentError(f"{spec!r}: {key} takes no value")
            if key == _ENGINE_CPU:
                _check_kind(spec, key, local=True, on_ray=on_ray)
                fields["use_engine_cpu"] = True
            continue
        if _is_resource(key):
            _check_kind(spec, key, local=False, on_ray=on_ray)
            resources[key[len(_RESOURCE) :]] = _convert(spec, key, text, float, "a number")
            continue
        known = _VALUED.get(key)
        if known is None:
            hint = "" if equals else f"; a queue name holding ':' ends with one more, as in '{name}:{key}:'"
            raise InvalidArgumentError(f"{spec!r}: unknown option {key!r} (known: {', '.join(KNOWN_OPTIONS)}){hint}")
        if key not in _LIMITS:
            _check_kind(spec, key, local=key in _LOCAL, on_ray=on_ray)
        field, kind, convert = known
        fields[field] = _convert(spec, key, text, convert, kind)
    try:
        if on_ray:
            return name, RayQueue(**fields, resources=resources)
        return name, LocalQueue(**fields)
    except InvalidArgumentError as error:
        raise InvalidArgumentError(f"{spec!r}: {error}") from None


def _split_name(spec: str) -> tuple[str, str]:
    """``spec``'s queue name and its options. The name ends at the first ``:`` that is followed by nothing or by a
    known option, so a name may hold ``:`` itself (``"mail:eu:workers=2"``, or ``"mail:eu:"`` for no options);
    with no such ``:``, at the first one (whose unknown option is then refused, naming it)."""
    colons = [index for index, char in enumerate(spec) if char == ":"]
    for index in colons:
        options = spec[index + 1 :]
        key = options.split(",", 1)[0].partition("=")[0].strip()
        if not options.strip() or _is_option(key):
            return spec[:index].strip(), options
    if colons:
        return spec[: colons[0]].strip(), spec[colons[0] + 1 :]
    return spec.strip(), ""


def _is_option(key: str) -> bool:
    """Whether ``key`` names an option of ``--task-queue``."""
    return key in _VALUED or key in (_RAY_FLAG, _ENGINE_CPU) or _is_resource(key)


def _is_resource(key: str) -> bool:
    """Whether ``key`` is a Ray queue's custom resource option (``resource.NAME``)."""
    return key.startswith(_RESOURCE) and len(key) > len(_RESOURCE)


def _check_kind(spec: str, key: str, *, local: bool, on_ray: bool) -> None:
    """``InvalidArgumentError`` if ``key``, an option of a local queue (``local``) or of a Ray one, is given to the
    other kind."""
    if local and on_ray:
        raise InvalidArgumentError(f"{spec!r}: {key} is an option of a local queue, and this is a Ray queue (ray)")
    if not local and not on_ray:
        raise InvalidArgumentError(f"{spec!r}: {key} is an option of a Ray queue: add the option ray")


def _convert(spec: str, key: str, text: str, convert: Callable[[str], Any], kind: str) -> Any:
    """``convert(text)``; ``InvalidArgumentError`` naming the spec and the option if it is empty or will not
    convert."""
    try:
        if not text:
            raise ValueError(text)
        return convert(text)
    except ValueError:
        raise InvalidArgumentError(f"{spec!r}: {key} must be {kind}, got {text!r}") from None


def declared_queues(
    parsed: Sequence[tuple[str, QueueConfig]], *, activities_on_engine_cpu: bool
) -> dict[str, QueueConfig] | None:
    """The queues of ``--task-queue`` options, as :func:`parse_task_queue` gave them (a name given twice is refused),
    the default queue's workers also on the engine's CPU with ``--activities-on-engine-cpu``; ``None`` when neither
    is given (the engine's default)."""
    queues: dict[str, QueueConfig] = {}
    for name, queue in parsed:
        if name in queues:
            raise InvalidArgumentError(f"queue {name!r} is declared twice")
        queues[name] = queue
    if activities_on_engine_cpu:
        default = queues.get("default", LocalQueue())
        if isinstance(default, RayQueue):
            raise InvalidArgumentError("--activities-on-engine-cpu is for a local default queue, but it is a Ray queue")
        queues["default"] = dataclasses.replace(default, use_engine_cpu=True)
    return queues or None


class TaskQueueOption(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click stubs
    """``--task-queue NAME[:OPTION,...]``: parsed as it is read (``(name, LocalQueue | RayQueue)``), so a bad one is
    a usage error (exit 2)."""

    name = "NAME[:OPTION,...]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, QueueConfig]:
        if isinstance(value, tuple):  # already parsed (click may convert a value twice)
            return value
        try:
            return parse_task_queue(str(value))
        except InvalidArgumentError as error:
            self.fail(str(error), param, ctx)
