"""Fixtures of the UI and HTTP API tests: real ``aion serve --ui`` / ``aion ui`` subprocesses, an HTTP helper,
and a real headless Chromium driven by Selenium (killed with everything it started when the test ends)."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.cli.conftest import AION, ROOT, _env, wait_for
from tests.helpers import descendants, kill_process_group, process_or_none, stop_process_group

TOKEN = "test-token-0123456789"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class UIProcess:
    """One ``aion serve --ui`` (or ``aion ui``) subprocess in its own session; ``url`` once it serves."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [AION, *args], cwd=ROOT, env=_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.url: str = wait_for(self._url, f"the UI serving (log: {log})", timeout=60)

    def _url(self) -> str | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"aion exited {self.proc.returncode}: {self.log.read_text()}")
        found = re.findall(r"HTTP API on (http://\S+?)/ ", self.log.read_text())
        return found[-1] if found else None

    def printed_token(self) -> str | None:
        found = re.findall(r"UI token: (\S+)", self.log.read_text())
        return found[-1] if found else None

    def stop(self) -> int:
        return stop_process_group(self.proc, timeout=30)

    def kill(self) -> None:
        """SIGKILL the whole process group and reap it."""
        kill_process_group(self.proc)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., UIProcess]]:
    """Start ``aion serve --ui`` (``launch(data_dir, "--ui", ...)``) or ``aion ui`` (``launch(data_dir,
    command="ui", ...)``); every process started is stopped when the test ends."""
    started: list[UIProcess] = []

    def start(data_dir: Path, *options: str, command: str = "serve") -> UIProcess:
        args = [command, "--data-dir", str(data_dir)]
        if command == "serve":
            args += ["--module", "tests.ui.flows", "--activity-workers", "1", "--warm-pool", "1"]
        process = UIProcess([*args, *options], tmp_path / f"{command}-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        if process.stop() not in (0, -signal.SIGKILL):
            pytest.fail(f"aion did not stop cleanly: {process.log.read_text()}")


@pytest.fixture
def engine_ui(launch: Callable[..., UIProcess], data_dir: Path) -> UIProcess:
    """``aion serve --ui 127.0.0.1:0 --ui-token TOKEN`` with ``tests.ui.flows``."""
    return launch(data_dir, "--ui", "127.0.0.1:0", "--ui-token", TOKEN)


@dataclass
class Answer:
    """One HTTP answer."""

    status: int
    body: Any
    headers: dict[str, str]

    @property
    def code(self) -> str | None:
        return self.body.get("error", {}).get("code") if isinstance(self.body, dict) else None


def http(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, *, raw: bytes | None = None
) -> Answer:
    """One HTTP request (no redirects followed for pages), its status and JSON (or text) body."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=60) as response:
            status, text, got = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, text, got = error.code, error.read(), dict(error.headers)
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = text.decode(errors="replace")
    return Answer(status, parsed, got)


def chromium_available() -> bool:
    return shutil.which(CHROMIUM) is not None and shutil.which(CHROMEDRIVER) is not None


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A headless Chromium (Debian's, through its chromedriver) with a fresh profile; quit, and every process
    it started killed, when the test ends."""
    if not chromium_available():
        pytest.fail(f"the browser tests need {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    service = Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver_pid = service.process.pid
    try:
        yield driver
    finally:
        spawned = [p for p in (process_or_none(driver_pid), *descendants(driver_pid)) if p is not None]
        with contextlib.suppress(Exception):
            driver.quit()
        for proc in spawned:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(spawned, timeout=10)


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the browser tests save their screenshots (a test artifact, never committed)."""
    path = tmp_path / "screenshots"
    path.mkdir()
    return path
