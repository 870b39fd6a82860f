"""Two real execution processes for one account (a real Kafka broker, a real OpenBao server for the lease,
the local Binance peer as the venue): one trades, the other stays passive; kill -9 the active one and the
other takes over after the lease runs out, with no order sent twice. The Kubernetes Lease backend runs the
same scenario in tests/cluster/test_lease_serve.py."""

from __future__ import annotations

import pytest

from tests.support.execution_procs import entry_ids, two_executors_takeover
from tests.support.execution_procs import world as world

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_two_executors_one_sender_and_a_takeover_without_a_second_order(world: dict, vault) -> None:
    lease_env = {
        "QE_EXECUTION__LEASE": "vault",
        "QE_EXECUTION__LEASE_PATH": f"quantumedge/leases/{world['prefix'].rstrip('.')}",
        "QE_VAULT_ADDR": vault.addr,
        "QE_VAULT__AUTH_METHOD": "token",
        "QE_VAULT_TOKEN": vault.token,
    }
    takeover = two_executors_takeover(world, lease_env)
    print(takeover.report("vault"))
    # Every intent reached the venue once, under its own client order id; nothing else was sent.
    assert set(takeover.order_requests) == entry_ids(takeover.intents)
    assert takeover.duplicates == 0 and set(takeover.order_requests.values()) == {1}
    assert takeover.lease["a"] and takeover.lease["b"] and takeover.lease["a"] != takeover.lease["b"]
