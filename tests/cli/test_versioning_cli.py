"""``aion replay`` against a real data directory, and ``aion pause/resume/reset/unblock`` against ``aion serve``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import aion
from aion import events as ev
from tests.cli.conftest import Server, ok, wait_for
from tests.cli.conftest import aion as run_aion
from tests.engine import versioning_flows as vf
from tests.helpers import wait_until


def _recorded_order(data: Path, log: Path) -> None:
    """One open "order" run past its first activity, and one closed run."""
    with aion.Engine(data, workflows=[vf.order_v1], activities=vf.ACTIVITIES) as engine:
        for workflow_id in ("open", "done"):
            handle = engine.start_workflow("order", str(log), workflow_id=workflow_id)
            wait_until(lambda handle=handle: any(isinstance(e, ev.ActivityCompleted) for e in handle.history()))
        engine.get_workflow("done").signal("go")
        engine.get_workflow("done").result(timeout=30)


@pytest.mark.timeout(120)
def test_replay_exits_1_listing_the_seq_for_a_divergent_module_and_0_for_a_fitting_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _recorded_order(data, tmp_path / "log")
    stored = data / "data.mdb"
    before = stored.read_bytes()

    diverges = run_aion("replay", "--module", "tests.cli.replay_diverges", "--data-dir", data, "--processes", "2")
    assert diverges.code == 1, diverges.err + diverges.out
    lines = [line for line in diverges.out.splitlines() if line.startswith("open ")]
    assert len(lines) == 1 and "seq 2" in lines[0] and "'note'" in lines[0] and "'other_note'" in lines[0]
    assert "done" not in diverges.out  # closed runs only with --closed

    with_closed = run_aion("replay", "--module", "tests.cli.replay_diverges", "--data-dir", data, "--closed", "5")
    assert with_closed.code == 1 and any(line.startswith("done ") for line in with_closed.out.splitlines())

    fits = ok("replay", "--module", "tests.cli.replay_fits", "--data-dir", data, "--closed", "5")
    assert "2 run(s) replayed: 2 fit" in fits.out

    exported = tmp_path / "open.json"
    exported.write_text(ok("history", "open", "--json", "--data-dir", data).out)
    from_file = run_aion("replay", "--module", "tests.cli.replay_diverges", "--history", exported)
    assert from_file.code == 1 and "seq 2" in from_file.out
    ok("replay", "--module", "tests.cli.replay_fits", "--history", exported)
    # Read-only: the store was not written (LMDB's lock file records readers, nothing else).
    assert stored.read_bytes() == before


@pytest.mark.timeout(120)
def test_pause_resume_reset_and_unblock_from_the_cli(server: Server) -> None:
    data = server.data_dir
    ok("start", "collector", "--input", "[2]", "--id", "c", "--data-dir", data)
    assert "paused c" in ok("pause", "c", "--reason", "look", "--data-dir", data).out
    assert ok("describe", "c", "--json", "--data-dir", data).json()["status"] == "paused"
    ok("signal", "c", "item", "--payload", "1", "--data-dir", data)
    assert "resumed c" in ok("resume", "c", "--data-dir", data).out
    wait_for(lambda: ok("query", "c", "items", "--data-dir", data).out.strip() == "[1]", "the signal delivered")

    described = ok("describe", "c", "--json", "--data-dir", data).json()
    old_run = described["run_id"]
    reset = ok("reset", "c", "--reason", "again", "--json", "--data-dir", data).json()
    assert reset["old_run_id"] == old_run and reset["run_id"] != old_run
    ok("signal", "c", "item", "--payload", "2", "--data-dir", data)
    assert ok("result", "c", "--data-dir", data).out.strip() == "[1, 2]"  # the copy kept the first signal

    listed = ok("list", "--json", "--data-dir", data).json()["workflows"]
    assert [run["version"] for run in listed] == [1]
    assert ok("list", "--status", "blocked", "--json", "--data-dir", data).json()["workflows"] == []
    assert ok("unblock", "--all", "--json", "--data-dir", data).json()["retried"] == 0
    assert run_aion("unblock", "--data-dir", data).code == 2  # neither an id nor --all


@pytest.mark.timeout(120)
def test_a_forgotten_module_blocks_runs_shown_by_list_describe_and_tree(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    _recorded_order(data, tmp_path / "log")
    server = serve(data)  # tests.cli.flows only: no "order"
    wait_for(lambda: ok("list", "--status", "blocked", "--json", "--data-dir", data).json()["workflows"], "blocked")
    blocked = ok("describe", "open", "--json", "--data-dir", data).json()
    assert blocked["status"] == "blocked" and blocked["blocked"]["cause"] == "unknown_type"
    tree = ok("tree", "--json", "--data-dir", data).json()
    assert [(run["workflow_id"], run["blocked"]["cause"]) for run in tree["blocked"]] == [("open", "unknown_type")]
    assert "blocked (unknown_type)" in ok("tree", "--data-dir", data).out
    ok("signal", "open", "go", "--data-dir", data)  # still accepted
    assert ok("unblock", "open", "--json", "--data-dir", data).json()["retried"] == 0
    assert server.stop() == 0, server.log.read_text()[-20000:]
    log = server.log.read_text()
    assert "workflow type 'order' is not registered" in log and "1 run(s)" in log and "--module" in log
