"""The control package stands apart from the engine: it imports none of it, and its reading of the engine's
supervision tree and child ids agrees with what the engine writes."""

from __future__ import annotations

import subprocess
import sys

from aion import _tree
from aion.engine import _messages
from aion.engine import _tree as engine_tree


def test_control_imports_nothing_of_the_engine() -> None:
    code = (
        "import sys\n"
        "import aion.control, aion.control._ops, aion.control._render, aion.control._views\n"
        "print(sorted(name for name in sys.modules if name.startswith('aion.engine')))\n"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"


def test_the_tree_readers_agree_with_the_engine() -> None:
    assert _tree.RUN_ROLE == engine_tree.RUN_ROLE
    tree = {"id": "root", "children": [{"id": "a", "children": [{"id": "b"}]}, {"id": "c", "children": None}]}
    assert list(_tree.walk(tree)) == list(engine_tree.walk(tree))
    for child_id in (
        _messages.run_child_id("5f0c-run", "orders/1:x"),
        _messages.run_child_id("5f0c-run.3", "wf"),
        _messages.query_child_id(7, "a:b:c"),
    ):
        assert _tree.parse_child_id(child_id) == _messages.parse_child_id(child_id)
        token = _tree.parse_child_id(child_id)[1]
        assert _tree.run_id_of_token(token) == _messages.run_id_of_token(token)
    assert _tree.parse_child_id(_messages.run_child_id("r-1.2", "wf")) == ("run", "r-1.2", "wf")
    assert _tree.run_id_of_token("r-1.2") == "r-1"
