"""A child workflow started with search attributes and a memo: checked against the declared attributes like a
start, recorded (normalised) on the parent's ``ChildWorkflowStarted`` and on the child's ``WorkflowStarted``,
indexed; a refused attribute fails the child without starting it."""

from __future__ import annotations

from pathlib import Path

import pytest

import aion
from aion import events as ev
from tests.visibility import flows


def _engine(data: Path) -> aion.Engine:
    return aion.Engine(
        data, workflows=[flows.parent_of, flows.leaf], activity_workers=1, search_attributes=flows.SCHEMA
    )


@pytest.mark.timeout(60)
def test_a_child_gets_checked_search_attributes_and_a_memo(tmp_path: Path) -> None:
    with _engine(tmp_path / "data") as e:
        attributes = {"CustomerId": "c-9", "Amount": 5, "DueAt": "2030-01-01T00:00:00+02:00"}
        parent = e.start_workflow(flows.parent_of, attributes, {"from": "parent"}, workflow_id="p-1")
        assert parent.result(timeout=30) == "ok"
        child = e.store.get_run("p-1-child")
        assert child is not None and child.memo == {"from": "parent"}
        assert child.search_attributes["CustomerId"] == "c-9"
        assert child.search_attributes["Amount"] == 5.0 and isinstance(child.search_attributes["Amount"], float)
        assert child.search_attributes["DueAt"].isoformat() == "2029-12-31T22:00:00+00:00"
        found = e.list_workflows("CustomerId = 'c-9' AND Amount = 5")
        assert [info.workflow_id for info in found.workflows] == ["p-1-child"]
        recorded = next(event for event in parent.history() if isinstance(event, ev.ChildWorkflowStarted))
        assert recorded.options["search_attributes"] == child.search_attributes
        assert recorded.options["memo"] == {"from": "parent"}
        started = e.store.read_run("p-1-child", child.run_id)[0]
        assert isinstance(started, ev.WorkflowStarted) and started.memo == {"from": "parent"}


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("attributes", "named"),
    [
        ({"Amount": "lots"}, "'Amount' (float)"),
        ({"Priority": True}, "'Priority' (int)"),
        ({"Nope": 1}, "'Nope' is not declared"),
        ({"WorkflowType": "x"}, "'WorkflowType' is built in"),
    ],
)
def test_a_refused_child_attribute_fails_the_child_without_starting_it(
    tmp_path: Path, attributes: dict[str, object], named: str
) -> None:
    with _engine(tmp_path / "data") as e:
        parent = e.start_workflow(flows.parent_of, attributes, None, workflow_id="p-bad")
        outcome = parent.result(timeout=30)
        assert outcome.startswith("InvalidArgumentError: ") and named in outcome
        assert e.store.get_run("p-bad-child") is None
        types = [event.type for event in parent.history()]
        assert types.count("ChildWorkflowStarted") == 1 and types.count("ChildWorkflowFailed") == 1
        recorded = next(event for event in parent.history() if isinstance(event, ev.ChildWorkflowStarted))
        assert "search_attributes" not in recorded.options
