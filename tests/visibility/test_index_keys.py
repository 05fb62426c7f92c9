"""The visibility index's key changes: what a run record's rewrite deletes and puts is exactly the difference of
the two records' full key sets, whichever attributes changed and however their values' types moved."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aion.status import WorkflowStatus
from aion.store._types import RunInfo
from aion.visibility._keys import index_key_changes, index_keys

pytestmark = pytest.mark.timeout(60)

_START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

#: Values that compare equal across types (1, 1.0, True), that never equal themselves (NaN), naive and aware
#: datetimes of one wall time, keyword lists and values the index does not hold.
_VALUES = st.one_of(
    st.none(),
    st.sampled_from([0, 1, 1.0, True, False, 0.0, -0.0, math.nan, "a", "ab", "", "x\x00y", 2**64]),
    st.integers(-3, 3),
    st.sampled_from([_START, _START.replace(tzinfo=None), _START.astimezone(timezone(timedelta(hours=2)))]),
    st.lists(st.sampled_from(["a", "b", "c", 1]), max_size=3),
)
_ATTRIBUTES = st.dictionaries(st.sampled_from(["Customer", "Tags", "Amount", "Note"]), _VALUES, max_size=4)


def _run(attributes: dict[str, Any], status: WorkflowStatus, closed: bool, workflow_id: str = "wf") -> RunInfo:
    return RunInfo(
        workflow_id=workflow_id,
        run_id="run-1",
        workflow_type="Order",
        status=status,
        head_seq=7,
        run_first_seq=1,
        start_time=_START,
        close_time=_START + timedelta(seconds=3) if closed else None,
        search_attributes=attributes,
    )


@settings(max_examples=400, deadline=None)
@given(
    before=_ATTRIBUTES,
    after=_ATTRIBUTES,
    statuses=st.tuples(st.sampled_from(list(WorkflowStatus)), st.sampled_from(list(WorkflowStatus))),
    closed=st.tuples(st.booleans(), st.booleans()),
    unindexed=st.sampled_from([(), ("Note",), ("Note", "Tags")]),
)
def test_the_key_changes_are_the_difference_of_the_full_key_sets(
    before: dict[str, Any],
    after: dict[str, Any],
    statuses: tuple[WorkflowStatus, WorkflowStatus],
    closed: tuple[bool, bool],
    unindexed: tuple[str, ...],
) -> None:
    old = _run(before, statuses[0], closed[0])
    new = _run(after, statuses[1], closed[1])
    removed, added = index_key_changes(old, new, unindexed)
    assert removed == index_keys(old, unindexed) - index_keys(new, unindexed)
    assert added == index_keys(new, unindexed) - index_keys(old, unindexed)


def test_a_first_record_puts_every_key_and_deletes_none() -> None:
    new = _run({"Customer": "c-1"}, WorkflowStatus.RUNNING, closed=False)
    assert index_key_changes(None, new) == (set(), index_keys(new))
    assert any(key.startswith(b"Customer\x00") for key in index_keys(new))


def test_a_new_head_alone_changes_no_key() -> None:
    old = _run({"Customer": "c-1", "Tags": ["a", "b"]}, WorkflowStatus.RUNNING, closed=False)
    assert index_key_changes(old, old) == (set(), set())


def test_a_value_that_changes_type_but_not_equality_moves_its_key() -> None:
    removed, added = index_key_changes(
        _run({"Amount": 1}, WorkflowStatus.RUNNING, closed=False),
        _run({"Amount": True}, WorkflowStatus.RUNNING, closed=False),
    )
    assert [key[:8] for key in removed] == [b"Amount\x00i"]
    assert [key[:8] for key in added] == [b"Amount\x00b"]


def test_keys_move_with_the_workflow_id() -> None:
    old = _run({"Customer": "c-1"}, WorkflowStatus.RUNNING, closed=False, workflow_id="a")
    new = _run({"Customer": "c-1"}, WorkflowStatus.RUNNING, closed=False, workflow_id="b")
    assert index_key_changes(old, new) == (index_keys(old), index_keys(new))
