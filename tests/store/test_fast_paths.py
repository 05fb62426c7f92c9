"""The append hot path's shortcuts: bodies encoded ahead, cheap stamping and the before-commit hook."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aion._codec import decode_event, encode_event, encode_event_body
from aion.errors import PayloadError, SequenceConflictError
from aion.events import EVENT_TYPES, SignalReceived
from aion.store import AppendRequest, EventStore, LmdbEventStore, MemoryEventStore, open_store
from aion.store._derive import stamp
from tests.store._helpers import signal, started


def _append_with_bodies(store: EventStore, workflow_id: str, events: list[Any], head: int) -> Any:
    bodies = [encode_event_body(event) for event in events]
    return store.append_batch([AppendRequest(workflow_id, events, head, bodies)])[0]


def test_bodies_encoded_ahead_give_the_same_history(store: EventStore) -> None:
    first = _append_with_bodies(store, "a", [started("a"), signal("a", 1, {"x": (1, 2)})], 0)
    plain = store.append_batch([AppendRequest("b", [started("b"), signal("b", 1, {"x": (1, 2)})], 0)])[0]
    assert isinstance(first, list)
    assert isinstance(plain, list)
    history = store.read_history("a")
    assert history == first
    assert [encode_event(event) for event in history] == [encode_event(event) for event in first]
    assert [event.seq for event in history] == [1, 2]
    assert history[1].payload == {"x": (1, 2)}


def test_a_body_list_of_the_wrong_length_is_ignored(store: EventStore) -> None:
    events = [started("a"), signal("a")]
    wrong = [encode_event_body(signal("other"))]
    stamped = store.append_batch([AppendRequest("a", events, 0, wrong)])[0]
    assert isinstance(stamped, list)
    assert [event.workflow_id for event in store.read_history("a")] == ["a", "a"]


def test_missing_bodies_are_encoded_by_the_store(store: EventStore) -> None:
    store.append("a", [started("a")], 0)
    bad = signal("a", 1, {"bad": object()})
    result = store.append_batch([AppendRequest("a", [bad], 1, [None])])[0]
    assert isinstance(result, PayloadError)
    assert "SignalReceived.payload.bad: cannot serialise <class 'object'>" in str(result)


def test_bodies_do_not_bypass_validation(store: EventStore) -> None:
    store.append("a", [started("a")], 0)
    events = [signal("a")]
    result = store.append_batch([AppendRequest("a", events, 5, [encode_event_body(events[0])])])[0]
    assert isinstance(result, SequenceConflictError)


def test_bodies_take_no_part_in_request_equality() -> None:
    events = [signal("a")]
    assert AppendRequest("a", events, 0, [encode_event_body(events[0])]) == AppendRequest("a", events, 0)


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_stamp_matches_dataclasses_replace(name: str) -> None:
    cls = EVENT_TYPES[name]
    fields = {field.name: field for field in dataclasses.fields(cls) if field.init}
    sample: dict[str, Any] = {"workflow_id": "w"}
    for field_name, field in fields.items():
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            sample.setdefault(field_name, _sample_value(str(field.type)))
    event = cls(**sample)
    when = datetime(2024, 1, 2, tzinfo=UTC)
    stamped = stamp(event, 7, when)
    expected = dataclasses.replace(event, seq=7, recorded_at=when)
    assert type(stamped) is cls
    assert stamped == expected
    assert stamped.__dict__ == expected.__dict__
    assert event.seq == 0  # the original is untouched
    assert decode_event(encode_event(stamped)) == stamped


def _sample_value(hint: str) -> Any:
    if "Failure" in hint:
        from aion.events import Failure

        return Failure("E", "m")
    if "datetime" in hint:
        return datetime(2024, 1, 1, tzinfo=UTC)
    if hint.startswith("int"):
        return 1
    if hint.startswith("float"):
        return 1.0
    if hint.startswith("bool"):
        return True
    if hint.startswith("dict"):
        return {}
    if hint.startswith("str"):
        return "00000000-0000-4000-8000-000000000000"
    return None


@pytest.mark.parametrize("kind", ["memory", "lmdb"])
def test_before_commit_runs_once_before_the_commit(kind: str, tmp_path: Path) -> None:
    store: MemoryEventStore | LmdbEventStore = MemoryEventStore() if kind == "memory" else open_store(tmp_path / "data")
    seen: list[int] = []

    def hook() -> None:
        seen.append(store.head("a"))  # what a reader sees: the batch is not committed yet

    try:
        store.append_batch([AppendRequest("a", [started("a")], 0)], before_commit=hook)
        store.append_batch([AppendRequest("a", [signal("a")], 1)], before_commit=hook)
        assert seen == [0, 1]
        assert store.head("a") == 2
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["memory", "lmdb"])
def test_before_commit_is_not_run_when_an_atomic_batch_is_refused(kind: str, tmp_path: Path) -> None:
    store: MemoryEventStore | LmdbEventStore = MemoryEventStore() if kind == "memory" else open_store(tmp_path / "data")
    calls: list[None] = []
    try:
        with pytest.raises(SequenceConflictError):
            store.append_batch(
                [AppendRequest("a", [signal("a")], 3)], atomic=True, before_commit=lambda: calls.append(None)
            )
        assert calls == []
        assert store.head("a") == 0
    finally:
        store.close()


def test_lmdb_hook_runs_once_across_a_map_resize(tmp_path: Path) -> None:
    store = open_store(tmp_path / "data", map_size=64 * 1024)
    calls: list[None] = []
    try:
        store.append("a", [started("a")], 0)
        big = [SignalReceived(workflow_id="a", name="n", payload=b"x" * 20_000) for _ in range(10)]
        store.append_batch([AppendRequest("a", big, 1)], before_commit=lambda: calls.append(None))
        assert calls == [None]
        assert store.head("a") == 11
    finally:
        store.close()


def test_history_keys_past_the_seq_tables(store: EventStore) -> None:
    events = [started("a"), *(signal("a", n) for n in range(4099))]
    stamped = store.append_batch([AppendRequest("a", events, 0)])[0]
    assert isinstance(stamped, list)
    store.append("a", [signal("a")], 4100)
    history = store.read_history("a", after_seq=4090)
    assert [event.seq for event in history] == list(range(4091, 4102))
    assert store.head("a") == 4101
    assert [event.name for event in history if isinstance(event, SignalReceived)][-1] == "s0"
