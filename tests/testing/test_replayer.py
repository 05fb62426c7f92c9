"""``aion.testing.Replayer``: recorded histories replayed against workflow code, without an engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import aion
from aion import events as ev
from aion.testing import Replayer, WorkflowEnvironment, history_from_json
from tests.testing import kit_flows as flows


@pytest.fixture(scope="module")
def recorded() -> list[ev.Event]:
    """A closed history of the v1 greeter, recorded by a real engine."""
    with WorkflowEnvironment(workflows=[flows.greeter_v1], activities=[flows.greet]) as env:
        handle = env.start_workflow("greeter", "ada")
        assert handle.result(timeout=30) == "hello ada"
        return handle.history()


@pytest.mark.timeout(60)
def test_the_code_that_recorded_a_history_replays_it(recorded: list[ev.Event]) -> None:
    Replayer(workflows=[flows.greeter_v1], activities=[flows.greet]).replay(recorded)


@pytest.mark.timeout(60)
def test_changed_code_fails_with_the_seq_where_it_diverged(recorded: list[ev.Event]) -> None:
    with pytest.raises(aion.NonDeterminismError) as caught:
        Replayer(workflows=[flows.greeter_v2], activities=[flows.greet, flows.shout]).replay(recorded)
    scheduled = next(e for e in recorded if isinstance(e, ev.ActivityScheduled))
    assert caught.value.seq == scheduled.seq
    assert "greet" in caught.value.expected


@pytest.mark.timeout(60)
def test_a_history_exported_by_the_cli_replays(recorded: list[ev.Event], tmp_path: Path) -> None:
    from aion.control._views import event_view

    exported = tmp_path / "history.json"
    exported.write_text(json.dumps({"events": [event_view(e) for e in recorded]}))
    replayer = Replayer(workflows=[flows.greeter_v1], activities=[flows.greet])
    replayer.replay_file(exported)
    assert history_from_json(json.loads(exported.read_text())) == recorded
    changed = Replayer(workflows=[flows.greeter_v2], activities=[flows.greet, flows.shout])
    assert [error.seq for error in changed.check([recorded, recorded])] == [2, 2]


@pytest.mark.timeout(60)
def test_a_history_of_an_unknown_type_or_a_malformed_file_is_a_typed_error(tmp_path: Path) -> None:
    with WorkflowEnvironment(workflows=[flows.greeter_v1], activities=[flows.greet]) as env:
        history = env.start_workflow("greeter", "x").history()
    with pytest.raises(aion.errors.UnknownWorkflowTypeError):
        Replayer(workflows=[flows.waits_forever]).replay(history)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(aion.InvalidArgumentError, match="cannot read a history"):
        Replayer(workflows=[flows.greeter_v1]).replay_file(bad)
    with pytest.raises(aion.InvalidArgumentError, match="unknown type"):
        history_from_json([{"type": "NoSuchEvent"}])
    with pytest.raises(aion.InvalidArgumentError, match="WorkflowStarted"):
        Replayer(workflows=[flows.greeter_v1]).replay([])


@pytest.mark.timeout(60)
def test_a_run_that_the_code_would_now_close_differently_diverges(recorded: list[ev.Event]) -> None:
    @aion.workflow.defn(name="greeter")
    async def greeter_fails(name: str) -> str:
        first = await aion.workflow.execute_activity(flows.greet, name, start_to_close_timeout=10)
        await aion.workflow.sleep(60)
        raise RuntimeError(first)

    with pytest.raises(aion.NonDeterminismError, match="WorkflowCompleted"):
        Replayer(workflows=[greeter_fails], activities=[flows.greet]).replay(recorded)
