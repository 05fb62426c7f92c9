"""CPU time of the benchmark's own process and of its descendants, read before and after what is measured."""

from __future__ import annotations

import contextlib

import psutil


def own_cpu() -> float:
    """User + system CPU seconds of this process (all its threads)."""
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def children_cpu() -> float:
    """CPU seconds of this process's descendants, including the ones they have already reaped.

    Every process child of the engine is forked by the zygote, which reaps it; a finished workflow process's
    time therefore shows up in the zygote's ``children_user``/``children_system``.
    """
    total = 0.0
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total
