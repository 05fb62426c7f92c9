"""``aion check`` verifies a store (exit 1 with the problems); ``aion backup`` makes a consistent hot copy while
an engine runs, and the copy restores into a working data directory."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import lmdb
import pytest

import aion
from aion.events import ActivityScheduled, WorkflowCompleted, WorkflowStarted
from aion.store import open_store
from aion.store._lmdb_format import U64
from tests.cli.conftest import aion as run_aion
from tests.engine import flows


def _store(data: Path) -> None:
    with open_store(data) as store:
        for i in range(3):
            wf = f"wf-{i}"
            store.append(
                wf, [WorkflowStarted(workflow_id=wf, workflow_type="t", input=[i], run_id=str(uuid.uuid4()))], 0
            )
            store.append(wf, [ActivityScheduled(workflow_id=wf, activity_id=1, activity_type="a", input=[])], 1)
        store.append("wf-0", [WorkflowCompleted(workflow_id="wf-0", result=1)], 2)


@pytest.mark.timeout(60)
def test_check_passes_a_sound_store(tmp_path: Path) -> None:
    _store(tmp_path / "d")
    result = run_aion("check", "--data-dir", tmp_path / "d")
    assert result.code == 0, result.err
    assert "ok: 3 workflows, 3 runs, 7 events" in result.out
    report = run_aion("check", "--data-dir", tmp_path / "d", "--json").json()
    assert report["ok"] is True and report["problems"] == []


@pytest.mark.timeout(60)
def test_check_lists_a_gap_and_a_second_terminal(tmp_path: Path) -> None:
    data = tmp_path / "d"
    _store(data)
    env = lmdb.open(str(data), max_dbs=16)
    history = env.open_db(b"history")
    with env.begin(write=True) as txn:
        txn.delete(b"wf-1\x00" + U64.pack(1), db=history)  # a hole at the start of wf-1
        second = txn.get(b"wf-0\x00" + U64.pack(3), db=history)
        txn.put(b"wf-0\x00" + U64.pack(4), second, db=history)  # a copy of its terminal, as seq 4
    env.close()
    result = run_aion("check", "--data-dir", data)
    assert result.code == 1
    assert "wf-1: history is not gapless from 1" in result.out
    assert "wf-0" in result.out and "terminal" in result.out
    report = run_aion("check", "--data-dir", data, "--json").json()
    assert report["ok"] is False and len(report["problems"]) >= 2


@pytest.mark.timeout(60)
def test_check_verifies_the_search_attribute_index(tmp_path: Path) -> None:
    data = tmp_path / "d"
    with open_store(data) as store:
        store.set_search_attribute_schema({"CustomerId": "keyword", "Note": "text"})
        for i in range(3):
            wf = f"wf-{i}"
            started = WorkflowStarted(
                workflow_id=wf,
                workflow_type="t",
                input=[],
                run_id=str(uuid.uuid4()),
                search_attributes={"CustomerId": f"c-{i}", "Note": "not indexed"},
            )
            store.append(wf, [started], 0)
    assert run_aion("check", "--data-dir", data).code == 0
    env = lmdb.open(str(data), max_dbs=16)
    index = env.open_db(b"vis_attr")
    with env.begin(write=True) as txn:
        first = next(iter(txn.cursor(db=index).iternext(keys=True, values=False)))
        txn.delete(first, db=index)  # an entry the run records imply, gone
        txn.put(b"CustomerId\x00stray", b"", db=index)  # an entry no run record implies
    env.close()
    result = run_aion("check", "--data-dir", data)
    assert result.code == 1
    assert "search-attribute index lacks 1 entries" in result.out
    assert "search-attribute index has 1 entries no run record implies" in result.out


@pytest.mark.timeout(120)
def test_hot_backup_while_an_engine_runs_then_restore(tmp_path: Path, log: str) -> None:
    data, backup, restored = tmp_path / "data", tmp_path / "backup", tmp_path / "restored"
    with aion.Engine(data, workflows=flows.ALL_WORKFLOWS, activities=flows.ALL_ACTIVITIES) as engine:
        done = engine.start_workflow(flows.chain, log, 3, workflow_id="done")
        assert done.result(timeout=60) == 6
        waiting = engine.start_workflow(flows.waits_for_signals, log, 2, workflow_id="waiting")
        waiting.signal("item", "a")
        result = run_aion("backup", "--data-dir", data, backup)  # the engine is writing meanwhile
        assert result.code == 0, result.err
        assert "backed up" in result.out
    assert run_aion("check", "--data-dir", backup).code == 0
    restored.mkdir()
    shutil.copy(backup / "data.mdb", restored / "data.mdb")
    with aion.Engine(restored, workflows=flows.ALL_WORKFLOWS, activities=flows.ALL_ACTIVITIES) as engine:
        assert engine.get_workflow("done").result(timeout=5) == 6
        engine.get_workflow("waiting").signal("item", "b")  # the restored run goes on
        assert engine.get_workflow("waiting").result(timeout=60) == ["a", "b"]
    assert run_aion("backup", "--data-dir", data, backup).code == 1  # never over an existing backup


@pytest.mark.timeout(60)
@pytest.mark.parametrize("damage", ["zero", "truncate", "overwrite"])
def test_the_cli_refuses_a_damaged_data_file_with_store_format(tmp_path: Path, damage: str) -> None:
    data = tmp_path / "d"
    _store(data)
    path = data / "data.mdb"
    if damage == "zero":
        path.write_bytes(b"")
    elif damage == "truncate":
        with open(path, "r+b") as f:
            f.truncate(path.stat().st_size // 2)
    else:
        with open(path, "r+b") as f:
            f.write(b"\xff" * 8192)
    for command in ("list", "check"):
        result = run_aion(command, "--data-dir", data)
        assert result.code == 1, result  # not a SIGBUS (-7), not a traceback
        assert result.err.startswith("error[store_format]"), result.err
        assert "Traceback" not in result.err
