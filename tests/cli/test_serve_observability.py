"""``aion serve --log-format json --metrics``: a real subprocess writes one JSON object per log line, with the
structured fields, and serves ``/metrics``."""

from __future__ import annotations

import json
import os
import re
import signal
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cli.conftest import Server, aion, wait_for

#: What ``aion serve`` prints on stdout (the same file as its log here): not log records.
BANNER = ("aion engine (pid", "metrics on http", "stopping", "stopped")


@pytest.mark.timeout(120)
def test_json_logs_and_metrics_of_a_served_engine(serve: Callable[..., Server], data_dir: Path) -> None:
    server = serve(data_dir, "--log-format", "json", "--log-level", "DEBUG", "--metrics", "127.0.0.1:0")
    address = wait_for(lambda: re.search(r"metrics on (http://\S+)", server.log.read_text()), "the metrics line")
    started = aion("start", "raises", "--input", '"boom"', "--id", "bad", "--data-dir", data_dir)
    assert started.code == 0, started.err
    wait_for(lambda: "workflow run failed" in server.log.read_text(), "the failure logged")
    with urllib.request.urlopen(f"{address.group(1)}", timeout=10) as response:
        text = response.read().decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("aion_workflows_failed_total", (("workflow_type", "raises"),))] == 1
    assert server.stop() == 0, server.log.read_text()[-20000:]

    lines = [line for line in server.log.read_text().splitlines() if line and not line.startswith(BANNER)]
    records = [json.loads(line) for line in lines]  # every other line is one JSON object
    assert all({"ts", "level", "logger", "message"} <= record.keys() for record in records)
    failed = [r for r in records if r["message"].startswith("workflow run failed")]
    assert len(failed) == 1
    assert failed[0]["logger"] == "aion.engine" and failed[0]["level"] == "INFO"
    assert failed[0]["workflow_id"] == "bad" and failed[0]["workflow_type"] == "raises"
    assert "RuntimeError: boom" in failed[0]["error"] and failed[0]["run_id"]
    assert any(r["message"].startswith("engine started") and r["resumed"] == 0 for r in records)
    assert any(r["logger"] == "aion.engine.commits" and r["level"] == "DEBUG" for r in records)
    assert any(r["message"].startswith("engine stopped") for r in records)


@pytest.mark.timeout(60)
def test_bad_log_and_metrics_options_are_refused(data_dir: Path) -> None:
    for options in (["--log-format", "xml"], ["--log-level", "LOUD"], ["--metrics", "nowhere"]):
        result = aion("serve", "--data-dir", data_dir, "--module", "tests.cli.flows", *options)
        assert result.code == 2, (options, result.out, result.err)
        assert options[0] in result.err


@pytest.mark.timeout(60)
def test_sigusr2_writes_every_threads_stack_and_the_engine_goes_on(
    serve: Callable[..., Server], data_dir: Path
) -> None:
    server = serve(data_dir)
    os.kill(server.proc.pid, signal.SIGUSR2)
    wait_for(lambda: "Current thread" in server.log.read_text(), "the stacks written")
    text = server.log.read_text()
    assert text.count("Thread 0x") >= 2  # the main thread and the engine's (core, recorder, hub, ...)
    assert "File ???" not in text  # written holding the GIL: no frame read while its thread moved it
    assert "dump_every_thread" in text.split("Current thread", 1)[1]  # by the main thread's handler
    assert "EngineCore" in text or "_actor_loop" in text
    assert aion("list", "--data-dir", data_dir).code == 0  # still serving
    assert server.stop() == 0, server.log.read_text()[-20000:]
