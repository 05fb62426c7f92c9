"""The seams of the engine core: what its collaborators may ask of it, and how it starts processes.

The core's collaborators (``_lifecycle``, ``_commands``, ``_relations``, ``_activity_manager``, ``_process_links``,
``_recovery``) are built by the core and handed it as a :class:`Core`; :class:`Processes` is what the engine
gives the core to start and stop workflow processes with its supervisors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import pykka

from aion import events as ev
from aion.engine._runs import Run
from aion.store import AppendRequest

#: Called with the stamped events once an append is durable.
Then = Callable[[list[ev.Event]], None]


class Core(Protocol):
    """What a collaborator may ask of the engine core: its registry of runs, and recording."""

    def run_of(self, workflow_id: str) -> Run | None:
        """The run the core works on for ``workflow_id``, if any (without resuming one recovery has not reached)."""

    def live(self, workflow_id: str) -> Run | None:
        """The run the core works on for ``workflow_id``, resuming it now if recovery has not reached it yet."""

    def drive(self, run: Run) -> None:
        """Make ``run`` the workflow's run the core works on, before anything is appended for it."""

    def drop(self, run: Run) -> None:
        """``run`` is no longer worked on (it closed, or never became durable)."""

    def append(
        self,
        run: Run,
        events: Sequence[ev.Event],
        *,
        then: Then | None = None,
        reply: pykka.Future[Any] | None = None,
        companion: AppendRequest | None = None,
        deferrable: bool = False,
    ) -> None:
        """Send ``events`` to the recorder after the run's head; once durable, ``then`` and ``reply`` get the
        stamped events and each event takes effect (a terminal one closes the run, an arrival is delivered).
        ``companion`` (a schedule's fire) is committed in the same transaction, atomically. ``deferrable``: no
        caller outside the engine waits on it (a step of the run's own: an activity's, a timer's, its
        completion when nobody waits for its result), so it may share a caller's transaction (see
        ``aion.recorder``, "Holding deferrable appends")."""

    def closed(self, run: Run, terminal: ev.Event) -> None:
        """``terminal`` is durable: release everything the run held and tell whoever depends on it."""


class Processes(Protocol):
    """How the core starts and stops workflow processes (the engine implements it with supervisors)."""

    def start_run_process(self, workflow_type: str, child_id: str, meta: dict[str, Any]) -> None:
        """Start, under the type's supervisor, the process ``child_id`` hosting a run (``meta`` is shown in
        the supervision tree)."""

    def terminate_run_process(self, workflow_type: str, child_id: str) -> None:
        """Kill the process ``child_id`` for good (no restart): its run was closed from outside, or is given a
        new process."""

    def start_query_process(self, workflow_type: str, child_id: str) -> None:
        """Start a temporary process ``child_id`` that replays a run to answer one query."""

    def kill_worker(self, worker_id: str) -> None:
        """SIGKILL activity worker ``worker_id`` (its supervisor replaces it)."""
