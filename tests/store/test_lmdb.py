"""The LMDB store on real files: reopening, map growth, bad data directories, locking, read-only opens."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import lmdb
import msgpack
import pytest

from aion.errors import SequenceConflictError, StoreError, StoreFormatError, StoreLockedError
from aion.store import SCHEMA_VERSION, open_store
from tests.store._helpers import signal, started

REPO = Path(__file__).resolve().parents[2]


def _python(code: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (another process) and return its result."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _fill(path: Path) -> list[int]:
    with open_store(path) as store:
        store.append("wf-1", [started("wf-1"), signal("wf-1", 1)], 0)
        return [event.seq for event in store.read_history("wf-1")]


def test_reopen_keeps_history_runs_and_timers(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        stamped = store.append("wf-1", [started("wf-1"), signal("wf-1", 1)], 0)
        run = store.get_run("wf-1")
    with open_store(tmp_path) as store:
        assert store.read_history("wf-1") == stamped
        assert store.get_run("wf-1") == run
        assert store.append("wf-1", [signal("wf-1", 2)], 2)[0].seq == 3


def test_the_map_grows_on_demand_without_losing_a_write(tmp_path: Path) -> None:
    blob = b"z" * 200_000
    with open_store(tmp_path, map_size=1 << 20) as store:  # 1 MiB: full after a few appends
        store.append("wf-1", [started("wf-1")], 0)
        for head in range(1, 40):
            store.append("wf-1", [signal("wf-1", head, payload=blob)], head)
        assert store.head("wf-1") == 40
    with open_store(tmp_path, readonly=True) as reader:
        history = reader.read_history("wf-1")
    assert [event.seq for event in history] == list(range(1, 41))
    assert all(event.payload == blob for event in history[1:])  # type: ignore[attr-defined]


def test_garbage_data_file_is_a_clear_store_error(tmp_path: Path) -> None:
    (tmp_path / "data.mdb").write_bytes(b"this is not an lmdb file at all" * 1000)
    with pytest.raises(StoreError) as caught:
        open_store(tmp_path)
    assert str(tmp_path) in str(caught.value)
    with pytest.raises(StoreError):
        open_store(tmp_path, readonly=True)
    # The refusal released the writer lock: a good store can be opened there after the garbage is removed.
    (tmp_path / "data.mdb").unlink()
    (tmp_path / "lock.mdb").unlink(missing_ok=True)
    assert _fill(tmp_path) == [1, 2]


def test_a_foreign_lmdb_environment_is_not_an_aion_store(tmp_path: Path) -> None:
    env = lmdb.open(str(tmp_path), max_dbs=2)
    with env.begin(write=True) as txn:
        txn.put(b"somebody", b"else's data")
    env.close()
    with pytest.raises(StoreFormatError, match="not an aion store"):
        open_store(tmp_path)
    with pytest.raises(StoreFormatError):
        open_store(tmp_path, readonly=True)
    env = lmdb.open(str(tmp_path), max_dbs=2)
    with env.begin() as txn:
        assert txn.get(b"somebody") == b"else's data"  # left untouched
    env.close()


def test_a_store_from_a_newer_schema_is_refused_and_left_intact(tmp_path: Path) -> None:
    assert _fill(tmp_path) == [1, 2]
    env = lmdb.open(str(tmp_path), max_dbs=16)
    meta = env.open_db(b"meta")
    with env.begin(write=True, db=meta) as txn:
        txn.put(b"schema_version", str(SCHEMA_VERSION + 1).encode())
    env.close()
    with pytest.raises(StoreFormatError, match="newer"):
        open_store(tmp_path)
    with pytest.raises(StoreFormatError, match="newer"):
        open_store(tmp_path, readonly=True)
    # Put the version back (as a newer aion would leave it for an older one): nothing was lost.
    env = lmdb.open(str(tmp_path), max_dbs=16)
    meta = env.open_db(b"meta")
    with env.begin(write=True, db=meta) as txn:
        txn.put(b"schema_version", str(SCHEMA_VERSION).encode())
    env.close()
    with open_store(tmp_path) as store:
        assert [event.seq for event in store.read_history("wf-1")] == [1, 2]


def test_a_second_writer_is_refused_in_this_and_another_process(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        store.append("wf-1", [started("wf-1")], 0)
        with pytest.raises(StoreLockedError):
            open_store(tmp_path)
        result = _python(
            f"""
            from aion.errors import StoreLockedError
            from aion.store import open_store
            try:
                open_store({str(tmp_path)!r})
            except StoreLockedError as error:
                print("locked", error.code)
            """
        )
        assert result.stdout.strip() == "locked store_locked", result.stderr
        assert store.append("wf-1", [signal("wf-1")], 1)[0].seq == 2  # the holder is unaffected
    with open_store(tmp_path) as store:  # released on close
        assert store.head("wf-1") == 2


def test_readonly_opens_from_another_process_beside_the_writer(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        store.append("wf-1", [started("wf-1"), signal("wf-1")], 0)
        code = f"""
            from aion.store import open_store
            reader = open_store({str(tmp_path)!r}, readonly=True)
            print(reader.head("wf-1"), [r.workflow_id for r in reader.list_workflows()])
            try:
                reader.append("wf-1", [], 2)
            except Exception as error:
                print(type(error).__name__)
            reader.close()
            """
        first = _python(code)
        assert first.stdout.split("\n")[:2] == ["2 ['wf-1']", "StoreError"], first.stderr
        store.append("wf-1", [signal("wf-1")], 2)
        assert _python(code).stdout.startswith("3 "), "the reader sees later commits"


def test_a_reader_in_another_process_adopts_a_map_grown_by_the_writer(tmp_path: Path) -> None:
    code = f"""
        import sys
        from aion.store import open_store
        reader = open_store({str(tmp_path)!r}, readonly=True)
        for line in sys.stdin:
            print(reader.head("wf-1"), len(reader.read_history("wf-1")), flush=True)
        reader.close()
        """
    with open_store(tmp_path, map_size=1 << 20) as writer:
        writer.append("wf-1", [started("wf-1")], 0)
        reader = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert reader.stdin is not None and reader.stdout is not None
            reader.stdin.write("read\n")
            reader.stdin.flush()
            assert reader.stdout.readline().split() == ["1", "1"]
            for head in range(1, 30):  # ~3 MB into a 1 MiB map: the writer grows it twice
                writer.append("wf-1", [signal("wf-1", head, payload=b"q" * 100_000)], head)
            reader.stdin.write("read\n")
            reader.stdin.flush()
            assert reader.stdout.readline().split() == ["30", "30"]
            reader.stdin.close()
            assert reader.wait(timeout=30) == 0
        finally:
            if reader.poll() is None:
                reader.kill()
                reader.wait()


def test_readonly_open_of_a_missing_store_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no aion store"):
        open_store(tmp_path / "nothing", readonly=True)
    assert not (tmp_path / "nothing").exists()


def test_a_full_disk_is_a_store_error_and_never_a_torn_write(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the data file unable to grow, as a full disk does (EFBIG instead of ENOSPC)."""
    result = _python(
        f"""
        import resource, signal
        from aion.errors import StoreError
        from aion.events import SignalReceived
        from aion.store import open_store
        from tests.store._helpers import started
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        store = open_store({str(tmp_path)!r})
        store.append("wf-1", [started("wf-1")], 0)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2 * 1024 * 1024, resource.RLIM_INFINITY))
        head = 1
        try:
            while True:
                event = SignalReceived(workflow_id="wf-1", name="s", payload=b"x" * 100_000)
                head = store.append("wf-1", [event], head)[-1].seq
        except StoreError as error:
            print("refused", head, type(error).__name__, type(error.__cause__).__name__)
        # Still usable for reads, and for small writes that fit.
        print("head", store.head("wf-1"))
        store.close()
        """
    )
    words = result.stdout.split()
    assert words[:1] == ["refused"], result.stdout + result.stderr
    acknowledged = int(words[1])
    assert words[2] == "StoreError" and words[3].endswith("Error")  # the lmdb error is the cause
    assert words[4:6] == ["head", str(acknowledged)]
    with open_store(tmp_path) as store:
        history = store.read_history("wf-1")
        assert [event.seq for event in history] == list(range(1, acknowledged + 1))
        assert store.append("wf-1", [signal("wf-1")], acknowledged)[0].seq == acknowledged + 1


def test_the_head_comes_from_history_not_from_the_run_record(tmp_path: Path) -> None:
    # An append that only moves the head leaves the stored run record alone (see aion/store/_lmdb.py).
    with open_store(tmp_path) as store:
        store.append("wf-h", [started("wf-h")], 0)
        for head in range(1, 6):
            store.append("wf-h", [signal("wf-h")], head)
    env = lmdb.open(str(tmp_path), max_dbs=16)
    with env.begin(db=env.open_db(b"runs")) as txn:
        stale_head = msgpack.unpackb(txn.get(b"wf-h"))[4]
    env.close()
    assert stale_head == 1
    with open_store(tmp_path) as store:  # a new writer: nothing cached
        assert store.head("wf-h") == 6
        run = store.get_run("wf-h")
        assert run is not None and run.head_seq == 6
        assert [found.head_seq for found in store.list_workflows()] == [6]
        assert [found.head_seq for found in store.running_workflows()] == [6]
        store.append("wf-h", [signal("wf-h")], 6)  # the expected head is checked against the real head
        with pytest.raises(SequenceConflictError):
            store.append("wf-h", [signal("wf-h")], 6)
    result = _python(
        "from aion.store import open_store\n"
        f"store = open_store({str(tmp_path)!r}, readonly=True)\n"
        "print(store.head('wf-h'), store.get_run('wf-h').head_seq)\n"
    )
    assert result.stdout.split() == ["7", "7"]


def test_an_unreadable_run_record_is_a_store_error_naming_the_workflow(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        store.append("wf-bad", [started("wf-bad")], 0)
    env = lmdb.open(str(tmp_path), max_dbs=16)
    with env.begin(db=env.open_db(b"runs"), write=True) as txn:
        txn.put(b"wf-bad", msgpack.packb([99, "not-this-format"]))
    env.close()
    with open_store(tmp_path) as store:
        for read in (store.get_run, store.current_run_id, store.read_run, store.read_run_encoded):
            with pytest.raises(StoreError, match="run record of workflow 'wf-bad' is unreadable"):
                read("wf-bad")
        assert [event.type for event in store.read_history("wf-bad")] == ["WorkflowStarted"]  # history intact


def test_a_failed_read_is_a_store_error_and_gives_its_reader_share_back(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        environment = store.environment
        with pytest.raises(StoreError, match="read failed: boom"), environment.read():
            raise lmdb.BadTxnError("boom")
        with pytest.raises(KeyError), environment.read():
            raise KeyError("not the store's")
        # A map resize waits until no read transaction is active: a share left taken would hold it forever.
        grown = threading.Thread(target=environment.grow, daemon=True)
        grown.start()
        grown.join(10)
        assert not grown.is_alive(), "a failed read kept its share of the read gate"
        _fill(tmp_path / "other")  # and the store still reads and writes
        store.append("wf-2", [started("wf-2")], 0)
        assert [event.seq for event in store.read_history("wf-2")] == [1]


def test_a_schema_1_store_is_upgraded_by_its_first_writer(tmp_path: Path) -> None:
    assert _fill(tmp_path) == [1, 2]
    env = lmdb.open(str(tmp_path), max_dbs=16)
    meta = env.open_db(b"meta")
    with env.begin(write=True, db=meta) as txn:
        txn.put(b"schema_version", b"1")
    env.close()
    with open_store(tmp_path, readonly=True) as reader:
        assert reader.head("wf-1") == 2
    env = lmdb.open(str(tmp_path), max_dbs=16)
    with env.begin(db=env.open_db(b"meta")) as txn:
        assert txn.get(b"schema_version") == b"1"  # a reader changes nothing
    env.close()
    with open_store(tmp_path) as store:
        assert [event.seq for event in store.read_history("wf-1")] == [1, 2]
    env = lmdb.open(str(tmp_path), max_dbs=16)
    with env.begin(db=env.open_db(b"meta")) as txn:
        assert txn.get(b"schema_version") == str(SCHEMA_VERSION).encode()
    env.close()
