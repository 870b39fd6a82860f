"""A small evaluator of Kubernetes NetworkPolicy semantics, to ask rendered policies "may A reach B on port P?".

It follows the API's documented rules (networking.k8s.io/v1, "Network Policies" in the Kubernetes docs):
- a pod is isolated for a direction only when some policy in its namespace selects it and lists that
  direction in policyTypes (policyTypes defaults to Ingress, plus Egress when the policy has egress rules);
  an isolated pod allows exactly the union of what the selecting policies' rules allow;
- a connection needs both: the source's egress allows it, and the destination's ingress allows it;
- a rule with no `ports` matches every port, with no `from`/`to` every peer; a port entry without `port`
  matches every port of its protocol (TCP by default), `endPort` makes a range;
- a peer with podSelector alone means pods of the policy's own namespace; namespaceSelector alone, every
  pod of the matching namespaces; both in one peer, pods matching both (AND); separate peers add up (OR);
- ipBlock matches outside addresses (cidr minus except). Whether it also matches pod IPs is left to the
  CNI by the API, so this evaluator never lets an ipBlock match a pod (the strict reading).
Named ports are not used by the chart and are not supported here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace_labels: Mapping[str, str] = field(default_factory=dict)

    def ns_labels(self) -> Mapping[str, str]:
        # The API server sets this label on every namespace.
        return {"kubernetes.io/metadata.name": self.namespace, **self.namespace_labels}


@dataclass(frozen=True)
class Outside:
    """An address outside the cluster (the internet, an exchange, a managed Kafka)."""

    ip: str

    @property
    def name(self) -> str:
        return self.ip


Endpoint = Pod | Outside


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector: matchLabels AND every matchExpression; an empty selector matches everything."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], set(expr.get("values") or [])
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[op]
        if not ok:
            return False
    return True


def _policy_types(spec: Mapping[str, Any]) -> set[str]:
    if spec.get("policyTypes"):
        return set(spec["policyTypes"])
    return {"Ingress"} | ({"Egress"} if "egress" in spec else set())


def _port_matches(entries: list[Mapping[str, Any]] | None, port: int, protocol: str) -> bool:
    if not entries:
        return True
    for entry in entries:
        if entry.get("protocol", "TCP") != protocol:
            continue
        wanted = entry.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str):
            raise NotImplementedError(f"named port {wanted!r}")
        if int(wanted) <= port <= int(entry.get("endPort", wanted)):
            return True
    return False


def _peer_matches(peer: Mapping[str, Any], other: Endpoint, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        if not isinstance(other, Outside):
            return False
        ip = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        if ip not in ipaddress.ip_network(block["cidr"], strict=False):
            return False
        return not any(ip in ipaddress.ip_network(e, strict=False) for e in block.get("except") or [])
    if not isinstance(other, Pod):
        return False
    if "namespaceSelector" in peer:
        namespace_ok = selector_matches(peer["namespaceSelector"], other.ns_labels())
    else:
        namespace_ok = other.namespace == policy_namespace
    pod_ok = selector_matches(peer.get("podSelector"), other.labels) if "podSelector" in peer else True
    return namespace_ok and pod_ok


def _selecting(policies: Iterable[Mapping[str, Any]], pod: Pod, direction: str) -> list[Mapping[str, Any]]:
    return [
        p
        for p in policies
        if p["metadata"].get("namespace") == pod.namespace
        and direction in _policy_types(p["spec"])
        and selector_matches(p["spec"].get("podSelector"), pod.labels)
    ]


def _direction_allows(policies: list, pod: Pod, other: Endpoint, port: int, protocol: str, direction: str) -> bool:
    selecting = _selecting(policies, pod, direction)
    if not selecting:
        return True  # not isolated in this direction
    rules_key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    for policy in selecting:
        for rule in policy["spec"].get(rules_key) or []:
            if not _port_matches(rule.get("ports"), port, protocol):
                continue
            peers = rule.get(peers_key)
            if not peers or any(_peer_matches(peer, other, policy["metadata"]["namespace"]) for peer in peers):
                return True
    return False


def allowed(policies: list, source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP") -> bool:
    """May `source` open a connection to `destination` on port/protocol under these NetworkPolicies?"""
    egress = isinstance(source, Outside) or _direction_allows(policies, source, destination, port, protocol, "Egress")
    ingress = isinstance(destination, Outside) or _direction_allows(
        policies, destination, source, port, protocol, "Ingress"
    )
    return egress and ingress


def isolated(policies: list, pod: Pod) -> set[str]:
    """The directions in which the pod is isolated (selected by some policy)."""
    return {d for d in ("Ingress", "Egress") if _selecting(policies, pod, d)}
