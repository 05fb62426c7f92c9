"""``Latch``, the one-shot event of a process child's spawn and exit: what `threading.Event` promised its
callers (wait with or without a timeout, any number of waiters, set from several threads at once)."""

from __future__ import annotations

import threading

import pytest

from supervisors._latch import Latch


@pytest.mark.timeout(30)
def test_a_latch_not_set_makes_its_waiters_time_out() -> None:
    latch = Latch()
    assert not latch.is_set()
    assert latch.wait(0.01) is False
    assert latch.wait(0) is False
    assert latch.wait(-1) is False  # a deadline already past is no error, as with threading.Event


@pytest.mark.timeout(30)
def test_set_releases_every_waiter_now_and_later() -> None:
    latch = Latch()
    passed: list[bool] = []
    waiters = [threading.Thread(target=lambda: passed.append(latch.wait())) for _ in range(8)]
    waiters += [threading.Thread(target=lambda: passed.append(latch.wait(20.0))) for _ in range(8)]
    for waiter in waiters:
        waiter.start()
    latch.set()
    for waiter in waiters:
        waiter.join(20.0)
        assert not waiter.is_alive()
    assert passed == [True] * 16
    assert latch.is_set() and latch.wait(0) and latch.wait()
    latch.set()  # again: nothing happens
    assert latch.wait(0)


def set_after(start: threading.Barrier, latch: Latch, errors: list[BaseException]) -> None:
    start.wait()
    try:
        latch.set()
    except BaseException as exc:  # a second release of the gate would raise RuntimeError here
        errors.append(exc)


@pytest.mark.timeout(30)
def test_threads_setting_it_at_once_open_it_once() -> None:
    for _ in range(50):
        latch = Latch()
        start = threading.Barrier(8)
        errors: list[BaseException] = []
        setters = [threading.Thread(target=set_after, args=(start, latch, errors)) for _ in range(8)]
        for setter in setters:
            setter.start()
        for setter in setters:
            setter.join(20.0)
        assert errors == []
        assert latch.wait(0) and latch.wait(0)  # the gate was given back by the first waiter
