"""The query language against a brute-force filter of the same runs, on both stores (a hypothesis property test),
and the parser's errors naming positions."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aion import events as ev
from aion.errors import InvalidArgumentError
from aion.store import EventStore, MemoryEventStore, open_store
from aion.visibility import SearchAttributeSchema, count_workflows, list_workflows, run_attributes

SCHEMA = {
    "CustomerId": "keyword",
    "Amount": "float",
    "Priority": "int",
    "Approved": "bool",
    "DueAt": "datetime",
    "Tags": "keyword_list",
    "Note": "text",
}
BASE = datetime(2030, 1, 1, tzinfo=UTC)
CUSTOMERS = ["c-1", "c-2", "c-10", "d-1"]


def build(store: EventStore, runs: list[dict[str, Any]]) -> None:
    store.set_search_attribute_schema(SCHEMA)
    for index, attributes in enumerate(runs):
        wf = f"wf-{index:03d}"
        started = ev.WorkflowStarted(
            workflow_id=wf,
            workflow_type="t" if index % 2 else "u",
            input=[],
            run_id=f"00000000-0000-4000-8000-{index:012d}",
            search_attributes=attributes,
        )
        store.append(wf, [started], 0)
        if index % 5 == 0:
            upsert = ev.SearchAttributesUpserted(
                workflow_id=wf, attributes={"Priority": None, "Note": "up"}, upsert_id=1
            )
            store.append(wf, [upsert], store.head(wf))
        if index % 3 == 0:
            store.append(wf, [ev.WorkflowCompleted(workflow_id=wf)], store.head(wf))


attributes_strategy = st.fixed_dictionaries(
    {},
    optional={
        "CustomerId": st.sampled_from(CUSTOMERS),
        "Amount": st.sampled_from([-2.5, 0.0, 1.0, 7.25, 100.0]),
        "Priority": st.integers(-3, 3),
        "Approved": st.booleans(),
        "DueAt": st.integers(0, 4).map(lambda d: BASE + timedelta(days=d)),
        "Tags": st.lists(st.sampled_from(["a", "b", "ab"]), max_size=3),
        "Note": st.sampled_from(["hello", "help", "x"]),
    },
)


def literal(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'"
    if isinstance(value, str):
        return f"'{value}'"
    return repr(value)


VALUES = {
    "CustomerId": CUSTOMERS,
    "Amount": [-2.5, 0.0, 1.0, 7.25],
    "Priority": [-1, 0, 2],
    "Approved": [True, False],
    "DueAt": [BASE + timedelta(days=d) for d in range(4)],
    "Tags": ["a", "ab"],
    "Note": ["hello", "x"],
    "WorkflowType": ["t", "u"],
    "Status": ["running", "completed"],
}
ORDERED = ["CustomerId", "Amount", "Priority", "DueAt", "WorkflowType", "Status"]


@st.composite
def predicates(draw: st.DrawFn, depth: int = 0) -> tuple[str, Any]:
    """A query predicate and its brute-force meaning (a function of a run's attributes)."""
    if depth < 2 and draw(st.booleans()):
        left, right = draw(predicates(depth + 1)), draw(predicates(depth + 1))
        op = draw(st.sampled_from(["AND", "OR"]))
        fn = (
            (lambda a, lf=left[1], rf=right[1]: lf(a) and rf(a))
            if op == "AND"
            else (lambda a, lf=left[1], rf=right[1]: lf(a) or rf(a))
        )
        text = f"({left[0]} {op} {right[0]})"
        if draw(st.booleans()):
            return f"NOT {text}", lambda a, f=fn: not f(a)
        return text, fn
    name = draw(st.sampled_from(sorted(VALUES)))
    value = draw(st.sampled_from(VALUES[name]))
    lit = literal(name, value)

    def present(a: dict[str, Any]) -> bool:
        return a.get(name) not in (None, [])

    if name == "Tags":
        form = draw(st.sampled_from(["=", "!=", "IN", "STARTS_WITH", "NULL", "NOTNULL"]))
        if form == "=":
            return f"Tags = {lit}", lambda a: present(a) and value in a["Tags"]
        if form == "!=":
            return f"Tags != {lit}", lambda a: present(a) and value not in a["Tags"]
        if form == "IN":
            return f"Tags IN ({lit}, 'zz')", lambda a: present(a) and value in a["Tags"]
        if form == "STARTS_WITH":
            return f"Tags STARTS_WITH {lit}", lambda a: present(a) and any(t.startswith(value) for t in a["Tags"])
        if form == "NULL":
            return "Tags IS NULL", lambda a: not present(a)
        return "Tags IS NOT NULL", present
    ops = ["=", "!=", "IN", "NOT IN", "NULL", "NOTNULL"]
    if name in ORDERED or name == "Amount":
        ops += ["<", "<=", ">", ">=", "BETWEEN", "NOT BETWEEN"]
    if isinstance(value, str) and not isinstance(value, bool) and name != "Status":
        ops.append("STARTS_WITH")
    form = draw(st.sampled_from(ops))
    cmp = {
        "=": lambda x: x == value,
        "!=": lambda x: x != value,
        "<": lambda x: x < value,
        "<=": lambda x: x <= value,
        ">": lambda x: x > value,
        ">=": lambda x: x >= value,
    }
    if form in cmp:
        return f"{name} {form} {lit}", lambda a, c=cmp[form]: present(a) and c(a[name])
    if form in ("IN", "NOT IN"):
        other = draw(st.sampled_from(VALUES[name]))
        neg = form == "NOT IN"
        return (
            f"{name} {form} ({lit}, {literal(name, other)})",
            lambda a: present(a) and ((a[name] in (value, other)) != neg),
        )
    if form in ("BETWEEN", "NOT BETWEEN"):
        high = draw(st.sampled_from(VALUES[name]))
        neg = form != "BETWEEN"
        return (
            f"{name} {form} {lit} AND {literal(name, high)}",
            lambda a: present(a) and ((value <= a[name] <= high) != neg),
        )
    if form == "STARTS_WITH":
        prefix = value[:2]
        return f"{name} STARTS_WITH '{prefix}'", lambda a: present(a) and a[name].startswith(prefix)
    if form == "NULL":
        return f"{name} IS NULL", lambda a: not present(a)
    return f"{name} IS NOT NULL", present


def sort_rows(rows: list[dict[str, Any]], name: str, descending: bool) -> list[str]:
    with_value = [r for r in rows if r.get(name) is not None]
    without = [r for r in rows if r.get(name) is None]
    with_value.sort(key=lambda r: (r[name], r["WorkflowId"]))
    without.sort(key=lambda r: r["WorkflowId"])
    ordered = without + with_value  # null sorts first
    if descending:
        ordered.reverse()
    return [r["WorkflowId"] for r in ordered]


_STORES: dict[str, EventStore] = {}


@pytest.mark.timeout(300)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    runs=st.lists(attributes_strategy, min_size=0, max_size=25),
    where=predicates(),
    order=st.sampled_from(ORDERED),
    descending=st.booleans(),
    page_size=st.integers(1, 7),
)
def test_list_and_count_agree_with_a_brute_force_filter(
    runs: list[dict[str, Any]], where: tuple[str, Any], order: str, descending: bool, page_size: int
) -> None:
    schema = SearchAttributeSchema(SCHEMA)
    runs = [schema.check(r) for r in runs]
    with tempfile.TemporaryDirectory() as directory:
        for store in (MemoryEventStore(), open_store(Path(directory) / "data")):
            try:
                build(store, runs)
                rows = []
                with store.visibility() as source:
                    rows = [run_attributes(run) for run in source.runs()]
                expected_rows = [r for r in rows if where[1](r)]
                query = f"{where[0]} ORDER BY {order} {'DESC' if descending else 'ASC'}"
                expected = sort_rows(expected_rows, order, descending)
                got: list[str] = []
                token = None
                while True:
                    page = list_workflows(store, query, page_size=page_size, next_page_token=token)
                    got += [info.workflow_id for info in page.workflows]
                    token = page.next_page_token
                    if token is None:
                        break
                assert got == expected, (type(store).__name__, query)
                counted = count_workflows(store, f"{where[0]} GROUP BY Status")
                assert counted.count == len(expected_rows)
                statuses: dict[str, int] = {}
                for r in expected_rows:
                    statuses[r["Status"]] = statuses.get(r["Status"], 0) + 1
                assert counted.groups == dict(sorted(statuses.items()))
                default = list_workflows(store, where[0], page_size=1000).workflows
                assert [i.workflow_id for i in default] == sort_rows(expected_rows, "StartTime", True)
            finally:
                store.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("query", "position"),
    [
        ("CustomerId = ", 13),
        ("CustomerId = 'a' AND", 20),
        ("(Amount > 1", 11),
        ("Amount > 'x'", 9),
        ("Nope = 1", 0),
        ("CustomerId ~ 'a'", 11),
        ("Priority IN (1, 2", 17),
        ("Priority BETWEEN 1 2", 19),
        ("Tags < 'a'", 0),
        ("Status = 'sleeping'", 9),
        ("CustomerId = 'a' ORDER BY Note", 26),
        ("GROUP BY CustomerId", 9),
    ],
)
def test_a_malformed_query_names_the_position(query: str, position: int) -> None:
    store = MemoryEventStore()
    store.set_search_attribute_schema(SCHEMA)
    with pytest.raises(InvalidArgumentError, match=f"position {position}"):
        list_workflows(store, query)
