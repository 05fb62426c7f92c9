"""``aion serve --task-queue NAME:ray,...``: Ray queues declared on the command line, against the session's Ray
cluster (``conftest.ray_cluster``): a run's activities go to the Ray task of the queue they name, the one asking for
a node's custom resource to that node."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from tests.cli.conftest import Server, ok
from tests.ray_executor.conftest import RayCluster


@pytest.mark.timeout(150)
def test_serve_declares_ray_queues_and_runs_their_activities_on_ray(tmp_path: Path, ray_cluster: RayCluster) -> None:
    data_dir = tmp_path / "data"
    address = ray_cluster.address
    server = Server(
        data_dir, tmp_path / "serve.log",
        "--module", "tests.ray_executor.flows",
        "--task-queue", f"ray:ray,address={address},num-cpus=0.25",
        "--task-queue", f"media_node:ray,address={address},num-cpus=0,resource.media_node=0.01",
        start_timeout=90,
    )  # fmt: skip
    try:
        ok("start", "routed", "--input", '"hello"', "--id", "routed", "--data-dir", data_dir)
        result = ok("result", "routed", "--timeout", "90", "--json", "--data-dir", data_dir).json()["result"]
        anywhere, media = result
        served_by = {p.pid for p in psutil.Process(server.proc.pid).children(recursive=True)}
        assert anywhere["pid"] not in served_by | {server.proc.pid}  # a Ray worker, not one of serve's processes
        assert anywhere["info"] == ["routed", 1, "where_am_i", 1]
        assert media["node"] == ray_cluster.media_node_id  # the queue asking for the node's resource ran there
    finally:
        assert server.stop() == 0, server.log.read_text()
