"""Run as a script by test_owner_death: an engine with a zygote, a warm pool and a supervision tree.

Its targets live in ``__main__``. It prints one JSON line with every pid, then waits to be killed.
"""

from __future__ import annotations

import json
import sys
import time

import psutil

import supervisors as sv


def main_target(channel: sv.Channel, name: str) -> None:
    """A child defined in __main__."""
    while True:
        msg = channel.recv()
        channel.send([name, msg])


def run() -> None:
    zygote = sv.Zygote.start(warm_pool=3)
    root = sv.Supervisor.start(
        sv.SupervisorSpec(
            id="root",
            children=[
                sv.ProcessSpec(id="p1", target=main_target, args=("p1",)),
                sv.SupervisorSpec(id="inner", children=[sv.ProcessSpec(id="p2", target=main_target, args=("p2",))]),
            ],
        ),
        zygote=zygote,
    )
    root.start_child(sv.ProcessSpec(id="p3", target=main_target, args=("p3",)))
    children = sorted(zygote.pids())
    zproc = psutil.Process(zygote.pid)
    deadline = time.monotonic() + 10
    while len(zproc.children()) < len(children) + 3 + 1 and time.monotonic() < deadline:  # + the nursery
        time.sleep(0.01)
    nursery = zygote.hub.nursery_pid
    pool = sorted(p.pid for p in zproc.children() if p.pid not in children and p.pid != nursery)
    print(json.dumps({"zygote": zygote.pid, "children": children, "pool": pool, "nursery": nursery}), flush=True)
    if sys.argv[1:] == ["graceful"]:
        root.stop()
        zygote.stop()
        print("stopped", flush=True)
        return
    while True:
        time.sleep(1)


if __name__ == "__main__":
    run()
