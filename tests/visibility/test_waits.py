"""What a run waits on, whatever the wait: an untimed ``wait_signal`` or ``wait_condition`` is named by
``describe()``, ``aion describe`` and the tree (from what its workflow process reports), also while the run is
evicted; without a running engine, the CLI says that it cannot know."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import aion
from aion._waits import UNKNOWN_WITHOUT_ENGINE
from aion.control._views import annotate_tree, describe_view
from aion.engine._tree import walk
from tests.cli.conftest import Server, serve  # noqa: F401 - the fixture is used by name
from tests.cli.conftest import aion as run_aion
from tests.helpers import wait_until
from tests.visibility import flows


def _tree_waits(e: aion.Engine) -> dict[str, str]:
    """The running workflow process nodes of the tree: workflow id -> what it waits on."""
    tree = annotate_tree(e.supervision_tree(), e.store, e.run_waits)
    return {
        node["workflow"]["workflow_id"]: node["workflow"]["waiting_on"]
        for _, node in walk(tree)
        if "workflow" in node and node.get("state") == "running"
    }


@pytest.mark.timeout(90)
def test_an_untimed_signal_wait_is_named_also_after_eviction(tmp_path: Path) -> None:
    workflows = [flows.approval, flows.several]
    with aion.Engine(tmp_path / "data", workflows=workflows, activity_workers=1, max_resident=1) as e:
        first = e.start_workflow(flows.approval, "c-1", workflow_id="w-approve")
        described = wait_until(lambda: (d := first.describe()).waits is not None and d, timeout=30)
        assert described.waiting_on == "signal 'approve'" and described.waits == ("signal 'approve'",)
        assert describe_view(e.store, "w-approve", e.run_waits)["waiting_on"] == "signal 'approve'"
        assert wait_until(lambda: _tree_waits(e).get("w-approve"), timeout=30) == "signal 'approve'"

        # a second run takes the only slot: the first, parked on its signal, is evicted
        second = e.start_workflow(flows.several, 2, workflow_id="w-several")
        wait_until(lambda: e.residency()["evictions"] >= 1 and "w-approve" not in _tree_waits(e), timeout=30)
        view = describe_view(e.store, "w-approve", e.run_waits)
        assert view["waiting_on"] == "signal 'approve'" and view["waits"] == ["signal 'approve'"]
        assert first.describe().waiting_on == "signal 'approve'"

        several = wait_until(lambda: (d := second.describe()).waits is not None and d, timeout=30)
        assert several.waiting_on == "signal 'a', signal 'b', the condition"
        second.signal("a", 1)
        wait_until(lambda: second.describe().waiting_on == "signal 'b', the condition", timeout=30)
        second.signal("b", 2)
        assert second.result(timeout=30) == 3
        assert second.describe().waiting_on is None and second.describe().waits is None

        first.signal("approve", "ann")
        assert first.result(timeout=30) == "c-1 approved by ann"
        assert first.describe().waiting_on is None


def _cli_describe(data: Path, workflow_id: str) -> dict[str, Any]:
    result = run_aion("describe", workflow_id, "--json", "--data-dir", data)
    assert result.code == 0, result.err
    return result.json()  # type: ignore[no-any-return]


def _cli_tree_waits(data: Path) -> dict[str, str]:
    result = run_aion("tree", "--json", "--data-dir", data)
    assert result.code == 0, result.err
    return {
        node["workflow"]["workflow_id"]: node["workflow"]["waiting_on"]
        for _, node in walk(result.json()["root"])
        if "workflow" in node and node.get("state") == "running"
    }


@pytest.mark.timeout(120)
def test_aion_describe_and_tree_name_the_signal_then_say_unknown_without_engine(
    serve: Callable[..., Server],  # noqa: F811
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    server = serve(data, "--module", "tests.visibility.flows", "--max-resident", "1")
    assert run_aion("start", "approval", "--input", '"c-1"', "--id", "w-approve", "--data-dir", data).code == 0
    wait_until(lambda: _cli_describe(data, "w-approve")["waits"] is not None, timeout=30)
    view = _cli_describe(data, "w-approve")
    assert view["waiting_on"] == "signal 'approve'" and view["waits"] == ["signal 'approve'"]
    assert wait_until(lambda: _cli_tree_waits(data).get("w-approve"), timeout=30) == "signal 'approve'"
    table = run_aion("describe", "w-approve", "--data-dir", data).out
    assert "signal 'approve'" in table

    assert run_aion("start", "several", "--input", "2", "--id", "w-several", "--data-dir", data).code == 0
    wait_until(lambda: "w-approve" not in _cli_tree_waits(data) and "w-several" in _cli_tree_waits(data), timeout=30)
    assert _cli_describe(data, "w-approve")["waiting_on"] == "signal 'approve'"  # evicted, still named

    assert server.stop() == 0
    offline = _cli_describe(data, "w-approve")
    assert offline["waiting_on"] == UNKNOWN_WITHOUT_ENGINE and offline["waits"] is None
