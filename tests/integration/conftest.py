"""A three-broker cluster from the local launcher, shared by the integration tests that
need one (the replication test and the broker fault tests).

It is started once for the package on ports 23092-23094 (controllers 23192-23194),
from an empty state, and deleted afterwards. The ports are below the kernel's range
for outgoing connections (32768-60999 here): with 41092, a client retrying a
stopped broker was given 41092 as its own port, connected to itself, and the
broker could not start again. A fault test may kill and restart
its nodes; it leaves every node running when it ends.
"""

import shutil
from collections.abc import Iterator

import pytest

from deploy.exceptions import LauncherError
from deploy.localkafka import LocalCluster, port_is_free
from tests.conftest import REPO, skip_or_fail_in_ci

BASE_PORT = 23092


@pytest.fixture(scope="package")
def three_broker_cluster() -> Iterator[LocalCluster]:
    # The launcher's own heap for three brokers (512 MB each), as `linkcast kafka start
    # --brokers 3` runs them: with 256 MB a node ran out of heap starting its LogManager.
    cluster = LocalCluster(REPO / ".linkcast", brokers=3, base_port=BASE_PORT, name="h8three")
    cluster.stop()  # left running by an interrupted run
    ports = [p for n in cluster.nodes for p in (n.broker_port, n.controller_port)]
    if not all(port_is_free(cluster.host, p) for p in ports):
        skip_or_fail_in_ci(f"ports {ports} are taken; the three-broker tests need them")
    shutil.rmtree(cluster.root, ignore_errors=True)  # a fresh cluster every run
    try:
        cluster.start(timeout_s=120)
    except LauncherError as exc:
        skip_or_fail_in_ci(f"the three-broker cluster did not start: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture
def three_brokers(three_broker_cluster: LocalCluster) -> str:
    """The bootstrap servers of the three-broker cluster."""
    return three_broker_cluster.bootstrap
