"""Workflows the schedule tests start."""

from __future__ import annotations

from aion import workflow


@workflow.defn
async def quick(n: int) -> int:
    """Returns at once."""
    return n


@workflow.defn
async def blocks() -> str:
    """Waits for the signal ``go`` (or cancellation)."""
    return str(await workflow.wait_signal("go"))


@workflow.defn
async def fails() -> None:
    """Fails at once."""
    raise RuntimeError("boom")


ALL = [quick, blocks, fails]
