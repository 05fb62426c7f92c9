"""The example test file of ``docs/testing.md`` is ``examples/test_checkout.py``, word for word, and it passes
when pytest runs it with aion's plugin (loaded through its ``pytest11`` entry point, as in a user's project)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_the_docs_example_test_file_is_the_example_and_it_passes() -> None:
    example = (REPO / "examples" / "test_checkout.py").read_text()
    assert example.strip() in (REPO / "docs" / "testing.md").read_text()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "examples/test_checkout.py"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 passed" in done.stdout
