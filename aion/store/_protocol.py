"""The ``EventStore`` protocol: what every event store implementation offers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from aion.errors import AionError
from aion.events import Event, WorkflowStarted
from aion.status import WorkflowStatus
from aion.store._types import AppendRequest, RunInfo, TimerRow


@runtime_checkable
class EventStore(Protocol):
    """Durable, append-only workflow histories plus the indexes derived from them.

    The store is the sequence authority: ``append`` stamps ``seq`` (gapless from 1 per workflow) and
    ``recorded_at`` (one UTC instant per transaction) on the events and returns the stamped copies. The run
    record, the visibility indexes and the timer rows are derived from the events in the same transaction, so
    they never disagree with history.

    Structural rules the store enforces on every append:

    * every event's ``workflow_id`` equals the append's workflow id (``InvalidArgumentError``);
    * ``expected_head`` equals the current head (``SequenceConflictError``);
    * a workflow's history starts with ``WorkflowStarted`` (``InvalidArgumentError``);
    * a ``WorkflowStarted`` while the current run is running is refused (``WorkflowAlreadyStartedError``);
    * nothing but a ``WorkflowStarted`` may follow a run's terminal event (``WorkflowNotRunningError``), so a
      run has exactly one terminal event;
    * payloads must pass the codec (``PayloadError`` / ``PayloadTooLargeError``).
    """

    def append(self, workflow_id: str, events: Sequence[Event], expected_head: int) -> list[Event]:
        """Append ``events`` after ``expected_head``, durably and all-or-nothing; return them stamped."""
        ...

    def append_batch(self, requests: Sequence[AppendRequest], *, atomic: bool = False) -> list[list[Event] | AionError]:
        """Run several appends in one write transaction (one fsync).

        Each slot of the result holds the stamped events of its request, or the error that refused it while
        the other requests committed. Requests for the same workflow chain in order. With ``atomic=True``
        any refused request aborts the whole batch and its error is raised. A failure of the transaction
        itself (I/O error, full disk) raises ``StoreError`` and nothing is written.
        """
        ...

    def head(self, workflow_id: str) -> int:
        """The workflow's last sequence number, 0 when it has no history."""
        ...

    def read_history(self, workflow_id: str, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        """The workflow's whole history (all runs) after ``after_seq``, at most ``limit`` events."""
        ...

    def read_run(self, workflow_id: str, run_id: str | None = None) -> list[Event]:
        """One run's slice of history (the current run by default); ``WorkflowNotFoundError`` if unknown."""
        ...

    def read_run_encoded(self, workflow_id: str) -> tuple[list[bytes], int]:
        """The current run's events as the event codec's bytes (what ``decode_event`` reads; a payload codec's
        encoding is undone), not decoded, and the sequence number of the last; ``WorkflowNotFoundError`` if
        unknown. A restarting workflow process is sent them as they are."""
        ...

    def get_run(self, workflow_id: str) -> RunInfo | None:
        """The workflow's current run record, or ``None`` when the workflow is unknown."""
        ...

    def current_run_id(self, workflow_id: str) -> str | None:
        """The id of the workflow's current run, or ``None`` when the workflow is unknown: what ``get_run``
        says of it, without building the whole record (``Engine.get_workflow`` asks it)."""
        ...

    def list_workflows(
        self,
        status: WorkflowStatus | str | None = None,
        workflow_type: str | None = None,
        limit: int | None = None,
        newest_first: bool = True,
    ) -> list[RunInfo]:
        """Current runs filtered by status and/or type, ordered by start time (then workflow id)."""
        ...

    def running_workflows(self) -> Iterator[RunInfo]:
        """Every workflow whose current run is running, oldest start first."""
        ...

    def due_timers(self, before: datetime, limit: int | None = None) -> list[TimerRow]:
        """Timer rows due at or before ``before``, in fire order."""
        ...

    def all_timers(self) -> list[TimerRow]:
        """Every timer row, in fire order."""
        ...

    def visibility(self) -> AbstractContextManager[Any]:
        """One read snapshot of the visibility index and the run records (an ``aion.visibility.IndexSource``)."""
        ...

    def search_attribute_schema(self) -> dict[str, str]:
        """The declared search attributes (name -> type) the store was last given (empty if never)."""
        ...

    def set_search_attribute_schema(self, schema: Mapping[str, str]) -> None:
        """Keep the declared search attributes; the index is rebuilt in the same write when they changed."""

    def read_schedule(self, schedule_id: str) -> list[Event]:
        """A schedule's whole history (``[]`` for an unknown schedule): see ``ScheduleAppend``."""
        ...

    def schedule_ids(self) -> list[str]:
        """The id of every schedule with a history, in id order."""
        ...

    def release_cached_pages(self) -> None:
        """Let the OS have back memory this process holds only as a cache of what is stored (an LMDB store's
        mapped pages); nothing stored changes."""
        ...

    def close(self) -> None:
        """Release the store; further calls raise ``StoreError``. Closing twice is harmless."""
        ...


def read_started(store: EventStore, info: RunInfo) -> WorkflowStarted | None:
    """The ``WorkflowStarted`` of the run ``info`` describes, read from ``store`` (its first event: the workflow's
    history holds every run of the id, each beginning at its ``run_first_seq``); ``None`` if it is not there."""
    first = store.read_history(info.workflow_id, after_seq=info.run_first_seq - 1, limit=1)
    return first[0] if first and isinstance(first[0], WorkflowStarted) else None
