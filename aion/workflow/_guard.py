"""The determinism guard: catches wall-clock, randomness and uuid calls made by workflow code.

Installed once in each workflow process (never in the engine). It replaces the clock readers of ``time``
(``time``, ``time_ns``, ``monotonic``, ``monotonic_ns``, ``perf_counter``, ``perf_counter_ns``, ``process_time``),
``datetime.datetime`` (its ``now``/``utcnow``/``today``), ``datetime.date.today``, the module-level functions of
``random``, ``os.urandom``/``os.getrandom``, the functions of ``secrets``, ``uuid.uuid1``/``uuid.uuid4`` and
``threading.Thread.start`` with wrappers that raise :class:`~aion.errors.NonDeterministicCallError` when **both**:

- a workflow step is running in this process (the runtime is driving workflow code), and
- the direct caller is user code: a file outside the standard library, the installed packages, aion itself and the
  ``supervisors`` library it ships with (both trusted however installed: an editable install leaves them outside).

So library internals (logging's timestamps, a parser's use of ``time``) keep working under workflow code, while
a workflow that calls ``datetime.now()`` fails at once with a message that names ``workflow.now()``.

Names bound by ``from time import perf_counter`` (or ``from datetime import datetime``) in user modules imported
before the guard was installed (the workflow modules, imported by the engine before it forked) are pointed at the
wrappers when it is installed. The wrappers, and which of those names to rebind, are found by :func:`prepare` in the
engine before it forks, so that installing binds a few names and writes to few pages of a new workflow process.
Limits (see docs/workflows.md): only module-level names of user modules are rebound, and only direct calls from
user code are judged.
"""

from __future__ import annotations

import datetime as _datetime
import functools
import os
import random as _random
import secrets as _secrets
import sys
import sysconfig
import threading as _threading
import time as _time
import uuid as _uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aion
import supervisors
from aion.errors import NonDeterministicCallError
from aion.workflow._runtime import in_workflow_code

_installed = False


def _compute_trusted_prefixes() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[name] for name in ("stdlib", "platstdlib", "purelib", "platlib") if name in paths}
    # aion and the supervision library it ships with are never user code, wherever they are installed from
    # (an editable install leaves them outside the installed packages).
    roots.update(os.path.dirname(os.path.abspath(path)) for path in (aion.__file__, supervisors.__file__))
    return tuple(os.path.join(os.path.realpath(root), "") for root in roots)


#: Computed at import, in the engine before it forks: every workflow process inherits it instead of paying for
#: ``sysconfig`` (about 2 ms) when it starts.
_trusted_prefixes: tuple[str, ...] = _compute_trusted_prefixes()


def _caller_is_user_code(depth: int) -> bool:
    # sys._getframe is CPython's documented way to read a caller's frame (inspect.stack is far slower).
    return _is_user_file(sys._getframe(depth + 1).f_code.co_filename)  # noqa: SLF001


@functools.cache
def _is_user_file(filename: str) -> bool:
    """Whether code in ``filename`` is user code (cached: ``realpath`` touches the file system)."""
    if filename.startswith("<"):
        # Frozen stdlib modules and interactive code: treat <frozen ...> as trusted, anything else as user code.
        return not filename.startswith("<frozen")
    return not os.path.realpath(filename).startswith(_trusted_prefixes)


def check(call: str, replacement: str, depth: int = 1) -> None:
    """Raise if workflow code is running and the caller ``depth`` frames up is user code."""
    if in_workflow_code() and _caller_is_user_code(depth + 1):
        raise NonDeterministicCallError(
            f"{call} is not deterministic and cannot be called from workflow code: use {replacement}"
        )


def _guard(function: Callable[..., Any], call: str, replacement: str) -> Callable[..., Any]:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        check(call, replacement, depth=1)
        return function(*args, **kwargs)

    guarded.__name__ = getattr(function, "__name__", call)
    guarded.__doc__ = getattr(function, "__doc__", None)
    guarded.__wrapped__ = function  # type: ignore[attr-defined]
    return guarded


_RealDatetime = _datetime.datetime
_RealDate = _datetime.date


class _DatetimeMeta(type):
    def __instancecheck__(cls, instance: object) -> bool:
        return isinstance(instance, _RealDatetime)

    def __subclasscheck__(cls, subclass: type) -> bool:
        return issubclass(subclass, _RealDatetime)


class _GuardedDatetime(_RealDatetime, metaclass=_DatetimeMeta):
    """``datetime.datetime`` whose clock readers are guarded; instances are plain datetimes."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _GuardedDatetime:
        return _RealDatetime(*args, **kwargs)  # type: ignore[return-value]

    @classmethod
    def now(cls, tz: _datetime.tzinfo | None = None) -> _GuardedDatetime:
        check("datetime.now()", "workflow.now()", depth=1)
        return _RealDatetime.now(tz)  # type: ignore[return-value]

    @classmethod
    def utcnow(cls) -> _GuardedDatetime:
        check("datetime.utcnow()", "workflow.now()", depth=1)
        return _RealDatetime.utcnow()  # type: ignore[return-value]

    @classmethod
    def today(cls) -> _GuardedDatetime:
        check("datetime.today()", "workflow.now()", depth=1)
        return _RealDatetime.today()  # type: ignore[return-value]


class _DateMeta(type):
    def __instancecheck__(cls, instance: object) -> bool:
        return isinstance(instance, _RealDate)

    def __subclasscheck__(cls, subclass: type) -> bool:
        return issubclass(subclass, _RealDate)


class _GuardedDate(_RealDate, metaclass=_DateMeta):
    """``datetime.date`` whose ``today`` is guarded; instances are plain dates."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _GuardedDate:
        return _RealDate(*args, **kwargs)  # type: ignore[return-value]

    @classmethod
    def today(cls) -> _GuardedDate:
        check("date.today()", "workflow.now().date()", depth=1)
        return _RealDate.today()  # type: ignore[return-value]


_RANDOM_FUNCTIONS = (
    "random", "uniform", "triangular", "randint", "choice", "randrange", "sample", "shuffle", "choices",
    "normalvariate", "lognormvariate", "expovariate", "vonmisesvariate", "gammavariate", "gauss",
    "betavariate", "paretovariate", "weibullvariate", "getrandbits", "randbytes",
)  # fmt: skip


_SECRETS_FUNCTIONS = ("token_bytes", "token_hex", "token_urlsafe", "choice", "randbelow", "randbits")

#: The module functions the guard replaces: the module, the names, how a call is named, what to use instead.
_GUARDED: tuple[tuple[Any, tuple[str, ...], str, str], ...] = (
    (
        _time,
        ("time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "process_time"),
        "time.{}()",
        "workflow.now()",
    ),
    (_random, _RANDOM_FUNCTIONS, "random.{}()", "workflow.random()"),
    (_uuid, ("uuid1", "uuid4"), "uuid.{}()", "workflow.uuid4()"),
    (os, ("urandom", "getrandom"), "os.{}()", "workflow.random()"),
    (_secrets, _SECRETS_FUNCTIONS, "secrets.{}()", "workflow.random()"),
)


#: A guarded name: the object that holds it (a module, ``threading.Thread``), the name, the original, the wrapper.
Replacement = tuple[Any, str, Any, Any]
#: A user module's name bound to an original the guard replaces: its namespace, the name, the original, the wrapper.
UserName = tuple[dict[str, Any], str, Any, Any]


def _make_replacements() -> tuple[Replacement, ...]:
    """The wrappers the guard installs, made without installing them."""
    made: list[Replacement] = []
    for module, names, call, replacement in _GUARDED:
        for name in names:
            original = getattr(module, name, None)
            if original is not None:
                made.append((module, name, original, _guard(original, call.format(name), replacement)))
    made.append((_datetime, "datetime", _RealDatetime, _GuardedDatetime))
    made.append((_datetime, "date", _RealDate, _GuardedDate))
    start = _threading.Thread.start
    thread_start = _guard(start, "threading.Thread.start()", "an activity (workflow code runs on one loop)")
    made.append((_threading.Thread, "start", start, thread_start))
    return tuple(made)


@dataclass(frozen=True)
class _Plan:
    """What `install` binds, found ahead of it."""

    #: What ``_loaded`` said when the user modules were looked through: a plan found before modules were loaded
    #: (or unloaded) does not name theirs, and is found again.
    loaded: tuple[int, str | None]
    replacements: tuple[Replacement, ...]
    #: Names bound by ``from time import perf_counter`` or ``from datetime import datetime`` in user modules
    #: imported before the guard (the workflow modules, imported by the engine before it forked), which still
    #: hold the originals.
    user_names: tuple[UserName, ...]

    @classmethod
    def find(cls, previous: _Plan | None) -> _Plan:
        """Look through the user modules for the originals the guard replaces (the wrappers of ``previous``,
        else made now)."""
        made = previous.replacements if previous is not None else _make_replacements()
        wrapper_of = {id(original): guarded for _owner, _name, original, guarded in made}
        user_names = tuple(
            (namespace, name, value, wrapper_of[id(value)])
            for namespace in _user_module_namespaces()
            for name, value in list(namespace.items())
            if id(value) in wrapper_of
        )
        return cls(_loaded(), made, user_names)


#: Found by `prepare` in the engine before it forks, so that a new workflow process inherits it. Making the
#: wrappers (some fifty functions, each with its attribute dict) and walking every name of the user modules in the
#: workflow process wrote to hundreds of pages it shares with the zygote, a copy-on-write fault each, between the
#: spawn of a run and its replay; binding what the plan names writes to a few.
_plan: _Plan | None = None


def install() -> None:
    """Install the guard in this process (idempotent). Only workflow processes call it."""
    global _installed
    if _installed:
        return
    _installed = True
    plan = _plan
    if plan is None or plan.loaded != _loaded():
        plan = _Plan.find(plan)
    for owner, name, _original, guarded in plan.replacements:
        setattr(owner, name, guarded)
    # Only module-level names are rebound (a documented limit); one rebound since the plan was found is left be.
    for namespace, name, original, guarded in plan.user_names:
        if namespace.get(name) is original:
            namespace[name] = guarded


def prepare() -> None:
    """Do ahead what :func:`install` will do, binding nothing: make the wrappers, find the loaded modules that are
    user code (a ``realpath`` per file, cached) and the names in them to rebind. The engine calls it before it
    forks (the answers are inherited), and every idle pool host calls it while it warms up, so that the
    copy-on-write page faults of that work (some milliseconds in a fresh process) are paid before a run is handed
    to it, not between a spawn or a crash and the replay."""
    global _plan
    if not _installed:
        _plan = _Plan.find(_plan)


#: The namespaces of the user modules, and what ``_loaded`` said when they were found.
_user_namespaces: tuple[tuple[int, str | None], list[dict[str, Any]]] = ((-1, None), [])


def _loaded() -> tuple[int, str | None]:
    """How many modules are loaded, and the name of the last one loaded (``sys.modules`` keeps import order)."""
    return len(sys.modules), next(reversed(sys.modules), None)


def _user_module_namespaces() -> list[dict[str, Any]]:
    """The namespaces of the loaded modules that are user code; walked again only when modules were loaded
    (or unloaded) since the last walk."""
    global _user_namespaces
    loaded, namespaces = _user_namespaces
    if loaded == _loaded():
        return namespaces
    namespaces = []
    for module in list(sys.modules.values()):
        filename = getattr(module, "__file__", None)
        if not isinstance(filename, str) or not _is_user_file(filename):
            continue
        namespace = getattr(module, "__dict__", None)
        if isinstance(namespace, dict):
            namespaces.append(namespace)
    _user_namespaces = (_loaded(), namespaces)
    return namespaces
