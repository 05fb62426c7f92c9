"""A workflow whose activities go to task queues of their own (``aion serve --task-queue`` declares them)."""

from __future__ import annotations

import os

from aion import activity, workflow


@activity.defn(task_queue="mail")
def send_mail(to: str) -> str:
    """Pretend to send a mail to ``to``; says which worker process did."""
    return f"mailed {to} from {os.getpid()}"


@activity.defn
def crunch(n: int) -> int:
    """A sum, run on the ``cpu`` queue by the workflow's call."""
    return sum(range(n))


@workflow.defn
async def mailer(to: str) -> list[str | int]:
    """Send a mail on the ``mail`` queue, then crunch on the ``cpu`` queue."""
    sent = await workflow.execute_activity(send_mail, to, start_to_close_timeout=30)
    total = await workflow.execute_activity(crunch, 10, task_queue="cpu", start_to_close_timeout=30)
    return [sent, total]
