"""The README's first command: the demo runs, survives the SIGKILL of its workflow process, and completes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.timeout(90)
def test_demo_survives_the_kill_and_completes_with_each_activity_once() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "aion.demo"],
        check=False,
        capture_output=True,
        text=True,
        timeout=80,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "killing its process" in out and "supervisor restarted it" in out
    assert "completed" in out and "WorkflowCompleted" in out
    assert "['reserve_stock', 'charge_card', 'send_receipt']" in out
