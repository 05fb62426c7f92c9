"""Activities on a Ray queue, against a real local Ray cluster of two nodes (``conftest.ray_cluster``): results,
retries with durable backoff, start-to-close and schedule-to-close killing the Ray task, heartbeats (through the
hub) and their timeout, cancellation, a SIGKILLed Ray worker, a Ray node dying, routing by a node's custom
resource, and an engine SIGKILLed with attempts in flight."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import aion
from aion import events as ev
from tests.engine import activity_flows as af
from tests.engine.flows import executions
from tests.engine.helpers import engine_process, recorded
from tests.helpers import is_gone, wait_until
from tests.ray_executor import flows
from tests.ray_executor.conftest import RayCluster

WORKFLOWS = [*af.WORKFLOWS, *flows.WORKFLOWS]
ACTIVITIES = [*af.ACTIVITIES, *flows.ACTIVITIES]
ON_RAY = {"start_to_close_timeout": 60, "task_queue": "ray"}


def queues(address: str) -> dict[str, aion.RayQueue]:
    return {
        "ray": aion.RayQueue(address=address, num_cpus=0.25),
        "media_node": aion.RayQueue(address=address, num_cpus=0, resources={"media_node": 0.01}),
    }


@pytest.fixture
def engine(tmp_path: Path, ray_cluster: RayCluster) -> Iterator[aion.Engine]:
    with aion.Engine(
        tmp_path / "data",
        workflows=WORKFLOWS,
        activities=ACTIVITIES,
        activity_workers=1,
        activity_cancel_grace=2,
        task_queues=queues(ray_cluster.address),
    ) as engine:
        yield engine


def of_type(history: list[ev.Event], event_type: type[ev.Event]) -> list[ev.Event]:
    return [event for event in history if isinstance(event, event_type)]


def call(engine: aion.Engine, log: str, name: str, *args: object, **options: object) -> aion.WorkflowHandle:
    return engine.start_workflow(af.call, log, name, list(args), {**ON_RAY, **options})


@pytest.mark.timeout(120)
def test_an_activity_runs_on_ray_and_its_result_reaches_the_workflow(
    engine: aion.Engine, ray_cluster: RayCluster
) -> None:
    handle = engine.start_workflow(flows.routed, "hello", workflow_id="routed")
    anywhere, media = handle.result(timeout=90)
    # It ran in a Ray worker, not in the engine's pool, and activity.info() worked there.
    assert anywhere["pid"] not in {p.pid for p in psutil.Process().children(recursive=True) if "ray::" not in p.name()}
    assert anywhere["info"] == ["routed", 1, "where_am_i", 1]
    # The queue asking for the custom resource ran on the node that offers it.
    assert media["node"] == ray_cluster.media_node_id
    history = handle.history()
    assert [s.options.get("task_queue") for s in of_type(history, ev.ActivityScheduled)] == ["ray", "media_node"]
    started, completed = of_type(history, ev.ActivityStarted), of_type(history, ev.ActivityCompleted)
    assert len(started) == 2 and len(completed) == 2
    assert history.index(started[0]) < history.index(completed[0])


@pytest.mark.timeout(120)
def test_a_retryable_failure_is_retried_with_a_durable_backoff(engine: aion.Engine, log: str) -> None:
    retry = {"initial_interval": 0.5, "maximum_attempts": 5}
    handle = call(engine, log, "flaky", 2, retry_policy=retry)
    assert handle.result(timeout=90) == 3
    history = handle.history()
    failed = of_type(history, ev.ActivityFailed)
    started = of_type(history, ev.ActivityStarted)
    assert [f.attempt for f in failed] == [1, 2] and all(f.failure.type == "ConnectionError" for f in failed)
    for fail, next_start in zip(failed, started[1:], strict=True):
        assert fail.next_attempt_at is not None and next_start.recorded_at >= fail.next_attempt_at
    assert executions(log) == ["flaky:1", "flaky:2", "flaky:3"]


@pytest.mark.timeout(120)
def test_errors_keep_their_types_and_results_their_payload_limit(engine: aion.Engine, log: str) -> None:
    declined = call(engine, log, "declines", "application").result(timeout=90)
    assert declined == {"error": "Declined", "attempt": 1, "details": {"code": 51}}
    unserialisable = call(engine, log, "returns_unserialisable").result(timeout=90)
    assert unserialisable["error"] == "PayloadError" and unserialisable["attempt"] == 1


@pytest.mark.timeout(120)
def test_start_to_close_kills_the_ray_task(engine: aion.Engine, log: str, gates: Path) -> None:
    handle = call(
        engine, log, "waits_for_gate", str(gates), start_to_close_timeout=6, retry_policy={"maximum_attempts": 1}
    )
    pid = int(wait_until(lambda: (gates / "pid.1").exists() and (gates / "pid.1").read_text(), timeout=90))
    assert handle.result(timeout=60)["error"] == "StartToCloseTimeout"
    wait_until(lambda: is_gone(pid), timeout=30)


@pytest.mark.timeout(120)
def test_schedule_to_close_kills_the_ray_task(engine: aion.Engine, log: str, gates: Path) -> None:
    handle = call(engine, log, "waits_for_gate", str(gates), schedule_to_close_timeout=8)
    pid = int(wait_until(lambda: (gates / "pid.1").exists() and (gates / "pid.1").read_text(), timeout=90))
    assert handle.result(timeout=60)["error"] == "ScheduleToCloseTimeout"
    wait_until(lambda: is_gone(pid), timeout=30)


@pytest.mark.timeout(120)
def test_heartbeats_reach_the_engine_and_their_timeout_is_enforced(engine: aion.Engine, log: str) -> None:
    details = call(engine, log, "heartbeats_then_fails", retry_policy={"initial_interval": 0.2})
    assert details.result(timeout=90) == {"progress": 41}
    (failed,) = of_type(details.history(), ev.ActivityFailed)
    assert failed.heartbeat_details == {"progress": 41}
    stalls = call(engine, log, "heartbeats_once_then_stalls", heartbeat_timeout=2, retry_policy={"maximum_attempts": 1})
    assert stalls.result(timeout=60)["error"] == "HeartbeatTimeout"


@pytest.mark.timeout(120)
def test_heartbeats_keep_a_long_attempt_alive_and_their_details_reach_the_engine_through_the_hub(
    engine: aion.Engine, log: str, gates: Path
) -> None:
    # Four seconds of heartbeats against a 1.5 s heartbeat timeout: only heartbeats that reach the engine keep it.
    alive = call(engine, log, "beats", str(gates), 4.0, heartbeat_timeout=1.5, retry_policy={"maximum_attempts": 1})
    assert alive.result(timeout=90) == "done"
    assert not of_type(alive.history(), ev.ActivityFailed)
    # The details of an attempt that never returned can only have come through the hub.
    (gates / "beats").unlink()
    lost = call(engine, log, "beats", str(gates), 0, retry_policy={"initial_interval": 0.2})
    wait_until(lambda: (gates / "beats").exists() and int((gates / "beats").read_text() or 0) >= 20, timeout=90)
    os.kill(int((gates / "pid").read_text()), signal.SIGKILL)
    assert lost.result(timeout=90) == {"progress": 7}
    (failed,) = of_type(lost.history(), ev.ActivityFailed)
    assert failed.failure.type == "WorkerLost" and failed.heartbeat_details == {"progress": 7}


@pytest.mark.timeout(120)
def test_cancellation_reaches_the_running_ray_task(engine: aion.Engine, log: str, gates: Path) -> None:
    handle = engine.start_workflow(flows.cancels, log, "heartbeats_until_cancelled", str(gates))
    wait_until((gates / "heartbeating.started").exists, timeout=90)
    handle.signal("cancel")
    assert handle.result(timeout=60) == "cancelled"
    assert "heartbeating:saw-cancel" in executions(log)
    assert of_type(handle.history(), ev.ActivityCancelled)


@pytest.mark.timeout(120)
def test_a_ray_worker_sigkilled_mid_attempt_loses_it_and_it_is_retried(
    engine: aion.Engine, log: str, gates: Path
) -> None:
    handle = call(engine, log, "waits_for_gate", str(gates), retry_policy={"initial_interval": 0.2})
    pid = int(wait_until(lambda: (gates / "pid.1").exists() and (gates / "pid.1").read_text(), timeout=90))
    assert pid != os.getpid()
    (gates / "open.2").touch()
    os.kill(pid, signal.SIGKILL)
    assert handle.result(timeout=90) == 2
    (lost,) = of_type(handle.history(), ev.ActivityFailed)
    assert lost.failure.type == "WorkerLost" and lost.attempt == 1 and "Ray" in lost.failure.message


@pytest.mark.timeout(180)
def test_a_ray_node_dying_mid_attempt_loses_it_and_it_is_retried_on_another(
    tmp_path: Path, log: str, gates: Path, ray_cluster: RayCluster
) -> None:
    doomed = ray_cluster.add_node(num_cpus=1, resources={"spare": 1})
    queue = {"spare": aion.RayQueue(address=ray_cluster.address, num_cpus=0, resources={"spare": 0.01})}
    with aion.Engine(
        tmp_path / "data", workflows=WORKFLOWS, activities=ACTIVITIES, activity_workers=1, task_queues=queue
    ) as engine:
        options = {"task_queue": "spare", "retry_policy": {"initial_interval": 0.2}}
        handle = call(engine, log, "waits_for_gate", str(gates), **options)
        wait_until((gates / "pid.1").exists, timeout=90)
        (gates / "open.2").touch()
        ray_cluster.cluster.remove_node(doomed)  # its raylet and the worker running attempt 1 die
        ray_cluster.add_node(num_cpus=1, resources={"spare": 1})
        assert handle.result(timeout=120) == 2
        (lost,) = of_type(handle.history(), ev.ActivityFailed)
    assert lost.failure.type == "WorkerLost" and lost.attempt == 1


@pytest.mark.timeout(180)
def test_engine_sigkill_with_ray_attempts_in_flight(
    tmp_path: Path, log: str, gates: Path, ray_cluster: RayCluster
) -> None:
    data = tmp_path / "data"
    with engine_process("tests.ray_executor.ray_engine_proc", data, log, gates, ray_cluster.address, 3) as kill:
        wait_until(lambda: {"start:0:1", "start:1:1", "start:2:1"} <= set(executions(log)), timeout=120)
        (gates / "open.0").touch()
        wait_until(lambda: of_type(recorded(data, "fan-out"), ev.ActivityCompleted), timeout=60)
        kill()  # activity 0's completion is recorded; 1 and 2 are running on Ray
    before = recorded(data, "fan-out")
    assert [c.result for c in of_type(before, ev.ActivityCompleted)] == [0]
    (gates / "open.1").touch()
    (gates / "open.2").touch()
    with aion.Engine(
        data, workflows=WORKFLOWS, activities=ACTIVITIES, activity_workers=1, task_queues=queues(ray_cluster.address)
    ) as engine:
        handle = engine.get_workflow("fan-out")
        assert handle.result(timeout=120) == [0, 1, 2]
        history = handle.history()
    runs = executions(log)
    assert runs.count("start:0:1") == 1 and not [r for r in runs if r.startswith("start:0:") and r != "start:0:1"]
    lost = of_type(history, ev.ActivityFailed)
    assert sorted(f.activity_id for f in lost) == [2, 3]
    assert all(f.failure.type == "WorkerLost" and f.attempt == 1 for f in lost)
    assert {"start:1:2", "start:2:2"} <= set(runs)
    completed = of_type(history, ev.ActivityCompleted)
    assert sorted(c.activity_id for c in completed) == [1, 2, 3]  # each once
