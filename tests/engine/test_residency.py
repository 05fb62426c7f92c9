"""Residency (``Engine(max_resident=...)``): at most that many runs hold a process; parked runs are evicted
and come back by replay when something arrives for them; the others wait their turn. Nothing is lost either way."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import aion
from aion import events as ev
from aion.control._views import annotate_tree
from aion.engine import _residency as residency
from aion.engine._tree import walk
from aion.errors import StoreError
from tests.engine import flows, lifecycle_flows
from tests.engine import residency_flows as rf
from tests.helpers import wait_until

EngineFactory = Callable[[int], aion.Engine]


@pytest.fixture
def engine_with(tmp_path: Path) -> Iterator[EngineFactory]:
    """Start an engine with a given ``max_resident``; stopped after the test."""
    engines: list[aion.Engine] = []

    def start(max_resident: int) -> aion.Engine:
        engine = aion.Engine(
            tmp_path / "data",
            workflows=[*rf.WORKFLOWS, lifecycle_flows.parent, lifecycle_flows.child_echo],
            activities=rf.ACTIVITIES,
            max_resident=max_resident,
        )
        engine.start()
        engines.append(engine)
        return engine

    try:
        yield start
    finally:
        for engine in engines:
            engine.stop()


def idle_evicting(tmp_path: Path, **options: Any) -> aion.Engine:
    """An engine (to use as a context manager) whose parked runs give their processes up after 0.5 s idle."""
    return aion.Engine(
        tmp_path / "data", workflows=rf.WORKFLOWS, activities=rf.ACTIVITIES, evict_idle_after=0.5, **options
    )


def start_at_gate(
    engine: aion.Engine, workflow: Callable[..., Any], log: str, tmp_path: Path, *args: Any
) -> tuple[aion.WorkflowHandle, Path]:
    """Start ``workflow(log, gates, "a", *args)``, held by its gate activity "a", and wait until the activity runs;
    the handle and the gate directory (touch ``gates / "a.open"`` to let it finish)."""
    gates = tmp_path / "gates"
    gates.mkdir()
    handle = engine.start_workflow(workflow, log, str(gates), "a", *args)
    wait_until((gates / "a.started").exists)
    return handle, gates


@pytest.mark.timeout(90)
def test_parked_runs_are_evicted_for_new_ones_and_replay_when_signalled(engine_with: EngineFactory, log: str) -> None:
    engine = engine_with(2)
    handles = []
    for index in range(6):
        handle = engine.start_workflow(rf.parked_waiter, log, workflow_id=f"waiter-{index}")
        assert handle.query("ready") is True  # up and parked (this also brings an evicted run back)
        assert engine.residency()["resident"] <= 2
        handles.append(handle)
    assert engine.residency()["evictions"] >= 4
    for index, handle in enumerate(handles):
        handle.signal("go", index)
    assert [handle.result(timeout=30) for handle in handles] == list(range(6))
    assert engine.residency() == {"resident": 0, "waiting": 0, "evictions": engine.residency()["evictions"],
                                  "max_resident": 2}  # fmt: skip


@pytest.mark.timeout(60)
def test_the_tree_shows_a_run_that_came_back_after_an_eviction(engine_with: EngineFactory, log: str) -> None:
    engine = engine_with(1)
    first = engine.start_workflow(rf.parked_waiter, log, workflow_id="first")
    assert first.query("ready") is True
    second = engine.start_workflow(rf.parked_waiter, log, workflow_id="second")
    assert second.query("ready") is True  # the first was evicted for it
    assert first.query("ready") is True  # and comes back in a process of its second incarnation

    def the_only_run_node() -> list[dict[str, Any]] | None:
        tree = annotate_tree(engine.supervision_tree(), engine.store)
        nodes = [node for _, node in walk(tree) if "workflow" in node]
        return nodes if len(nodes) == 1 else None

    # The first's answer does not mean that the second's process is gone: evicted, it was told to stop and
    # leaves the tree once it has (asynchronously, and late on a loaded machine). Wait for that, then look.
    nodes = wait_until(the_only_run_node)
    assert [(node["id"], node["workflow"]["run_id"], node["workflow"]["status"]) for node in nodes] == [
        (f"run:{first.run_id}.1:first", first.run_id, "running")
    ]


@pytest.mark.timeout(60)
def test_a_run_whose_closing_append_fails_gets_a_new_process_and_closes(
    engine_with: EngineFactory, log: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process exits after sending its closing command; the append of WorkflowCompleted fails (an injected
    store failure, as a full disk would give): the run is given a new process, which replays and closes it."""
    engine = engine_with(4)
    store = engine.store
    real_append_batch = store.append_batch
    failed: list[str] = []

    def append_batch(requests: list[Any], **options: Any) -> list[Any]:
        victim = next(
            (index for index, request in enumerate(requests)
             if not failed and any(isinstance(event, ev.WorkflowCompleted) for event in request.events)),
            None,
        )  # fmt: skip
        if victim is None:
            return real_append_batch(requests, **options)
        failed.append(requests[victim].workflow_id)
        rest = requests[:victim] + requests[victim + 1 :]
        results = list(real_append_batch(rest, **options)) if rest else []
        results.insert(victim, StoreError("injected: the disk failed"))
        return results

    monkeypatch.setattr(store, "append_batch", append_batch)
    handle = engine.start_workflow(rf.parked_waiter, log, workflow_id="victim")
    assert handle.query("ready") is True
    handle.signal("go", "done")
    assert handle.result(timeout=30) == "done"
    assert failed == ["victim"]
    assert [type(event) for event in handle.history()][-2:] == [ev.SignalReceived, ev.WorkflowCompleted]


@pytest.mark.timeout(60)
def test_a_run_waiting_on_a_fresh_activity_keeps_its_process_and_new_runs_wait(
    engine_with: EngineFactory, log: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(residency, "HORIZON", 60.0)  # the activity stays fresh however slow the machine is
    engine = engine_with(1)
    held, gates = start_at_gate(engine, rf.held_by_activity, log, tmp_path)
    pid = engine.workflow_pid(held.workflow_id)
    waiting = engine.start_workflow(rf.parked_waiter, log)
    assert engine.residency()["waiting"] == 1  # its start is durable; its process waits for the slot
    assert engine.workflow_pid(waiting.workflow_id) is None
    assert engine.workflow_pid(held.workflow_id) == pid
    assert engine.residency()["evictions"] == 0
    (gates / "a.open").touch()
    assert held.result(timeout=30) == "a"
    assert waiting.query("ready") is True
    waiting.signal("go", "done")
    assert waiting.result(timeout=30) == "done"


@pytest.mark.timeout(60)
def test_a_run_waiting_on_a_long_activity_gives_up_its_slot_and_replays_for_the_result(
    engine_with: EngineFactory, log: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(residency, "HORIZON", 0.2)
    engine = engine_with(1)
    held, gates = start_at_gate(engine, rf.held_by_activity, log, tmp_path)
    waiting = engine.start_workflow(rf.parked_waiter, log)
    # Once the activity is older than the horizon, a recheck evicts its run for the one waiting.
    assert waiting.query("ready") is True
    assert engine.residency()["evictions"] == 1
    wait_until(lambda: engine.workflow_pid(held.workflow_id) is None)  # evicted: its process stops soon after
    waiting.signal("go", "w")
    assert waiting.result(timeout=30) == "w"
    (gates / "a.open").touch()
    assert held.result(timeout=30) == "a"
    assert [e.activity_id for e in held.history() if isinstance(e, aion.events.ActivityStarted)] == [1]


@pytest.mark.timeout(60)
def test_a_run_that_parks_while_others_wait_gives_up_its_slot(
    engine_with: EngineFactory, log: str, tmp_path: Path
) -> None:
    engine = engine_with(1)
    first, gates = start_at_gate(engine, rf.activity_then_signal, log, tmp_path)
    waiting = engine.start_workflow(rf.parked_waiter, log)
    assert engine.residency()["waiting"] == 1
    (gates / "a.open").touch()  # the first run moves on to wait for a signal: it parks, and the waiter needs the slot
    assert waiting.query("ready") is True
    assert engine.residency()["evictions"] == 1
    wait_until(lambda: engine.workflow_pid(first.workflow_id) is None)  # evicted: its process stops soon after
    waiting.signal("go", "w")
    first.signal("go", "f")
    assert waiting.result(timeout=30) == "w"
    assert first.result(timeout=30) == "a+f"


@pytest.mark.timeout(60)
def test_a_run_whose_last_append_parks_it_gives_up_its_slot_without_a_recheck(
    engine_with: EngineFactory, log: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(residency, "HORIZON", 60.0)  # the activity stays fresh; the timer is far beyond it
    monkeypatch.setattr(residency, "RECHECK", 3600.0)  # only the commit of its TimerStarted can free the slot
    engine = engine_with(1)
    sleeper, gates = start_at_gate(engine, rf.activity_then_sleep, log, tmp_path, 3600)
    waiting = engine.start_workflow(rf.parked_waiter, log)
    (gates / "a.open").touch()
    assert waiting.query("ready") is True
    wait_until(lambda: engine.workflow_pid(sleeper.workflow_id) is None)  # evicted: its process stops soon after
    waiting.signal("go", "w")
    assert waiting.result(timeout=30) == "w"
    assert sleeper.terminate("done") is True


@pytest.mark.timeout(60)
def test_an_evicted_sleeper_wakes_on_its_timer(engine_with: EngineFactory, log: str) -> None:
    engine = engine_with(1)
    sleeper = engine.start_workflow(rf.parked_sleeper, log, 1.5)
    assert sleeper.query("ready") is True
    waiter = engine.start_workflow(rf.parked_waiter, log)
    assert waiter.query("ready") is True  # it has the only slot: the sleeper was evicted
    assert engine.residency()["evictions"] == 1
    assert sleeper.result(timeout=30) == "woke"  # the timer brought it back (evicting the parked waiter)
    waiter.signal("go", 1)
    assert waiter.result(timeout=30) == 1


@pytest.mark.timeout(60)
def test_a_parent_waiting_on_its_child_makes_room_for_it(engine_with: EngineFactory, log: str) -> None:
    engine = engine_with(1)
    parent = engine.start_workflow(lifecycle_flows.parent, log, "echo")
    assert parent.result(timeout=30) == {"echo": 42}
    assert engine.residency()["evictions"] >= 1


@pytest.mark.timeout(90)
def test_queued_and_evicted_runs_survive_an_engine_restart(engine_with: EngineFactory, log: str) -> None:
    engine = engine_with(1)
    handles = [engine.start_workflow(rf.parked_waiter, log, workflow_id=f"w-{index}") for index in range(4)]
    assert engine.residency()["resident"] == 1  # the others wait for the slot or were evicted
    engine.stop()
    engine = engine_with(1)
    for index, handle in enumerate(handles):
        engine.get_workflow(handle.workflow_id).signal("go", index)
    assert [engine.get_workflow(h.workflow_id).result(timeout=30) for h in handles] == list(range(4))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "8"])
def test_max_resident_must_be_a_positive_int(tmp_path: Path, bad: object) -> None:
    with pytest.raises(aion.InvalidArgumentError, match="max_resident"):
        aion.Engine(tmp_path / "data", workflows=[flows.waits_for_signals], max_resident=bad)  # type: ignore[arg-type]


@pytest.mark.timeout(90)
def test_a_parked_run_idle_long_enough_gives_up_its_process_with_slots_to_spare(tmp_path: Path, log: str) -> None:
    with idle_evicting(tmp_path) as engine:
        handle = engine.start_workflow(rf.parked_waiter, log, workflow_id="idle")
        assert handle.query("ready") is True
        pid = wait_until(lambda: engine.workflow_pid("idle"))
        # Far below max_resident (64), and nothing else wants a slot: idleness alone gives the process up.
        wait_until(lambda: engine.residency()["resident"] == 0 and engine.workflow_pid("idle") is None)
        assert engine.residency()["evictions"] == 1
        assert engine.workflow_pid("idle") != pid
        handle.signal("go", 7)
        assert handle.result(timeout=30) == 7  # replayed in a new process, nothing lost


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "60", True])
def test_evict_idle_after_must_be_positive_seconds_or_none(tmp_path: Path, bad: object) -> None:
    with pytest.raises(aion.InvalidArgumentError, match="evict_idle_after"):
        aion.Engine(tmp_path / "data", workflows=[flows.waits_for_signals], evict_idle_after=bad)  # type: ignore[arg-type]


@pytest.mark.timeout(90)
def test_a_run_evicted_before_it_continues_as_new_carries_its_start_over(tmp_path: Path, log: str) -> None:
    # An evicted run keeps only its version, parent and start time of its WorkflowStarted: continue-as-new
    # reads the rest back from the store.
    with idle_evicting(tmp_path, search_attributes={"Customer": "keyword", "Stage": "keyword"}) as engine:
        handle = engine.start_workflow(
            rf.continues_when_signalled,
            log,
            0,
            workflow_id="chain",
            search_attributes={"Customer": "c-1"},
            memo={"note": "kept"},
            execution_timeout=3600,
        )
        assert handle.query("ready") is True
        wait_until(lambda: engine.residency()["evictions"] == 1)
        handle.signal("go", 2)
        assert handle.result(timeout=30) == 2
        first, second = [e for e in engine.store.read_history("chain") if isinstance(e, ev.WorkflowStarted)]
        assert second.parent_run_id == first.run_id and second.first_run_id == first.run_id
        assert second.search_attributes == {"Customer": "c-1", "Stage": "first"}
        assert second.memo == {"note": "kept"}
        assert second.execution_deadline == first.execution_deadline is not None


@pytest.mark.timeout(90)
def test_an_evicted_child_still_reports_to_its_parent(tmp_path: Path, log: str) -> None:
    with idle_evicting(tmp_path) as engine:
        parent = engine.start_workflow(rf.parent_of_waiter, log, workflow_id="parent")
        wait_until(lambda: engine.store.get_run("parent-child") is not None)
        child = engine.get_workflow("parent-child")
        assert child.query("ready") is True
        wait_until(lambda: engine.residency()["evictions"] >= 2)  # the parent and its child gave processes up
        child.signal("go", 5)
        assert parent.result(timeout=30) == 5
