"""A full disk: the engine's writes fail with ``store_full`` (nothing half-written), and once space is freed
everything resumes. The disk is a small tmpfs mounted for the test (root only)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import aion
from aion.errors import StoreFullError
from tests.engine import flows

SIZE = 8 * 1024 * 1024
CHAIN_3 = 0 + 2 + 4


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(mount)], check=False)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """A ballast file that leaves about ``leave`` bytes free on ``disk``."""
    ballast = disk / "ballast"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(ballast, "wb") as f, contextlib.suppress(OSError):
        f.write(b"\0" * max(free - leave, 0))
    return ballast


@pytest.mark.timeout(120)
def test_a_full_disk_raises_store_full_and_freeing_space_resumes(small_disk: Path, log: str) -> None:
    data = small_disk / "data"
    with aion.Engine(
        data,
        workflows=flows.ALL_WORKFLOWS,
        activities=flows.ALL_ACTIVITIES,
        activity_workers=1,
        search_attributes={"pad": "text"},  # a text attribute: recorded, never indexed
    ) as engine:
        first = engine.start_workflow(flows.chain, log, 3, workflow_id="before")
        assert first.result(timeout=60) == CHAIN_3
        ballast = _fill(small_disk, 256 * 1024)
        started = []
        with pytest.raises(StoreFullError, match="disk is full"):
            for _ in range(200):
                started.append(engine.start_workflow(flows.chain, log, 3, search_attributes={"pad": "x" * 50_000}))
        assert engine.stopped_reason is None
        ballast.unlink()  # space again: everything goes on
        after = engine.start_workflow(flows.chain, log, 3, workflow_id=f"after-{uuid.uuid4()}")
        assert after.result(timeout=60) == CHAIN_3
        for handle in started:
            assert handle.result(timeout=60) == CHAIN_3
        assert engine.get_workflow("before").result(timeout=5) == CHAIN_3
    with aion.Engine(data, workflows=flows.ALL_WORKFLOWS, activities=flows.ALL_ACTIVITIES) as engine:
        assert engine.list_workflows(status="running") == []
