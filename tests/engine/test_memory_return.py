"""The engine gives memory it no longer uses back to the system (``aion.engine._memory_return``) after evicting
idle runs: the C heap's free pages, and the store map's pages its reads left resident."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import psutil
import pytest

from aion.clock import ManualClock
from aion.engine._memory_return import MemoryReturner, trim_heap
from aion.engine._residency import Residency
from aion.engine._runs import Run, RunState
from aion.store import open_store
from aion.store._map_pages import shared_read_only_mappings
from tests.store._helpers import signal, started

MIB = 1024 * 1024


@pytest.mark.timeout(60)
def test_a_trim_returns_the_free_pages_between_objects_that_stay() -> None:
    if not trim_heap():
        pytest.skip("the C library has no malloc_trim")
    # Objects that stay interleaved with garbage, as a burst of starts leaves them: freeing the garbage does
    # not shrink the process; the trim does.
    kept, garbage = [], []
    for _ in range(10_000):
        kept.append(bytearray(600))
        garbage.append(bytearray(16_000))
    del garbage
    before = psutil.Process().memory_info().rss
    assert trim_heap()
    after = psutil.Process().memory_info().rss
    assert before - after > 50 * MIB
    assert len(kept) == 10_000


def mapped_resident_bytes(data_file: Path) -> int:
    """How many bytes of this process's mappings of ``data_file`` are resident (from ``/proc/self/smaps``)."""
    starts = {start for start, _ in shared_read_only_mappings(data_file)}
    resident, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split(maxsplit=1)[0]
        if "-" in head and not head.endswith(":"):
            inside = int(head.split("-")[0], 16) in starts
        elif inside and head == "Rss:":
            resident += int(line.split()[1]) * 1024
    return resident


@pytest.mark.timeout(60)
@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux's /proc/self/smaps")
def test_the_store_drops_the_map_pages_its_reads_left_resident_and_reads_the_same_after(tmp_path: Path) -> None:
    blob = b"x" * 100_000
    with open_store(tmp_path) as store:
        store.append("wf-1", [started("wf-1")], 0)
        for head in range(1, 201):  # ~20 MB of history
            store.append("wf-1", [signal("wf-1", head, payload=blob)], head)
        first = store.read_history("wf-1")
        data_file = tmp_path / "data.mdb"
        assert mapped_resident_bytes(data_file) > 15 * MIB
        store.release_cached_pages()
        assert mapped_resident_bytes(data_file) < 1 * MIB
        assert store.read_history("wf-1") == first  # mapped again from the page cache, unchanged
        assert store.append("wf-1", [signal("wf-1", 201)], 201)[0].seq == 202
    with open_store(tmp_path, readonly=True) as reader:
        assert reader.read_history("wf-1")[:201] == first


@pytest.mark.timeout(10)
def test_a_closed_store_releases_nothing_and_does_not_fail(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.close()
    store.release_cached_pages()


@pytest.mark.timeout(10)
def test_returns_are_at_least_an_interval_apart_and_a_refusal_says_when_to_ask_again() -> None:
    now = [100.0]
    released: list[float] = []
    returner = MemoryReturner(lambda: released.append(now[0]), interval=30.0, now=lambda: now[0])
    assert returner.give_back() is None
    now[0] += 29.0
    assert returner.give_back() == 130.0
    now[0] += 1.0
    assert returner.give_back() is None
    assert returner.returns == 2 and released == [100.0, 130.0]


def parked_run(workflow_id: str) -> Run:
    run = Run(RunState(workflow_id, f"run-{workflow_id}", "waiter", head=1))
    run.link.connected(channel=object(), seen=1)  # up ...
    run.link.acked = 1  # ... and has answered everything it was sent
    return run


@pytest.mark.timeout(10)
def test_a_sweep_that_evicted_idle_runs_asks_for_a_return_and_one_that_did_not_does_not() -> None:
    clock = ManualClock(1000.0)
    sweeps: list[int] = []

    def give_back() -> None:
        sweeps.append(slots.evictions)

    slots = Residency(
        8, lambda run: None, lambda run: None, lambda at: None, clock, idle_after=60.0,
        after_idle_evictions=give_back,
    )  # fmt: skip
    run = parked_run("idle")
    slots.want(run, started=False)
    clock.set(1030.0)
    slots.recheck()
    assert sweeps == [] and slots.is_resident(run)  # not idle long enough: nothing evicted, nothing returned
    clock.set(1061.0)
    slots.recheck()
    assert sweeps == [1] and not slots.is_resident(run)
    slots.recheck()
    assert sweeps == [1]  # nothing left to evict


@pytest.mark.timeout(10)
def test_a_return_put_off_is_asked_for_again_when_the_returner_said() -> None:
    clock = ManualClock(1000.0)
    armed: list[float] = []
    returner = MemoryReturner(interval=30.0, now=clock.time)
    slots = Residency(
        8, lambda run: None, lambda run: None, armed.append, clock, idle_after=60.0,
        after_idle_evictions=returner.give_back,
    )  # fmt: skip
    slots.want(parked_run("idle"), started=False)
    clock.set(1050.0)
    assert returner.give_back() is None  # returned at 1050: the next return waits until 1080
    clock.set(1061.0)
    slots.recheck()
    assert slots.evictions == 1 and returner.returns == 1  # evicted, but the return was put off ...
    assert 1080.0 in armed  # ... and a recheck armed for when it may be done
    clock.set(1080.0)
    slots.recheck()  # nothing more to evict: the return is still owed
    assert returner.returns == 2
    slots.recheck()
    assert returner.returns == 2  # owed no more


@pytest.mark.timeout(120)
def test_dropping_map_pages_while_the_map_grows_and_readers_read_loses_nothing(tmp_path: Path) -> None:
    # Drops go on the whole time the map doubles (set_mapsize moves it) and histories are read back: every read
    # must give back exactly what was written. A drop that advised anything but the store's read-only shared
    # mapping (the heap, a private mapping) would zero live memory: wrong reads or a crash of this process.
    blob = b"y" * 50_000
    stop = threading.Event()
    failures: list[BaseException] = []

    def keep_dropping(store: Any) -> None:
        while not stop.is_set():
            try:
                store.release_cached_pages()
            except BaseException as error:  # reported by the main thread
                failures.append(error)
                return

    with open_store(tmp_path, map_size=1 << 20) as store:  # 1 MiB: it doubles again and again below
        store.append("wf-1", [started("wf-1")], 0)
        dropper = threading.Thread(target=keep_dropping, args=(store,))
        dropper.start()
        try:
            for head in range(1, 301):
                store.append("wf-1", [signal("wf-1", head, payload=blob)], head)
                if head % 25 == 0:
                    history = store.read_history("wf-1")
                    assert [event.seq for event in history] == list(range(1, head + 2))
                    assert all(event.payload == blob for event in history[1:])  # type: ignore[attr-defined]
        finally:
            stop.set()
            dropper.join(timeout=30)
    assert not failures
