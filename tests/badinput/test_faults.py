"""Faults of workflow code and payloads that must end as typed, recorded failures (issue 16, points 4, 6, 7, 8
and 9): an unserialisable result, an 8 MB activity error, a command the core cannot turn into an event, non-finite
floats in ``--json`` output, the determinism guard against names bound at import, and 64 misbehaving control-socket
clients."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from aion import events as ev
from aion.control._frames import MAX_REPLY_BYTES, pack_frame, recv_frame
from aion.control._server import MAX_CONNECTIONS
from aion.control._socket import connect, socket_path
from aion.errors import WorkflowFailedError
from tests.badinput import flows, guard_flows
from tests.badinput.cases import Ctx

ROOT = Path(__file__).resolve().parents[2]
AION = str(Path(sys.executable).parent / "aion")


@pytest.mark.timeout(90)
def test_an_unserialisable_result_fails_the_run_with_payload_error(ctx: Ctx) -> None:
    handle = ctx.engine.start_workflow(flows.returns_object, workflow_id="returns-object")
    with pytest.raises(WorkflowFailedError) as failed:
        handle.result(timeout=60)
    assert failed.value.type == "PayloadError"
    assert "workflow result" in failed.value.message
    history = ctx.engine.store.read_history("returns-object")
    assert [type(event).__name__ for event in history] == ["WorkflowStarted", "WorkflowFailed"]


@pytest.mark.timeout(120)
def test_an_8_mb_activity_error_is_recorded_truncated_with_its_true_cause(ctx: Ctx) -> None:
    size = 8 * 1024 * 1024
    handle = ctx.engine.start_workflow(flows.calls_huge_error, size, workflow_id="huge-error")
    seen = handle.result(timeout=90)
    assert seen["class"] == "ActivityError" and seen["type"] == "RuntimeError"
    history = ctx.engine.store.read_history("huge-error")
    failed = [event for event in history if isinstance(event, ev.ActivityFailed)]
    assert len(failed) == 1 and failed[0].attempt == 1  # failed once for good: not retried as lost
    failure = failed[0].failure
    assert failure.type == "RuntimeError"
    assert f"[truncated: {size} characters in all]" in failure.message
    assert len(failure.message) < 64 * 1024
    assert "engine" not in failure.message.split("...")[-1]


@pytest.mark.timeout(120)
def test_8_mb_failure_details_are_replaced_by_a_note(ctx: Ctx) -> None:
    handle = ctx.engine.start_workflow(
        flows.calls_huge_error, 8 * 1024 * 1024, "huge_details", workflow_id="huge-details"
    )
    seen = handle.result(timeout=90)
    assert seen["class"] == "ActivityError" and seen["type"] == "ApplicationError"
    assert seen["details"].startswith("[details not recorded: failure details is ")
    failed = [e for e in ctx.engine.store.read_history("huge-details") if isinstance(e, ev.ActivityFailed)]
    assert len(failed) == 1 and failed[0].attempt == 1


@pytest.mark.timeout(90)
def test_a_command_the_core_cannot_record_fails_its_run_and_the_engine_goes_on(ctx: Ctx) -> None:
    handle = ctx.engine.start_workflow(flows.bypasses_validation, workflow_id="bypasses")
    with pytest.raises(WorkflowFailedError) as failed:
        handle.result(timeout=60)
    assert failed.value.type == "CommandRefused"
    assert "StartTimer" in failed.value.message and "OverflowError" in failed.value.message
    kinds = [type(event).__name__ for event in ctx.engine.store.read_history("bypasses")]
    assert kinds == ["WorkflowStarted", "WorkflowFailed"]
    after = ctx.engine.start_workflow(flows.attempt, "sleep-nan", workflow_id="after-bypass")
    assert after.result(timeout=60)["code"] == "invalid_argument"


@pytest.mark.timeout(90)
def test_json_output_never_holds_nan_or_infinity(ctx: Ctx) -> None:
    ctx.engine.start_workflow(flows.returns_nan, workflow_id="returns-nan").result(timeout=60)
    for args in (["result", "returns-nan", "--json"], ["result", "returns-nan"], ["describe", "returns-nan", "--json"]):
        done = subprocess.run(
            [AION, args[0], "--data-dir", str(ctx.tmp / "data"), *args[1:]],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

        def refuse(name: str) -> Any:
            raise AssertionError(f"{name} in JSON output")

        parsed = json.loads(done.stdout, parse_constant=refuse)
        assert "NaN" in json.dumps(parsed)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("case", guard_flows.GUARDED_CALLS)
def test_the_guard_catches_names_bound_at_import(ctx: Ctx, case: str) -> None:
    handle = ctx.engine.start_workflow(guard_flows.guarded, case, workflow_id=f"guard-{case}")
    assert handle.result(timeout=60) == "non_deterministic_call"


@pytest.mark.timeout(90)
@pytest.mark.parametrize("case", guard_flows.ALLOWED_CALLS)
def test_names_the_guard_rebinds_keep_working(ctx: Ctx, case: str) -> None:
    handle = ctx.engine.start_workflow(guard_flows.guarded, case, workflow_id=f"allowed-{case}")
    assert handle.result(timeout=60) == "allowed"


def _drip(path: Path, stop: threading.Event, connected: threading.Barrier) -> None:
    """A client that connects, then sends its frame one byte at a time, slowly, until told to stop."""
    with contextlib.closing(connect(path, timeout=30)) as sock:
        connected.wait()
        frame = pack_frame({"op": "list", "pad": "x" * 1000})  # 200 s at this pace: cut off by the frame deadline
        for byte in frame:
            if stop.wait(0.2):
                return
            with contextlib.suppress(OSError):
                sock.send(bytes([byte]))


@pytest.mark.timeout(120)
def test_64_dripping_clients_and_a_nan_wait_do_not_lock_the_cli_out(ctx: Ctx) -> None:
    path = socket_path(ctx.tmp / "data")
    stop = threading.Event()
    connected = threading.Barrier(MAX_CONNECTIONS + 1)
    drippers = [threading.Thread(target=_drip, args=(path, stop, connected)) for _ in range(MAX_CONNECTIONS)]
    for thread in drippers:
        thread.start()
    try:
        connected.wait(timeout=30)
        with contextlib.closing(connect(path)) as nan_waiter:
            nan_waiter.settimeout(30)
            nan_waiter.sendall(pack_frame({"op": "history", "workflow_id": ctx.running, "wait": float("nan")}))
            reply = recv_frame(nan_waiter, MAX_REPLY_BYTES)
        assert reply["ok"] is False and reply["code"] == "invalid_argument"
        done = subprocess.run(
            [AION, "list", "--data-dir", str(ctx.tmp / "data"), "--json"],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert ctx.running in {view["workflow_id"] for view in json.loads(done.stdout)["workflows"]}
    finally:
        stop.set()
        for thread in drippers:
            thread.join(timeout=30)


@pytest.mark.timeout(60)
def test_silent_clients_are_evicted_for_a_real_one(ctx: Ctx) -> None:
    path = socket_path(ctx.tmp / "data")
    silent: list[socket.socket] = []
    try:
        for _ in range(MAX_CONNECTIONS + 16):
            # (a full listen backlog refuses at once: connect tries again until its timeout)
            silent.append(connect(path, timeout=30))
        with contextlib.closing(connect(path, timeout=30)) as client:
            client.settimeout(30)
            client.sendall(pack_frame({"op": "ping"}))
            assert recv_frame(client, MAX_REPLY_BYTES)["ok"] is True
    finally:
        for sock in silent:
            sock.close()


@pytest.mark.timeout(90)
def test_result_with_a_timeout_asks_until_its_own_deadline(ctx: Ctx) -> None:
    done = subprocess.run(
        [AION, "result", "--data-dir", str(ctx.tmp / "data"), ctx.running, "--timeout", "0.5"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("error[result_timeout]: ") and "within 0.5 s" in done.stderr, done.stderr
