"""``aion serve --task-queue``: local task queues declared on the command line, and the bad ones refused."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aion.cli._queue_option import parse_task_queue
from aion.engine import LocalQueue, RayQueue
from aion.errors import InvalidArgumentError
from tests.cli.conftest import Server, aion, ok, wait_for

QUEUED = ("--module", "tests.cli.queued_flows")


def _queue_workers(data_dir: Path) -> dict[str, list[int]]:
    """The pids of each activity pool's workers in the live tree, by the pool's supervisor id."""
    root = ok("tree", "--json", "--data-dir", data_dir).json()["root"]
    return {
        child["id"]: [worker["pid"] for worker in child.get("children") or []]
        for child in root["children"]
        if child["id"].startswith("activities")
    }


@pytest.mark.timeout(60)
def test_serve_declares_task_queues_and_runs_their_activities(serve: Callable[..., Server], data_dir: Path) -> None:
    server = serve(data_dir, *QUEUED, "--task-queue", "mail:workers=2,rate-limit=50", "--task-queue", "cpu:engine-cpu")
    pools = wait_for(
        lambda: (p := _queue_workers(data_dir)) and all(p.get(k) for k in ("activities:mail", "activities:cpu")) and p,
        "the mail and cpu pools in the tree",
    )
    assert len(pools["activities:mail"]) == 2
    assert len(pools["activities:cpu"]) == 1  # --activity-workers 1, the serve fixture's
    assert len(pools["activities"]) == 1  # the default queue is still there

    ok("start", "mailer", "--input", '"ops@example.com"', "--id", "queued", "--data-dir", server.data_dir)
    result = ok("result", "queued", "--timeout", "30", "--json", "--data-dir", server.data_dir).json()["result"]
    assert result[1] == 45
    mailed_by = int(result[0].rsplit(" ", 1)[1])
    assert result[0].startswith("mailed ops@example.com") and mailed_by in pools["activities:mail"]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="placement pins only with two CPUs or more")
@pytest.mark.timeout(60)
def test_serve_task_queue_engine_cpu_puts_that_queue_on_every_cpu(serve: Callable[..., Server], data_dir: Path) -> None:
    cpus = frozenset(os.sched_getaffinity(0))
    serve(data_dir, *QUEUED, "--task-queue", "mail", "--task-queue", "cpu:engine-cpu")

    def affinities() -> dict[str, set[frozenset[int]]] | None:
        found: dict[str, set[frozenset[int]]] = {}
        with contextlib.suppress(ProcessLookupError):
            for pool, pids in _queue_workers(data_dir).items():
                found[pool] = {frozenset(os.sched_getaffinity(pid)) for pid in pids}
            if found.get("activities:mail") and found.get("activities:cpu"):
                return found
        return None

    found = wait_for(affinities, "both queues' workers in the tree")
    assert found["activities:cpu"] == {cpus}
    assert len(found["activities:mail"]) == 1 and next(iter(found["activities:mail"])) < cpus


@pytest.mark.timeout(60)
def test_serve_with_the_module_but_not_its_queue_fails_the_run_naming_the_queue(
    serve: Callable[..., Server], data_dir: Path
) -> None:
    server = serve(data_dir, *QUEUED)
    ok("start", "mailer", "--input", '"x"', "--id", "undeclared", "--data-dir", server.data_dir)
    result = aion("result", "undeclared", "--timeout", "30", "--json", "--data-dir", server.data_dir)
    assert result.code != 0
    assert "task queue 'mail' is not declared" in result.err + result.out
    # and the server said so as it started
    assert "activity 'send_mail' sends its calls to task queue 'mail', which this engine does not declare" in (
        server.log.read_text()
    )


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "mail:fast",
            "unknown option 'fast' (known: workers, max-concurrent, rate-limit, engine-cpu, ray, address, num-cpus, "
            "num-gpus, resource.NAME)",
        ),
        ("mail:workers=two", "workers must be an integer, got 'two'"),
        ("mail:workers=0", "LocalQueue workers must be an int of at least 1, got 0"),
        ("mail:rate-limit=-1", "rate_limit must be a positive number"),
        ("mail:engine-cpu=yes", "engine-cpu takes no value"),
        ("a/b", "a task queue name must be a non-empty string"),
        ("gpu:num-gpus=1", "num-gpus is an option of a Ray queue: add the option ray"),
        ("gpu:ray,workers=2", "workers is an option of a local queue, and this is a Ray queue (ray)"),
        ("gpu:ray,engine-cpu", "engine-cpu is an option of a local queue, and this is a Ray queue (ray)"),
        ("gpu:ray,num-cpus=-1", "RayQueue num_cpus must be a number >= 0, got -1.0"),
        ("gpu:ray,resource.media=lots", "resource.media must be a number, got 'lots'"),
        ("gpu:ray,address=", "address must be an address, got ''"),
        ("gpu:ray=auto", "ray takes no value"),
        ("mail:eu", "unknown option 'eu' (known: workers, "),
        ("mail:eu", "a queue name holding ':' ends with one more, as in 'mail:eu:'"),
    ],
)
def test_serve_refuses_a_bad_task_queue(data_dir: Path, spec: str, message: str) -> None:
    result = aion("serve", "--data-dir", data_dir, "--module", "tests.cli.flows", "--task-queue", spec, timeout=20)
    assert result.code == 2 and "--task-queue" in result.err and message in result.err, result.err
    assert not data_dir.exists()  # refused before anything was created


@pytest.mark.timeout(30)
def test_serve_refuses_a_task_queue_declared_twice(data_dir: Path) -> None:
    result = aion(
        "serve", "--data-dir", data_dir, "--module", "tests.cli.flows",
        "--task-queue", "mail", "--task-queue", "mail:workers=2", timeout=20,
    )  # fmt: skip
    assert result.code == 2 and "queue 'mail' is declared twice" in result.err, result.err


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("mail", ("mail", LocalQueue())),
        ("mail:workers=2,rate-limit=5", ("mail", LocalQueue(workers=2, rate_limit=5.0))),
        (" cpu : max-concurrent = 3 , engine-cpu ", ("cpu", LocalQueue(max_concurrent=3, use_engine_cpu=True))),
        ("gpu:ray", ("gpu", RayQueue())),
        # A name may hold ':': it ends at the first ':' followed by a known option, or by nothing.
        ("mail:eu:workers=2", ("mail:eu", LocalQueue(workers=2))),
        ("mail:eu:", ("mail:eu", LocalQueue())),
        ("a:b:c:rate-limit=5", ("a:b:c", LocalQueue(rate_limit=5.0))),
        ("x:ray:workers=2", ("x:ray", LocalQueue(workers=2))),
        ("gpu:ray,address=ray://head:10001", ("gpu", RayQueue(address="ray://head:10001"))),
        (
            "media:num-gpus=0.5,ray,address=ray://head:10001,resource.media_node=0.01,num-cpus=0,rate-limit=2",
            (
                "media",
                RayQueue(
                    address="ray://head:10001", num_cpus=0, num_gpus=0.5, resources={"media_node": 0.01}, rate_limit=2
                ),
            ),
        ),
    ],
)
@pytest.mark.timeout(10)
def test_parse_task_queue(spec: str, expected: tuple[str, Any]) -> None:
    assert parse_task_queue(spec) == expected


@pytest.mark.parametrize(
    "spec",
    [
        "",
        ":workers=2",
        "q:workers=1,workers=2",
        "q:engine-cpu,engine-cpu",
        "q:workers=2,",
        "q:ray,ray",
        "q:ray,resource.a=1,resource.a=2",
        "q:ray,resource.=1",
        "mail:eu",
        "mail:eu:workrs=2",
    ],
)
@pytest.mark.timeout(10)
def test_parse_task_queue_refuses(spec: str) -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape(repr(spec))):
        parse_task_queue(spec)


@pytest.mark.timeout(30)
def test_serve_refuses_engine_cpu_for_a_default_queue_on_ray(data_dir: Path) -> None:
    result = aion(
        "serve", "--data-dir", data_dir, "--module", "tests.cli.flows",
        "--task-queue", "default:ray", "--activities-on-engine-cpu", timeout=20,
    )  # fmt: skip
    assert result.code == 2 and "--activities-on-engine-cpu is for a local default queue" in result.err, result.err
    assert not data_dir.exists()
