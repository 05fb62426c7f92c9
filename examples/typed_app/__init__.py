"""A small typed application: mypy checks its calls into aion against the workflows' and activities' types.

``tests/test_typing.py`` runs mypy on it (it must pass) and on a copy with a wrong argument (it must fail).
"""

from __future__ import annotations

from datetime import timedelta

import aion
from aion import activity, workflow


@activity.defn
def price(sku: str, quantity: int) -> float:
    """The price of ``quantity`` items of ``sku``."""
    return 2.5 * quantity


@workflow.defn
async def square(value: int) -> int:
    """The square of ``value``."""
    return value * value


@workflow.defn
async def order(sku: str, quantity: int) -> str:
    """Prices an order with an activity and squares the quantity in a child workflow."""
    total: float = await workflow.execute_activity(price, sku, quantity, start_to_close_timeout=timedelta(seconds=5))
    squared: int = await workflow.execute_child(square, quantity)
    return f"{sku}: {total:.2f} ({squared})"


def main(engine: aion.Engine) -> tuple[int, str]:
    """Runs both workflows; the results are typed."""
    handle: aion.WorkflowHandle[int] = engine.start_workflow(square, 7)
    squared: int = handle.result(timeout=30)
    text: str = engine.execute_workflow(order, "apple", 3, timeout=30)
    return squared, text
