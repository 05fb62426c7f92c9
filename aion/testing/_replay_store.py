"""Replaying the runs of a data directory against new code, before it is deployed (``aion replay``).

:func:`stored_histories` reads, from a store opened read-only, the history of every open run (running, blocked or
paused) and, with ``closed``, of the last ``closed`` closed runs of each workflow type. :func:`replay_histories`
replays them with a :class:`~aion.testing.Replayer` in parallel worker processes (forked: the workflows defined
or imported by the caller are theirs too) and returns one :class:`Divergence` per run that does not fit. Nothing
is written anywhere and no engine is involved.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from aion import events as ev
from aion.errors import InvalidArgumentError, NonDeterminismError, UnknownWorkflowTypeError
from aion.status import OPEN_STATUSES
from aion.store import EventStore
from aion.testing._replayer import Replayer


@dataclass(frozen=True)
class Divergence:
    """A run whose history the code does not fit: where (``seq``), what the history has, what the code does."""

    workflow_id: str
    run_id: str
    seq: int | None
    expected: str
    found: str

    def line(self) -> str:
        """One line for ``aion replay``: workflow id, run, seq, what the history has, what the code does."""
        where = f"seq {self.seq}" if self.seq is not None else "start"
        return (
            f"{self.workflow_id} run {self.run_id} {where}: history has {self.expected}; the code now does {self.found}"
        )


def stored_histories(store: EventStore, *, closed: int = 0) -> list[list[ev.Event]]:
    """The histories to check: every open run's, then the last ``closed`` closed runs' of each type."""
    histories: list[list[ev.Event]] = []
    types: set[str] = set()
    for info in store.running_workflows():
        histories.append(store.read_run(info.workflow_id, info.run_id))
        types.add(info.workflow_type)
    if closed > 0:
        for info in store.list_workflows():
            types.add(info.workflow_type)
        for workflow_type in sorted(types):
            runs = [
                info for info in store.list_workflows(workflow_type=workflow_type) if info.status not in OPEN_STATUSES
            ]
            for info in runs[:closed]:
                histories.append(store.read_run(info.workflow_id, info.run_id))
    return histories


def replay_one(replayer: Replayer, history: Sequence[ev.Event]) -> Divergence | None:
    """Replay ``history``; the divergence, or ``None`` when the code fits it."""
    started = next((event for event in reversed(history) if isinstance(event, ev.WorkflowStarted)), None)
    if started is None:
        raise InvalidArgumentError("a history to replay must hold a WorkflowStarted event")
    try:
        replayer.replay(history)
    except NonDeterminismError as error:
        return Divergence(started.workflow_id, started.run_id, error.seq, error.expected, error.found)
    except UnknownWorkflowTypeError as error:
        return Divergence(started.workflow_id, started.run_id, None, f"a run of {started.workflow_type!r}", str(error))
    return None


#: The replayer of a worker process, set before the pool forks (see :func:`replay_histories`).
_worker_replayer: Replayer | None = None


def _replay_chunk(histories: list[list[ev.Event]]) -> list[Divergence]:
    assert _worker_replayer is not None
    found = (replay_one(_worker_replayer, history) for history in histories)
    return [divergence for divergence in found if divergence is not None]


def replay_histories(
    workflows: Iterable[Callable[..., Any]],
    histories: Sequence[list[ev.Event]],
    *,
    processes: int | None = None,
) -> list[Divergence]:
    """Replay every history against ``workflows`` in up to ``processes`` forked workers (default: the CPUs);
    the divergences found, by workflow id."""
    global _worker_replayer
    replayer = Replayer(workflows)
    count = min(processes or os.cpu_count() or 1, len(histories))
    if count <= 1:
        found = (replay_one(replayer, history) for history in histories)
        return sorted((d for d in found if d is not None), key=lambda d: (d.workflow_id, d.run_id))
    chunks = [list(histories[index::count]) for index in range(count)]
    _worker_replayer = replayer
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
            results = list(pool.map(_replay_chunk, chunks))
    finally:
        _worker_replayer = None
    return sorted((d for chunk in results for d in chunk), key=lambda d: (d.workflow_id, d.run_id))
