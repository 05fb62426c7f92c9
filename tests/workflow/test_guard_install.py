"""Installing the determinism guard from the plan `prepare` found ahead, each case in a process of its own (an
installed guard stays installed in its process)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import aion
import supervisors
from aion.workflow import _guard

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, modules: Path) -> None:
    """Run ``script`` in a new interpreter that imports from the repository and from ``modules``; fail with its
    output if it fails."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=modules,
        env={"PYTHONPATH": f"{ROOT}:{modules}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def modules(tmp_path: Path) -> Path:
    """Two user modules binding clock readers at import: ``early`` (loaded before `prepare`), ``late`` (after)."""
    (tmp_path / "early.py").write_text("from time import perf_counter\nfrom datetime import datetime\n")
    (tmp_path / "late.py").write_text("from time import monotonic\n")
    return tmp_path


@pytest.mark.timeout(30)
def test_aion_and_the_supervision_library_are_never_user_code(tmp_path: Path) -> None:
    # An editable install leaves both outside the installed packages: calls from them are still not judged.
    assert not _guard._is_user_file(supervisors.__file__)
    assert not _guard._is_user_file(str(Path(supervisors.__file__).with_name("_channel.py")))
    assert not _guard._is_user_file(aion.__file__)
    assert _guard._is_user_file(str(tmp_path / "workflows.py"))


@pytest.mark.timeout(90)
def test_install_binds_the_wrappers_and_names_prepare_found(modules: Path) -> None:
    _run(
        """
        import datetime, time
        import early
        from aion.workflow import _guard

        _guard.prepare()
        plan = _guard._plan
        made = {(owner, name): guarded for owner, name, _original, guarded in plan.replacements}
        assert [(name, original) for _ns, name, original, _g in plan.user_names] == [
            ("perf_counter", time.perf_counter), ("datetime", datetime.datetime)
        ]
        _guard.install()
        assert time.perf_counter is made[(time, "perf_counter")]
        assert datetime.datetime is made[(datetime, "datetime")] is _guard._GuardedDatetime
        assert early.perf_counter is time.perf_counter and early.datetime is datetime.datetime
        _guard.install()  # idempotent
        assert time.perf_counter is made[(time, "perf_counter")]
        """,
        modules,
    )


@pytest.mark.timeout(90)
def test_install_looks_again_when_modules_were_loaded_after_prepare(modules: Path) -> None:
    _run(
        """
        import time
        import early
        from aion.workflow import _guard

        _guard.prepare()
        original = time.monotonic
        import late  # bound the original after the plan was found

        _guard.install()
        assert late.monotonic is time.monotonic is not original
        assert early.perf_counter is time.perf_counter
        """,
        modules,
    )


@pytest.mark.timeout(90)
def test_a_name_bound_to_something_else_since_prepare_is_left_be(modules: Path) -> None:
    _run(
        """
        import time
        import early
        from aion.workflow import _guard

        _guard.prepare()

        def mine():
            return 0.0

        early.perf_counter = mine
        _guard.install()
        assert early.perf_counter is mine
        assert time.perf_counter is not mine and time.perf_counter.__wrapped__ is not None
        """,
        modules,
    )


@pytest.mark.timeout(90)
def test_install_without_prepare_finds_its_plan_itself(modules: Path) -> None:
    _run(
        """
        import time
        import early
        from aion.workflow import _guard

        original = time.perf_counter
        _guard.install()
        assert _guard._plan is None
        assert early.perf_counter is time.perf_counter is not original
        assert time.perf_counter.__wrapped__ is original
        """,
        modules,
    )
