"""Zygote.start(warm_up=...): every idle pool host runs it once before waiting; its failure harms nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import supervisors as sv
from tests.helpers import wait_until
from tests.supervisors.helpers import Recorder
from tests.supervisors.targets import worker


@pytest.mark.timeout(30)
def test_every_pool_host_runs_the_warm_up_before_it_is_handed_a_child(tmp_path: Path, rec: Recorder) -> None:
    os.environ["SV_TEST_WARM_UP_DIR"] = str(tmp_path)
    try:
        zygote = sv.Zygote.start(warm_pool=2, warm_up="tests.supervisors.targets:mark_warm_up")
    finally:
        del os.environ["SV_TEST_WARM_UP_DIR"]
    try:
        marked = wait_until(
            lambda: [int(p.name) for p in tmp_path.iterdir()] if len(list(tmp_path.iterdir())) >= 2 else None
        )
        pid = zygote.spawn(
            worker, on_start=lambda pid, ch: rec.on_start("w", pid, ch), on_message=lambda m: rec.on_message("w", m)
        )
        assert pid in marked  # the child was handed to a host that had warmed up
        wait_until(lambda: "w" in rec.channels)
        rec.ping("w", 1)
    finally:
        zygote.stop()


@pytest.mark.timeout(30)
def test_a_failing_warm_up_leaves_the_pool_working(rec: Recorder) -> None:
    zygote = sv.Zygote.start(warm_pool=1, warm_up="tests.supervisors.targets:failing_warm_up")
    try:
        zygote.spawn(
            worker, on_start=lambda pid, ch: rec.on_start("w", pid, ch), on_message=lambda m: rec.on_message("w", m)
        )
        wait_until(lambda: "w" in rec.channels)
        rec.ping("w", 2)
    finally:
        zygote.stop()
