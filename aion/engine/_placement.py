"""Where the engine runs: its own threads on one CPU, its workflow processes and activity workers on the others
(``Engine(engine_cpu=)``).

The engine's threads (the core, the recorder, the supervisors' hub and actors, the timers, ...) take turns on one
GIL: only one of them runs Python at a time. Spread over several CPUs, every hand-over of the GIL is a wake-up
from one CPU to another, and a thread holding the GIL is preempted by the engine's own child processes, which
stalls every other engine thread until it runs again. So the engine's threads share one CPU, and the zygote, each
workflow process (it sets them as its run starts) and each activity worker (as it starts) run on the others. A
local task queue may let its workers use the engine's CPU too (``LocalQueue(use_engine_cpu=True)``: CPU-bound
activities on a small machine). The zygote's idle pool hosts keep every CPU: refilling the pool after a crash may
use the engine's CPU while the restarted run replays. The calling thread, and every other thread of the user's,
is left as it was. docs/architecture.md ("Processes and threads") and docs/benchmarks.md have the measurements.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import supervisors
from aion.errors import InvalidArgumentError

#: ``engine_cpu`` for "choose": the highest-numbered CPU the starting thread may run on that no other running engine
#: of this machine has claimed, when it may run on two or more (with one, nothing is pinned).
AUTO: Literal["auto"] = "auto"

#: Where the engines of one machine claim their CPUs: a lock file per CPU, locked by the engine running on it.
CLAIMS_DIR = Path(tempfile.gettempdir()) / "aion-cpus"

EngineCpu = int | Literal["auto"] | None
"""What ``Engine(engine_cpu=...)`` takes: a CPU number, ``"auto"``, or ``None`` (leave it all to the OS)."""


def check_engine_cpu(option: object) -> EngineCpu:
    """``option`` if it is a valid ``engine_cpu`` (a CPU this process may run on, ``"auto"`` or None), else
    ``InvalidArgumentError`` naming it."""
    if option is None or option == AUTO:
        return option
    if isinstance(option, bool) or not isinstance(option, int) or option < 0:
        raise InvalidArgumentError(f"engine_cpu must be a CPU number, 'auto' or None, got {option!r}")
    allowed = current_cpus()
    if allowed is None:
        raise InvalidArgumentError(f"engine_cpu={option} needs CPU affinity (os.sched_setaffinity): this OS has none")
    _require_allowed(option, allowed)
    return option


def current_cpus() -> frozenset[int] | None:
    """The CPUs the calling thread may run on; None where the OS has no CPU affinity."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    return frozenset(os.sched_getaffinity(0))


@dataclass(frozen=True)
class Placement:
    """The CPUs of one engine incarnation: its own threads', its workflow processes', its activity workers'."""

    #: The CPU the engine's threads share; None: they are not pinned.
    engine_cpu: int | None
    #: The CPUs of the zygote, the workflow processes (each sets them as its run starts) and the activity workers;
    #: None where the OS has no CPU affinity.
    host_cpus: frozenset[int] | None
    #: Every CPU the starting thread may run on: the zygote's idle pool hosts', and the activity workers' of a queue
    #: with ``use_engine_cpu``.
    all_cpus: frozenset[int] | None

    @classmethod
    def plan(cls, option: EngineCpu, allowed: frozenset[int] | None) -> Placement:
        """The placement for ``engine_cpu=option`` when the starting thread may run on ``allowed``."""
        if allowed is None or option is None or (option == AUTO and len(allowed) < 2):
            return cls(None, allowed, allowed)
        engine_cpu = max(allowed) if option == AUTO else int(option)
        _require_allowed(engine_cpu, allowed)
        others = allowed - {engine_cpu}
        return cls(engine_cpu, others or allowed, allowed)

    @contextlib.contextmanager
    def engine_threads(self) -> Iterator[None]:
        """Pin the calling thread to the engine's CPU while it starts the engine: every thread it starts then
        inherits that CPU (as do the threads those start). Its own CPUs are given back on leaving."""
        if self.engine_cpu is None:
            yield
            return
        own = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {self.engine_cpu})
        try:
            yield
        finally:
            os.sched_setaffinity(0, own)

    @contextlib.contextmanager
    def unpinned(self) -> Iterator[None]:
        """Inside `engine_threads`: give the calling thread every CPU back for a while (what it starts there, Ray's
        processes for one, must not inherit the engine's CPU)."""
        if self.engine_cpu is None or self.all_cpus is None:
            yield
            return
        os.sched_setaffinity(0, self.all_cpus)
        try:
            yield
        finally:
            os.sched_setaffinity(0, {self.engine_cpu})


class CpuClaim:
    """One engine's claim on its CPU, so that two engines of one machine do not both choose the same one: an
    exclusive ``flock`` on ``CLAIMS_DIR/<cpu>``, held while the engine runs and released when it stops or dies
    (the kernel drops it with the last descriptor; the zygote closes its copy as it is forked)."""

    def __init__(self, cpu: int, fd: int) -> None:
        self.cpu = cpu
        self.fd = fd

    @classmethod
    def take(cls, cpu: int) -> CpuClaim | None:
        """Claim ``cpu``; None if another engine holds it, or if claims cannot be made here (no such directory
        can be written: every engine then takes its CPU unclaimed)."""
        try:
            CLAIMS_DIR.mkdir(mode=0o777, exist_ok=True)
            with contextlib.suppress(OSError):
                CLAIMS_DIR.chmod(0o1777)  # every user's engines claim here (sticky: each removes only its own)
            fd = os.open(CLAIMS_DIR / str(cpu), os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        return cls(cpu, fd)

    def release(self) -> None:
        """Give the CPU up (idempotent)."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


def place(option: EngineCpu, allowed: frozenset[int] | None) -> tuple[Placement, CpuClaim | None]:
    """The placement of an engine starting now, and its claim on its CPU: ``"auto"`` takes the highest-numbered
    allowed CPU that no other running engine of this machine has claimed (the highest if all are)."""
    if option != AUTO or allowed is None or len(allowed) < 2:
        return Placement.plan(option, allowed), None
    for cpu in sorted(allowed, reverse=True):
        claim = CpuClaim.take(cpu)
        if claim is not None:
            return Placement.plan(cpu, allowed), claim
    return Placement.plan(AUTO, allowed), None


#: The CPUs this (workflow) process last set for itself: a recycled process sets them again only if they changed.
_own_cpus: list[int] | None = None


def set_own_cpus(cpus: list[int] | None) -> None:
    """In a child process (a workflow process as each run starts, an activity worker as it starts): run on
    ``cpus`` from now on (nothing for None, for the CPUs it already set, or where the OS cannot)."""
    global _own_cpus  # one process-wide setting, like the affinity itself
    if cpus is None or cpus == _own_cpus:
        return
    if supervisors.run_on(cpus):  # refused (a CPU taken from the machine's cpuset since): keep those it has
        _own_cpus = cpus


def _require_allowed(cpu: int, allowed: frozenset[int]) -> None:
    """``InvalidArgumentError`` unless the starting thread may run on ``cpu``."""
    if cpu not in allowed:
        listed = ", ".join(str(one) for one in sorted(allowed))
        raise InvalidArgumentError(f"engine_cpu={cpu} is not one of the CPUs this thread may run on ({listed})")
