"""The control package stands apart from the engine: it imports none of it, and its reading of the engine's
supervision tree and child ids agrees with what the engine writes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from aion import _tree
from aion.engine import _child_ids


@pytest.mark.timeout(30)
def test_control_imports_nothing_of_the_engine() -> None:
    code = (
        "import sys\n"
        "import aion.control, aion.control._ops, aion.control._render, aion.control._views\n"
        "print(sorted(name for name in sys.modules if name.startswith('aion.engine')))\n"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"


@pytest.mark.timeout(10)
def test_the_tree_readers_agree_with_the_engine() -> None:
    for child_id in (
        _child_ids.run_child_id("5f0c-run", "orders/1:x"),
        _child_ids.run_child_id("5f0c-run.3", "wf"),
        _child_ids.query_child_id(7, "a:b:c"),
    ):
        assert _tree.parse_child_id(child_id) == tuple(_child_ids.parse_child_id(child_id))
    assert _tree.parse_child_id(_child_ids.run_child_id("r-1.2", "wf")) == ("run", "r-1.2", "wf")
    assert _tree.run_id_of_token("r-1.2") == "r-1"
    assert _child_ids.ProcessRole.RUN.value == _tree.RUN_ROLE
