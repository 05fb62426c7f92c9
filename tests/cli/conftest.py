"""Fixtures of the CLI tests: the real ``aion`` console script, and real ``aion serve`` subprocesses."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aion.control import connect_engine
from tests.helpers import kill_process_group, stop_process_group

ROOT = Path(__file__).resolve().parents[2]
AION = str(Path(sys.executable).parent / "aion")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AION_DATA_DIR"}
    env["COLUMNS"] = "400"
    return env


@dataclass
class Result:
    """What one ``aion`` invocation did."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def aion(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 60) -> Result:
    """Run the ``aion`` console script with ``args`` from the repository root."""
    proc = subprocess.run(
        [AION, *map(str, args)],
        check=False,
        cwd=ROOT,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def run_all(commands: list[tuple[str | Path, ...]]) -> list[Result]:
    """Run independent ``aion`` invocations concurrently (to keep the suite fast); results in order."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda args: aion(*args), commands))


def ok(*args: str | Path) -> Result:
    """Run ``aion`` and insist that it succeeded."""
    result = aion(*args)
    assert result.code == 0, f"aion {args} exited {result.code}: {result.err}{result.out}"
    return result


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll ``condition`` until it returns something truthy, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout} s")


class Server:
    """One ``aion serve`` subprocess on ``data_dir`` (in its own session so it can be killed as a group)."""

    def __init__(self, data_dir: Path, log: Path, *options: str, start_timeout: float = 20.0) -> None:
        self.data_dir = data_dir
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [AION, "serve", "--data-dir", str(data_dir), "--module", "tests.cli.flows",
                 "--activity-workers", "1", "--warm-pool", "1", *options],
                cwd=ROOT, env=_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        wait_for(self._answers, f"aion serve on {data_dir} answering (log: {log})", timeout=start_timeout)

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"aion serve exited {self.proc.returncode}: {self.log.read_text()}")
        with contextlib.suppress(OSError):
            client = connect_engine(self.data_dir)
            if client is not None:
                with client:
                    client.request("ping")
                    return True
        return False

    def stop(self) -> int:
        """SIGTERM, then wait for a clean exit (SIGKILL the group if it does not come, after SIGUSR2 has made the
        server write its threads' stacks to its log)."""
        return stop_process_group(self.proc, timeout=20, dump=signal.SIGUSR2)

    def kill(self) -> None:
        """SIGKILL the whole process group (engine, zygote, workflow and activity processes) and reap it."""
        kill_process_group(self.proc)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start ``aion serve`` on a data dir (more options may follow); every server started is stopped when the
    test ends."""
    servers: list[Server] = []

    def start(data_dir: Path, *options: str) -> Server:
        server = Server(data_dir, tmp_path / f"serve-{len(servers)}.log", *options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.stop() not in (0, -signal.SIGKILL):
            pytest.fail(f"aion serve did not stop cleanly: {server.log.read_text()}")


@pytest.fixture
def server(serve: Callable[..., Server], data_dir: Path) -> Server:
    """One running ``aion serve`` on ``data_dir`` with ``tests.cli.flows``."""
    return serve(data_dir)
