"""``aion tree``: the live supervision tree, and a crash being handled in it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aion._waits import NOT_REPORTED
from tests.cli.conftest import AION, ROOT, Server, _env, aion, ok, wait_for


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for child in node.get("children") or [] for n in _nodes(child))]


def _workflow_node(server: Server, workflow_id: str) -> dict[str, Any] | None:
    view = ok("tree", "--json", "--data-dir", server.data_dir).json()
    for node in _nodes(view["root"]):
        if (node.get("workflow") or {}).get("workflow_id") == workflow_id and node.get("state") == "running":
            return node
    return None


@pytest.mark.timeout(60)
def test_tree_shows_services_supervisors_and_a_restart_after_a_kill(server: Server) -> None:
    d = server.data_dir
    ok("start", "collector", "--input", "2", "--id", "crashy", "--data-dir", d)
    ok("signal", "crashy", "item", "--payload", '"before"', "--data-dir", d)

    view = ok("tree", "--json", "--data-dir", d).json()
    assert view["pid"] == server.proc.pid and view["data_dir"] == str(d)
    root = view["root"]
    assert root["id"] == "aion" and root["kind"] == "supervisor"
    assert {"activities", "workflows:collector"} <= {child["id"] for child in root["children"]}
    node = wait_for(
        lambda: (
            (n := _workflow_node(server, "crashy")) is not None and n["workflow"]["waiting_on"] != NOT_REPORTED and n
        ),
        "the workflow process in the tree, reporting what it waits on",
    )
    assert node["kind"] == "process" and node["restarts"] == 0 and node["pid"] > 0
    assert node["workflow"]["workflow_type"] == "collector" and node["workflow"]["status"] == "running"
    assert node["workflow"]["waiting_on"] == "signal 'item'"
    assert node["memory_rss"] > 0 and node["uptime"] >= 0 and node["cpu_seconds"] >= 0
    assert node["meta"] == {"workflow_id": "crashy", "role": "run"}

    os.kill(node["pid"], signal.SIGKILL)
    restarted = wait_for(
        lambda: (n := _workflow_node(server, "crashy")) is not None and n["pid"] != node["pid"] and n,
        "the restart of the killed workflow process",
    )
    assert restarted["restarts"] == 1
    assert restarted["last_exit"]["signal"] == "SIGKILL"

    table = ok("tree", "--data-dir", d).out
    row = next(line for line in table.splitlines() if "crashy" in line and "process" in line)
    assert "│ 1 " in row and "SIGKILL" in row and "waiting on signal 'item'" in row
    assert "workflows:collector" in table and "activities" in table

    # the workflow goes on after the crash: replayed to the same await
    ok("signal", "crashy", "item", "--payload", '"after"', "--data-dir", d)
    assert ok("result", "crashy", "--timeout", "30", "--json", "--data-dir", d).json()["result"] == ["before", "after"]


@pytest.mark.timeout(60)
def test_tree_watch_refreshes_until_interrupted(server: Server) -> None:
    d = server.data_dir
    ok("start", "collector", "--input", "1", "--id", "watched", "--data-dir", d)
    watcher = subprocess.Popen(
        [AION, "tree", "--watch", "--json", "--interval", "0.1", "--data-dir", str(d)],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert watcher.stdout is not None
        snapshots = [watcher.stdout.readline() for _ in range(3)]  # one JSON line per refresh
        assert all('"watched"' in line for line in snapshots)
        watcher.send_signal(signal.SIGINT)
        assert watcher.wait(timeout=20) == 130  # Ctrl-C: 128 + SIGINT, like every command
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()


@pytest.mark.timeout(60)
def test_serve_max_resident_bounds_the_processes_and_tree_reports_the_residency(
    serve: Callable[..., Server], data_dir: Path
) -> None:
    server = serve(data_dir, "--max-resident", "1")
    d = server.data_dir
    for workflow_id in ("first", "second"):
        ok("start", "collector", "--input", "1", "--id", workflow_id, "--data-dir", d)
        # a query answered means the run has its process: the other, parked on its signal, was evicted for it
        assert ok("query", workflow_id, "items", "--json", "--data-dir", d).json()["result"] == []
    residency = ok("tree", "--json", "--data-dir", d).json()["residency"]
    assert residency == {"resident": 1, "waiting": 0, "evictions": 1, "max_resident": 1}
    assert "1/1 runs resident, 0 waiting, 1 evicted so far" in ok("tree", "--data-dir", d).out
    for workflow_id in ("first", "second"):
        ok("signal", workflow_id, "item", "--payload", f'"{workflow_id}"', "--data-dir", d)
    for workflow_id in ("first", "second"):
        result = ok("result", workflow_id, "--timeout", "30", "--json", "--data-dir", d).json()["result"]
        assert result == [workflow_id]


@pytest.mark.timeout(30)
def test_serve_refuses_a_max_resident_below_one(data_dir: Path) -> None:
    result = aion("serve", "--data-dir", data_dir, "--module", "tests.cli.flows", "--max-resident", "0", timeout=20)
    assert result.code == 2 and "--max-resident" in result.err


def _thread_cpus(pid: int) -> dict[int, frozenset[int]]:
    """Each thread of process ``pid`` and the CPUs it may run on (a thread that ended meanwhile is left out)."""
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):
            found[int(tid)] = frozenset(os.sched_getaffinity(int(tid)))
    return found


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="placement pins only with two CPUs or more")
@pytest.mark.timeout(60)
@pytest.mark.parametrize("option", ["auto", "none"])
def test_serve_engine_cpu_pins_the_engine_threads_or_nothing(
    serve: Callable[..., Server], data_dir: Path, option: str
) -> None:
    cpus = frozenset(os.sched_getaffinity(0))
    server = serve(data_dir, "--engine-cpu", option)
    threads = _thread_cpus(server.proc.pid)
    assert threads.pop(server.proc.pid) == cpus  # the main thread is the caller's: never pinned
    if option == "auto":  # every thread the engine started, on one CPU (the highest free of other engines' claims)
        shared = set(threads.values())
        assert len(shared) == 1, threads
        assert all(len(one) == 1 and one < cpus for one in shared), threads
    else:
        assert set(threads.values()) == {cpus}


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="placement pins only with two CPUs or more")
@pytest.mark.timeout(60)
@pytest.mark.parametrize("flag", [False, True])
def test_serve_runs_the_activity_workers_off_the_engine_cpu_unless_told_otherwise(
    serve: Callable[..., Server], data_dir: Path, flag: bool
) -> None:
    cpus = frozenset(os.sched_getaffinity(0))
    server = serve(data_dir, *(["--activities-on-engine-cpu"] if flag else []))
    engine_cpus = set(_thread_cpus(server.proc.pid).values()) - {cpus}
    assert len(engine_cpus) == 1  # the engine's threads, on their CPU
    expected = cpus if flag else cpus - next(iter(engine_cpus))

    def workers_on_expected() -> bool:
        root = ok("tree", "--json", "--data-dir", data_dir).json()["root"]
        pids = [node["pid"] for node in _nodes(root) if (node.get("meta") or {}).get("role") == "activity_worker"]
        with contextlib.suppress(ProcessLookupError):
            return bool(pids) and all(frozenset(os.sched_getaffinity(pid)) == expected for pid in pids)
        return False

    wait_for(workers_on_expected, f"the activity workers on CPUs {sorted(expected)}")


@pytest.mark.timeout(30)
def test_serve_refuses_a_bad_engine_cpu(data_dir: Path) -> None:
    result = aion("serve", "--data-dir", data_dir, "--module", "tests.cli.flows", "--engine-cpu", "fast", timeout=20)
    assert result.code == 2 and "--engine-cpu" in result.err and "'fast'" in result.err
    result = aion("serve", "--data-dir", data_dir, "--module", "tests.cli.flows", "--engine-cpu", "4096", timeout=20)
    assert result.code == 1 and "engine_cpu=4096 is not one of the CPUs" in result.err
