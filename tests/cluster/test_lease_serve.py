"""Two real `quantumedge serve execution` processes for one account on the Kubernetes Lease backend: the
real kube-apiserver (its Lease, through the chart's Role, with a TokenRequest token of execution's service
account), a real Kafka broker and the local Binance peer as the venue. One sends, the other stays passive;
SIGKILL the active one and the other takes over once the lease runs out (leaseTransitions + 1), and the venue
saw every client order id exactly once, with no intent lost. The Vault backend runs the same scenario in
tests/integration/execution/test_lease_processes.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cluster.conftest import LEASE, LEASE_NS
from tests.support.execution_procs import entry_ids, two_executors_takeover
from tests.support.execution_procs import world as world
from tools.cluster.control_plane import ControlPlane

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_two_serve_processes_one_sender_and_a_takeover_on_the_kubernetes_lease(
    cluster: ControlPlane, execution_kubeconfig: Path, world: dict
) -> None:
    cluster.kubectl("delete", "lease", LEASE, "-n", LEASE_NS, "--ignore-not-found", check=False)

    def spec() -> dict:
        lease = json.loads(cluster.kubectl("get", "lease", LEASE, "-n", LEASE_NS, "-o", "json").stdout)
        return {k: lease["spec"].get(k) for k in ("holderIdentity", "leaseTransitions", "leaseDurationSeconds")}

    lease_env = {
        "QE_EXECUTION__LEASE": "kubernetes",
        "QE_EXECUTION__LEASE_NAMESPACE": LEASE_NS,
        "QE_EXECUTION__LEASE_NAME": LEASE,
        "QE_EXECUTION__LEASE_KUBECONFIG": str(execution_kubeconfig),
    }
    takeover = two_executors_takeover(world, lease_env, record=spec)
    print(takeover.report("kubernetes"))
    before, after = takeover.lease["before"], takeover.lease["after"]
    assert before["holderIdentity"] == takeover.lease["a"] and before["leaseDurationSeconds"] == 6
    assert after["holderIdentity"] == takeover.lease["b"] != takeover.lease["a"]
    assert after["leaseTransitions"] == before["leaseTransitions"] + 1  # the fencing token moved once
    # Every intent reached the venue once, under its own client order id; nothing else was sent.
    assert set(takeover.order_requests) == entry_ids(takeover.intents)
    assert takeover.duplicates == 0 and set(takeover.order_requests.values()) == {1}
