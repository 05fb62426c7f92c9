"""Fixtures: a zygote per test, and supervisors that are always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import supervisors as sv

from .helpers import Recorder


@pytest.fixture
def zygote() -> Iterator[sv.Zygote]:
    """A zygote with a small warm pool, stopped after the test."""
    z = sv.Zygote.start(warm_pool=2)
    try:
        yield z
    finally:
        z.stop()


@pytest.fixture
def start_sup(zygote: sv.Zygote) -> Iterator[Callable[[sv.SupervisorSpec], sv.Supervisor]]:
    """Start root supervisors on the test's zygote; they are stopped (before the zygote) after the test."""
    started: list[sv.Supervisor] = []

    def start(spec: sv.SupervisorSpec) -> sv.Supervisor:
        sup = sv.Supervisor.start(spec, zygote=zygote)
        started.append(sup)
        return sup

    try:
        yield start
    finally:
        for sup in reversed(started):
            sup.stop(timeout=30)


@pytest.fixture
def rec() -> Recorder:
    """A fresh recorder."""
    return Recorder()
