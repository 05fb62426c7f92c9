"""The determinism guard: catches wall-clock, randomness and uuid calls made by workflow code.

Installed once in each workflow process (never in the engine). It replaces the clock readers of ``time``
(``time``, ``time_ns``, ``monotonic``, ``monotonic_ns``, ``perf_counter``, ``perf_counter_ns``, ``process_time``),
``datetime.datetime`` (its ``now``/``utcnow``/``today``), ``datetime.date.today``, the module-level functions of
``random``, ``os.urandom``/``os.getrandom``, the functions of ``secrets``, ``uuid.uuid1``/``uuid.uuid4`` and
``threading.Thread.start`` with wrappers that raise :class:`~aion.errors.NonDeterministicCallError` when **both**:

- a workflow step is running in this process (the runtime is driving workflow code), and
- the direct caller is user code: a file outside the standard library, the installed packages and aion itself.

So library internals (logging's timestamps, a parser's use of ``time``) keep working under workflow code, while
a workflow that calls ``datetime.now()`` fails at once with a message that names ``workflow.now()``.

Names bound by ``from time import perf_counter`` (or ``from datetime import datetime``) in user modules imported
before the guard was installed (the workflow modules, imported by the engine before it forked) are pointed at the
wrappers when it is installed. Limits (see docs/workflows.md): only module-level names of user modules are
rebound, and only direct calls from user code are judged.
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
from typing import Any

import aion
from aion.errors import NonDeterministicCallError
from aion.workflow._runtime import in_workflow_code

_installed = False


def _compute_trusted_prefixes() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[name] for name in ("stdlib", "platstdlib", "purelib", "platlib") if name in paths}
    roots.add(os.path.dirname(os.path.abspath(aion.__file__)))
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


def install() -> None:
    """Install the guard in this process (idempotent). Only workflow processes call it."""
    global _installed
    if _installed:
        return
    _installed = True
    replaced: dict[int, Any] = {}  # id of an original -> its guarded replacement, to rebind names in user modules

    def replace(module: Any, name: str, call: str, replacement: str) -> None:
        original = getattr(module, name, None)
        if original is None:
            return
        guarded = _guard(original, call, replacement)
        setattr(module, name, guarded)
        replaced[id(original)] = guarded

    for module, names, call, replacement in _GUARDED:
        for name in names:
            replace(module, name, call.format(name), replacement)
    replaced[id(_RealDatetime)] = _datetime.datetime = _GuardedDatetime  # type: ignore[misc]
    replaced[id(_RealDate)] = _datetime.date = _GuardedDate  # type: ignore[misc]
    _threading.Thread.start = _guard(  # type: ignore[method-assign]
        _threading.Thread.start, "threading.Thread.start()", "an activity (workflow code runs on one loop)"
    )
    _rebind_user_modules(replaced)


def prepare() -> None:
    """Do ahead what :func:`install` will do first, binding nothing: find the loaded modules that are user code
    (a ``realpath`` per file, cached) and look through their names. The engine calls it before it forks (the
    answers are inherited), and every idle pool host calls it while it warms up, so that the copy-on-write page
    faults of that walk (some milliseconds in a fresh process) are paid before a run is handed to it, not
    between a crash and the replay."""
    _rebind_user_modules({})


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


def _rebind_user_modules(replaced: dict[int, Any]) -> None:
    """Names bound by ``from time import perf_counter`` or ``from datetime import datetime`` in modules imported
    before the guard (the workflow modules, imported by the engine before it forked) still hold the originals:
    point the ones in user modules at the guarded replacements."""
    for namespace in _user_module_namespaces():
        for name, value in list(namespace.items()):
            guarded = replaced.get(id(value))
            if guarded is not None:
                namespace[name] = guarded
