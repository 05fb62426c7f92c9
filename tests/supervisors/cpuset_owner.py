"""Run as a script by test_cpus: an owner whose zygote and pool run on one CPU that the machine's cpuset then loses.

Argument: that CPU. It waits for a line on stdin (the test moves it into a cpuset meanwhile), starts a zygote (one
warm pool host, up to three restarts) and a supervised child, prints ``ready``, and waits for another line (the
test shrinks the cpuset meanwhile). Then it kills its zygote, waits for the zygote, the child and the warm pool to
come back, and prints one JSON line with the CPUs each runs on (or ``{"error": ...}``). It stops everything before
it exits.
"""

from __future__ import annotations

import json
import os
import signal
import sys

import psutil

import supervisors as sv
from tests.helpers import wait_until

DEADLINE_S = 30.0


def echo(channel: sv.Channel) -> None:
    """A child that answers every message with itself."""
    while True:
        channel.send(channel.recv())


def _cpus(pid: int) -> list[int]:
    return sorted(os.sched_getaffinity(pid))


def _child_pid(root: sv.Supervisor) -> int | None:
    pid = root.tree()["children"][0]["pid"]
    return None if pid is None else int(pid)


def run() -> None:
    cpu = int(sys.argv[1])
    sys.stdin.readline()
    zygote = sv.Zygote.start(warm_pool=1, cpus={cpu}, pool_cpus={cpu}, max_restarts=3, max_seconds=60)
    root = sv.Supervisor.start(
        sv.SupervisorSpec(id="root", children=[sv.ProcessSpec(id="echo", target=echo)]), zygote=zygote
    )
    try:
        print("ready", flush=True)
        sys.stdin.readline()
        first_zygote, first_child = zygote.pid, _child_pid(root)
        os.kill(first_zygote, signal.SIGKILL)
        wait_until(lambda: zygote.alive and zygote.pid != first_zygote, timeout=DEADLINE_S)
        child = wait_until(lambda: _child_pid(root) not in (None, first_child) and _child_pid(root), timeout=DEADLINE_S)
        nursery = wait_until(lambda: zygote.hub.nursery_pid, timeout=DEADLINE_S)
        pool = wait_until(
            lambda: [p.pid for p in psutil.Process(zygote.pid).children() if p.pid not in (nursery, child)],
            timeout=DEADLINE_S,
        )
        print(
            json.dumps(
                {
                    "zygote": _cpus(zygote.pid),
                    "child": _cpus(child),
                    "nursery": _cpus(nursery),
                    "pool": _cpus(pool[0]),
                }
            ),
            flush=True,
        )
    except Exception as error:  # reported to the test, which shows it
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}), flush=True)
    finally:
        root.stop()
        zygote.stop()


if __name__ == "__main__":
    run()
