"""Faults of the data directory: an empty, truncated or damaged data file is refused with ``store_format`` (never a
SIGBUS, never a silent new store), the single-writer lock holds with its side files deleted, a store that cannot
grow raises ``store_full``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

import aion
from aion.errors import StoreFormatError, StoreFullError, StoreLockedError
from aion.events import WorkflowStarted
from aion.store import open_store

ROOT = Path(__file__).resolve().parents[2]


def _make_store(path: Path, runs: int = 50) -> None:
    with open_store(path) as store:
        for i in range(runs):
            store.append(
                f"wf-{i}",
                [
                    WorkflowStarted(
                        workflow_id=f"wf-{i}", workflow_type="t", input=["x" * 2000], run_id=str(uuid.uuid4())
                    )
                ],
                0,
            )


def _in_subprocess(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


OPEN_AND_LIST = """
    import sys
    from aion.errors import AionError
    from aion.store import open_store
    try:
        with open_store(sys.argv[1], readonly=sys.argv[2] == "ro") as store:
            print(len(store.list_workflows()))
    except AionError as error:
        print(error.code)
"""


@pytest.mark.timeout(60)
def test_an_empty_data_file_is_refused_not_reinitialised(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _make_store(data)
    (data / "data.mdb").write_bytes(b"")
    for readonly in (False, True):
        with pytest.raises(StoreFormatError, match="empty"):
            open_store(data, readonly=readonly)
    with pytest.raises(StoreFormatError):
        aion.Engine(data).start()
    assert (data / "data.mdb").stat().st_size == 0  # nothing was written over it


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["rw", "ro"])
def test_a_truncated_data_file_is_refused_without_sigbus(tmp_path: Path, mode: str) -> None:
    data = tmp_path / "data"
    _make_store(data)
    size = (data / "data.mdb").stat().st_size
    os.truncate(data / "data.mdb", size // 2)
    result = _in_subprocess(OPEN_AND_LIST, str(data), mode)
    assert result.returncode == 0, result.stderr  # not killed by SIGBUS
    assert result.stdout.strip() == "store_format"
    assert (data / "data.mdb").stat().st_size == size // 2


@pytest.mark.timeout(60)
def test_a_damaged_data_file_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _make_store(data)
    with open(data / "data.mdb", "r+b") as f:
        f.write(os.urandom(8192))  # both meta pages
    for mode in ("rw", "ro"):
        result = _in_subprocess(OPEN_AND_LIST, str(data), mode)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "store_format"


@pytest.mark.timeout(60)
def test_a_new_store_is_made_only_in_an_empty_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.txt").write_text("mine")
    with pytest.raises(StoreFormatError, match="empty or new directory"):
        open_store(data)
    assert not (data / "data.mdb").exists()


HOLD = """
    import sys, threading
    from aion.store import open_store
    store = open_store(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.read()
"""


@pytest.mark.timeout(60)
def test_the_writer_lock_holds_with_its_side_files_deleted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _make_store(data, runs=1)
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLD), str(data)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        for side in ("writer.lock", "control.sock"):
            (data / side).unlink(missing_ok=True)
        with pytest.raises(StoreLockedError, match=f"pid {holder.pid}"):
            open_store(data)
        children_before = len(_children())
        with pytest.raises(StoreLockedError, match=f"pid {holder.pid}"):
            aion.Engine(data).start()
        assert len(_children()) == children_before  # refused before any zygote was forked
        with open_store(data, readonly=True) as reader:  # readers still may
            assert reader.get_run("wf-0") is not None
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)
    with open_store(data) as store:  # released with its holder
        assert store.get_run("wf-0") is not None


def _started(workflow_id: str) -> WorkflowStarted:
    return WorkflowStarted(workflow_id=workflow_id, workflow_type="t", input=["x" * 4000], run_id=str(uuid.uuid4()))


def _children() -> list[int]:
    try:
        with open(f"/proc/{os.getpid()}/task/{os.getpid()}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


@pytest.mark.timeout(60)
def test_a_store_past_its_map_size_raises_store_full(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with open_store(data, max_map_size=1 << 20) as store:
        with pytest.raises(StoreFullError, match="map_size"):
            for i in range(1000):
                store.append(f"wf-{i}", [_started(f"wf-{i}")], 0)
        written = len(store.list_workflows())
        assert written > 0
    with open_store(data) as store:  # a larger map: it goes on where it stopped
        assert len(store.list_workflows()) == written
        store.append("more", [_started("more")], 0)
