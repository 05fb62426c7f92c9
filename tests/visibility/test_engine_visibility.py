"""Search attributes through the engine: checked at start, upserted by workflow code (replayed without duplicates
after the workflow process is SIGKILLed), listed and counted by query, memo shown."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest

import aion
from aion import events as ev
from aion.errors import InvalidArgumentError, WorkflowFailedError
from tests.helpers import wait_until
from tests.visibility import flows


def engine(data: Path) -> aion.Engine:
    return aion.Engine(
        data, workflows=[flows.order, flows.bad_upsert], activity_workers=1, search_attributes=flows.SCHEMA
    )


@pytest.mark.timeout(60)
def test_start_checks_each_type_and_refuses_undeclared_names(tmp_path: Path) -> None:
    with engine(tmp_path / "data") as e:
        good = {
            "CustomerId": "c-7",
            "Amount": 3,
            "Priority": 1,
            "Approved": True,
            "DueAt": "2030-01-01T00:00:00Z",
            "Tags": ["a", "b"],
            "Note": "any text",
        }
        handle = e.start_workflow(flows.order, "c-7", workflow_id="o-1", search_attributes=good, memo={"by": "me"})
        info = e.store.get_run("o-1")
        assert info is not None
        assert info.search_attributes["Amount"] == 3.0
        assert info.search_attributes["DueAt"] == datetime(2030, 1, 1, tzinfo=UTC)
        assert info.memo == {"by": "me"}
        bad = [
            ("CustomerId", 7, "keyword"),
            ("Amount", "x", "float"),
            ("Priority", 1.5, "int"),
            ("Priority", True, "int"),
            ("Approved", "yes", "bool"),
            ("DueAt", "tomorrow", "datetime"),
            ("Tags", "a", "keyword_list"),
            ("Note", 3, "text"),
        ]
        for name, value, kind in bad:
            with pytest.raises(InvalidArgumentError, match=f"{name}.*{kind}"):
                e.start_workflow(flows.order, "x", search_attributes={name: value})
        with pytest.raises(InvalidArgumentError, match="'Colour' is not declared"):
            e.start_workflow(flows.order, "x", search_attributes={"Colour": "red"})
        with pytest.raises(InvalidArgumentError, match="built in"):
            e.start_workflow(flows.order, "x", search_attributes={"Status": "running"})
        handle.signal("approve", "boss")
        assert handle.result(timeout=30) == "boss"


@pytest.mark.timeout(90)
def test_upsert_is_replayed_without_duplicates_after_a_sigkill_of_the_workflow_process(tmp_path: Path) -> None:
    with engine(tmp_path / "data") as e:
        handle = e.start_workflow(flows.order, "c-9", workflow_id="o-9", search_attributes={"CustomerId": "c-9"})
        wait_until(lambda: e.list_workflows("Approved = false AND CustomerId = 'c-9'").workflows, timeout=30)
        pid = wait_until(lambda: e.workflow_pid("o-9"), timeout=30)
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: e.workflow_pid("o-9") not in (None, pid), timeout=30)
        handle.signal("approve", "boss")
        assert handle.result(timeout=30) == "boss"
        upserts = [event for event in handle.history() if isinstance(event, ev.SearchAttributesUpserted)]
        assert [event.upsert_id for event in upserts] == [1, 2]
        page = e.list_workflows("CustomerId = 'c-9' AND Approved = true AND Priority IS NULL AND Tags = 'new'")
        assert [info.workflow_id for info in page.workflows] == ["o-9"]
        assert e.count_workflows("GROUP BY Status").groups == {"completed": 1}


@pytest.mark.timeout(60)
def test_an_upsert_of_a_bad_value_fails_the_run(tmp_path: Path) -> None:
    with engine(tmp_path / "data") as e:
        handle = e.start_workflow(flows.bad_upsert)
        with pytest.raises(WorkflowFailedError, match="Priority"):
            handle.result(timeout=30)
        assert not any(isinstance(event, ev.SearchAttributesUpserted) for event in handle.history())


@pytest.mark.timeout(60)
def test_list_keeps_its_old_filters_and_queries_page(tmp_path: Path) -> None:
    with engine(tmp_path / "data") as e:
        for i in range(5):
            e.start_workflow(flows.order, f"c-{i}", workflow_id=f"o-{i}", search_attributes={"Amount": i})
        assert len(e.list_workflows(status="running", limit=3)) == 3
        first = e.list_workflows("Amount >= 1 ORDER BY Amount", page_size=2)
        assert [info.workflow_id for info in first.workflows] == ["o-1", "o-2"]
        second = e.list_workflows("Amount >= 1 ORDER BY Amount", page_size=2, next_page_token=first.next_page_token)
        assert [info.workflow_id for info in second.workflows] == ["o-3", "o-4"]
        assert second.next_page_token is None
        with pytest.raises(InvalidArgumentError, match="position 8"):
            e.list_workflows("Amount >")


@pytest.mark.timeout(60)
def test_describe_names_the_signal_a_run_waits_on(tmp_path: Path) -> None:
    from aion.control._views import annotate_tree, describe_view

    with engine(tmp_path / "data") as e:
        handle = e.start_workflow(flows.order, "c-1", workflow_id="o-w")
        view = wait_until(lambda: (v := describe_view(e.store, "o-w"))["pending"]["timers"] and v, timeout=30)
        assert view["waiting_on"].startswith("signal 'approve' (timeout: timer #1 at ")
        assert view["pending"]["timers"][0]["waiting_for"] == "signal 'approve'"
        tree = annotate_tree(e.supervision_tree(), e.store)
        assert "signal 'approve'" in str(tree)
        handle.signal("approve", "ok")
        assert handle.result(timeout=30) == "ok"
