"""The workflow process's side of a signal's way to ``result()``: the commands' wire form, the warm-up of the live
path and the process's exit after its closing command."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import psutil
import pytest

import aion
from aion import events as ev
from aion.engine import _protocol as protocol
from aion.engine._workflow_host import warm_up
from aion.workflow import _commands as commands
from tests.engine import flows
from tests.helpers import wait_until


@pytest.mark.timeout(10)
def test_every_command_travels_as_plain_msgpack_and_comes_back_equal() -> None:
    sent: list[commands.Command] = [
        commands.ScheduleActivity(1, "charge", [1, (2, 3)], {"start_to_close_timeout": 5.0}),
        commands.RequestCancelActivity(1),
        commands.StartTimer(2, 1.5),
        commands.CancelTimer(2),
        commands.StartChild(1, "w/child-1", "kid", [{"a": 1}], "terminate", {}),
        commands.RequestCancelChild(1),
        commands.SignalExternal(1, "other", "ping", ("tuple", None)),
        commands.CompleteWorkflow({"total": (1, 2)}),
        commands.FailWorkflow(ev.Failure("ValueError", "bad", details=[1])),
        commands.CancelWorkflow("asked"),
        commands.ContinueAsNew([3], "other-type"),
    ]
    message = protocol.commands_message(sent)
    framed = msgpack.unpackb(msgpack.packb(message, use_bin_type=True), raw=False)  # as the channel carries it
    assert protocol.decode_commands(framed) == sent
    assert {name for name, _ in framed["commands"]} == {type(command).__name__ for command in sent}


@pytest.mark.timeout(10)
def test_the_warm_up_runs_a_workflow_through_a_signal_to_its_completion() -> None:
    issued: list[list[commands.Command]] = []
    original = protocol.commands_message

    def spy(batch: Any) -> dict[str, Any]:
        issued.append(list(batch))
        return original(batch)

    protocol.commands_message = spy  # type: ignore[assignment]
    try:
        warm_up()
    finally:
        protocol.commands_message = original  # type: ignore[assignment]
    assert issued == [[commands.StartTimer(1, 1.0)], [commands.CompleteWorkflow(2)]]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[aion.Engine]:
    with aion.Engine(tmp_path / "data", workflows=flows.ALL_WORKFLOWS, activities=flows.ALL_ACTIVITIES) as running:
        yield running


@pytest.mark.timeout(60)
def test_a_completed_workflow_process_leaves_the_tree_and_hosts_the_next_run(engine: aion.Engine, log: str) -> None:
    handle = engine.start_workflow(flows.waits_for_signals, log, 1)
    pid = wait_until(lambda: engine.workflow_pid(handle.workflow_id))
    handle.signal("item", "x")
    assert handle.result(timeout=30) == ["x"]
    wait_until(lambda: engine.workflow_pid(handle.workflow_id) is None)
    assert psutil.pid_exists(pid)  # kept idle by the zygote: recycled, not ended
    following = engine.start_workflow(flows.waits_for_signals, log, 1)
    assert wait_until(lambda: engine.workflow_pid(following.workflow_id)) == pid
    following.signal("item", "y")
    assert following.result(timeout=30) == ["y"]
