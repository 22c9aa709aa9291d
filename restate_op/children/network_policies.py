"""NetworkPolicies fencing the Restate pods (upstream A2.5 as revised in B2).

``deny-all`` isolates the pods in both directions; every other policy punches one named hole.
All select only the cluster's Restate pods, so other workloads in an adopted namespace and
the identity canary are unaffected.

Two rules keep server-side apply idempotent: an ingress rule that admits every source is sent
without ``from`` (the API server drops ``from: []``, so sending it would differ from what is
stored on every reconcile), and user rules are pruned of empty lists for the same reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from restate_op.api.kube_types import NetworkPolicyPeer
from restate_op.api.models import RestateCluster
from restate_op.children.constants import (
    ADMIN_PORT,
    GKE_SERVICE_ACCOUNT_ANNOTATION,
    INGRESS_PORT,
    NODE_PORT,
)
from restate_op.children.metadata import child_metadata, namespace_name, selector_labels
from restate_op.children.restate_config import effective_auto_provision
from restate_op.settings import OperatorSettings

DENY_ALL: Final = "deny-all"
ALLOW_DNS: Final = "allow-egress-to-dns"
ALLOW_PUBLIC_INTERNET: Final = "allow-restate-egress-to-public-internet"
ALLOW_AWS_POD_IDENTITY: Final = "allow-restate-egress-to-aws-pod-identity"
ALLOW_GKE_METADATA: Final = "allow-restate-egress-to-gke-metadata"
ALLOW_EGRESS: Final = "allow-restate-egress"
ALLOW_INGRESS_ACCESS: Final = "allow-ingress-access"
ALLOW_ADMIN_ACCESS: Final = "allow-admin-access"
ALLOW_NODE_ACCESS: Final = "allow-node-access"
#: Names of earlier upstream versions, produced no more but deleted when found.
LEGACY_ALLOW_KUBE_DNS: Final = "allow-egress-to-kube-dns"
LEGACY_ALLOW_METRICS_ACCESS: Final = "allow-metrics-access"

#: Every NetworkPolicy name the operator owns; those present but not desired are stale.
NETWORK_POLICY_NAMES: Final = frozenset(
    {
        DENY_ALL,
        ALLOW_DNS,
        ALLOW_PUBLIC_INTERNET,
        ALLOW_AWS_POD_IDENTITY,
        ALLOW_GKE_METADATA,
        ALLOW_EGRESS,
        ALLOW_INGRESS_ACCESS,
        ALLOW_ADMIN_ACCESS,
        ALLOW_NODE_ACCESS,
        LEGACY_ALLOW_KUBE_DNS,
        LEGACY_ALLOW_METRICS_ACCESS,
    }
)

NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"
#: NodeLocal DNSCache's conventional link-local listen address.
NODE_LOCAL_DNS: Final = "169.254.20.10/32"
#: The EKS Pod Identity agent (IPv4; upstream dropped the IPv6 address in 0.4.2).
EKS_POD_IDENTITY_AGENT: Final = "169.254.170.23/32"
#: Where GKE Workload Identity pods reach the GKE metadata server, as GKE documents for
#: NetworkPolicies: the metadata address itself (Dataplane V2), the metadata server's port
#: 988 on its link-local address (1.21 and later) and on loopback (earlier versions).
GKE_METADATA_SERVER: Final = (
    ("169.254.169.254/32", 80),
    ("169.254.169.252/32", 988),
    ("127.0.0.1/32", 988),
)

# Keys whose empty object is meaningful ("all namespaces"/"all pods"); every other empty
# list or object is the same as absent and is pruned.
_MEANINGFUL_WHEN_EMPTY = frozenset({"podSelector", "namespaceSelector"})


def _prune(value: Any) -> Any:
    if isinstance(value, dict):
        pruned = {}
        for key, item in value.items():
            kept = _prune(item)
            if kept in ([], {}) and key not in _MEANINGFUL_WHEN_EMPTY:
                continue
            pruned[key] = kept
        return pruned
    if isinstance(value, list):
        return [_prune(item) for item in value]
    return value


def _tcp(port: int) -> dict[str, Any]:
    return {"protocol": "TCP", "port": port}


def _policy(
    cluster: RestateCluster,
    name: str,
    policy_types: list[str],
    ingress: list[dict[str, Any]] | None = None,
    egress: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "podSelector": {"matchLabels": selector_labels(cluster)},
        "policyTypes": policy_types,
    }
    # The rule list of every direction the policy governs is sent even when empty: applied
    # with force, ``[]`` removes rules another client added (which would open the fence);
    # left out, such rules would survive every apply. The server stores [] as absent,
    # which ``diff.contains`` accepts as equal.
    if ingress is not None or "Ingress" in policy_types:
        spec["ingress"] = ingress or []
    if egress is not None or "Egress" in policy_types:
        spec["egress"] = egress or []
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": child_metadata(cluster, name, namespace_name(cluster)),
        "spec": spec,
    }


def _own_pods(cluster: RestateCluster) -> dict[str, Any]:
    # A peer with only a podSelector matches pods in the policy's (the cluster's) namespace.
    return {"podSelector": {"matchLabels": selector_labels(cluster)}}


def _operator_peer(settings: OperatorSettings) -> dict[str, Any]:
    return {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: settings.operator_namespace}},
        "podSelector": {
            "matchLabels": {settings.operator_label_name: settings.operator_label_value}
        },
    }


def merge_peers(
    user: Sequence[NetworkPolicyPeer] | None, added: Sequence[dict[str, Any]]
) -> list[dict[str, Any]] | None:
    """Combine the user's peers for a port with the peers the operator needs.

    Returns None for "admit nobody" (no rule at all) and [] for "admit everybody" (a rule
    without ``from``):

    - user list absent: only the added peers (None if there are none);
    - user list ``[]``: everybody, as documented upstream (the added peers are implied);
    - otherwise: the user's peers followed by the added ones.
    """
    if user is None:
        return list(added) or None
    if not user:
        return []
    return [_prune(p.to_kube()) for p in user] + list(added)


def _access_policy(
    cluster: RestateCluster, name: str, port: int, peers: list[dict[str, Any]] | None
) -> dict[str, Any]:
    if peers is None:
        return _policy(cluster, name, ["Ingress"])
    rule: dict[str, Any] = {"ports": [_tcp(port)]}
    if peers:
        rule["from"] = peers
    return _policy(cluster, name, ["Ingress"], ingress=[rule])


def _deny_all(cluster: RestateCluster) -> dict[str, Any]:
    return _policy(cluster, DENY_ALL, ["Ingress", "Egress"])


def _allow_dns(cluster: RestateCluster) -> dict[str, Any]:
    kube_dns = {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    }
    rule = {
        "to": [kube_dns, {"ipBlock": {"cidr": NODE_LOCAL_DNS}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    return _policy(cluster, ALLOW_DNS, ["Egress"], egress=[rule])


def _allow_public_internet(cluster: RestateCluster) -> dict[str, Any]:
    # IPv4 in two halves: the AWS VPC CNI policy agent mishandles 0.0.0.0/0. Private ranges
    # and link-local (instance metadata) are excepted.
    rule = {
        "to": [
            {"ipBlock": {"cidr": "0.0.0.0/1", "except": ["10.0.0.0/8"]}},
            {
                "ipBlock": {
                    "cidr": "128.0.0.0/1",
                    "except": ["192.168.0.0/16", "172.16.0.0/12", "169.254.0.0/16"],
                }
            },
        ]
    }
    return _policy(cluster, ALLOW_PUBLIC_INTERNET, ["Egress"], egress=[rule])


def _allow_aws_pod_identity(cluster: RestateCluster) -> dict[str, Any]:
    rule = {"to": [{"ipBlock": {"cidr": EKS_POD_IDENTITY_AGENT}}], "ports": [_tcp(80)]}
    return _policy(cluster, ALLOW_AWS_POD_IDENTITY, ["Egress"], egress=[rule])


def _allow_gke_metadata(cluster: RestateCluster) -> dict[str, Any]:
    rules = [
        {"to": [{"ipBlock": {"cidr": cidr}}], "ports": [_tcp(port)]}
        for cidr, port in GKE_METADATA_SERVER
    ]
    return _policy(cluster, ALLOW_GKE_METADATA, ["Egress"], egress=rules)


def _allow_egress(cluster: RestateCluster) -> dict[str, Any]:
    user_rules = cluster.spec.security_or_default.network_egress_rules or []
    rules = [_prune(rule.to_kube()) for rule in user_rules]
    # Node-to-node traffic between this cluster's pods.
    rules.append({"to": [_own_pods(cluster)], "ports": [_tcp(NODE_PORT)]})
    # Any pod, in any namespace, that opted in with allow.restate.dev/<cluster>: "true".
    opted_in = {
        "namespaceSelector": {},
        "podSelector": {"matchLabels": {f"allow.restate.dev/{cluster.name}": "true"}},
    }
    rules.append({"to": [opted_in]})
    return _policy(cluster, ALLOW_EGRESS, ["Egress"], egress=rules)


def desired_network_policies(
    cluster: RestateCluster, settings: OperatorSettings
) -> list[dict[str, Any]]:
    """Every NetworkPolicy the cluster should have; [] when ``disableNetworkPolicies``.

    The operator reaches the admin port (unless ``allowOperatorAccessToAdmin: false``) and,
    when it provisions the cluster, the node port; the nodes always reach each other's
    node port. Prometheus and other scrapers come in through ``networkPeers.node``
    (``metrics`` is its deprecated alias).
    """
    security = cluster.spec.security_or_default
    if not security.network_policies_enabled:
        return []
    peers = security.network_peers
    operator = _operator_peer(settings)

    admin_added = [operator] if security.operator_may_reach_admin else []
    node_added = [_own_pods(cluster)]
    if effective_auto_provision(cluster):
        node_added.append(operator)

    policies = [_deny_all(cluster), _allow_dns(cluster), _allow_public_internet(cluster)]
    if security.aws_pod_identity_association_role_arn:
        policies.append(_allow_aws_pod_identity(cluster))
    # GKE reads the ServiceAccount's annotation itself, with or without --gcp-workload-identity:
    # its pods need the metadata server either way (public egress excepts link-local).
    if GKE_SERVICE_ACCOUNT_ANNOTATION in (security.service_account_annotations or {}):
        policies.append(_allow_gke_metadata(cluster))
    policies += [
        _allow_egress(cluster),
        _access_policy(
            cluster,
            ALLOW_INGRESS_ACCESS,
            INGRESS_PORT,
            merge_peers(peers.ingress if peers else None, []),
        ),
        _access_policy(
            cluster,
            ALLOW_ADMIN_ACCESS,
            ADMIN_PORT,
            merge_peers(peers.admin if peers else None, admin_added),
        ),
        _access_policy(
            cluster,
            ALLOW_NODE_ACCESS,
            NODE_PORT,
            merge_peers(peers.node_peers if peers else None, node_added),
        ),
    ]
    return policies
