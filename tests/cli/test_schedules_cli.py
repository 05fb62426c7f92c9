"""``aion schedule ...`` through the real ``aion`` script: every command with and without ``--json`` against a
real ``aion serve``, ``list``/``describe`` from the store files without an engine, bad input as typed errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import Server, ok, run_all
from tests.cli.conftest import aion as run


def _no_traceback(err: str) -> None:
    assert "Traceback" not in err, err


@pytest.mark.timeout(120)
def test_every_schedule_command_against_a_running_engine_then_from_files(
    serve: Callable[..., Server], data_dir: Path
) -> None:
    server = serve(data_dir)
    d = data_dir
    made = ok("schedule", "create", "hourly", "greet", "--interval", "3600", "--args", '["ann"]', "--json",
              "--data-dir", d).json()  # fmt: skip
    assert made["schedule_id"] == "hourly" and made["workflow_type"] == "greet" and not made["paused"]
    table = ok("schedule", "create", "nightly", "greet", "--cron", "0 2 * * *", "--timezone", "Europe/Paris",
               "--overlap", "buffer_one", "--args", '["bo"]', "--data-dir", d)  # fmt: skip
    assert "nightly" in table.out

    listed = ok("schedule", "list", "--json", "--data-dir", d).json()
    assert [view["schedule_id"] for view in listed["schedules"]] == ["hourly", "nightly"]
    assert "hourly" in ok("schedule", "list", "--data-dir", d).out
    described = ok("schedule", "describe", "nightly", "--json", "--data-dir", d).json()
    assert described["spec"]["timezone"] == "Europe/Paris" and len(described["next_fires"]) == 10
    assert "next fires: " in ok("schedule", "describe", "nightly", "--data-dir", d).out

    paused = ok("schedule", "pause", "hourly", "--note", "maintenance", "--json", "--data-dir", d).json()
    assert paused["paused"] and paused["note"] == "maintenance"
    assert "hourly" in ok("schedule", "unpause", "hourly", "--data-dir", d).out
    assert not ok("schedule", "describe", "hourly", "--json", "--data-dir", d).json()["paused"]
    ok("schedule", "pause", "hourly", "--data-dir", d)

    fired = ok("schedule", "trigger", "hourly", "--overlap", "allow_all", "--json", "--data-dir", d).json()
    workflow_id = fired["outcome"]["started_workflow_id"]
    assert workflow_id.startswith("hourly-")
    assert ok("result", workflow_id, "--json", "--data-dir", d).json()["result"] == "hello ANN!"
    line = ok("schedule", "trigger", "hourly", "--overlap", "allow_all", "--data-dir", d).out
    assert line.startswith("ScheduleFired ") or "hourly-" in line

    start, end = "2026-01-01T00:00:00+00:00", "2026-01-01T02:00:00+00:00"
    filled = ok("schedule", "backfill", "hourly", start, end, "--overlap", "allow_all", "--json",
                "--data-dir", d).json()  # fmt: skip
    assert [o["started_workflow_id"] for o in filled["outcomes"]] == [
        "hourly-2026-01-01T00:00:00Z", "hourly-2026-01-01T01:00:00Z", "hourly-2026-01-01T02:00:00Z",
    ]  # fmt: skip
    again = ok("schedule", "backfill", "hourly", start, end, "--data-dir", d).out  # the same times: exists
    assert again.count("exists") == 3

    # Bad input: the typed error's code, exit 1, no traceback.
    bad = run_all([
        ("schedule", "create", "x", "greet", "--cron", "61 * * * *", "--data-dir", d),
        ("schedule", "create", "x", "greet", "--interval", "0", "--data-dir", d),
        ("schedule", "create", "x", "greet", "--interval", "5", "--timezone", "Mars/Olympus", "--data-dir", d),
        ("schedule", "create", "x", "no_such_type", "--interval", "5", "--data-dir", d),
        ("schedule", "create", "hourly", "greet", "--interval", "5", "--data-dir", d),
        ("schedule", "describe", "nope", "--data-dir", d),
        ("schedule", "pause", "nope", "--data-dir", d),
        ("schedule", "create", "x", "greet", "--interval", "5", "--args", "{not json", "--data-dir", d),
    ])  # fmt: skip
    codes = ["invalid_argument"] * 3 + ["invalid_argument", "schedule_already_exists"] + ["schedule_not_found"] * 2
    for result, code in zip(bad, codes, strict=False):
        assert result.code == 1 and result.err.startswith(f"error[{code}]: "), (code, result)
        _no_traceback(result.err)
    assert bad[-1].code != 0
    _no_traceback(bad[-1].err)

    deleted = ok("schedule", "delete", "nightly", "--json", "--data-dir", d).json()
    assert deleted is not None
    assert "deleted hourly" in ok("schedule", "delete", "hourly", "--data-dir", d).out
    ok("schedule", "create", "kept", "greet", "--interval", "3600", "--args", '["x"]', "--paused", "--data-dir", d)
    assert server.stop() == 0, server.log.read_text()[-20000:]

    # No engine: list and describe read the store files; the others say the engine is needed.
    offline = ok("schedule", "list", "--json", "--data-dir", d).json()
    assert [view["schedule_id"] for view in offline["schedules"]] == ["kept"]
    assert ok("schedule", "describe", "kept", "--json", "--data-dir", d).json()["paused"]
    assert "kept" in ok("schedule", "list", "--data-dir", d).out
    missing = run("schedule", "describe", "hourly", "--data-dir", d)  # deleted
    assert missing.code == 1 and missing.err.startswith("error[schedule_not_found]: ")
    for args in (("trigger", "kept"), ("pause", "kept"), ("delete", "kept")):
        needs = run("schedule", *args, "--data-dir", d)
        assert needs.code == 1 and needs.err.startswith("error[engine_not_running]: "), needs
        _no_traceback(needs.err)
