"""``aion.Client`` against real servers: the handle API over HTTP, a result awaited from another process across
an engine's SIGKILL and restart, and every error code raised as its own class."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

import aion
from aion import errors as err
from aion.http._errors import error_body, error_class, error_from_body, http_status
from tests.cli.conftest import ROOT, wait_for
from tests.ui.conftest import TOKEN, UIProcess, free_port

pytestmark = pytest.mark.timeout(240)


def _all_error_classes(root: type[err.AionError] = err.AionError) -> list[type[err.AionError]]:
    found = [root]
    for sub in root.__subclasses__():
        found.extend(_all_error_classes(sub))
    return found


def test_every_error_code_comes_back_as_its_class() -> None:
    seen = set()
    for kind in _all_error_classes():
        error = kind.__new__(kind)
        Exception.__init__(error, f"a {kind.__name__}")
        if isinstance(error, err.FailureError):
            error.message, error.type, error.traceback, error.details = "m", "KeyError", "tb", {"k": [1]}
        body = json.loads(json.dumps(error_body(error)))
        status = http_status(error)
        assert 400 <= status <= 599
        back = error_from_body(body, status)
        assert back.code == kind.code and str(back) == f"a {kind.__name__}"
        # A code shared with a subclass (not_found) comes back as the subclass, which catches as either.
        assert type(back) is error_class(kind.code) and isinstance(back, kind)
        seen.add(type(back))
        if isinstance(error, err.FailureError):
            assert isinstance(back, err.FailureError)
            assert (back.type, back.traceback, back.details) == ("KeyError", "tb", {"k": [1]})
    assert err.WorkflowNotFoundError in seen and len(seen) == len({k.code for k in _all_error_classes()})
    assert type(error_from_body({"error": {"code": "from_the_future", "message": "x"}}, 500)) is err.AionError
    assert isinstance(error_from_body("<html>", 502), err.ControlError)


def test_the_handle_api_over_http(launch: Callable[..., UIProcess], data_dir: Path) -> None:
    ui = launch(data_dir, "--ui", "127.0.0.1:0", "--ui-token", TOKEN, "--search-attribute", "Customer=keyword")
    client = aion.Client(ui.url, token=TOKEN)
    handle = client.start_workflow(
        "waiter",
        workflow_id="w-1",
        search_attributes={"Customer": "ann"},
        memo={"note": "from http"},
        execution_timeout=3600,
        run_timeout=600,
        version=1,
    )
    assert handle.query("state") == "waiting"
    assert handle.execute_update("note", "first") == ["first"]
    assert handle.execute_update("note", "second") == ["first", "second"]
    with pytest.raises(err.UpdateRejectedError, match="must not be empty"):
        handle.execute_update("note", "")
    described = handle.describe()
    assert described["status"] == "running" and described["memo"] == {"note": "from http"}
    assert described["search_attributes"] == {"Customer": "ann"}
    with pytest.raises(aion.WorkflowAlreadyStartedError):
        client.start_workflow("waiter", workflow_id="w-1")
    same = client.signal_with_start("waiter", workflow_id="w-1", signal="go", payload="first")
    assert same.run_id == handle.run_id and handle.result(timeout=30) == "first"
    fresh = client.signal_with_start("waiter", workflow_id="w-2", signal="go", payload="second")
    assert fresh.result(timeout=30) == "second"
    assert client.get_workflow("w-2").history()[0]["type"] == "WorkflowStarted"
    assert client.list_workflows("Customer = 'ann'")["workflows"][0]["workflow_id"] == "w-1"
    assert client.count_workflows("GROUP BY Status") == {"count": 2, "groups": {"completed": 2}}
    assert len(client.list_workflows(status="completed")["workflows"]) == 2

    paused = client.start_workflow("waiter", workflow_id="w-3")
    assert paused.pause("look first") is True and paused.describe()["status"] == "paused"
    assert paused.resume() is True
    assert paused.cancel("no longer needed") is True
    with pytest.raises(err.WorkflowCancelledError):
        paused.result(timeout=30)
    new_run = paused.reset(to_seq=1, reason="again")  # back to its start: waiting for the signal again
    assert client.get_workflow("w-3").run_id == new_run
    assert client.get_workflow("w-3").terminate("stop") is True
    with pytest.raises(err.WorkflowTerminatedError):
        client.get_workflow("w-3").result(timeout=30)
    assert client.get_workflow("w-3").unblock() is False

    with pytest.raises(aion.WorkflowFailedError) as failed:
        client.start_workflow("raises", "kaput").result(timeout=60)
    assert failed.value.type == "RuntimeError" and "kaput" in failed.value.message
    with pytest.raises(aion.WorkflowNotFoundError):
        client.get_workflow("never")
    with pytest.raises(err.UnknownWorkflowTypeError):
        client.start_workflow("nope")
    with pytest.raises(err.QueryError):
        client.start_workflow("waiter").query("nope")
    with pytest.raises(err.ResultTimeoutError):
        client.start_workflow("waiter").result(timeout=0.2)
    with pytest.raises(err.UnauthorizedError):
        aion.Client(ui.url).start_workflow("waiter")
    with pytest.raises(aion.InvalidArgumentError):
        aion.Client("ftp://nowhere")
    assert client.supervision_tree()["root"]["id"] == "aion"
    assert client.list_schedules() == []


_AWAIT = textwrap.dedent(
    """
    import json, sys
    import aion
    client = aion.Client(sys.argv[1], token=sys.argv[2], retry_for=120)
    handle = client.start_workflow("waiter", workflow_id="survivor")
    print("started", flush=True)
    print(json.dumps(handle.result()), flush=True)
    """
)


def test_a_client_in_another_process_gets_its_result_across_an_engine_sigkill(
    launch: Callable[..., UIProcess], data_dir: Path, tmp_path: Path
) -> None:
    address = f"127.0.0.1:{free_port()}"
    first = launch(data_dir, "--ui", address, "--ui-token", TOKEN)
    out = tmp_path / "client.out"
    with out.open("w") as stdout:
        waiter = subprocess.Popen(
            [sys.executable, "-c", _AWAIT, first.url, TOKEN], cwd=ROOT, stdout=stdout, stderr=subprocess.STDOUT
        )
    try:
        wait_for(lambda: "started" in out.read_text(), "the client's start", timeout=60)
        first.kill()  # the engine and all its processes, mid long-poll
        second = launch(data_dir, "--ui", address, "--ui-token", TOKEN)
        aion.Client(second.url, token=TOKEN).get_workflow("survivor").signal("go", {"after": "restart"})
        assert waiter.wait(timeout=120) == 0, out.read_text()
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert out.read_text().splitlines()[-1] == json.dumps({"after": "restart"})
