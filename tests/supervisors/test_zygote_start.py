"""A zygote that dies without a word during its start-up is forked again (a failed import, which it reports, is
raised at once); past the attempts, the error says how it died. Forking it raises no warning about threads."""

from __future__ import annotations

import os
import sys
import threading
import warnings
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


@pytest.mark.skipif(sys.version_info < (3, 12), reason="Python 3.11 does not warn at a fork of a process with threads")
def test_forking_the_zygote_does_not_warn_that_the_process_has_threads_and_leaves_the_filters_alone() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filters = list(warnings.filters)
        zygote = sv.Zygote.start(warm_pool=0)
        zygote.stop()
        assert warnings.filters == filters
        assert threading.active_count() > 1  # the forker thread at least: the program's own fork still warns
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os._exit(0)
        os.waitpid(pid, 0)
    threads_warnings = [str(w.message) for w in caught if "multi-threaded" in str(w.message)]
    assert len(threads_warnings) == 1, threads_warnings
    assert f"pid={os.getpid()}" in threads_warnings[0]
