"""Fixtures shared by the engine tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def log(tmp_path: Path) -> str:
    """The execution log file activities append to."""
    return str(tmp_path / "executions.log")


@pytest.fixture
def gates(tmp_path: Path) -> Path:
    """A directory for gate files that activities wait on and mark."""
    path = tmp_path / "gates"
    path.mkdir()
    return path
