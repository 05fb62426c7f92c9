"""The visibility index after the engine is SIGKILLed in the middle of upserts: it agrees with the run records and
the histories, and a new engine carries on from it; an older store gets its index built when opened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lmdb
import pytest

import aion
from aion import events as ev
from aion.store import open_store
from aion.visibility import SearchAttributeSchema, count_workflows, list_workflows, parse_query, run_attributes
from aion.visibility._eval import matches
from tests.engine.helpers import engine_process
from tests.helpers import wait_until
from tests.visibility import flows

QUERIES = [
    "Priority >= 3",
    "Approved = true",
    "Tags = 't1'",
    "Tags IN ('t0', 't2') AND Priority < 5",
    "CustomerId = 'c-1'",
    "Status = 'running'",
    "Priority IS NOT NULL",
]


def count_upserts(store: Any) -> int:
    return sum(
        isinstance(event, ev.SearchAttributesUpserted)
        for info in store.list_workflows()
        for event in store.read_history(info.workflow_id)
    )


def upserts(data: Path) -> int:
    store = open_store(data, readonly=True)
    try:
        return count_upserts(store)
    finally:
        store.close()


def folded(events: list[ev.Event]) -> dict[str, Any]:
    """A run's search attributes, folded from its history alone."""
    attributes: dict[str, Any] = {}
    for event in events:
        if isinstance(event, ev.WorkflowStarted):
            attributes = dict(event.search_attributes)
        elif isinstance(event, ev.SearchAttributesUpserted):
            for name, value in event.attributes.items():
                if value is None:
                    attributes.pop(name, None)
                else:
                    attributes[name] = value
    return attributes


def check_consistent(data: Path) -> None:
    store = open_store(data, readonly=True)
    try:
        with store.visibility() as source:
            runs = list(source.runs())
        for info in runs:
            assert dict(info.search_attributes) == folded(store.read_run(info.workflow_id)), info.workflow_id
        for query in QUERIES:
            got = sorted(i.workflow_id for i in list_workflows(store, query, page_size=10_000).workflows)
            parsed = parse_query(query, SearchAttributeSchema(flows.SCHEMA))
            expected = sorted(i.workflow_id for i in runs if matches(parsed.where, run_attributes(i)))
            assert got == expected, query
            assert count_workflows(store, query).count == len(expected)
    finally:
        store.close()


@pytest.mark.timeout(120)
def test_the_index_agrees_with_the_histories_after_a_sigkill_mid_upsert(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with engine_process("tests.visibility.churn_engine_proc", data, 6) as kill:
        wait_until(lambda: upserts(data) >= 60, timeout=60)
        kill()
    check_consistent(data)
    before = upserts(data)
    engine = aion.Engine(data, workflows=[flows.churn], activity_workers=1, search_attributes=flows.SCHEMA)
    with engine:
        wait_until(lambda: count_upserts(engine.store) >= before + 30, timeout=60)
        for i in range(6):
            engine.get_workflow(f"churn-{i}").terminate("done")
    check_consistent(data)
    store = open_store(data, readonly=True)
    try:
        for info in store.list_workflows():
            history = store.read_run(info.workflow_id)
            ids = [e.upsert_id for e in history if isinstance(e, ev.SearchAttributesUpserted)]
            assert ids == list(range(1, len(ids) + 1))  # every upsert once, none twice after the replay
    finally:
        store.close()


@pytest.mark.timeout(60)
def test_a_schema_2_store_gets_its_index_built_when_opened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = open_store(data)
    store.set_search_attribute_schema({"CustomerId": "keyword"})
    for i in range(5):
        wf = f"w-{i}"
        started = ev.WorkflowStarted(
            workflow_id=wf, workflow_type="t", input=[], run_id=f"00000000-0000-4000-8000-{i:012d}",
            search_attributes={"CustomerId": f"c-{i % 2}"},
        )  # fmt: skip
        store.append(wf, [started], 0)
    store.close()
    env = lmdb.open(str(data), max_dbs=20)  # make it a schema 2 store: no index, schema_version 2
    with env.begin(write=True) as txn:
        txn.drop(env.open_db(b"vis_attr", txn=txn), delete=True)
        txn.put(b"schema_version", b"2", db=env.open_db(b"meta", txn=txn))
    env.close()

    old = open_store(data, readonly=True)  # a reader of the old store scans
    try:
        assert sorted(i.workflow_id for i in list_workflows(old, "CustomerId = 'c-1'").workflows) == ["w-1", "w-3"]
    finally:
        old.close()
    upgraded = open_store(data)  # the writer builds the index
    try:
        with upgraded.visibility() as source:
            assert source.indexed and list(source.index_keys(b"CustomerId\x00", b"CustomerId\x01"))
        assert sorted(i.workflow_id for i in list_workflows(upgraded, "CustomerId = 'c-1'").workflows) == ["w-1", "w-3"]
    finally:
        upgraded.close()
