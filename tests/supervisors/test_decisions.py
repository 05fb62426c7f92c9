"""The pure restart decisions (`supervisors._decisions`), driven with made-up times: no clock, no process.

And one supervisor with a fake clock: it gives up after N crashes within its window, and does not when the
crashes are spread beyond it, without any sleeping to move time.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

import supervisors as sv
from supervisors._decisions import (
    ExitDecision,
    Intensity,
    Verdict,
    add_restart,
    decide_exit,
    escalation_reason,
    restart_group,
    restarts_after,
    should_arm,
)

from .helpers import Recorder, children_by_id, wait_until
from .targets import always_crash, worker

CRASH = sv.ExitReason(kind="killed", signal="SIGKILL")
NORMAL = sv.ExitReason.normal()


@dataclass(eq=False)
class Kid:
    """A child as the decisions see it."""

    name: str
    restart: sv.Restart = sv.Restart.PERMANENT
    running: bool = True
    dynamic: bool = False
    intensity: Intensity | None = None


def decide(
    failed: Kid,
    children: list[Kid],
    *,
    strategy: sv.Strategy = sv.Strategy.ONE_FOR_ONE,
    supervisor: Intensity | None = None,
    reason: sv.ExitReason = CRASH,
    now: float = 100.0,
) -> ExitDecision[Kid]:
    return decide_exit(
        failed=failed,
        reason=reason,
        children=children,
        strategy=strategy,
        supervisor=supervisor or Intensity(3, 5.0),
        now=now,
    )


def names(kids: tuple[Kid, ...]) -> list[str]:
    return [k.name for k in kids]


# -- counting restarts ------------------------------------------------------------------------------


def test_intensity_is_exceeded_by_the_restart_after_max_restarts_within_the_window() -> None:
    log: tuple[float, ...] = ()
    results = []
    for now in (10.0, 11.0, 12.0, 13.0):
        log, exceeded = add_restart(log, now, 3, 5.0)
        results.append(exceeded)
    assert results == [False, False, False, True]
    assert log == (10.0, 11.0, 12.0, 13.0)


def test_intensity_is_not_exceeded_when_restarts_are_spread_beyond_the_window() -> None:
    log: tuple[float, ...] = ()
    for now in (0.0, 6.0, 12.0, 18.0, 24.0, 30.0):
        log, exceeded = add_restart(log, now, 1, 5.0)
        assert not exceeded
        assert log == (now,)  # the older ones are forgotten


def test_restarts_exactly_at_the_window_edge_still_count() -> None:
    log, _ = add_restart((), 0.0, 1, 5.0)
    assert add_restart(log, 5.0, 1, 5.0) == ((0.0, 5.0), True)
    assert add_restart(log, 5.001, 1, 5.0) == ((5.001,), False)


def test_no_limit_records_nothing_and_is_never_exceeded() -> None:
    assert add_restart((1.0, 2.0), 3.0, None, 5.0) == ((1.0, 2.0), False)


def test_zero_restarts_allowed_is_exceeded_by_the_first() -> None:
    assert add_restart((), 1.0, 0, 5.0) == ((1.0,), True)


def test_intensity_add_and_at_limit_do_not_mutate() -> None:
    start = Intensity(2, 5.0)
    one, exceeded = start.add(1.0)
    assert not exceeded and start.restarts == () and one.restarts == (1.0,)
    assert not one.at_limit(2.0)
    two, _ = one.add(2.0)
    assert two.at_limit(3.0)  # a third restart now would be one too many
    assert not two.at_limit(7.5)  # both have left the window by then


# -- restart types ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("restart", "reason", "expected"),
    [
        (sv.Restart.PERMANENT, NORMAL, True),
        (sv.Restart.PERMANENT, CRASH, True),
        (sv.Restart.TRANSIENT, NORMAL, False),
        (sv.Restart.TRANSIENT, CRASH, True),
        (sv.Restart.TRANSIENT, sv.ExitReason.shutdown(), False),
        (sv.Restart.TEMPORARY, NORMAL, False),
        (sv.Restart.TEMPORARY, CRASH, False),
    ],
)
def test_restart_type_against_exit_reason(restart: sv.Restart, reason: sv.ExitReason, expected: bool) -> None:
    assert restarts_after(restart, reason) is expected
    kid = Kid("a", restart)
    decision = decide(kid, [kid], reason=reason)
    assert decision.verdict == (Verdict.RESTART if expected else Verdict.DONE)


def test_a_child_not_restarted_is_removed_if_temporary_or_dynamic_and_counts_nothing() -> None:
    sup = Intensity(3, 5.0, (99.0,))
    static = Kid("static", sv.Restart.TRANSIENT)
    dynamic = Kid("dynamic", sv.Restart.TRANSIENT, dynamic=True)
    temporary = Kid("temporary", sv.Restart.TEMPORARY)
    assert decide(static, [static], reason=NORMAL, supervisor=sup) == ExitDecision(Verdict.DONE, sup, None)
    assert names(decide(dynamic, [dynamic], reason=NORMAL, supervisor=sup).remove) == ["dynamic"]
    assert names(decide(temporary, [temporary], supervisor=sup).remove) == ["temporary"]


# -- strategies ---------------------------------------------------------------------------------------


def kids() -> list[Kid]:
    return [Kid("a"), Kid("b", sv.Restart.TEMPORARY), Kid("c"), Kid("d", running=False), Kid("e")]


def test_one_for_one_restarts_only_the_child() -> None:
    children = kids()
    decision = decide(children[2], children, strategy=sv.Strategy.ONE_FOR_ONE)
    assert decision.verdict == Verdict.RESTART
    assert names(decision.restart) == ["c"]
    assert decision.terminate == decision.remove == ()


def test_one_for_all_stops_every_running_sibling_in_reverse_and_restarts_all_in_order() -> None:
    children = kids()
    decision = decide(children[2], children, strategy=sv.Strategy.ONE_FOR_ALL)
    assert names(decision.terminate) == ["e", "b", "a"]  # d is not running
    assert names(decision.restart) == ["a", "c", "e"]  # b is temporary
    assert names(decision.remove) == ["b"]


def test_rest_for_one_stops_and_restarts_the_children_started_after() -> None:
    children = kids()
    decision = decide(children[2], children, strategy=sv.Strategy.REST_FOR_ONE)
    assert names(decision.terminate) == ["e"]
    assert names(decision.restart) == ["c", "e"]
    assert decision.remove == ()
    decision = decide(children[0], children, strategy=sv.Strategy.REST_FOR_ONE)
    assert names(decision.terminate) == ["e", "c", "b"]
    assert names(decision.restart) == ["a", "c", "e"]
    assert names(decision.remove) == ["b"]


def test_one_for_one_does_not_look_at_the_siblings() -> None:
    def siblings() -> Iterator[Kid]:
        raise AssertionError("one_for_one must not iterate over the children")
        yield Kid("never")

    failed = Kid("x")
    assert restart_group(sv.Strategy.ONE_FOR_ONE, siblings(), failed) == [failed]


# -- escalation and giving up -----------------------------------------------------------------------------


def test_the_supervisor_escalates_when_its_intensity_is_exceeded() -> None:
    kid = Kid("a")
    sup = Intensity(2, 5.0)
    verdicts = []
    for now in (1.0, 2.0, 3.0):
        decision = decide(kid, [kid], supervisor=sup, now=now)
        sup = decision.supervisor
        verdicts.append(decision.verdict)
    assert verdicts == [Verdict.RESTART, Verdict.RESTART, Verdict.ESCALATE]
    assert decision.restart == decision.terminate == ()
    reason = escalation_reason("root", sup, "a", CRASH)
    assert reason.is_abnormal
    assert reason.exc_type == "supervisors.MaxRestartsExceeded"
    assert "'root' exceeded 2 restarts in 5.0s" in (reason.message or "")


def test_a_child_with_its_own_intensity_is_given_up_without_counting_toward_the_supervisor() -> None:
    kid = Kid("a", dynamic=True, intensity=Intensity(1, 10.0))
    sup = Intensity(5, 10.0)
    first = decide(kid, [kid], supervisor=sup, now=1.0)
    assert first.verdict == Verdict.RESTART
    assert first.supervisor.restarts == (1.0,)
    kid.intensity = first.child
    second = decide(kid, [kid], supervisor=first.supervisor, now=2.0)
    assert second.verdict == Verdict.GIVE_UP
    assert names(second.remove) == ["a"]
    assert second.supervisor == first.supervisor  # the give-up did not count
    assert second.child is not None and second.child.restarts == (1.0, 2.0)


def test_a_child_with_its_own_intensity_spread_out_is_never_given_up() -> None:
    kid = Kid("a", intensity=Intensity(1, 10.0))
    sup = Intensity(None, 5.0)
    for now in itertools.islice(itertools.count(0.0, 11.0), 20):
        decision = decide(kid, [kid], supervisor=sup, now=now)
        assert decision.verdict == Verdict.RESTART
        kid.intensity, sup = decision.child, decision.supervisor


def test_should_arm_only_when_an_exit_would_restart_the_child_alone() -> None:
    free = Intensity(3, 5.0)
    full = Intensity(1, 5.0, (9.0,))
    ok = {"strategy": sv.Strategy.ONE_FOR_ONE, "restart": sv.Restart.PERMANENT, "child": None, "supervisor": free}
    assert should_arm(**ok, now=10.0)  # type: ignore[arg-type]
    assert not should_arm(**{**ok, "strategy": sv.Strategy.ONE_FOR_ALL}, now=10.0)  # type: ignore[arg-type]
    assert not should_arm(**{**ok, "restart": sv.Restart.TEMPORARY}, now=10.0)  # type: ignore[arg-type]
    assert not should_arm(**{**ok, "child": full}, now=10.0)  # type: ignore[arg-type]
    assert not should_arm(**{**ok, "supervisor": full}, now=10.0)  # type: ignore[arg-type]
    assert should_arm(**{**ok, "supervisor": full}, now=14.5)  # type: ignore[arg-type]


# -- the actor, with a fake clock ---------------------------------------------------------------------------


class FakeClock:
    """Monotonic time that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def _kill_and_wait_restart(sup: sv.Supervisor, child_id: str, restarts: int) -> None:
    assert sup.kill_child(child_id)
    wait_until(
        lambda: (
            (children_by_id(sup)[child_id].restarts, children_by_id(sup)[child_id].state)
            == (
                restarts,
                "running",
            )
        )
    )


def test_supervisor_with_a_fake_clock_escalates_after_n_crashes_within_its_window(zygote: sv.Zygote) -> None:
    clock = FakeClock()
    rec = Recorder()
    spec = sv.SupervisorSpec(id="root", max_restarts=2, max_seconds=60.0, children=[rec.spec("w", worker)])
    sup = sv.Supervisor.start(spec, zygote=zygote, clock=clock)
    try:
        _kill_and_wait_restart(sup, "w", 1)
        clock.advance(59.0)  # still within the window of the first restart
        _kill_and_wait_restart(sup, "w", 2)
        assert sup.kill_child("w")
        reason = sup.wait(30)
        assert reason is not None and reason.exc_type == "supervisors.MaxRestartsExceeded"
    finally:
        sup.stop(timeout=30)


def test_supervisor_with_a_fake_clock_keeps_restarting_crashes_spread_beyond_its_window(
    zygote: sv.Zygote,
) -> None:
    clock = FakeClock()
    rec = Recorder()
    spec = sv.SupervisorSpec(id="root", max_restarts=1, max_seconds=60.0, children=[rec.spec("w", worker)])
    sup = sv.Supervisor.start(spec, zygote=zygote, clock=clock)
    try:
        for n in range(1, 5):
            _kill_and_wait_restart(sup, "w", n)
            clock.advance(61.0)  # the last restart leaves the window
        assert sup.is_alive()
        assert sup.tree()["uptime"] == pytest.approx(4 * 61.0)
    finally:
        sup.stop(timeout=30)


def test_per_child_give_up_with_a_fake_clock(zygote: sv.Zygote) -> None:
    clock = FakeClock()
    rec = Recorder()
    sup = sv.Supervisor.start(sv.SupervisorSpec(id="root", max_restarts=None), zygote=zygote, clock=clock)
    try:
        sup.start_child(rec.spec("c", always_crash, max_restarts=3, max_seconds=60.0))
        wait_until(lambda: len(rec.give_ups) == 1, 30)
        assert len(rec.exits_of("c")) == 4  # 3 restarts allowed, the 4th exit gives up
        assert sup.which_children() == []
        assert sup.is_alive()
    finally:
        sup.stop(timeout=30)
