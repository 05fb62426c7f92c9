"""Workflows of the visibility tests."""

from __future__ import annotations

from typing import Any

from aion import workflow
from aion.errors import ChildWorkflowError

SCHEMA = {
    "CustomerId": "keyword",
    "Amount": "float",
    "Priority": "int",
    "Approved": "bool",
    "DueAt": "datetime",
    "Tags": "keyword_list",
    "Note": "text",
}


@workflow.defn
async def order(customer: str) -> str:
    """Upserts, waits for approval (timeout: an hour), upserts again."""
    workflow.upsert_search_attributes({"Approved": False, "Priority": 2, "Tags": ["new", customer]})
    by = await workflow.wait_signal("approve", timeout=3600)
    workflow.upsert_search_attributes({"Approved": True, "Priority": None})
    return str(by)


@workflow.defn
async def bad_upsert() -> None:
    """Upserts a value of the wrong type: the engine fails the run."""
    workflow.upsert_search_attributes({"Priority": "high"})
    await workflow.sleep(3600)


@workflow.defn
async def churn(rounds: int) -> int:
    """Upserts ``rounds`` times, a durable timer between upserts."""
    for i in range(rounds):
        workflow.upsert_search_attributes({"Priority": i, "Tags": [f"t{i % 3}"], "Approved": i % 2 == 0})
        await workflow.sleep(0.01)
    return rounds


@workflow.defn
async def approval(customer: str) -> str:
    """Waits for the ``approve`` signal with no timeout (nothing in history names the wait)."""
    by = await workflow.wait_signal("approve")
    return f"{customer} approved by {by}"


@workflow.defn
async def several(count: int) -> int:
    """Waits at once on signals ``a`` and ``b`` and on a condition over ``count``, none with a timeout."""
    seen: list[int] = []

    async def take(name: str) -> None:
        seen.append(await workflow.wait_signal(name))

    await workflow.gather(take("a"), take("b"), workflow.wait_condition(lambda: len(seen) >= count))
    return sum(seen)


@workflow.defn
async def leaf(value: int) -> int:
    """A child that returns its input."""
    return value


@workflow.defn
async def parent_of(attributes: dict[str, Any], memo: Any) -> str:
    """Runs ``leaf`` as a child with ``attributes`` and ``memo``; returns ``ok`` or the child error's type and
    message."""
    try:
        await workflow.execute_child(
            leaf, 1, workflow_id=f"{workflow.info().workflow_id}-child", search_attributes=attributes, memo=memo
        )
    except ChildWorkflowError as error:
        return f"{error.type}: {error}"
    return "ok"
