"""A zygote that dies without a word during its start-up is forked again (a failed import, which it reports, is
raised at once); past the attempts, the error says how it died."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import supervisors as sv
from supervisors._zygote import START_ATTEMPTS

pytestmark = pytest.mark.timeout(60)

MODULE = "tests.supervisors.dies_at_start"


def _dies(monkeypatch: pytest.MonkeyPatch, record: Path, times: int) -> None:
    monkeypatch.setenv("DIES_AT_START_FILE", str(record))
    monkeypatch.setenv("DIES_AT_START_OWNER", str(os.getpid()))
    monkeypatch.setenv("DIES_AT_START_TIMES", str(times))


def test_a_zygote_killed_during_start_up_is_forked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = tmp_path / "deaths"
    _dies(monkeypatch, record, times=1)
    zygote = sv.Zygote.start(preload=[MODULE], warm_pool=0)
    try:
        assert zygote.alive
        (died,) = record.read_text().split()
        assert int(died) != zygote.pid
    finally:
        zygote.stop()


def test_a_zygote_that_keeps_dying_at_start_up_is_an_error_naming_its_signal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "deaths"
    _dies(monkeypatch, record, times=START_ATTEMPTS)
    with pytest.raises(sv.ZygoteError, match="exited during start-up \\(killed by SIGKILL\\)"):
        sv.Zygote.start(preload=[MODULE], warm_pool=0)
    assert len(record.read_text().split()) == START_ATTEMPTS
