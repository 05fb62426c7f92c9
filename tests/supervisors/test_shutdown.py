"""Ordered shutdown, grace periods, terminate_child, dynamic children."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import supervisors as sv

from .helpers import Recorder, children_by_id, wait_until
from .targets import graceful, ignore_sigterm, worker


def test_children_stop_in_reverse_start_order(zygote: sv.Zygote, rec: Recorder) -> None:
    root = sv.Supervisor.start(
        sv.SupervisorSpec(
            id="root",
            children=[
                rec.spec("a", graceful),
                sv.SupervisorSpec(id="inner", children=[rec.spec("b1", graceful), rec.spec("b2", graceful)]),
                rec.spec("c", graceful),
            ],
        ),
        zygote=zygote,
    )
    root.start_child(rec.spec("d", graceful))
    wait_until(lambda: len(rec.messages) == 5)
    root.stop()
    assert [cid for cid, _ in rec.exits] == ["d", "c", "b2", "b1", "a"]
    assert all(r.kind == "shutdown" and r.signal == "SIGTERM" for _, r in rec.exits)
    # every child ran its finally block (SIGTERM is a graceful stop)
    assert sorted(cid for cid, m in rec.messages if m == "cleaned-up") == ["a", "b1", "b2", "c", "d"]
    assert not root.is_alive()
    assert root.wait(0) == sv.ExitReason.shutdown()
    assert zygote.pids() == []


def test_grace_period_then_sigkill(start_sup: Callable[[sv.SupervisorSpec], sv.Supervisor], rec: Recorder) -> None:
    sup = start_sup(sv.SupervisorSpec(id="s"))
    sup.start_child(rec.spec("stubborn", ignore_sigterm, shutdown_timeout=0.2))
    wait_until(lambda: rec.messages_of("stubborn") == ["ready"])
    reason = sup.terminate_child("stubborn")
    assert reason is not None
    assert reason.kind == "shutdown"
    assert reason.signal == "SIGKILL"
    assert "stubborn" not in children_by_id(sup)


def test_terminate_child_kill_is_immediate(
    start_sup: Callable[[sv.SupervisorSpec], sv.Supervisor], rec: Recorder
) -> None:
    sup = start_sup(sv.SupervisorSpec(id="s", children=[rec.spec("static", worker)]))
    sup.start_child(rec.spec("dyn", graceful, shutdown_timeout=30))
    wait_until(lambda: rec.messages_of("dyn") == ["ready"])
    reason = sup.terminate_child("dyn", kill=True)
    assert reason is not None and reason.signal == "SIGKILL"
    assert rec.messages_of("dyn") == ["ready"]  # no clean-up: killed at once

    # a static child stays listed, stopped, and can be restarted or deleted
    sup.terminate_child("static")
    info = children_by_id(sup)["static"]
    assert info.state == "stopped" and info.pid is None
    pid = sup.restart_child("static")
    assert isinstance(pid, int) and sup.pid_of("static") == pid
    rec.ping("static", 1)
    sup.terminate_child("static")
    sup.delete_child("static")
    assert children_by_id(sup) == {}


def test_dynamic_children_simple_one_for_one(
    start_sup: Callable[[sv.SupervisorSpec], sv.Supervisor], rec: Recorder
) -> None:
    root = start_sup(sv.SupervisorSpec(id="root"))
    wf = root.start_child(sv.SupervisorSpec(id="wf:checkout", max_restarts=100, max_seconds=10))
    assert isinstance(wf, sv.Supervisor)
    pids = [
        wf.start_child(rec.spec(f"order-{i}", worker, restart=sv.Restart.TRANSIENT, meta={"n": i})) for i in range(5)
    ]
    assert len(set(pids)) == 5
    assert wf.count_children() == {"specs": 5, "active": 5, "supervisors": 0, "workers": 5}
    with pytest.raises(sv.SupervisorError, match="already has a child"):
        wf.start_child(rec.spec("order-0", worker))
    rec.channels["order-1"].send(["return"])  # a run that completes is removed
    wait_until(lambda: "order-1" not in children_by_id(wf))
    rec.channels["order-2"].send(["raise", "x"])  # a run that crashes is restarted
    wait_until(lambda: children_by_id(wf)["order-2"].restarts == 1)
    wf.terminate_child("order-3")
    assert set(children_by_id(wf)) == {"order-0", "order-2", "order-4"}
    tree = root.tree()
    (wf_node,) = tree["children"]
    assert [n["meta"]["n"] for n in wf_node["children"]] == [0, 2, 4]
    root.terminate_child("wf:checkout")
    assert not wf.is_alive()
    assert root.which_children() == []


def test_start_errors(start_sup: Callable[[sv.SupervisorSpec], sv.Supervisor], zygote: sv.Zygote) -> None:
    sup = start_sup(sv.SupervisorSpec(id="s"))
    with pytest.raises(sv.StartError, match="no 'missing'"):
        sup.start_child(sv.ProcessSpec(id="x", target="tests.supervisors.targets:missing"))
    with pytest.raises(sv.StartError, match="msgpack"):
        sup.start_child(sv.ProcessSpec(id="x", target=worker, args=(object(),)))
    with pytest.raises(sv.TargetError, match="lambda"):
        sv.ProcessSpec(id="x", target=lambda ch: None)
    assert sup.which_children() == []
    with pytest.raises(sv.StartError, match="failed to start"):
        sv.Supervisor.start(
            sv.SupervisorSpec(id="bad", children=[sv.ProcessSpec(id="x", target="no.such.module:f")]),
            zygote=zygote,
        )
    with pytest.raises(sv.StartError, match="no zygote"):
        sv.Supervisor.start(sv.SupervisorSpec(id="bad", children=[sv.ProcessSpec(id="x", target=worker)]))
