"""The executor lease on a real kube-apiserver, through the chart's own Role and RoleBinding: execution's
service account (a real TokenRequest token) may hold its Lease and nothing else. Two candidates yield one
holder; a holder that stops renewing is taken over after the lease runs out, the transitions (the fencing
token) go up by one, and the old holder's writes are refused by the API server (409 on the stale
resourceVersion). Two real processes, the holder killed with SIGKILL, show the same without a shared clock.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quantumedge.execution.lease import ExecutorLease, LeaseConfig, LeaseConflictError
from quantumedge.execution.lease_k8s import LeaseApiError, connect
from tests.cluster.conftest import LEASE
from tests.cluster.conftest import LEASE_NS as NS
from tools.cluster.control_plane import ControlPlane

CONFIG = LeaseConfig(duration_s=4.0, renew_s=0.5, margin_s=1.0)


class Clock:
    """Each candidate's own monotonic clock, moved by the test: expiry is judged on it, never on wall time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lease(cluster: ControlPlane) -> dict:
    return json.loads(cluster.kubectl("get", "lease", LEASE, "-n", NS, "-o", "json").stdout)["spec"]


def _delete(cluster: ControlPlane) -> None:
    cluster.kubectl("delete", "lease", LEASE, "-n", NS, "--ignore-not-found", check=False)


def test_the_chart_role_allows_its_lease_only(execution_kubeconfig: Path) -> None:
    with pytest.raises(LeaseApiError) as refused:
        connect(NS, "another-lease", str(execution_kubeconfig))
    assert refused.value.reason == "lease_forbidden"
    with pytest.raises(LeaseApiError) as elsewhere:
        connect("default", LEASE, str(execution_kubeconfig))
    assert elsewhere.value.reason == "lease_forbidden"
    connect(NS, LEASE, str(execution_kubeconfig)).close()


def test_two_candidates_one_holder_then_takeover_with_the_old_holder_fenced(
    cluster: ControlPlane, execution_kubeconfig: Path
) -> None:
    _delete(cluster)
    clock_a, clock_b = Clock(), Clock()
    store_a, store_b = connect(NS, LEASE, str(execution_kubeconfig)), connect(NS, LEASE, str(execution_kubeconfig))
    a = ExecutorLease(store_a, "execution-a", CONFIG, clock_a)
    b = ExecutorLease(store_b, "execution-b", CONFIG, clock_b)
    try:
        assert a.step() and not b.step()  # a created the Lease; b sees it held
        for _ in range(3):  # a renews; b's view of the record changes each time, so it never expires
            clock_a.now += CONFIG.renew_s
            clock_b.now += CONFIG.duration_s
            assert a.step() and not b.step()
        held = _lease(cluster)
        assert held["holderIdentity"] == "execution-a" and held["leaseTransitions"] == 0
        assert held["leaseDurationSeconds"] == 4 and held["renewTime"]
        # What a sees last, kept in a store of its own so its write below really reaches the API server.
        stale_store = connect(NS, LEASE, str(execution_kubeconfig))
        stale = stale_store.read()
        # a stops renewing (a stalled or partitioned process): b waits a whole duration on its own clock.
        clock_b.now += CONFIG.duration_s - 0.1
        assert not b.step()
        clock_b.now += 0.2
        assert b.step() and b.transitions == 1
        taken = _lease(cluster)
        assert taken["holderIdentity"] == "execution-b" and taken["leaseTransitions"] == 1
        # By then a's own validity (duration less margin) had run out: it was not sending. Its next
        # renewal finds another holder and stops; a blind write on what it last read is refused (409).
        clock_a.now += CONFIG.duration_s
        assert not a.active and not a.step() and a.lost
        with pytest.raises(LeaseConflictError) as refused:
            stale_store.write("execution-a", stale.transitions, CONFIG.duration_s, stale.version)
        assert "409" in str(refused.value)  # the API server's Conflict on the stale resourceVersion
        stale_store.close()
        assert _lease(cluster)["holderIdentity"] == "execution-b"
        b.release()  # a clean stop hands over at once: no holder, transitions kept
        released = _lease(cluster)
        assert not released.get("holderIdentity") and released["leaseTransitions"] == 1
    finally:
        store_a.close()
        store_b.close()


HOLDER = """
import sys, time
from quantumedge.execution.lease import ExecutorLease, LeaseConfig
from quantumedge.execution.lease_k8s import connect
ns, name, kubeconfig, holder = sys.argv[1:5]
lease = ExecutorLease(connect(ns, name, kubeconfig), holder, LeaseConfig(4.0, 0.5, 1.0))
while not lease.lost:
    active = lease.step()
    print(f"{time.monotonic():.3f} {holder} active={active} transitions={lease.transitions}", flush=True)
    time.sleep(0.5)
print(f"{holder} lost", flush=True)
"""


def _spawn(kubeconfig: Path, holder: str, log: Path) -> subprocess.Popen:
    argv = [sys.executable, "-c", HOLDER, NS, LEASE, str(kubeconfig), holder]
    return subprocess.Popen(argv, stdout=log.open("w"), stderr=subprocess.STDOUT)


def _active_times(log: Path, holder: str) -> list[float]:
    lines = [ln.split() for ln in log.read_text().splitlines() if ln.startswith(tuple("0123456789"))]
    return [float(ln[0]) for ln in lines if ln[1] == holder and ln[2] == "active=True"]


def _first_active(log: Path, holder: str) -> float:
    return _active_times(log, holder)[0]


def _last_active(log: Path, holder: str) -> float:
    return _active_times(log, holder)[-1]


def _wait(what: str, until, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not until():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_two_processes_one_holder_and_a_takeover_after_kill_9(
    cluster: ControlPlane, execution_kubeconfig: Path, tmp_path: Path
) -> None:
    _delete(cluster)
    logs = {h: tmp_path / f"{h}.log" for h in ("p1", "p2")}
    p1 = _spawn(execution_kubeconfig, "p1", logs["p1"])
    p2 = None
    try:
        _wait("p1 to hold the lease", lambda: "p1 active=True" in logs["p1"].read_text())
        p2 = _spawn(execution_kubeconfig, "p2", logs["p2"])
        _wait("p2 to see the lease held", lambda: "p2 active=False" in logs["p2"].read_text())
        _wait("a few more renewals", lambda: logs["p1"].read_text().count("active=True") >= 6)
        assert "p2 active=True" not in logs["p2"].read_text()  # one holder while p1 renews
        assert _lease(cluster)["holderIdentity"] == "p1"
        before = _lease(cluster)["leaseTransitions"]
        p1.kill()  # SIGKILL: no release; the lease must run out
        p1.wait(10)
        _wait("p2 to take over", lambda: "p2 active=True" in logs["p2"].read_text())
        after = _lease(cluster)
        assert after["holderIdentity"] == "p2" and after["leaseTransitions"] == before + 1
        # Never two holders at once: p1's last active step came before p2's first (one system-wide monotonic clock).
        gap = _first_active(logs["p2"], "p2") - _last_active(logs["p1"], "p1")
        print(f"\n  takeover: p2 active {gap:.2f} s after p1's last active step (lease {CONFIG.duration_s} s)")
        assert gap > 0
    finally:
        for proc in (p1, p2):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
    print(logs["p1"].read_text()[-600:], logs["p2"].read_text()[-600:])
