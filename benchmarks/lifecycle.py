"""The owner's cost of a process child's life: what one short-lived, recycled child costs the supervising process.

``python -m benchmarks.lifecycle [--quick] [--lives N] [--in-flight N]``: a supervisor starts N transient,
recyclable process children (``ProcessSpec(recycle=True)``, as aion starts a run's workflow process), at most
``--in-flight`` at a time; each is sent one message, answers it and returns, so the zygote keeps the process for
the next child. That is a workflow run's process life without the workflow: the spawn hand-off (a request to the
zygote, the new channel received and registered), a message each way, the normal exit reported and handled.

Prints lives/s and the CPU per life of the owner's process (the benchmark's own: the supervisor actor, the I/O
hub thread), split by thread, and of the children (the zygote and the hosts). No target: it measures what a
workflow host kept bound across runs would save (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import collections
import re
import threading
import time
from typing import Any

import psutil

import supervisors as sv
from benchmarks._cpu import children_cpu
from benchmarks._report import report


def answer_once(channel: sv.Channel) -> None:
    """The child: answer one message, then return (the process is then recycled)."""
    channel.send(["answer", channel.recv()])


def thread_cpu() -> dict[str, float]:
    """CPU seconds of this process's live threads, by thread kind (a thread's name without its actor urn or its
    ``-N`` number)."""
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    spent: collections.defaultdict[str, float] = collections.defaultdict(float)
    for thread in psutil.Process().threads():
        name = re.sub(r"-\d+$", "", names.get(thread.id, "other").split(" (")[0])
        spent[name] += thread.user_time + thread.system_time
    return dict(spent)


class _Lives:
    """Starts children at most ``in_flight`` at a time and counts their exits."""

    def __init__(self, supervisor: sv.Supervisor, in_flight: int) -> None:
        self._supervisor = supervisor
        self._slots = threading.Semaphore(in_flight)
        self._ended = threading.Semaphore(0)
        self._next = 0

    def _spec(self) -> sv.ProcessSpec:
        self._next += 1
        return sv.ProcessSpec(
            id=f"life-{self._next}",
            target=answer_once,
            restart=sv.Restart.TRANSIENT,
            recycle=True,
            on_start=lambda _child_id, _pid, channel: channel.send("question"),
            on_exit=self._exited,
        )

    def _exited(self, _child_id: str, _reason: Any) -> None:
        self._slots.release()
        self._ended.release()

    def run(self, count: int, timeout: float = 120.0) -> None:
        """Start ``count`` children and wait until every one has exited."""
        for _ in range(count):
            if not self._slots.acquire(timeout=timeout):
                raise TimeoutError("no child exited in time")
            self._supervisor.start_child_nowait(self._spec())
        for _ in range(count):
            if not self._ended.acquire(timeout=timeout):
                raise TimeoutError("not every child exited in time")


def measure(lives: int, in_flight: int) -> dict[str, Any]:
    """Warm up, then time ``lives`` lives; the figures."""
    zygote = sv.Zygote.start(preload=["benchmarks.lifecycle"], warm_pool=4)
    root = sv.Supervisor.start(sv.SupervisorSpec(id="root", max_restarts=3, max_seconds=5.0), zygote=zygote)
    try:
        supervisor = root.start_child(sv.SupervisorSpec(id="lives", max_restarts=100, max_seconds=10.0))
        assert isinstance(supervisor, sv.Supervisor)
        runner = _Lives(supervisor, in_flight)
        runner.run(min(lives, 200))  # the hosts exist and are warm: the steady state is what counts
        threads_before, children_before = thread_cpu(), children_cpu()
        began = time.perf_counter()
        runner.run(lives)
        elapsed = time.perf_counter() - began
        threads = {name: seconds - threads_before.get(name, 0.0) for name, seconds in thread_cpu().items()}
        children = children_cpu() - children_before
    finally:
        root.stop()
        zygote.stop()
    per_life = {name: seconds / lives * 1e6 for name, seconds in threads.items() if seconds > 0}
    return {
        "lives": lives,
        "in_flight": in_flight,
        "lives_per_s": lives / elapsed,
        "owner_cpu_us_per_life": sum(per_life.values()),
        "owner_cpu_us_per_life_by_thread": per_life,
        "children_cpu_us_per_life": children / lives * 1e6,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; print a table and a JSON line; return the results."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lifecycle", description=__doc__.splitlines()[0])
    parser.add_argument("--lives", type=int, default=5000, help="children started and ended (default 5,000)")
    parser.add_argument("--in-flight", type=int, default=64, help="children alive at once at most (default 64)")
    parser.add_argument("--quick", action="store_true", help="500 lives, for CI")
    args = parser.parse_args(argv)
    result = measure(500 if args.quick else args.lives, args.in_flight)
    rows: list[tuple[Any, ...]] = [
        ("lives/s", result["lives_per_s"]),
        ("owner's CPU µs per life", result["owner_cpu_us_per_life"]),
        *((f"  of which thread {name}", us) for name, us in sorted(result["owner_cpu_us_per_life_by_thread"].items())),
        ("children's CPU µs per life (zygote, hosts)", result["children_cpu_us_per_life"]),
    ]
    title = f"{result['lives']:,} recycled process children, {result['in_flight']} at a time"
    report("lifecycle", title, ["measure", "value"], rows, result)
    return result


if __name__ == "__main__":
    main()
