"""One engine incarnation of the soak: ``python -m tests.chaos.engine_proc RUN_DIR``.

It starts an ``aion.Engine`` on ``RUN_DIR/data`` (which resumes whatever the previous, killed, incarnation left),
prints ``ready <pid>``, then runs two threads until SIGTERM (graceful stop) or SIGKILL:

* the *sender* carries out the plan's actions (start, signal, cancel) whose time has come, in plan order, each one
  idempotently: it first looks in the store whether an earlier incarnation already did it (the workflow exists;
  a ``SignalReceived`` with that payload is in the history; a ``WorkflowCancelRequested`` is). An action cut short
  by a SIGKILL is either durable (and then skipped) or not (and then done again), so each happens exactly once.
* the *snapshot* thread writes the supervision tree's workflow processes and activity workers (``pid``, ``id``,
  ``role``) to ``RUN_DIR/tree.json`` every 100 ms, for the driver's killer.

The soak's clock (``t0``) is read from ``RUN_DIR/clock``, which the driver writes once the first engine is ready.
Unexpected errors go to ``RUN_DIR/errors.log`` (the driver fails the soak on any).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import aion
from aion import events as ev
from tests.chaos import flows
from tests.chaos.plan import Action, Plan

#: Options of every incarnation. ``max_restarts`` is high so that the killer's SIGKILLs of a workflow's process
#: never add up to the crash-loop limit (which would fail the run with ``WorkflowProcessCrashed``);
#: ``max_resident`` is well below the number of workflows, so that runs are evicted, queued and brought back by
#: replay all along, under the kills too.
ENGINE_OPTIONS: dict[str, Any] = {
    "activity_workers": 3,
    "warm_pool": 2,
    "max_restarts": 1000,
    "max_seconds": 60.0,
    "max_resident": 8,
}


def make_engine(data: Path) -> aion.Engine:
    return aion.Engine(data, workflows=flows.WORKFLOWS, activities=flows.ACTIVITIES, **ENGINE_OPTIONS)


class Incarnation:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.plan = Plan.from_json(json.loads((run_dir / "plan.json").read_text()))
        self.engine = make_engine(run_dir / "data")
        self.stopping = threading.Event()

    def error(self, what: str) -> None:
        with open(self.run_dir / "errors.log", "a") as f:
            f.write(f"[engine {os.getpid()}] {what}\n")
            f.flush()
            os.fsync(f.fileno())

    # -- the sender ---------------------------------------------------------------------------------------------

    def clock(self) -> float | None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            return float((self.run_dir / "clock").read_text())
        return None

    def send(self) -> None:
        t0 = None
        while t0 is None and not self.stopping.wait(0.02):
            t0 = self.clock()
        index, actions = 0, self.plan.actions
        while index < len(actions) and not self.stopping.is_set():
            action = actions[index]
            if time.time() - t0 < action.at:  # type: ignore[operator]
                self.stopping.wait(0.02)
                continue
            try:
                self.perform(action)
            except Exception:
                if self.stopping.is_set():
                    return
                self.error(f"action {action} raised:\n{traceback.format_exc()}")
            index += 1

    def perform(self, action: Action) -> None:
        engine, wid = self.engine, action.workflow_id
        if action.kind == "start":
            if engine.store.get_run(wid) is None:
                planned = self.plan.workflow(wid)
                engine.start_workflow(planned.workflow_type, *planned.args, workflow_id=wid)
        elif action.kind == "signal":
            history = engine.store.read_history(wid)
            if not any(
                isinstance(e, ev.SignalReceived) and (e.name, e.payload) == ("item", action.payload) for e in history
            ):
                engine.get_workflow(wid).signal("item", action.payload)
        elif action.kind == "cancel":
            if not any(isinstance(e, ev.WorkflowCancelRequested) for e in engine.store.read_history(wid)):
                engine.get_workflow(wid).cancel("chaos plan")
        else:
            raise ValueError(f"unknown action {action}")

    # -- the snapshot -------------------------------------------------------------------------------------------

    def snapshot(self) -> None:
        target, scratch = self.run_dir / "tree.json", self.run_dir / f"tree.json.{os.getpid()}"
        while not self.stopping.wait(0.1):
            try:
                nodes: list[dict[str, Any]] = []
                _processes(self.engine.supervision_tree(), nodes)
                scratch.write_text(json.dumps({"engine_pid": os.getpid(), "processes": nodes}))
                os.replace(scratch, target)
            except Exception:
                if self.stopping.is_set():
                    return
                self.error(f"snapshot raised:\n{traceback.format_exc()}")
                self.stopping.wait(1.0)

    # -- main ---------------------------------------------------------------------------------------------------

    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        self.engine.start()
        print(f"ready {os.getpid()}", flush=True)
        threads = [threading.Thread(target=fn, daemon=True) for fn in (self.send, self.snapshot)]
        for thread in threads:
            thread.start()
        self.stopping.wait()
        for thread in threads:
            thread.join(timeout=30)
        self.engine.stop()
        print("stopped", flush=True)


def _processes(node: dict[str, Any], out: list[dict[str, Any]]) -> None:
    role = (node.get("meta") or {}).get("role")
    if node.get("kind") == "process" and role in ("run", "activity_worker") and node.get("alive") and node.get("pid"):
        out.append({"id": node["id"], "pid": node["pid"], "role": role})
    for kid in node.get("children") or ():
        _processes(kid, out)


def main() -> None:
    Incarnation(Path(sys.argv[1])).run()


if __name__ == "__main__":
    main()
