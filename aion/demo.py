"""A self-contained demo: a checkout workflow survives the SIGKILL of its process.

Run it with ``python -m aion.demo`` (or ``aion demo``). It works in a temporary data directory and shows, step by
step, the workflow waiting on an activity, its process killed, the supervisor restarting it, the replay resuming
at the same ``await`` and the workflow completing with every activity run exactly once.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import aion
from aion import activity, workflow
from aion._tree import walk
from aion.clock import SYSTEM_CLOCK

console = Console(highlight=False)


@activity.defn
def reserve_stock(order: dict[str, Any]) -> str:
    """Reserve the order's items (the demo's first side effect)."""
    _note(order, "reserve_stock")
    return f"reservation-{order['id']}"


@activity.defn
def charge_card(order: dict[str, Any]) -> str:
    """Charge the customer; waits for the demo's go-ahead file so the crash lands while it runs."""
    _note(order, "charge_card")
    gate = Path(order["gate"])
    deadline = SYSTEM_CLOCK.monotonic() + 30
    while not gate.exists() and SYSTEM_CLOCK.monotonic() < deadline:
        time.sleep(0.01)
    return f"payment-{order['id']}"


@activity.defn
def send_receipt(order: dict[str, Any], payment: str) -> str:
    """Email the receipt."""
    _note(order, "send_receipt")
    return f"receipt for {payment} sent"


def _note(order: dict[str, Any], name: str) -> None:
    with open(order["log"], "a") as log:
        log.write(name + "\n")


@workflow.defn
async def checkout(order: dict[str, Any]) -> dict[str, Any]:
    """Reserve, charge, wait a moment, send the receipt."""
    stage = "reserving"
    workflow.set_query_handler("stage", lambda: stage)
    reservation = await workflow.execute_activity(reserve_stock, order, start_to_close_timeout=timedelta(seconds=30))
    stage = "charging"
    payment = await workflow.execute_activity(charge_card, order, start_to_close_timeout=timedelta(seconds=30))
    stage = "cooling off"
    await workflow.sleep(0.5)
    stage = "sending receipt"
    receipt = await workflow.execute_activity(
        send_receipt, order, payment, start_to_close_timeout=timedelta(seconds=30)
    )
    stage = "done"
    return {"reservation": reservation, "payment": payment, "receipt": receipt}


def _wait_for(condition: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = SYSTEM_CLOCK.monotonic() + timeout
    while SYSTEM_CLOCK.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise TimeoutError(f"demo: {what} did not happen within {timeout:g} s")


def _show_tree(engine: aion.Engine) -> None:
    table = Table(title="supervision tree", show_lines=False)
    for column in ("node", "pid", "restarts", "workflow"):
        table.add_column(column)
    for depth, node in walk(engine.supervision_tree()):
        meta = node.get("meta") or {}
        table.add_row(
            "  " * depth + str(node.get("id")),
            str(node.get("pid") or ""),
            str(node.get("restarts") or 0),
            str(meta.get("workflow_id") or ""),
        )
    console.print(table)


def _show_history(handle: aion.WorkflowHandle[Any]) -> None:
    table = Table(title=f"history of {handle.workflow_id}")
    for column in ("seq", "event", "detail"):
        table.add_column(column)
    for event in handle.history():
        detail = getattr(event, "activity_type", None) or getattr(event, "activity_id", "") or ""
        table.add_row(str(event.seq), event.type, str(detail))
    console.print(table)


def main() -> None:
    """Run the demo in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="aion-demo-") as tmp:
        data, log, gate = Path(tmp, "data"), Path(tmp, "activities.log"), Path(tmp, "go")
        order = {"id": 42, "log": str(log), "gate": str(gate)}
        console.print(f"[bold]aion demo[/bold]: data directory {data}")
        with aion.Engine(data, workflows=[checkout], activities=[reserve_stock, charge_card, send_receipt]) as engine:
            handle = engine.start_workflow(checkout, order, workflow_id="order-42")
            console.print(f"started workflow [cyan]{handle.workflow_id}[/cyan] (run {handle.run_id})")
            _wait_for(lambda: handle.query("stage") == "charging", "the charge")
            pid = _wait_for(lambda: engine.workflow_pid("order-42"), "the workflow process")
            console.print(f"the workflow waits on charge_card; killing its process {pid} with SIGKILL")
            os.kill(pid, signal.SIGKILL)
            new_pid = _wait_for(lambda: engine.workflow_pid("order-42") not in (None, pid), "the restart")
            console.print(f"its supervisor restarted it (new pid {engine.workflow_pid('order-42') or new_pid})")
            _show_tree(engine)
            gate.touch()
            result = handle.result(timeout=30)
            console.print(f"[green]completed[/green]: {result}")
            _show_history(handle)
        runs = log.read_text().splitlines()
        console.print(f"activity executions: {runs} (each exactly once)")


if __name__ == "__main__":
    main()
