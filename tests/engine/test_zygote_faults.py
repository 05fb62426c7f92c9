"""The zygote is supervised like every other child: its SIGKILL under load is survived (a new zygote, the
processes restarted under it, the runs replayed, nothing lost); past the root's restart intensity the engine
stops loudly (`EngineStoppedError` everywhere, ``aion serve`` exits non-zero with the reason, no hang). And
``Engine.start()`` works from a thread that exits afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections import Counter
from pathlib import Path

import pytest

import aion
from aion import events as ev
from aion.errors import EngineStoppedError
from tests.cli.conftest import AION, ROOT, _env
from tests.engine import flows
from tests.helpers import wait_until


def _zygote_pid(data: Path) -> int:
    return int((data / "zygote.session").read_text().split()[0])


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.timeout(180)
def test_sigkill_of_the_zygote_under_load_loses_nothing(tmp_path: Path, log: str) -> None:
    data, count = tmp_path / "data", 12
    with aion.Engine(
        data, workflows=flows.ALL_WORKFLOWS, activities=flows.ALL_ACTIVITIES, activity_workers=2
    ) as engine:
        handles = [engine.start_workflow(flows.steps, log, 6, workflow_id=f"steps-{i}") for i in range(count)]
        wait_until(lambda: len(flows.executions(log)) >= 10, timeout=60)
        first = _zygote_pid(data)
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: _zygote_pid(data) != first, timeout=30)
        late = engine.start_workflow(flows.steps, log, 3, workflow_id="after-the-kill")  # accepted at once
        assert [h.result(timeout=120) for h in handles] == [sum(range(6))] * count
        assert late.result(timeout=60) == sum(range(3))
        assert engine.supervision_tree()["id"] == "aion"
        histories = {h.workflow_id: h.history() for h in [*handles, late]}
    for workflow_id, history in histories.items():
        assert [e.seq for e in history] == list(range(1, len(history) + 1)), workflow_id
        done = Counter(e.activity_id for e in history if isinstance(e, ev.ActivityCompleted))
        assert all(n == 1 for n in done.values()), workflow_id  # each activity completed once in history


@pytest.mark.timeout(120)
def test_a_zygote_that_keeps_dying_stops_the_engine_loudly(tmp_path: Path, log: str, gates: Path) -> None:
    data = tmp_path / "data"
    engine = aion.Engine(data, workflows=flows.ALL_WORKFLOWS, activities=flows.ALL_ACTIVITIES, activity_workers=1)
    engine.start()
    try:
        waiting = engine.start_workflow(flows.gated, log, str(gates), workflow_id="gated")
        results: list[BaseException] = []
        waiter = threading.Thread(target=lambda: _catch(results, lambda: waiting.result(timeout=100)))
        waiter.start()
        killed: set[int] = set()

        def kill_the_zygote() -> bool:
            if engine.stopped_reason is not None:
                return True
            pid = _zygote_pid(data)
            if pid not in killed:
                killed.add(pid)
                os.kill(pid, signal.SIGKILL)
            return False

        wait_until(kill_the_zygote, timeout=60)
        assert "zygote" in (engine.stopped_reason or "")
        with pytest.raises(EngineStoppedError, match="zygote"):
            engine.start_workflow(flows.steps, log, 1)
        with pytest.raises(EngineStoppedError):
            engine.supervision_tree()
        with pytest.raises(EngineStoppedError):
            engine.get_workflow("gated")
        waiter.join(60)
        assert not waiter.is_alive()  # a caller waiting on a result is not left hanging
        assert len(results) == 1 and isinstance(results[0], EngineStoppedError)
    finally:
        engine.stop()
    # Nothing accepted was lost: a new engine takes the run up where it was.
    with aion.Engine(data, workflows=flows.ALL_WORKFLOWS, activities=flows.ALL_ACTIVITIES) as again:
        running = [r.workflow_id for r in again.list_workflows(status="running")]
        assert running == ["gated"], again.get_workflow("gated").history()
        for name in ("a", "b", "c"):
            (gates / f"{name}.open").touch()
        gated = again.get_workflow("gated")
        gated.signal("go", "me")
        assert gated.result(timeout=60) == ["a", "me", "b", "c"]


def _catch(into: list[BaseException], call: object) -> None:
    try:
        call()  # type: ignore[operator]
    except BaseException as exc:
        into.append(exc)


@pytest.mark.timeout(120)
def test_engine_started_from_a_thread_that_exits(tmp_path: Path, log: str) -> None:
    engine = aion.Engine(tmp_path / "data", workflows=flows.ALL_WORKFLOWS, activities=flows.ALL_ACTIVITIES)
    starter = threading.Thread(target=engine.start)
    starter.start()
    starter.join()
    try:
        zygote = _zygote_pid(tmp_path / "data")
        handle = engine.start_workflow(flows.steps, log, 4, workflow_id="from-a-thread")
        assert handle.result(timeout=60) == sum(range(4))
        assert _alive(zygote)  # no parent-death signal when the starting thread ended
        assert engine.stopped_reason is None
    finally:
        engine.stop()


@pytest.mark.timeout(120)
def test_serve_exits_non_zero_with_the_reason_when_the_zygote_keeps_dying(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [AION, "serve", "--data-dir", str(data), "--module", "tests.cli.flows", "--warm-pool", "0"],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert "serving" in proc.stdout.readline()
        killed: set[int] = set()

        def kill_the_zygote() -> bool:
            if proc.poll() is not None:
                return True
            try:
                pid = _zygote_pid(data)
            except (OSError, ValueError):
                return False
            if pid not in killed:
                killed.add(pid)
                os.kill(pid, signal.SIGKILL)
            return False

        wait_until(kill_the_zygote, timeout=60)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 1
        assert "error[engine_stopped]" in err and "zygote" in err
        assert len(err.splitlines()) < 200, err  # loud, not a flood
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
