"""What a restarted workflow process is sent: the run's history as the store holds it (the event codec's bytes,
not decoded and encoded again by the engine). It replays them as before; a payload codec's encoding is undone
by the engine first; a stored event the process cannot decode blocks the run, naming the error, and the run goes
on once it is repaired."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

import aion
from aion import events as ev
from aion.store import EventStore
from aion.store._lmdb_format import U64
from tests.api.payload_types import CODEC
from tests.engine import flows
from tests.helpers import wait_until


def _history_key(workflow_id: str, seq: int) -> bytes:
    return workflow_id.encode() + b"\x00" + U64.pack(seq)


def _put_stored_event(store: EventStore, workflow_id: str, seq: int, value: bytes) -> bytes:
    """Replace the stored bytes of event ``seq`` of ``workflow_id`` in the engine's own LMDB environment (a
    write transaction waits for the recorder's); returns the bytes it held."""
    environment = store.environment  # type: ignore[attr-defined]
    with environment.env.begin(write=True) as txn:
        key = _history_key(workflow_id, seq)
        before = txn.get(key, db=environment.dbs.history)
        assert before is not None
        txn.put(key, value, db=environment.dbs.history)
    return bytes(before)


def _kill_process_of(engine: aion.Engine, workflow_id: str) -> int:
    pid = wait_until(lambda: engine.workflow_pid(workflow_id))
    os.kill(pid, signal.SIGKILL)
    return int(pid)


@pytest.mark.timeout(90)
def test_a_restarted_process_replays_the_stored_bytes_and_runs_nothing_again(tmp_path: Path, log: str) -> None:
    with aion.Engine(tmp_path / "data", workflows=[flows.checkout], activities=flows.ALL_ACTIVITIES) as engine:
        handle = engine.start_workflow(flows.checkout, log, {"id": 7}, workflow_id="c")
        wait_until(lambda: handle.query("stage") == "waiting")
        killed = _kill_process_of(engine, "c")
        wait_until(lambda: engine.workflow_pid("c") not in (None, killed))
        assert handle.query("stage") == "waiting"  # replayed past the recorded activity
        handle.signal("approve", "boss")
        result = handle.result(timeout=30)
    assert result["by"] == "boss" and result["sum"] == 6
    assert flows.executions(log).count("charge:7") == 1


@pytest.mark.timeout(90)
def test_with_a_payload_codec_the_engine_undoes_it_before_sending_the_history(tmp_path: Path, log: str) -> None:
    with aion.Engine(
        tmp_path / "data", workflows=[flows.checkout], activities=flows.ALL_ACTIVITIES, payload_codec=CODEC
    ) as engine:
        handle = engine.start_workflow(flows.checkout, log, {"id": 8}, workflow_id="z")
        wait_until(lambda: handle.query("stage") == "waiting")
        killed = _kill_process_of(engine, "z")
        wait_until(lambda: engine.workflow_pid("z") not in (None, killed))
        assert handle.query("stage") == "waiting"
        handle.signal("approve", "boss")
        assert handle.result(timeout=30)["by"] == "boss"
    assert flows.executions(log).count("charge:8") == 1


@pytest.mark.timeout(90)
def test_a_stored_event_the_process_cannot_decode_blocks_the_run_naming_the_error(tmp_path: Path, log: str) -> None:
    with aion.Engine(tmp_path / "data", workflows=[flows.checkout], activities=flows.ALL_ACTIVITIES) as engine:
        handle = engine.start_workflow(flows.checkout, log, {"id": 9}, workflow_id="b")
        wait_until(lambda: handle.query("stage") == "waiting")
        history = handle.history()
        completed = next(event for event in history if isinstance(event, ev.ActivityCompleted))
        # msgpack, but not an ActivityCompleted this aion can decode (its fields are missing).
        good = _put_stored_event(engine.store, "b", completed.seq, b"\x82\xa4type\xb1ActivityCompleted\xa1v\x01")
        _kill_process_of(engine, "b")
        wait_until(lambda: [info.workflow_id for info in engine.list_workflows(status="blocked")] == ["b"])
        handle.signal("approve", "boss")  # a blocked run still takes signals

        _put_stored_event(engine.store, "b", completed.seq, good)
        blocked = handle.describe().blocked
        assert blocked is not None and blocked.cause == "internal"
        assert blocked.message.startswith("cannot decode ActivityCompleted event: required field")
        assert handle.unblock()
        assert handle.result(timeout=30)["by"] == "boss"
    assert flows.executions(log).count("charge:9") == 1
