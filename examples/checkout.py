"""A checkout workflow: charge, wait for approval, pause, ship two parcels in parallel.

Run it with ``python examples/checkout.py``. Run it twice: the second time the engine finds the first run's
history in ``./checkout-data`` and starts a new run of the same workflow id, since the first one closed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aion
from aion import activity, workflow


@activity.defn
def charge(order: dict[str, Any]) -> dict[str, Any]:
    """Charge the card (in real life: a payment API call with an idempotency key)."""
    info = activity.info()
    return {"payment": f"pay-{order['id']}", "idempotency_key": f"{info.workflow_id}/{info.activity_id}"}


@activity.defn
async def ship(order: dict[str, Any], parcel: int) -> str:
    """Hand one parcel to the carrier."""
    return f"parcel {parcel} of order {order['id']} shipped"


@workflow.defn
async def checkout(order: dict[str, Any]) -> dict[str, Any]:
    """Charge, wait for a human's approval (signal), pause, then ship in parallel."""
    stage = "charging"
    workflow.set_query_handler("stage", lambda: stage)
    receipt = await workflow.execute_activity(charge, order, start_to_close_timeout=timedelta(seconds=30))
    stage = "waiting for approval"
    approval = await workflow.wait_signal("approve", timeout=timedelta(hours=1))
    await workflow.sleep(timedelta(seconds=1))
    stage = "shipping"
    shipped = await workflow.gather(
        workflow.execute_activity(ship, order, 1, start_to_close_timeout=30),
        workflow.execute_activity(ship, order, 2, start_to_close_timeout=30),
    )
    stage = "done"
    return {"receipt": receipt, "approved_by": approval, "shipped": shipped, "at": workflow.now().isoformat()}


def main() -> None:
    """Start the workflow, approve it, print the result and the history."""
    with aion.Engine("./checkout-data", workflows=[checkout], activities=[charge, ship]) as engine:
        handle = engine.start_workflow(checkout, {"id": 7, "items": ["book", "lamp"]}, workflow_id="order-7")
        print("started", handle.workflow_id, "run", handle.run_id)
        handle.signal("approve", "alice")
        print("result:", handle.result(timeout=60))
        for event in handle.history():
            print(f"{event.seq:>3} {event.type}")


if __name__ == "__main__":
    main()
