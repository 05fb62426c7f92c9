"""The CLI's API commands and conventions: ``aion update``, ``aion start --signal``, ``history --follow``
without an engine, exit code 130 on Ctrl-C, and the status line on a terminal."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import AION, ROOT, Server, _env, aion, ok

API_FLOWS = ("--module", "tests.api.flows")


def _popen(*args: str | Path, stderr: int | None = subprocess.PIPE) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [AION, *map(str, args)], cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=stderr, text=True
    )


def _interrupt(proc: subprocess.Popen[str]) -> int:
    try:
        proc.send_signal(signal.SIGINT)
        return proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.timeout(90)
def test_update_and_signal_with_start_from_the_shell(serve: Callable[..., Server], data_dir: Path) -> None:
    d = serve(data_dir, *API_FLOWS).data_dir
    ok("start", "counter", "--input", "10", "--id", "c", "--data-dir", d)
    assert ok("update", "c", "add", "--args", "5", "--data-dir", d).out.strip() == "15"
    assert ok("update", "c", "add", "--args", "[2]", "--json", "--data-dir", d).json()["result"] == 17
    rejected = aion("update", "c", "add", "--args", "-1", "--data-dir", d)
    assert rejected.code == 1 and "error[update_rejected]" in rejected.err and "cannot add -1" in rejected.err
    failed = aion("update", "c", "fail", "--data-dir", d)
    assert failed.code == 1 and "error[update_failed]" in failed.err
    ok("signal", "c", "stop", "--data-dir", d)
    assert ok("result", "c", "--data-dir", d).out.strip() == "17"
    closed = aion("update", "c", "add", "--args", "1", "--data-dir", d)
    assert closed.code == 1 and "error[not_running]" in closed.err

    started = ok("start", "waits", "--input", '"n"', "--id", "s", "--signal", "go", "--payload", '"p"', "--wait",
                 "--data-dir", d)  # fmt: skip
    assert "with signal go" in started.out and started.out.strip().endswith('"n:p"')
    ok("start", "waits", "--input", '"m"', "--id", "t", "--data-dir", d)
    again = ok("start", "waits", "--input", '"ignored"', "--id", "t", "--signal", "go", "--payload", "1",
               "--json", "--data-dir", d)  # fmt: skip
    assert again.json()["signal"] == "go"  # the running run got the signal; no second start
    assert ok("result", "t", "--data-dir", d).out.strip() == '"m:1"'
    lone = aion("start", "waits", "--payload", "1", "--data-dir", d)
    assert lone.code == 2 and "--payload goes with --signal" in lone.err


@pytest.mark.timeout(90)
def test_follow_without_an_engine_says_so_and_ctrl_c_exits_130(
    serve: Callable[..., Server], data_dir: Path, tmp_path: Path
) -> None:
    server = serve(data_dir, *API_FLOWS)
    d = server.data_dir
    ok("start", "waits", "--input", '"x"', "--id", "w", "--data-dir", d)
    with _on_a_terminal("result", "w", "--data-dir", d, showing=b"waiting for the result of w") as waiting:
        assert _interrupt(waiting) == 130
    assert server.stop() == 0, server.log.read_text()[-20000:]  # SIGTERM: a clean stop

    alone = aion("history", "w", "--follow", "--data-dir", d, timeout=30)
    assert alone.code == 1
    assert "error[engine_not_running]" in alone.err and "--wait-for-engine" in alone.err
    follower = _popen("history", "w", "--follow", "--wait-for-engine", "--data-dir", d)
    assert follower.stderr is not None
    assert "waiting for one" in follower.stderr.readline()
    assert _interrupt(follower) == 130

    interrupted = Server(data_dir, tmp_path / "interrupted.log", *API_FLOWS)  # not the fixture's: it wants 0
    try:
        interrupted.proc.send_signal(signal.SIGINT)
        assert interrupted.proc.wait(timeout=30) == 130  # stopped cleanly, by Ctrl-C
        assert interrupted.log.read_text().rstrip().endswith("stopped")
    finally:
        if interrupted.proc.poll() is None:
            interrupted.kill()


@contextlib.contextmanager
def _on_a_terminal(*args: str | Path, showing: bytes) -> Iterator[subprocess.Popen[str]]:
    """Run ``aion args`` with its stderr on a pseudo-terminal; yield it once the terminal shows ``showing``."""
    master, slave = pty.openpty()
    try:
        proc = _popen(*args, stderr=slave)
        try:
            seen = b""
            while showing not in seen:
                ready, _, _ = select.select([master], [], [], 20)
                assert ready, f"the terminal never showed {showing!r}: {seen!r}"
                seen += os.read(master, 4096)
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.timeout(60)
def test_result_and_start_wait_show_a_status_line_on_a_terminal(server: Server) -> None:
    d = server.data_dir
    ok("start", "collector", "--input", "1", "--id", "slow", "--data-dir", d)
    with _on_a_terminal("result", "slow", "--data-dir", d, showing=b"waiting for the result of slow") as proc:
        ok("signal", "slow", "item", "--payload", '"a"', "--data-dir", d)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0 and out.strip() == '["a"]'
    started = _on_a_terminal(
        "start", "collector", "--input", "1", "--id", "slower", "--wait", "--data-dir", d,
        showing=b"waiting for the result of slower",
    )  # fmt: skip
    with started as proc:
        ok("signal", "slower", "item", "--payload", '"b"', "--data-dir", d)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0 and out.strip().endswith('["b"]')
