"""Every library error derives from `SupervisionError` and keeps its builtin base."""

from __future__ import annotations

import pytest

import supervisors as sv


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (sv.SupervisorError, RuntimeError),
        (sv.StartError, RuntimeError),
        (sv.SpawnError, RuntimeError),
        (sv.ZygoteError, RuntimeError),
        (sv.TargetError, ValueError),
        (sv.ChannelClosedError, EOFError),
    ],
)
def test_every_error_has_the_common_base_and_its_builtin_one(error: type[Exception], builtin: type[Exception]) -> None:
    assert issubclass(error, sv.SupervisionError)
    assert issubclass(error, builtin)


def test_start_error_is_a_supervisor_error() -> None:
    assert issubclass(sv.StartError, sv.SupervisorError)
