"""The CPUs of the processes this library forks: checked when the owner names them, set where the OS lets it.

The owner names them once (``Zygote.start(cpus=..., pool_cpus=...)``); a zygote forked again after a crash and a
nursery forked by a restarted zygote set them again, possibly long after. By then the machine's cpuset may have
lost every CPU of the set (a container's CPUs changed at runtime): the process then keeps the CPUs it inherited
and runs on those, rather than failing to start and leaving the owner without a zygote or a pool.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable


def cpu_set(cpus: Iterable[int] | None, name: str) -> frozenset[int] | None:
    """``cpus`` as a set (None stays None). ``ValueError`` naming the argument ``name`` if it is empty or names a
    CPU this machine does not have (a number outside 0 .. its configured CPUs - 1)."""
    if cpus is None:
        return None
    chosen = frozenset(cpus)
    if not chosen:
        raise ValueError(f"{name} must name at least one CPU")
    configured = _configured_cpus()
    unknown = sorted(
        (cpu for cpu in chosen if not (isinstance(cpu, int) and 0 <= cpu < configured)),
        key=lambda cpu: (0, cpu, "") if isinstance(cpu, int) else (1, 0, repr(cpu)),
    )
    if unknown:
        listed = ", ".join(repr(cpu) for cpu in unknown)
        raise ValueError(f"{name} names CPUs this machine does not have: {listed} (it has 0 to {configured - 1})")
    return chosen


def run_on(cpus: Iterable[int] | None) -> bool:
    """Run the calling thread (in a freshly forked process: the process) on ``cpus``; return whether it now does.
    The CPUs it has are kept for None, where the OS has no CPU affinity, or where it refuses the set (none of them
    is in the machine's cpuset any more)::

        supervisors.run_on({0})  # this process's thread on CPU 0 from now on (where the OS lets it)
    """
    if cpus is None or not hasattr(os, "sched_setaffinity"):
        return False
    try:
        os.sched_setaffinity(0, cpus)
    except OSError:
        return False
    return True


def _configured_cpus() -> int:
    """How many CPUs the machine is configured with (online or not): every CPU number is below it."""
    with contextlib.suppress(ValueError, OSError):
        configured = os.sysconf("SC_NPROCESSORS_CONF")
        if configured > 0:
            return configured
    return os.cpu_count() or 1
