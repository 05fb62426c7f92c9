"""The recorder holding deferrable appends: while prompt appends (ones a caller waits on) come in a steady stream, a
deferrable append waits for the next prompt one and shares its transaction; with no stream it commits at once; a
hold ends with the next prompt append, ``expedite()``, ``stop()`` or the hold's end, whichever comes first.

The holds here are long (a minute) so that what is held stays held while the test looks; what ends them never
waits for them."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pykka
import pytest

from aion.events import Event
from aion.recorder import RecorderHandle, start_recorder
from aion.store import EventStore
from tests.helpers import RecordingSink, wait_until
from tests.store._helpers import signal, started

pytestmark = pytest.mark.timeout(60)

LONG_HOLD = 60.0


@pytest.fixture
def recorder(store: EventStore) -> Iterator[RecorderHandle]:
    handle = start_recorder(store, hold=LONG_HOLD)
    yield handle
    handle.stop(timeout=10)
    assert not pykka.ActorRegistry.get_all(), "an actor outlived the test"


def _prompt_stream(recorder: RecorderHandle) -> None:
    """Two prompt appends, each waited for: prompt appends now come in a steady stream (for a minute's hold)."""
    for workflow_id in ("caller-1", "caller-2"):
        recorder.append(workflow_id, [started(workflow_id)], 0).get(timeout=10)


def _held(recorder: RecorderHandle, holds: int = 1) -> None:
    wait_until(lambda: recorder.stats().holds >= holds, timeout=10)


def test_with_no_prompt_stream_a_deferrable_append_commits_at_once(recorder: RecorderHandle) -> None:
    sink = RecordingSink()
    recorder.append_to(sink, "d", "w", [started("w")], 0, deferrable=True)
    wait_until(lambda: sink.tokens() == ["d"], timeout=10)  # not a minute later
    assert recorder.stats().holds == 0


def test_a_held_deferrable_append_shares_the_next_prompt_appends_transaction(
    store: EventStore, recorder: RecorderHandle
) -> None:
    _prompt_stream(recorder)
    batches = recorder.stats().batches
    sink = RecordingSink()
    recorder.append_to(sink, "d", "w", [started("w")], 0, deferrable=True)
    _held(recorder)
    assert sink.tokens() == [] and store.read_history("w") == []  # held: not written yet
    recorder.append_to(sink, "p", "caller-3", [started("caller-3")], 0)  # prompt
    wait_until(lambda: len(sink.tokens()) == 2, timeout=10)
    assert sink.token_calls() == [["d", "p"]]  # one transaction, in queue order
    assert recorder.stats().batches == batches + 1
    assert [type(event).__name__ for event in store.read_history("w")] == ["WorkflowStarted"]


def test_expedite_ends_a_hold(recorder: RecorderHandle) -> None:
    _prompt_stream(recorder)
    sink = RecordingSink()
    recorder.append_to(sink, "d", "w", [started("w")], 0, deferrable=True)
    _held(recorder)
    recorder.expedite()
    wait_until(lambda: sink.tokens() == ["d"], timeout=10)


def test_stop_ends_a_hold_and_commits_what_was_held(store: EventStore) -> None:
    recorder = start_recorder(store, hold=LONG_HOLD)
    _prompt_stream(recorder)
    sink = RecordingSink()
    recorder.append_to(sink, "d", "w", [started("w")], 0, deferrable=True)
    _held(recorder)
    recorder.stop(timeout=10)
    assert sink.tokens() == ["d"]
    assert len(store.read_history("w")) == 1


def _deferrable_alone_after_a_stream(store: EventStore, hold: float) -> int:
    """With ``hold``: a stream of prompt appends, then a deferrable one and no other; it commits all the same.
    How many holds there were."""
    recorder = start_recorder(store, hold=hold)
    try:
        _prompt_stream(recorder)  # two prompt appends well within the stream window apart
        sink = RecordingSink()
        recorder.append_to(sink, "d", "w", [started("w")], 0, deferrable=True)
        wait_until(lambda: sink.tokens() == ["d"], timeout=10)
        return recorder.stats().holds
    finally:
        recorder.stop(timeout=10)


def test_a_hold_ends_by_itself(store: EventStore) -> None:
    assert _deferrable_alone_after_a_stream(store, hold=1.0) >= 1  # held, and no prompt append came: it ran out


def test_a_deferrable_append_behind_a_queued_prompt_one_is_not_held(recorder: RecorderHandle) -> None:
    """A future append is prompt: appended while the recorder holds, it ends the hold and both commit."""
    _prompt_stream(recorder)
    sink = RecordingSink()
    recorder.append_to(sink, "d1", "w1", [started("w1")], 0, deferrable=True)
    _held(recorder)
    stamped: list[Event] = recorder.append("w2", [started("w2"), signal("w2")], 0).get(timeout=10)
    assert [event.seq for event in stamped] == [1, 2]
    wait_until(lambda: sink.tokens() == ["d1"], timeout=10)


def test_prompt_appends_further_apart_than_the_stream_window_are_no_stream(store: EventStore) -> None:
    """A caller appending every two and a half holds (every 5 ms with the default hold) is no stream: its runs'
    steps are not paced by its appends."""
    hold = 0.05
    recorder = start_recorder(store, hold=hold)
    try:
        for index in range(3):
            recorder.append(f"caller-{index}", [started(f"caller-{index}")], 0).get(timeout=10)
            time.sleep(hold * 2.5)  # the cadence under test
        sink = RecordingSink()
        recorder.append_to(sink, "d", "w", [started("w")], 0, deferrable=True)
        wait_until(lambda: sink.tokens() == ["d"], timeout=10)
        assert recorder.stats().holds == 0
    finally:
        recorder.stop(timeout=10)


def test_no_hold_is_zero_hold(store: EventStore) -> None:
    assert _deferrable_alone_after_a_stream(store, hold=0) == 0
