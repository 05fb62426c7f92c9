"""Every workflow command through the real ``aion`` script against a real ``aion serve``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from aion._waits import UNKNOWN_WITHOUT_ENGINE
from tests.cli.conftest import AION, ROOT, Server, _env, ok, run_all, wait_for
from tests.cli.conftest import aion as run


@pytest.mark.timeout(90)
def test_start_signal_query_result(server: Server) -> None:
    d = server.data_dir
    # start --wait: a JSON string is one argument; a JSON array is the argument list
    done = ok("start", "greet", "--input", '"bob"', "--id", "g1", "--wait", "--data-dir", d)
    assert "started workflow g1" in done.out
    assert json.loads(done.out.splitlines()[-1]) == "hello BOB!"
    as_json = ok("start", "greet", "--input", '["ann", "?"]', "--wait", "--json", "--data-dir", d).json()
    assert as_json["result"] == "hello ANN?"
    assert set(as_json) == {"workflow_id", "run_id", "result"}

    started = ok("start", "collector", "--input", "2", "--id", "c1", "--json", "--data-dir", d).json()
    assert started["workflow_id"] == "c1" and set(started) == {"workflow_id", "run_id"}
    sent = ok("signal", "c1", "item", "--payload", '{"n": 1}', "--data-dir", d)
    assert "signal item sent to c1" in sent.out
    assert ok("query", "c1", "items", "--data-dir", d).out.strip() == '[{"n": 1}]'
    echoed = ok("query", "c1", "echo", "1", "text", '{"k": [2]}', "--json", "--data-dir", d).json()
    assert echoed["result"] == [1, "text", {"k": [2]}] and echoed["query"] == "echo"

    waiting = run("result", "c1", "--timeout", "0.2", "--data-dir", d)
    assert waiting.code == 1 and waiting.err.startswith("error[result_timeout]: ")
    ok("signal", "c1", "item", "--payload", "[2]", "--json", "--data-dir", d)
    assert ok("result", "c1", "--json", "--data-dir", d).json() == {
        "workflow_id": "c1", "run_id": started["run_id"], "result": [{"n": 1}, [2]],
    }  # fmt: skip

    ok("start", "raises", "--input", '"boom"', "--id", "r1", "--data-dir", d)
    failed = run("result", "r1", "--timeout", "30", "--data-dir", d)
    assert failed.code == 1 and failed.err.startswith("error[workflow_failed]: ") and "boom" in failed.err

    lookups = [("signal", "nope", "x"), ("query", "nope", "items"), ("result", "nope"), ("describe", "nope")]
    *missing, unknown = run_all([(*args, "--data-dir", d) for args in [*lookups, ("start", "no_such_type")]])
    for result in missing:
        assert result.code == 1 and result.err.startswith("error[not_found]: "), result
    assert unknown.code == 1 and unknown.err.startswith("error[unknown_workflow_type]: ")
    again = run("start", "collector", "--input", "1", "--id", "c1", "--data-dir", d)  # c1 closed: a new run
    assert again.code == 0
    busy = run("start", "collector", "--input", "1", "--id", "c1", "--data-dir", d)
    assert busy.code == 1 and busy.err.startswith("error[already_started]: ")
    bad_query = run("query", "c1", "no_such_query", "--data-dir", d)
    assert bad_query.code == 1 and bad_query.err.startswith("error[query_error]: ")


@pytest.mark.timeout(90)
def test_list_describe_history_live_then_from_files(serve: object, data_dir: Path) -> None:
    server = serve(data_dir)  # type: ignore[operator]
    ok("start", "greet", "--input", '"x"', "--id", "done-1", "--wait", "--data-dir", data_dir)
    ok("start", "collector", "--input", "2", "--id", "open-1", "--data-dir", data_dir)
    ok("signal", "open-1", "item", "--payload", '"first"', "--data-dir", data_dir)

    listed = ok("list", "--json", "--data-dir", data_dir).json()
    assert [w["workflow_id"] for w in listed["workflows"]] == ["open-1", "done-1"]  # newest first
    assert set(listed["workflows"][0]) == {
        "workflow_id", "run_id", "workflow_type", "status", "start_time", "close_time", "run_number",
        "search_attributes", "memo", "version",
    }  # fmt: skip
    assert [w["workflow_id"] for w in ok("list", "--status", "running", "--json", "--data-dir", data_dir).json()[
        "workflows"]] == ["open-1"]  # fmt: skip
    assert len(ok("list", "--type", "greet", "--limit", "1", "--json", "--data-dir", data_dir).json()["workflows"]) == 1
    text = ok("list", "--data-dir", data_dir).out
    assert "open-1" in text and "collector" in text and "running" in text and "completed" in text

    described = ok("describe", "done-1", "--json", "--data-dir", data_dir).json()
    assert described["status"] == "completed" and described["result"] == "hello X!"
    assert described["input"] == ["x"] and described["waiting_on"] is None
    open_view = wait_for(  # once its process has reported what its code waits on
        lambda: (v := ok("describe", "open-1", "--json", "--data-dir", data_dir).json())["waits"] is not None and v,
        "open-1's process reporting its waits",
    )
    assert open_view["status"] == "running" and open_view["waiting_on"] == "signal 'item'"
    assert "waiting_on" in ok("describe", "open-1", "--data-dir", data_dir).out

    live_history = ok("history", "done-1", "--json", "--data-dir", data_dir).json()
    types = [e["type"] for e in live_history["events"]]
    assert types[0] == "WorkflowStarted" and types[-1] == "WorkflowCompleted" and "ActivityScheduled" in types
    assert [e["seq"] for e in live_history["events"]] == list(range(1, len(types) + 1))
    table = ok("history", "done-1", "--data-dir", data_dir).out
    assert "WorkflowStarted" in table and "activity_type=shout" in table and "WorkflowCompleted" in table

    cmds: list[tuple[str, ...]] = [("list",), ("describe", "open-1"), ("history", "open-1")]
    live = {cmd: r.json() for cmd, r in zip(cmds, run_all([(*c, "--json", "--data-dir", data_dir) for c in cmds]),
                                            strict=True)}  # fmt: skip
    assert server.stop() == 0, server.log.read_text()[-20000:]
    assert not (data_dir / "control.sock").exists()  # removed on clean shutdown

    # read commands work from the files, read-only, and say the same; mutating commands (and the live tree)
    # say that no engine runs, and how to start one
    reads = [(*cmd, "--json", "--data-dir", data_dir) for cmd in live]
    refusals = [
        ("start", "greet", "--input", '"y"'), ("signal", "open-1", "item"), ("query", "open-1", "items"),
        ("cancel", "open-1"), ("terminate", "open-1"), ("result", "open-1"), ("tree",),
    ]  # fmt: skip
    others = [("list", "--data-dir", data_dir), ("result", "done-1", "--data-dir", data_dir),
              ("describe", "nope", "--data-dir", data_dir)]  # fmt: skip
    results = run_all(reads + [(*args, "--data-dir", data_dir) for args in refusals] + others)
    for view, result in zip(live.values(), results[: len(reads)], strict=True):
        assert result.code == 0
        expected = view
        if "waits" in view:  # what the code waits on beyond its history is known only to a running engine
            assert view["waits"] == ["signal 'item'"] and view["waiting_on"] == "signal 'item'"
            expected = {**view, "waits": None, "waiting_on": UNKNOWN_WITHOUT_ENGINE}
        assert result.json() == expected
    for result in results[len(reads) : len(reads) + len(refusals)]:
        assert result.code == 1, result
        assert result.err.startswith("error[engine_not_running]: "), result
        assert f"aion serve --data-dir {data_dir} --module" in result.err
    listed_text, closed_result, missing = results[-3:]
    assert "open-1" in listed_text.out
    assert closed_result.out.strip() == '"hello X!"'
    assert missing.code == 1 and missing.err.startswith("error[not_found]: ")


@pytest.mark.timeout(60)
def test_history_follow_streams_new_events(server: Server) -> None:
    d = server.data_dir
    ok("start", "collector", "--input", "2", "--id", "f1", "--data-dir", d)
    follower = subprocess.Popen(
        [AION, "history", "f1", "--follow", "--json", "--data-dir", str(d)],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert follower.stdout is not None
        first = json.loads(follower.stdout.readline())
        assert first["type"] == "WorkflowStarted" and first["seq"] == 1
        ok("signal", "f1", "item", "--payload", "1", "--data-dir", d)
        second = json.loads(follower.stdout.readline())
        assert second["type"] == "SignalReceived" and second["payload"] == 1
        ok("signal", "f1", "item", "--payload", "2", "--data-dir", d)
        rest = [json.loads(line) for line in follower.stdout]  # ends by itself once the run closes
        assert follower.wait(timeout=30) == 0
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert [e["type"] for e in rest][-1] == "WorkflowCompleted"
    assert [e["seq"] for e in [first, second, *rest]] == list(range(1, len(rest) + 3))
    text = ok("history", "f1", "--follow", "--data-dir", d).out  # closed run: prints and returns
    assert "following" in text and "WorkflowCompleted" in text


@pytest.mark.timeout(60)
def test_cancel_and_terminate(server: Server) -> None:
    d = server.data_dir
    ok("start", "collector", "--input", "3", "--id", "t1", "--data-dir", d)
    ok("start", "collector", "--input", "3", "--id", "k1", "--data-dir", d)

    terminated = ok("terminate", "t1", "--reason", "ops said so", "--json", "--data-dir", d).json()
    assert terminated["workflow_id"] == "t1" and terminated["took_effect"] is True
    outcome = run("result", "t1", "--timeout", "30", "--data-dir", d)
    assert outcome.code == 1 and outcome.err.startswith("error[workflow_terminated]: ")
    assert "already closed" in ok("terminate", "t1", "--data-dir", d).out
    assert ok("terminate", "t1", "--json", "--data-dir", d).json()["took_effect"] is False

    assert "cancellation requested for k1" in ok("cancel", "k1", "--reason", "no longer needed", "--data-dir", d).out
    wait_for(
        lambda: ok("describe", "k1", "--json", "--data-dir", d).json()["status"] == "cancelled", "the cancellation"
    )
    assert ok("cancel", "k1", "--json", "--data-dir", d).json()["took_effect"] is False
    missing = run("cancel", "nope", "--data-dir", d)
    assert missing.code == 1 and missing.err.startswith("error[not_found]: ")
