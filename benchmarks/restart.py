"""Restart latency of supervised process children.

``python -m benchmarks.restart [--quick] [--crashes N] [--pool N]`` measures, over N crashes each:

- restart, fork: ``SIGKILL`` of a child -> its replacement (forked by the zygote) running and answering a ping;
- restart, pool: the same, the replacement handed over by the zygote's warm pool (a speculative restart: the
  zygote starts it when it reaps the killed child, the supervisor then adopts it);
- start, fork / start, pool: ``Zygote.spawn`` -> first ping answered.

It prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import threading
import time
from typing import Any

import supervisors as sv


def pinger(channel: sv.Channel) -> None:
    """Answer every ping with our pid."""
    pid = os.getpid()
    while True:
        msg = channel.recv()
        channel.send(["pong", pid, msg])


class _Probe:
    """Waits for the first pong from a pid other than the one just killed."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.pong: tuple[int, float] | None = None
        self.pid: int | None = None

    def on_start(self, child_id: str, pid: int, channel: sv.OwnerChannel) -> None:
        channel.send("ping")

    def on_message(self, child_id: str, msg: Any) -> None:
        now = time.perf_counter()
        with self.cond:
            self.pong = (msg[1], now)
            self.cond.notify_all()

    def wait_pong(self, not_pid: int | None, timeout: float = 10.0) -> tuple[int, float]:
        with self.cond:
            ok = self.cond.wait_for(lambda: self.pong is not None and self.pong[0] != not_pid, timeout=timeout)
            if not ok or self.pong is None:
                raise TimeoutError("no pong from the replacement")
            return self.pong


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))  # nearest rank
    return ordered[index]


def _summary(samples: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples]
    return {
        "n": len(ms),
        "p50": round(statistics.median(ms), 3),
        "p99": round(_pct(ms, 0.99), 3),
        "min": round(min(ms), 3),
        "max": round(max(ms), 3),
    }


def _wait_pool(zygote: sv.Zygote, children: int, timeout: float = 5.0) -> None:
    """Give the zygote time to refill its pool (reads /proc; no psutil needed)."""
    if zygote.warm_pool == 0:
        return
    deadline = time.monotonic() + timeout
    path = f"/proc/{zygote.pid}/task/{zygote.pid}/children"
    while time.monotonic() < deadline:
        helpers = {zygote.hub.nursery_pid}  # the process that forks pool hosts is not one
        try:
            with open(path) as f:
                if len(set(map(int, f.read().split())) - helpers) >= children + zygote.warm_pool:
                    return
        except OSError:
            return
        time.sleep(0.001)


def bench_restarts(zygote: sv.Zygote, crashes: int) -> list[float]:
    """SIGKILL -> replacement answers a ping, ``crashes`` times (the clock starts just before the kill)."""
    probe = _Probe()
    sup = sv.Supervisor.start(
        sv.SupervisorSpec(
            id="bench",
            max_restarts=crashes + 10,
            max_seconds=3600,
            children=[sv.ProcessSpec(id="child", target=pinger, on_start=probe.on_start, on_message=probe.on_message)],
        ),
        zygote=zygote,
    )
    try:
        pid, _ = probe.wait_pong(None)
        samples = []
        for _ in range(crashes):
            _wait_pool(zygote, 1)
            t0 = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            pid, t1 = probe.wait_pong(pid)
            samples.append(t1 - t0)
        return samples
    finally:
        sup.stop()


def bench_starts(zygote: sv.Zygote, count: int) -> list[float]:
    """Zygote.spawn -> first ping answered, ``count`` times."""
    samples = []
    for _ in range(count):
        _wait_pool(zygote, 0)
        got = threading.Event()
        t0 = time.perf_counter()
        pid = zygote.spawn(
            pinger,
            on_start=lambda pid, ch: ch.send("ping"),
            on_message=lambda msg, got=got: got.set(),
        )
        if not got.wait(10):
            raise TimeoutError("no first pong")
        samples.append(time.perf_counter() - t0)
        zygote.terminate(pid, kill=True)
    return samples


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; print a table and a JSON line; return the results."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.restart", description=__doc__.splitlines()[0])
    parser.add_argument("--crashes", type=int, default=200, help="crashes (and starts) per case (default 200)")
    parser.add_argument("--quick", action="store_true", help="20 crashes per case, for CI")
    parser.add_argument("--pool", type=int, default=4, help="warm pool size for the pool cases (default 4)")
    args = parser.parse_args(argv)
    crashes = 20 if args.quick else args.crashes

    results: dict[str, Any] = {"benchmark": "restart", "crashes": crashes, "pool": args.pool, "cpus": os.cpu_count()}
    for mode, pool in (("fork", 0), ("pool", args.pool)):
        zygote = sv.Zygote.start(warm_pool=pool)
        try:
            results[f"restart_{mode}_ms"] = _summary(bench_restarts(zygote, crashes))
            results[f"restart_{mode}_speculative"] = zygote.hub.spares_adopted  # restarts the zygote pre-started
            results[f"start_{mode}_ms"] = _summary(bench_starts(zygote, crashes))
        finally:
            zygote.stop()

    rows = [
        ("restart: SIGKILL -> replacement answers (fork from zygote)", results["restart_fork_ms"]),
        ("restart: SIGKILL -> replacement answers (warm pool hand-off)", results["restart_pool_ms"]),
        ("start -> first ping (fork from zygote)", results["start_fork_ms"]),
        ("start -> first ping (warm pool hand-off)", results["start_pool_ms"]),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  {'n':>5}  {'p50 ms':>8}  {'p99 ms':>8}  {'max ms':>8}")
    for name, s in rows:
        print(f"{name:<{width}}  {s['n']:>5}  {s['p50']:>8.3f}  {s['p99']:>8.3f}  {s['max']:>8.3f}")
    spec_fork, spec_pool = results["restart_fork_speculative"], results["restart_pool_speculative"]
    print(f"speculative restarts (started as the zygote reaps): fork {spec_fork}/{crashes}, pool {spec_pool}/{crashes}")
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
