"""Workflows and activities of the API tests (start policies, updates, payloads)."""

from __future__ import annotations

from typing import Any

from aion import workflow


@workflow.defn
async def waits(name: str) -> str:
    """Waits for signal ``go`` and returns ``name`` and the signal's payload."""
    value = await workflow.wait_signal("go")
    return f"{name}:{value}"


@workflow.defn
async def quick(value: Any) -> Any:
    """Returns its input."""
    return value


@workflow.defn
async def fails_now(message: str) -> None:
    """Fails at once."""
    raise RuntimeError(message)


ALL_WORKFLOWS = [waits, quick, fails_now]
