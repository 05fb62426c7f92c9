"""Tests of the checkout workflow (examples/checkout.py) with aion's testing kit.

Run them with ``pytest examples/test_checkout.py``: the fixtures ``aion_env``, ``aion_activity_env`` and
``aion_replayer`` come with aion's pytest plugin. The hour-long approval wait takes no real time: the
environment's clock skips ahead whenever the workflow waits only on time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

import aion
from aion import activity
from aion.testing import ActivityEnvironment, Replayer, WorkflowEnvironment
from examples.checkout import charge, checkout, ship

ORDER = {"id": 7, "items": ["book", "lamp"]}


@activity.defn
def fake_charge(order: dict[str, Any]) -> dict[str, Any]:
    """Stands in for the payment call."""
    return {"payment": f"test-{order['id']}"}


@pytest.fixture
def env(aion_env: Callable[..., WorkflowEnvironment]) -> WorkflowEnvironment:
    return aion_env(workflows=[checkout], activities={charge: fake_charge, ship: ship})


@pytest.mark.timeout(60)
def test_an_approved_order_is_charged_and_shipped(env: WorkflowEnvironment) -> None:
    handle = env.start_workflow(checkout, ORDER, workflow_id="order-7")
    handle.signal("approve", "alice")
    result = handle.result(timeout=30)
    assert result["receipt"] == {"payment": "test-7"}
    assert result["approved_by"] == "alice"
    assert result["shipped"] == ["parcel 1 of order 7 shipped", "parcel 2 of order 7 shipped"]


@pytest.mark.timeout(60)
def test_an_order_nobody_approves_fails_after_an_hour(env: WorkflowEnvironment) -> None:
    started = env.now()
    handle = env.start_workflow(checkout, ORDER)
    with pytest.raises(aion.WorkflowFailedError, match="TimeoutError"):
        handle.result(timeout=30)
    assert env.now() - started >= timedelta(hours=1)


@pytest.mark.timeout(60)
def test_the_stage_query_follows_the_order(env: WorkflowEnvironment) -> None:
    with env.auto_time_skipping_disabled():
        handle = env.start_workflow(checkout, ORDER)
        env.sleep(timedelta(minutes=1))  # the charge has run; now it waits for the approval
        assert handle.query("stage") == "waiting for approval"


@pytest.mark.timeout(30)
def test_the_charge_activity_uses_its_idempotency_key(aion_activity_env: ActivityEnvironment) -> None:
    receipt = aion_activity_env.run(charge, ORDER)
    assert receipt["idempotency_key"] == "test-workflow/1"


@pytest.mark.timeout(60)
def test_the_current_code_replays_a_recorded_order(
    env: WorkflowEnvironment, aion_replayer: Callable[..., Replayer]
) -> None:
    handle = env.start_workflow(checkout, ORDER)
    handle.signal("approve", "alice")
    handle.result(timeout=30)
    aion_replayer(workflows=[checkout]).replay(handle.history())
