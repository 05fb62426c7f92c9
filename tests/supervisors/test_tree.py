"""Introspection: tree() is a JSON-able, consistent snapshot, even while children are being restarted."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pykka
import pytest

import supervisors as sv

from .helpers import Recorder, children_by_id, wait_until
from .targets import worker


class Counter(pykka.ThreadingActor):
    """An actor child for the tree."""

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("actor crashed")
        return "ok"


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("children", []):
        yield from _walk(child)


def _spec(rec: Recorder) -> sv.SupervisorSpec:
    return sv.SupervisorSpec(
        id="root",
        strategy=sv.Strategy.ONE_FOR_ONE,
        max_restarts=1000,
        max_seconds=10,
        children=[
            rec.spec("a", worker, meta={"role": "first"}),
            sv.SupervisorSpec(
                id="wf:checkout",
                strategy=sv.Strategy.REST_FOR_ONE,
                max_restarts=1000,
                max_seconds=10,
                children=[rec.spec("b", worker), rec.spec("c", worker)],
            ),
            sv.ActorSpec(id="counter", actor_class=Counter),
        ],
    )


def test_tree_schema(start_sup: Callable[[sv.SupervisorSpec], sv.Supervisor], rec: Recorder) -> None:
    root = start_sup(_spec(rec))
    root.update_meta("a", workflow_id="order-1")
    tree = root.tree()
    json.dumps(tree)
    assert tree["id"] == "root"
    assert tree["kind"] == "supervisor"
    assert tree["strategy"] == "one_for_one"
    assert tree["pid"] == os.getpid()
    a, wf, counter = tree["children"]
    assert a["kind"] == "process"
    assert a["meta"] == {"role": "first", "workflow_id": "order-1"}
    assert a["state"] == "running" and a["alive"] is True
    assert a["restarts"] == 0 and a["last_exit"] is None
    assert a["memory_rss"] > 0 and a["cpu_seconds"] >= 0 and a["uptime"] >= 0
    assert wf["kind"] == "supervisor" and wf["strategy"] == "rest_for_one"
    assert [n["id"] for n in wf["children"]] == ["b", "c"]
    assert counter["kind"] == "actor" and counter["pid"] == os.getpid()
    keys = {"id", "kind", "pid", "state", "restarts", "last_exit", "uptime", "meta"}
    for node in list(_walk(tree))[1:]:
        assert keys <= set(node)

    os.kill(a["pid"], signal.SIGKILL)
    wait_until(lambda: root.tree()["children"][0]["restarts"] == 1)
    a2 = root.tree()["children"][0]
    assert a2["last_exit"]["kind"] == "killed" and a2["last_exit"]["signal"] == "SIGKILL"
    assert a2["pid"] != a["pid"]
    assert a2["meta"]["workflow_id"] == "order-1"  # metadata survives restarts


def test_actor_child_is_restarted_when_it_crashes(
    start_sup: Callable[[sv.SupervisorSpec], sv.Supervisor], rec: Recorder
) -> None:
    root = start_sup(_spec(rec))
    node = root.tree()["children"][2]
    ref = pykka.ActorRegistry.get_by_urn(node["actor_urn"])
    assert ref is not None
    assert ref.ask("ping") == "ok"
    ref.tell("crash")
    wait_until(lambda: children_by_id(root)["counter"].restarts == 1)
    info = children_by_id(root)["counter"]
    assert info.last_exit is not None
    assert info.last_exit.kind == "exception"
    assert info.last_exit.exc_type == "RuntimeError"
    assert info.last_exit.message == "actor crashed"
    new = pykka.ActorRegistry.get_by_urn(root.tree()["children"][2]["actor_urn"])
    assert new is not None and new.ask("ping") == "ok"
    # a dynamic actor child
    extra = root.start_child(sv.ActorSpec(id="extra", actor_class=Counter, restart=sv.Restart.TEMPORARY))
    assert extra.ask("x") == "ok"
    extra.stop()
    wait_until(lambda: "extra" not in children_by_id(root))


@pytest.mark.slow
def test_snapshot_consistent_during_restarts(
    start_sup: Callable[[sv.SupervisorSpec], sv.Supervisor], rec: Recorder
) -> None:
    root = start_sup(_spec(rec))
    stop = threading.Event()
    kills = [0]
    killed: set[int] = set()  # the pids signalled (a kill may land on one already dead, not yet replaced)

    def killer() -> None:
        while not stop.is_set() and kills[0] < 60:
            tree = root.tree()
            victims = [n for n in _walk(tree) if n["kind"] == "process" and n["state"] == "running"]
            if not victims:
                continue
            victim = victims[kills[0] % len(victims)]
            try:
                os.kill(victim["pid"], signal.SIGKILL)
                kills[0] += 1
                killed.add(victim["pid"])
            except ProcessLookupError:
                pass

    thread = threading.Thread(target=killer)
    thread.start()
    snapshots = 0
    try:
        while thread.is_alive():
            tree = root.tree()
            json.dumps(tree)
            nodes = list(_walk(tree))
            ids = [n["id"] for n in nodes]
            assert len(ids) == len(set(ids)), ids
            running = [n for n in nodes if n["kind"] == "process" and n["state"] == "running"]
            pids = [n["pid"] for n in running]
            assert len(pids) == len(set(pids)), pids
            for n in running:
                assert n["alive"] is True, n  # a dead pid is never reported as running
            snapshots += 1
    finally:
        stop.set()
        thread.join()
    assert kills[0] >= 20
    assert snapshots > 0

    # Everything comes back: every child runs again, none in a pid that was killed (on a loaded machine the last
    # kills' exits may still be on their way when the killer stops; a tree read then counted no restart once).
    def back() -> dict[str, Any] | None:
        tree = root.tree()
        nodes = [n for n in _walk(tree) if n["kind"] in ("process", "actor")]
        replaced = all(n["state"] == "running" and n.get("pid") not in killed for n in nodes)
        return tree if replaced else None

    final = wait_until(back, timeout=30)
    # (a kill can land on a process already dead, or one its supervisor is stopping, so restarts <= kills)
    total = sum(n["restarts"] for n in _walk(final) if n["kind"] == "process")
    assert 1 <= total <= kills[0], (kills[0], len(killed), final)
