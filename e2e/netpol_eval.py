"""A pure-Python evaluator of Kubernetes NetworkPolicy semantics, for asserting what a fence lets
through without a CNI plugin (the local control plane runs none).

It follows the ``networking.k8s.io/v1`` API as the CNI implementations read it:

- A policy selects the pods of *its own namespace* that match ``spec.podSelector``
  (``{}`` selects all of them).
- ``policyTypes`` defaults to ``["Ingress"]``, plus ``"Egress"`` when the policy has an
  ``egress`` section.
- A pod selected by at least one policy of a type is isolated for that direction; a pod no
  policy of that type selects is not, and everything in that direction is allowed.
- Traffic to an isolated pod is allowed when *any* rule of *any* selecting policy matches the
  peer *and* the port. A rule without ``from``/``to`` (or with an empty list) matches every
  peer, a rule without ``ports`` every port; a policy without rules allows nothing.
- A connection needs both ends: egress allowed at the source (when it is a pod) and ingress
  allowed at the destination (when it is a pod).
- Peers: ``podSelector`` alone selects pods of the policy's namespace; ``namespaceSelector``
  alone every pod of the matching namespaces; both together the matching pods *in* the
  matching namespaces (one peer, not two); ``ipBlock`` an address range minus ``except``.
  Namespaces carry the automatic ``kubernetes.io/metadata.name`` label.
- Ports: ``protocol`` defaults to TCP; no ``port`` means every port of the protocol; ``endPort``
  makes a range; a named port is resolved on the destination pod's container ports.

Whether an ``ipBlock`` also matches pod IPs is left to implementations by the API; pass
``ip_blocks_match_pods`` to choose, and assert a verdict under both choices where it must not
depend on the CNI.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Direction = Literal["Ingress", "Egress"]
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Endpoint:
    """One end of a connection: a pod (it has a namespace) or an address outside the cluster.

    ``ports`` maps container port names to ``(number, protocol)`` so named ports resolve.
    """

    name: str
    ip: str
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, tuple[int, str]] = field(default_factory=dict)

    @property
    def is_pod(self) -> bool:
        return self.namespace is not None

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{where}{self.name}({self.ip})"


def pod(
    name: str,
    namespace: str,
    ip: str,
    labels: Mapping[str, str] | None = None,
    containers: Iterable[Mapping[str, Any]] = (),
) -> Endpoint:
    """A pod endpoint; named ports are read from ``containers`` (as in a pod spec)."""
    ports: dict[str, tuple[int, str]] = {}
    for container in containers:
        for port in container.get("ports") or []:
            if port.get("name"):
                ports[port["name"]] = (int(port["containerPort"]), port.get("protocol", "TCP"))
    return Endpoint(name, ip, namespace, dict(labels or {}), ports)


def external(name: str, ip: str) -> Endpoint:
    """An address that is not a pod (the internet, a node-local listener, a VPC host)."""
    return Endpoint(name, ip)


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels and matchExpressions) selects ``labels``.

    An empty selector selects everything; ``None`` (absent) selects nothing.
    """
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown selector operator {operator!r}")
    return True


def policy_types(policy: Mapping[str, Any]) -> list[str]:
    spec = policy.get("spec") or {}
    declared = spec.get("policyTypes")
    if declared:
        return list(declared)
    return ["Ingress", *(["Egress"] if "egress" in spec else [])]


def in_ip_block(block: Mapping[str, Any], ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    network = ipaddress.ip_network(block["cidr"], strict=False)
    if address.version != network.version or address not in network:
        return False
    for excluded in block.get("except") or []:
        inner = ipaddress.ip_network(excluded, strict=False)
        if address.version == inner.version and address in inner:
            return False
    return True


class Network:
    """Every NetworkPolicy and Namespace of a cluster: asks whether a connection is allowed.

    Example:
        >>> net = Network(policies, {"demo": {}, "kube-system": {}})
        >>> net.allowed(restate_0, external("google-dns", "8.8.8.8"), 53, "UDP")
    """

    def __init__(
        self,
        policies: Sequence[Mapping[str, Any]],
        namespaces: Mapping[str, Mapping[str, str]],
        *,
        ip_blocks_match_pods: bool = False,
    ) -> None:
        self.policies = list(policies)
        self.namespaces = {
            name: {**labels, NAMESPACE_NAME_LABEL: name} for name, labels in namespaces.items()
        }
        self.ip_blocks_match_pods = ip_blocks_match_pods

    def _namespace_labels(self, name: str) -> Mapping[str, str]:
        if name not in self.namespaces:
            raise KeyError(f"namespace {name!r} is not part of this network")
        return self.namespaces[name]

    def selecting(self, target: Endpoint, direction: Direction) -> list[Mapping[str, Any]]:
        """The policies of ``direction`` that select ``target`` (none for a non-pod)."""
        if not target.is_pod:
            return []
        return [
            p
            for p in self.policies
            if (p.get("metadata") or {}).get("namespace") == target.namespace
            and direction in policy_types(p)
            and selector_matches((p.get("spec") or {}).get("podSelector", {}), target.labels)
        ]

    def isolated(self, target: Endpoint, direction: Direction) -> bool:
        return bool(self.selecting(target, direction))

    def peer_matches(self, peer: Mapping[str, Any], policy_ns: str, other: Endpoint) -> bool:
        block = peer.get("ipBlock")
        if block is not None:
            if other.is_pod and not self.ip_blocks_match_pods:
                return False
            return in_ip_block(block, other.ip)
        if not other.is_pod:
            return False
        assert other.namespace is not None
        pod_selector = peer.get("podSelector")
        ns_selector = peer.get("namespaceSelector")
        if ns_selector is None:
            in_namespace = other.namespace == policy_ns
        else:
            in_namespace = selector_matches(ns_selector, self._namespace_labels(other.namespace))
        if not in_namespace:
            return False
        return pod_selector is None or selector_matches(pod_selector, other.labels)

    @staticmethod
    def port_matches(spec: Mapping[str, Any], destination: Endpoint, port: int, proto: str) -> bool:
        if spec.get("protocol", "TCP") != proto:
            return False
        wanted = spec.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str):
            if wanted.isdigit():
                wanted = int(wanted)
            else:
                return destination.ports.get(wanted) == (port, proto)
        end = spec.get("endPort")
        return bool(wanted <= port <= end) if end is not None else wanted == port

    def _rule_allows(
        self,
        rule: Mapping[str, Any],
        peers_key: str,
        policy_ns: str,
        other: Endpoint,
        destination: Endpoint,
        port: int,
        proto: str,
    ) -> bool:
        peers = rule.get(peers_key) or []
        if peers and not any(self.peer_matches(p, policy_ns, other) for p in peers):
            return False
        ports = rule.get("ports") or []
        return not ports or any(self.port_matches(s, destination, port, proto) for s in ports)

    def _direction_allows(
        self, target: Endpoint, other: Endpoint, direction: Direction, port: int, proto: str
    ) -> str | None:
        """Why ``direction`` traffic at ``target`` is allowed, or None when it is denied."""
        policies = self.selecting(target, direction)
        if not policies:
            return "not isolated"
        rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        destination = target if direction == "Ingress" else other
        for policy in policies:
            policy_ns = policy["metadata"]["namespace"]
            for i, rule in enumerate((policy.get("spec") or {}).get(rules_key) or []):
                if self._rule_allows(rule, peers_key, policy_ns, other, destination, port, proto):
                    return f"{policy['metadata']['name']}.{rules_key}[{i}]"
        return None

    def explain(self, src: Endpoint, dst: Endpoint, port: int, proto: str = "TCP") -> str:
        """A one-line account of the verdict, for assertion messages."""
        egress = self._direction_allows(src, dst, "Egress", port, proto) if src.is_pod else "-"
        ingress = self._direction_allows(dst, src, "Ingress", port, proto) if dst.is_pod else "-"
        return (
            f"{src} -> {dst}:{port}/{proto}: egress {egress or 'DENIED'}, "
            f"ingress {ingress or 'DENIED'}"
        )

    def allowed(self, src: Endpoint, dst: Endpoint, port: int, proto: str = "TCP") -> bool:
        """Whether ``src`` may open a connection to ``dst`` on ``port``/``proto``."""
        if src.is_pod and self._direction_allows(src, dst, "Egress", port, proto) is None:
            return False
        return not (dst.is_pod and self._direction_allows(dst, src, "Ingress", port, proto) is None)
