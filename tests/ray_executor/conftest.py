"""One Ray cluster for the whole session: a head node and a second node offering the custom resource
``media_node``, both on this machine (``ray.cluster_utils.Cluster``). Started once, on first use, and shut down as
soon as the last test of this package has run (package scope: only this package uses it, so that is once per
session, and its idle processes do not weigh on the rest of the suite). Its processes (and the Ray workers they
start) are kept out of the suite's leak check while it runs, and whatever of them is left at the end is killed."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psutil
import pytest

from tests.conftest import SESSION_PROCESSES, live_descendants

# Not imported here: importing Ray imports filelock, whose fork hooks every later fork of the test process then runs
# (see tests/conftest.py, ``pytest_collection_modifyitems``). Ray is imported by the cluster fixture, when the
# first of these tests (run last) needs it.
if importlib.util.find_spec("ray") is None:
    pytest.skip("Ray is not installed (pip install 'aion[ray]'): the Ray queue tests skip", allow_module_level=True)

_STORE = 80 * 1024 * 1024


@dataclass(frozen=True)
class RayCluster:
    """Where the session's cluster is, and the node id of its ``media_node`` node."""

    address: str
    media_node_id: str
    cluster: Any

    def add_node(self, **options: Any) -> Any:
        """Add a node (its processes are kept for the session too); returns it."""
        before = {p.pid for p in psutil.Process().children()}
        try:
            node = self.cluster.add_node(object_store_memory=_STORE, **options)
            self.cluster.wait_for_nodes()
        finally:
            SESSION_PROCESSES.update(p.pid for p in psutil.Process().children() if p.pid not in before)
        return node


@pytest.fixture(scope="package")
def ray_cluster() -> Iterator[RayCluster]:
    from ray.cluster_utils import Cluster

    before = {p.pid for p in live_descendants()}
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "include_dashboard": False, "object_store_memory": _STORE},
    )
    try:
        node = cluster.add_node(num_cpus=1, resources={"media_node": 1}, object_store_memory=_STORE)
        cluster.wait_for_nodes()
    finally:
        SESSION_PROCESSES.update(p.pid for p in psutil.Process().children() if p.pid not in before)
    try:
        yield RayCluster(cluster.address, node.node_id, cluster)
    finally:
        tree = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
        with contextlib.suppress(Exception):
            cluster.shutdown()
        SESSION_PROCESSES.clear()
        for proc in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(tree, timeout=10)
