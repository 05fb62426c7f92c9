"""The chaos soak at its CI size: a 45 s kill phase, about a minute in all (see ``tests/chaos/__init__.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos import CI_KILL_SECONDS, seed_from_env
from tests.chaos.driver import plan_of, run_soak


def test_the_same_seed_gives_the_same_plan() -> None:
    assert plan_of(1234, CI_KILL_SECONDS) == plan_of(1234, CI_KILL_SECONDS)
    assert plan_of(1234, CI_KILL_SECONDS) != plan_of(1235, CI_KILL_SECONDS)


@pytest.mark.chaos
@pytest.mark.timeout(175)
def test_chaos_soak(tmp_path: Path) -> None:
    seed = seed_from_env()
    print(f"chaos seed: {seed}")
    report = run_soak(seed, CI_KILL_SECONDS, tmp_path / f"seed-{seed}")
    print(report.summary())
    assert report.ok, report.summary()
