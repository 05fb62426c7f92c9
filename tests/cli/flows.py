"""Workflows and activities ``aion serve --module tests.cli.flows`` runs for the CLI tests."""

from __future__ import annotations

from typing import Any

from aion import activity, workflow


@activity.defn
def shout(text: str) -> str:
    """Upper-case ``text``."""
    return text.upper()


@workflow.defn
async def greet(name: str, punctuation: str = "!") -> str:
    """Complete at once with a greeting made by an activity."""
    loud = await workflow.execute_activity(shout, name, start_to_close_timeout=30)
    return f"hello {loud}{punctuation}"


@workflow.defn
async def collector(count: int) -> list[Any]:
    """Wait for ``count`` ``item`` signals and return their payloads; query ``items`` shows them so far."""
    items: list[Any] = []
    workflow.set_query_handler("items", lambda: list(items))
    workflow.set_query_handler("echo", lambda *args: list(args))
    for _ in range(count):
        items.append(await workflow.wait_signal("item"))
    return items


@workflow.defn
async def raises(message: str) -> None:
    """Fail with ``message``."""
    raise RuntimeError(message)
