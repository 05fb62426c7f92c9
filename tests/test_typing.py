"""mypy on user code after the README's install (``pip install -e .``): it finds aion, passes a correctly typed
application (``examples/typed_app``) and flags a wrong argument and a wrong result type."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "examples" / "typed_app"


def _mypy(where: Path) -> subprocess.CompletedProcess[str]:
    # Run from a directory outside the checkout, so aion is found only the way a user's project finds it.
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(where / ".mypy_cache"), "-p", "typed_app"],
        cwd=where,
        check=False,
        capture_output=True,
        text=True,
        timeout=280,
    )


@pytest.mark.timeout(300)
def test_mypy_follows_the_install_and_checks_the_typed_api(tmp_path: Path) -> None:
    app = tmp_path / "typed_app"
    shutil.copytree(APP, app)
    good = _mypy(tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr

    source = (app / "__init__.py").read_text()
    wrong = source.replace("engine.start_workflow(square, 7)", 'engine.start_workflow(square, "7")')
    wrong = wrong.replace("execute_activity(price, sku, quantity,", "execute_activity(price, quantity, sku,")
    wrong = wrong.replace("squared: int = await", "squared: str = await")
    (app / "__init__.py").write_text(wrong)
    bad = _mypy(tmp_path)
    assert bad.returncode == 1, bad.stdout
    assert "cannot find implementation or library stub" not in bad.stdout
    lines = [line for line in bad.stdout.splitlines() if ": error:" in line]
    assert any("start_workflow" in line or "square" in line for line in lines), bad.stdout
    assert any("execute_activity" in line or "price" in line for line in lines), bad.stdout
    assert any("execute_child" in line for line in lines), bad.stdout  # a str result asked of an int child
    assert len(lines) >= 3, bad.stdout
