"""Payload conversion through real runs (dataclasses, enums, datetime/date/timedelta, UUID, Decimal, pydantic
models come back with their types) and the payload codec (every stored event compressed in the raw LMDB bytes;
the CLI reads them with --codec)."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path

import lmdb
import pytest

import aion
from tests.api import flows
from tests.api.payload_types import CODEC, Colour, Item, Level, Order, sample

AION = str(Path(sys.executable).parent / "aion")
ROOT = Path(__file__).resolve().parents[2]


def _aion(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AION, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.timeout(60)
def test_every_type_round_trips_through_a_run_with_its_type(tmp_path: Path) -> None:
    order = sample()
    with aion.Engine(tmp_path, workflows=flows.ALL_WORKFLOWS, activity_workers=1) as engine:
        result = engine.execute_workflow(flows.quick, order, workflow_id="o", timeout=30)
        signalled = engine.start_workflow(flows.waits, "x", workflow_id="s")
        signalled.signal("go", Colour.RED)
        assert signalled.result(timeout=30) == "x:Colour.RED"
    assert result == order
    assert type(result) is Order
    assert type(result.level) is Level and type(result.items[0]) is Item
    assert type(result.items[0].colour) is Colour

    shown = _aion("result", "o", "--data-dir", tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {
        "order_id": "12345678-1234-5678-1234-567812345678",
        "placed": "2025-03-01T12:30:00+00:00",
        "due": "2025-03-08",
        "window": 172805.000007,
        "level": 3,
        "total": "19.90",
        "items": [{"sku": "a-1", "price": "9.95", "colour": "blue"}] * 2,
    }


@pytest.mark.timeout(60)
def test_a_codec_compresses_every_stored_event_and_the_cli_reads_them_with_it(tmp_path: Path) -> None:
    marker = "do-not-store-me-in-clear " * 40
    with aion.Engine(tmp_path, workflows=flows.ALL_WORKFLOWS, activity_workers=1, payload_codec=CODEC) as engine:
        assert engine.execute_workflow(flows.quick, marker, workflow_id="z", timeout=30) == marker
        assert engine.get_workflow("z").history()[0].input == [marker]  # type: ignore[attr-defined]

    env = lmdb.open(str(tmp_path), readonly=True, lock=False, max_dbs=16, subdir=True)
    try:
        with env.begin() as txn:
            history = env.open_db(b"history", txn=txn, create=False)
            values = [bytes(value) for _, value in txn.cursor(db=history)]
    finally:
        env.close()
    assert len(values) == 2  # WorkflowStarted, WorkflowCompleted
    for value in values:
        assert marker.encode()[:20] not in value
        assert b"WorkflowStarted" not in value and b"WorkflowCompleted" not in value
        assert len(value) < len(marker)
        zlib.decompress(value)  # each is one zlib stream

    read = _aion("history", "z", "--json", "--codec", "tests.api.payload_types:CODEC", "--data-dir", tmp_path)
    assert read.returncode == 0, read.stderr
    events = json.loads(read.stdout)["events"]
    assert [event["type"] for event in events] == ["WorkflowStarted", "WorkflowCompleted"]
    refused = _aion("history", "z", "--json", "--data-dir", tmp_path)
    assert refused.returncode == 1
    assert "error[corrupt_event]" in refused.stderr and "payload codec" in refused.stderr
    bad = _aion("history", "z", "--codec", "no_such_module:X", "--data-dir", tmp_path)
    assert bad.returncode == 2 and "cannot load codec" in bad.stderr


@pytest.mark.timeout(60)
def test_a_fernet_codec_encrypts_what_is_stored(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    codec = aion.codec.fernet_codec(Fernet.generate_key())
    with aion.Engine(tmp_path, workflows=flows.ALL_WORKFLOWS, activity_workers=1, payload_codec=codec) as engine:
        assert engine.execute_workflow(flows.quick, "secret", workflow_id="f", timeout=30) == "secret"
    with aion.Engine(tmp_path, workflows=flows.ALL_WORKFLOWS, activity_workers=1, payload_codec=codec) as engine:
        assert engine.get_workflow("f").result(timeout=30) == "secret"
