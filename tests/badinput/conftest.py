"""The bad-input tests share one engine for the module (starting one per input would take minutes): the
suite's leak guard is narrowed to processes that are not that engine's."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

import psutil
import pytest

from aion import Engine
from aion.store import EventStore
from tests.badinput import flows, guard_flows
from tests.badinput.cases import Ctx
from tests.conftest import live_descendants

Snapshot = dict[str, list[tuple[int, str]]]


def snapshot(store: EventStore) -> Snapshot:
    """Every workflow's recorded history, as (seq, event type) pairs."""
    return {
        info.workflow_id: [(event.seq, type(event).__name__) for event in store.read_history(info.workflow_id)]
        for info in store.list_workflows()
    }


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    """Fail a test that leaves a process alive, other than the shared engine's (the descendants of the test
    process's children that were there before the test)."""
    engine = {proc.pid for proc in psutil.Process().children()}
    yield

    def ours(proc: psutil.Process) -> bool:
        with contextlib.suppress(psutil.NoSuchProcess):
            return proc.pid in engine or any(parent.pid in engine for parent in proc.parents())
        return True

    leaked = [proc for proc in live_descendants() if not ours(proc)]
    if leaked:
        _, still = psutil.wait_procs(leaked, timeout=3.0)
        still = [p for p in still if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        for proc in still:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGKILL)
        if still:
            pytest.fail(f"test leaked {len(still)} process(es): {[p.pid for p in still]}")


@pytest.fixture(scope="module")
def ctx(  # one engine per test module
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Ctx]:
    tmp = tmp_path_factory.mktemp("badinput")
    with Engine(
        tmp / "data",
        [*flows.WORKFLOWS, guard_flows.guarded],
        flows.ACTIVITIES,
        activity_workers=1,
        warm_pool=1,
        max_seconds=5,
    ) as engine:
        running = engine.start_workflow(flows.waiter, workflow_id="running")
        closed = engine.start_workflow(flows.waiter, workflow_id="closed")
        closed.signal("go", "done")
        assert closed.result(timeout=60) == "done"
        yield Ctx(engine, tmp, running.workflow_id, closed.workflow_id)
