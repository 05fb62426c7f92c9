"""Workflows and activities ``aion serve --ui --module tests.ui.flows`` runs for the UI and HTTP API tests."""

from __future__ import annotations

from typing import Any

from aion import RetryPolicy, activity, workflow


@activity.defn
def shout(text: str) -> str:
    """Upper-case ``text``."""
    return text.upper()


@activity.defn
def always_fails(text: str) -> str:
    """Fail every attempt (the run shows it pending, with its attempt and last failure)."""
    raise ValueError(f"no luck with {text}")


@workflow.defn
async def greet(name: str) -> str:
    """Complete at once with a greeting made by an activity."""
    loud = await workflow.execute_activity(shout, name, start_to_close_timeout=30)
    return f"hello {loud}"


@workflow.defn
async def waiter() -> Any:
    """Wait for a ``go`` signal and return its payload; query ``state`` says it waits; update ``note`` keeps a
    note (a non-empty string) and answers with every note so far."""
    notes: list[str] = []

    def note(text: str) -> list[str]:
        notes.append(text)
        return list(notes)

    def non_empty(text: str) -> None:
        if not text:
            raise ValueError("a note must not be empty")

    workflow.set_query_handler("state", lambda: "waiting")
    workflow.set_update_handler("note", note, validator=non_empty)
    return await workflow.wait_signal("go")


@workflow.defn
async def raises(message: str) -> None:
    """Fail with ``message``."""
    raise RuntimeError(message)


@workflow.defn
async def retrying() -> str:
    """Retry a failing activity for a long time (pending, with attempts and the last failure)."""
    return await workflow.execute_activity(
        always_fails,
        "x",
        start_to_close_timeout=30,
        retry_policy=RetryPolicy(initial_interval=0.2, backoff_coefficient=1.0, maximum_attempts=1000),
    )
