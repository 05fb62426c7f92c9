"""Child specifications: what a supervisor starts, and how it restarts it."""

from __future__ import annotations

import enum
import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._errors import TargetError
from ._reasons import ExitReason

if TYPE_CHECKING:
    import pykka

    from ._channel import OwnerChannel


class Strategy(enum.StrEnum):
    """How a supervisor reacts when one child exits and must be restarted (as in OTP)."""

    ONE_FOR_ONE = "one_for_one"
    """Restart only the child that exited."""
    ONE_FOR_ALL = "one_for_all"
    """Stop every other child (reverse start order), then restart them all in start order."""
    REST_FOR_ONE = "rest_for_one"
    """Stop the children started after the one that exited, then restart it and them, in start order."""


class Restart(enum.StrEnum):
    """When a child that exited is restarted."""

    PERMANENT = "permanent"
    """Always."""
    TRANSIENT = "transient"
    """Only after an abnormal exit (`ExitReason.is_abnormal`)."""
    TEMPORARY = "temporary"
    """Never; the child is removed when it exits."""


def target_ref(target: Callable[..., Any] | str) -> str:
    """The ``"module:qualname"`` reference of ``target``, checked to be resolvable by name."""
    if isinstance(target, str):
        if ":" not in target:
            raise TargetError(f"target reference {target!r} must look like 'package.module:function'")
        return target
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if not module or not qualname:
        raise TargetError(f"target {target!r} has no __module__/__qualname__; pass 'module:qualname'")
    if "<locals>" in qualname or "<lambda>" in qualname:
        raise TargetError(
            f"target {module}:{qualname} is a lambda or a nested function; process targets must be "
            "module-level callables so the zygote can find them by name"
        )
    return f"{module}:{qualname}"


def resolve_target(ref: str) -> Callable[..., Any]:
    """Find the callable named by ``ref`` (``"module:qualname"``), importing the module if needed."""
    module_name, _, qualname = ref.partition(":")
    module = sys.modules.get(module_name)
    if module is None:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise TargetError(f"cannot import module {module_name!r} for target {ref!r}: {exc!r}") from exc
    obj: Any = module
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            hint = ""
            if module_name == "__main__":
                hint = " (targets in __main__ must be defined before Zygote.start() forks the zygote)"
            raise TargetError(f"target {ref!r} not found: {module_name} has no {qualname!r}{hint}") from None
    if not callable(obj):
        raise TargetError(f"target {ref!r} is not callable")
    return obj  # type: ignore[no-any-return]


@dataclass(frozen=True, kw_only=True)
class _BaseSpec:
    id: str
    restart: Restart = Restart.PERMANENT
    shutdown_timeout: float = 5.0
    on_exit: Callable[[str, ExitReason], None] | None = None
    max_restarts: int | None = None
    max_seconds: float = 5.0
    on_give_up: Callable[[str, ExitReason], None] | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ProcessSpec(_BaseSpec):
    """A child that runs ``target(channel, *args)`` in its own OS process, forked from the zygote.

    ``target`` is a module-level callable (or its ``"module:qualname"`` reference), resolved in the zygote;
    ``args`` must be msgpack-serialisable. ``on_start(child_id, pid, channel)`` is called from the I/O hub
    thread each time the child (re)starts, before any of its messages is delivered; ``channel`` is the
    owner's end (`OwnerChannel`), whose ``send`` is thread-safe. ``on_message(child_id, msg)`` is called from
    the hub thread for every frame the child sends; it must not block on a supervisor. ``on_exit(child_id,
    reason)`` is called from the supervisor's thread after every exit.

    ``max_restarts``/``max_seconds`` (optional) bound the restarts of this one child: when exceeded, the child
    is removed instead of restarted, ``on_give_up(child_id, last_reason)`` is called, and the supervisor does
    not escalate (an extension to OTP). ``trap_exit`` makes exit signals from linked processes arrive as
    `ExitSignal` messages instead of killing the child. ``meta`` is free-form JSON-able data shown in
    ``tree()``. ``recycle`` keeps the process after its target returns normally, for a later child of the
    same target (see `Zygote.spawn`).
    """

    target: Callable[..., Any] | str
    args: Sequence[Any] = ()
    recycle: bool = False
    on_start: Callable[[str, int, OwnerChannel], None] | None = None
    on_message: Callable[[str, Any], None] | None = None
    trap_exit: bool = False

    def __post_init__(self) -> None:
        target_ref(self.target)


@dataclass(frozen=True, kw_only=True)
class ActorSpec(_BaseSpec):
    """A child that is a pykka actor: ``actor_class.start(*args, **kwargs)``; restarted if it crashes.

    A crash is an unhandled exception in the actor (in ``on_start``, in a ``tell``-ed message, ...); a
    normal stop of the actor counts as a ``normal`` exit.
    """

    actor_class: type[pykka.Actor]
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class SupervisorSpec(_BaseSpec):
    """A supervisor: its ``strategy``, its restart intensity and its static ``children``.

    For a supervisor, ``max_restarts`` within ``max_seconds`` is its OTP restart intensity (not a per-child
    bound): when more restarts than that happen in the window, it stops all its children in reverse start
    order and exits abnormally, and its parent applies its own strategy (escalation). A root supervisor that
    gives up just stops; `Supervisor.wait` returns its reason. ``max_restarts=None`` means no limit.
    """

    strategy: Strategy = Strategy.ONE_FOR_ONE
    max_restarts: int | None = 3
    children: Sequence[ChildSpec] = ()
    shutdown_timeout: float = 30.0


ChildSpec = ProcessSpec | ActorSpec | SupervisorSpec
"""Any child specification."""
