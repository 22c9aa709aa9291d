"""What a RestateCluster's NetworkPolicies must let through, as connections to check.

The product rules (spec §3, upstream §A2.5/§B2), stated as outcomes rather than as policy
objects, over a fixed set of endpoints around the cluster: its own pods, a neighbour pod in
its namespace, clients in other namespaces, the operator, kube-dns and NodeLocal DNS, the
public internet, private ranges, the EKS Pod Identity agent and opted-in pods. The unit tests
evaluate the builders' output against them and the e2e tests the objects read back from the
API server, both with :mod:`e2e.netpol_eval`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from e2e.netpol_eval import Endpoint, Network, external, pod

OPERATOR_NAMESPACE = "restate-operator"
INGRESS, ADMIN, NODE = 8080, 9070, 5122

Admitted = Literal["nobody", "everybody"] | frozenset[str]

#: Namespaces around the cluster, with their labels (besides kubernetes.io/metadata.name).
NEIGHBOUR_NAMESPACES: Mapping[str, Mapping[str, str]] = {
    "team-a": {"team": "a"},
    "team-b": {"team": "b"},
    "monitoring": {},
    OPERATOR_NAMESPACE: {},
    "kube-system": {},
    "other": {},
}
RESTATE_PORTS = (
    {
        "ports": [
            {"name": "ingress", "containerPort": INGRESS},
            {"name": "admin", "containerPort": ADMIN},
            {"name": "node", "containerPort": NODE},
        ]
    },
)


def neighbours(cluster: str) -> dict[str, Endpoint]:
    """Every endpoint around the cluster, by name (pod IPs in 10.244/16, like the nodes')."""
    restate = {"app.kubernetes.io/name": "restate"}
    endpoints = [
        pod("neighbour", cluster, "10.244.1.50", {"app": "debug"}),
        pod("client-a", "team-a", "10.244.2.10", {"app": "client"}),
        pod("client-b", "team-b", "10.244.3.10", {"app": "client"}),
        pod("prometheus", "monitoring", "10.244.4.10", {"app.kubernetes.io/name": "prometheus"}),
        pod(
            "operator",
            OPERATOR_NAMESPACE,
            "10.244.5.10",
            {"app.kubernetes.io/name": "restate-operator"},
        ),
        pod(
            "kube-dns",
            "kube-system",
            "10.244.6.10",
            {"k8s-app": "kube-dns"},
            [
                {
                    "ports": [
                        {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                        {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                    ]
                }
            ],
        ),
        pod(
            "other-restate",
            "other",
            "10.244.7.10",
            {**restate, "app.kubernetes.io/instance": "other"},
            RESTATE_PORTS,
        ),
        pod("opted-in", "team-b", "10.244.8.10", {f"allow.restate.dev/{cluster}": "true"}),
        pod("opted-elsewhere", "team-b", "10.244.8.11", {"allow.restate.dev/other": "true"}),
        external("node-local-dns", "169.254.20.10"),
        external("imds", "169.254.169.254"),
        external("pod-identity-agent", "169.254.170.23"),
        external("internet-low", "8.8.8.8"),
        external("internet-high", "151.101.1.1"),
        external("vpc-10", "10.0.0.1"),
        external("db", "10.1.2.3"),
        external("vpc-172", "172.16.0.1"),
        external("vpc-172-top", "172.31.255.254"),
        external("vpc-192", "192.168.1.1"),
    ]
    return {e.name: e for e in endpoints}


@dataclass(frozen=True)
class Fence:
    """What the spec of one cluster asks of its fence.

    ``ingress``/``admin``/``node``: who may reach that port besides what the operator adds
    (``"nobody"``, ``"everybody"`` or endpoint names); ``operator_admin``/``operator_node``:
    whether the operator reaches admin / node; ``egress_open``: (endpoint, port, protocol)
    the user's ``networkEgressRules`` open; ``egress_closed``: ones they must not.
    """

    cluster: str
    ingress: Admitted = "nobody"
    admin: Admitted = "nobody"
    node: Admitted = "nobody"
    operator_admin: bool = True
    operator_node: bool = False
    pod_identity: bool = False
    egress_open: frozenset[tuple[str, int, str]] = field(default_factory=frozenset)
    egress_closed: frozenset[tuple[str, int, str]] = field(default_factory=frozenset)
    enabled: bool = True


@dataclass(frozen=True)
class Check:
    src: str
    dst: str
    port: int
    proto: str
    allowed: bool
    rule: str

    def __str__(self) -> str:
        verdict = "allowed" if self.allowed else "denied"
        return f"{self.src} -> {self.dst}:{self.port}/{self.proto} {verdict} ({self.rule})"


def _admits(who: Admitted, name: str, added: Iterable[str] = ()) -> bool:
    if who == "everybody":
        return True
    names = set() if who == "nobody" else set(who)
    return name in names | set(added)


def checks(
    fence: Fence, restate_pods: Sequence[str], around: Mapping[str, Endpoint]
) -> list[Check]:
    """Every connection the fence decides, with the verdict the product rules require."""
    found: list[Check] = []

    def add(src: str, dst: str, port: int, proto: str, allowed: bool, rule: str) -> None:
        found.append(Check(src, dst, port, proto, allowed or not fence.enabled, rule))

    first, *others = restate_pods
    # Node to node: only the node port, both ways.
    for peer in others:
        add(first, peer, NODE, "TCP", True, "nodes reach each other on 5122")
        add(peer, first, NODE, "TCP", True, "nodes reach each other on 5122")
        for port in (INGRESS, ADMIN):
            add(first, peer, port, "TCP", False, "nodes reach each other only on 5122")

    # Who comes in, port by port.
    sources = [
        "neighbour",
        "client-a",
        "client-b",
        "prometheus",
        "operator",
        "other-restate",
        "opted-in",
        "internet-low",
        "vpc-10",
        "vpc-192",
    ]
    for src in sources:
        add(src, first, INGRESS, "TCP", _admits(fence.ingress, src), "networkPeers.ingress")
        add(
            src,
            first,
            ADMIN,
            "TCP",
            _admits(fence.admin, src, ["operator"] if fence.operator_admin else []),
            "networkPeers.admin (+ operator unless allowOperatorAccessToAdmin: false)",
        )
        add(
            src,
            first,
            NODE,
            "TCP",
            _admits(fence.node, src, ["operator"] if fence.operator_node else []),
            "networkPeers.node (+ operator when it provisions)",
        )
        add(src, first, 9999, "TCP", False, "no other port is open")

    # What goes out.
    for proto in ("UDP", "TCP"):
        add(first, "kube-dns", 53, proto, True, "DNS via kube-dns")
        add(first, "node-local-dns", 53, proto, True, "DNS via NodeLocal DNS")
    add(first, "kube-dns", 80, "TCP", False, "kube-dns only on 53")
    add(first, "node-local-dns", 80, "TCP", False, "NodeLocal DNS only on 53")
    add(first, "internet-low", 443, "TCP", True, "public internet (lower half)")
    add(first, "internet-low", 53, "UDP", True, "public internet (lower half)")
    add(first, "internet-high", 80, "TCP", True, "public internet (upper half)")
    for private in ("vpc-10", "db", "vpc-172", "vpc-172-top", "vpc-192", "imds"):
        for port in (80, 443, 5432):
            opened = (private, port, "TCP") in fence.egress_open
            add(
                first,
                private,
                port,
                "TCP",
                opened,
                "private ranges only through networkEgressRules",
            )
    for dst, port, proto in fence.egress_closed:
        add(first, dst, port, proto, False, "outside the user's networkEgressRules")
    add(
        first,
        "pod-identity-agent",
        80,
        "TCP",
        fence.pod_identity,
        "EKS Pod Identity agent only with a role ARN",
    )
    add(first, "pod-identity-agent", 443, "TCP", False, "Pod Identity agent only on 80")
    for port in (80, 9000, 5432):
        add(first, "opted-in", port, "TCP", True, "pods labelled allow.restate.dev/<cluster>")
        add(first, "opted-elsewhere", port, "TCP", False, "opted into another cluster")
    add(first, "client-a", INGRESS, "TCP", False, "other pods are not reachable")
    add(first, "other-restate", NODE, "TCP", False, "another cluster's nodes are not peers")

    # Only the Restate pods are fenced: a neighbour pod in the namespace is not.
    add("neighbour", "vpc-10", 443, "TCP", True, "neighbour pods are not isolated")
    add("client-a", "neighbour", 80, "TCP", True, "neighbour pods are not isolated")
    return found


def failures(
    policies: Sequence[Mapping[str, object]],
    namespaces: Mapping[str, Mapping[str, str]],
    fence: Fence,
    restate: Sequence[Endpoint],
) -> list[str]:
    """Every check whose verdict differs from the rules, under both readings of ``ipBlock``."""
    around = {**neighbours(fence.cluster), **{e.name: e for e in restate}}
    all_namespaces = {**NEIGHBOUR_NAMESPACES, **namespaces}
    wrong = []
    for match_pods in (False, True):
        net = Network(policies, all_namespaces, ip_blocks_match_pods=match_pods)
        for check in checks(fence, [e.name for e in restate], around):
            src, dst = around[check.src], around[check.dst]
            if net.allowed(src, dst, check.port, check.proto) != check.allowed:
                reading = "ipBlock matches pods" if match_pods else "ipBlock only external"
                wrong.append(
                    f"{check} but {net.explain(src, dst, check.port, check.proto)} [{reading}]"
                )
    return wrong


def total_checks(fence: Fence, restate: Sequence[Endpoint]) -> int:
    around = {**neighbours(fence.cluster), **{e.name: e for e in restate}}
    return len(checks(fence, [e.name for e in restate], around))
