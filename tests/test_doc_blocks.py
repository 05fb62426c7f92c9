"""Every Python block of README.md and docs/*.md runs, unless it is marked as a fragment.

The convention (stated in docs/workflows.md): a fenced ```python block runs as a script of its own, in a fresh
directory, with the repository on the path; the line just before a fragment's fence is ``<!-- no-run -->`` (a
piece of a bigger program: it names things defined elsewhere). Runnable blocks must exit 0.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NO_RUN = "<!-- no-run -->"
_FENCE = re.compile(r"^```python\s*$")


def _blocks() -> list[tuple[str, int, str, bool]]:
    """``(file, line of the fence, code, runs)`` of every python block."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        lines = path.read_text().splitlines()
        index = 0
        while index < len(lines):
            if _FENCE.match(lines[index]):
                end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
                before = next((lines[i].strip() for i in range(index - 1, -1, -1) if lines[i].strip()), "")
                code = "\n".join(lines[index + 1 : end]) + "\n"
                found.append((path.relative_to(ROOT).as_posix(), index + 1, code, before != NO_RUN))
                index = end
            index += 1
    return found


BLOCKS = _blocks()
RUNNABLE = [(name, line, code) for name, line, code, runs in BLOCKS if runs]


@pytest.mark.timeout(10)
def test_the_docs_have_runnable_blocks_and_the_markers_are_exact() -> None:
    assert len(RUNNABLE) >= 4
    for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith("<!--") and "no-run" in line:
                assert line.strip() == NO_RUN, f"{path.name}:{number}: write the marker exactly as {NO_RUN}"


@pytest.mark.timeout(150)
@pytest.mark.parametrize(("name", "line", "code"), RUNNABLE, ids=[f"{n}:{line}" for n, line, _ in RUNNABLE])
def test_a_runnable_block_runs(name: str, line: int, code: str, tmp_path: Path) -> None:
    script = tmp_path / "block.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("AION_DATA_DIR", None)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=140, check=False
    )
    assert done.returncode == 0, f"{name}:{line} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
