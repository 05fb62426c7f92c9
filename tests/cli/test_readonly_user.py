"""The read-only CLI (``list``, ``describe``, ``history``) works for a user who may only read the data directory:
LMDB's lock file cannot be written, so the store is opened without it (see docs/operations.md)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from aion.cli import cli  # imported before the fork: the other user may not read the interpreter's files
from aion.events import WorkflowCompleted, WorkflowStarted
from aion.store import open_store

NOBODY = 65534


@pytest.fixture
def readable_store() -> Iterator[Path]:
    """A store readable, not writable, by everybody (outside pytest's root-only tmp directory)."""
    top = Path(tempfile.mkdtemp(prefix="aion-ro-"))
    data = top / "data"
    with open_store(data) as store:
        run = str(uuid.uuid4())
        store.append("ro-1", [WorkflowStarted(workflow_id="ro-1", workflow_type="t", input=[1], run_id=run)], 0)
        store.append("ro-1", [WorkflowCompleted(workflow_id="ro-1", result=2)], 1)
    for path in (top, data):
        path.chmod(0o555)
    for name in os.listdir(data):
        (data / name).chmod(0o444)
    try:
        yield data
    finally:
        for path in (top, data):
            path.chmod(0o755)
        shutil.rmtree(top)


def _cli_as(uid: int, args: list[str]) -> tuple[int, str]:
    """Run the CLI in a forked child that has dropped to ``uid``; its exit code and stdout."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 70
        try:
            os.close(read)
            sys.stdout = sys.stderr = open(write, "w")  # noqa: SIM115 - flushed before _exit
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            try:
                cli.main(args=args, prog_name="aion", standalone_mode=True)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            os._exit(code)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode()


@pytest.mark.timeout(60)
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
# The CLI runs in a fork of this (threaded) pytest process that drops to the user; that child runs the CLI and
# exits, so Python 3.12+'s warning about forking a process with threads is noise here.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_list_describe_history_as_a_user_who_may_only_read(readable_store: Path) -> None:
    before = (readable_store / "data.mdb").read_bytes()
    code, out = _cli_as(NOBODY, ["list", "--data-dir", str(readable_store), "--json"])
    assert code == 0, out
    assert [w["workflow_id"] for w in json.loads(out)["workflows"]] == ["ro-1"]
    code, out = _cli_as(NOBODY, ["describe", "--data-dir", str(readable_store), "ro-1", "--json"])
    assert code == 0, out
    assert json.loads(out)["status"] == "completed"
    code, out = _cli_as(NOBODY, ["history", "--data-dir", str(readable_store), "ro-1", "--json"])
    assert code == 0, out
    assert "WorkflowCompleted" in out
    assert (readable_store / "data.mdb").read_bytes() == before
