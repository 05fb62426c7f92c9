"""Every bad input of :mod:`tests.badinput.cases`, tried for real against one running engine: each raises its
typed error (class and code) and leaves every recorded history as it was."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aion.control._frames import MAX_REPLY_BYTES, pack_frame, recv_frame
from aion.control._socket import connect, socket_path
from aion.errors import AionError
from tests.badinput import flows
from tests.badinput.cases import API_CASES, CASES, CLI_CASES, SOCKET_CASES, WORKFLOW_CASES, Case, Ctx, table_rows
from tests.badinput.conftest import snapshot

ROOT = Path(__file__).resolve().parents[2]
AION = str(Path(sys.executable).parent / "aion")
DOCS = ROOT / "docs" / "errors.md"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", API_CASES, ids=[case.id for case in API_CASES])
def test_api(ctx: Ctx, case: Case) -> None:
    before = snapshot(ctx.engine.store)
    with pytest.raises(AionError) as raised:
        case.action(ctx)
    assert (type(raised.value).__name__, raised.value.code) == (case.error, case.code), raised.value
    assert snapshot(ctx.engine.store) == before


@pytest.mark.timeout(90)
@pytest.mark.parametrize("case", WORKFLOW_CASES, ids=[case.id for case in WORKFLOW_CASES])
def test_workflow_code(ctx: Ctx, case: Case) -> None:
    before = snapshot(ctx.engine.store)
    handle = ctx.engine.start_workflow(flows.attempt, case.action, workflow_id=case.id)
    assert handle.result(timeout=60) == {"class": case.error, "code": case.code}
    after = snapshot(ctx.engine.store)
    # the bad call recorded nothing: the run holds its start and its completion only
    assert [kind for _, kind in after.pop(case.id)] == ["WorkflowStarted", "WorkflowCompleted"]
    assert after == before


def _cli(ctx: Ctx, args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    data_dir = ctx.tmp / ("serve-data" if args[0] == "serve" else "data")
    argv = [AION, args[0], "--data-dir", str(data_dir), *(ctx.running if a == "RUNNING" else a for a in args[1:])]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("case", CLI_CASES, ids=[case.id for case in CLI_CASES])
def test_cli(ctx: Ctx, case: Case) -> None:
    before = snapshot(ctx.engine.store)
    done = _cli(ctx, case.action)
    assert "Traceback" not in done.stderr, done.stderr
    if case.code == "usage":
        assert done.returncode == 2, done.stderr
    else:
        assert done.returncode == 1, done.stderr
        found = re.search(r"^error\[([a-z_]+)\]: ", done.stderr, re.MULTILINE)
        assert found is not None and found.group(1) == case.code, done.stderr
    assert snapshot(ctx.engine.store) == before


def _exchange(data_dir: Path, frame: Any, workflow_id: str) -> dict[str, Any]:
    sock = connect(socket_path(data_dir))
    try:
        sock.settimeout(30)
        if isinstance(frame, dict):
            if frame["op"] in ("history", "result", "signal"):
                frame = {"workflow_id": workflow_id, **frame}
            sock.sendall(pack_frame(frame))
        elif isinstance(frame, bytes):
            sock.sendall(struct.pack(">I", len(frame)) + frame)
        elif frame == "huge-header":
            sock.sendall(struct.pack(">I", 2**31))
        else:  # "drip": one byte of the header, then nothing: the frame deadline passes
            sock.sendall(b"\x00")
        return recv_frame(sock, MAX_REPLY_BYTES)
    finally:
        sock.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", SOCKET_CASES, ids=[case.id for case in SOCKET_CASES])
def test_control_socket(ctx: Ctx, case: Case) -> None:
    before = snapshot(ctx.engine.store)
    reply = _exchange(ctx.tmp / "data", case.action, ctx.running)
    assert reply.get("ok") is False and reply.get("code") == case.code, reply
    assert snapshot(ctx.engine.store) == before


@pytest.mark.timeout(10)
def test_the_table_in_the_docs_is_the_list_of_cases() -> None:
    text = DOCS.read_text()
    section = text.split("## Bad inputs and their codes", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows == table_rows()
    assert len({case.id for case in CASES}) == len(CASES) >= 60
