"""NetworkPolicies: the fence, its holes, peer semantics and idempotent shapes."""

from __future__ import annotations

from typing import Any

import pytest

from restate_op.children.network_policies import (
    NETWORK_POLICY_NAMES,
    desired_network_policies,
)
from restate_op.settings import OperatorSettings
from tests.children.helpers import empty_fields, load_fixture, make_cluster, walk

SETTINGS = OperatorSettings(
    operator_namespace="ops", operator_label_name="app", operator_label_value="restate-operator"
)
SELECTOR = {"app.kubernetes.io/name": "restate", "app.kubernetes.io/instance": "restate-test"}
OPERATOR_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}},
    "podSelector": {"matchLabels": {"app": "restate-operator"}},
}
OWN_PODS = {"podSelector": {"matchLabels": SELECTOR}}
PEER_A = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "a"}}}


def policies(
    spec: dict[str, Any] | None = None, settings: OperatorSettings = SETTINGS
) -> dict[str, Any]:
    built = desired_network_policies(make_cluster(spec), settings)
    by_name = {p["metadata"]["name"]: p for p in built}
    assert len(by_name) == len(built)
    return by_name


def ingress_rules(spec: dict[str, Any] | None, name: str) -> list[dict[str, Any]] | None:
    rules: list[dict[str, Any]] | None = policies(spec)[name]["spec"].get("ingress")
    return rules


def test_default_policy_set() -> None:
    built = policies()
    assert list(built) == [
        "deny-all",
        "allow-egress-to-dns",
        "allow-restate-egress-to-public-internet",
        "allow-restate-egress",
        "allow-ingress-access",
        "allow-admin-access",
        "allow-node-access",
    ]
    assert set(built) <= NETWORK_POLICY_NAMES
    for policy in built.values():
        assert policy["apiVersion"] == "networking.k8s.io/v1"
        assert policy["kind"] == "NetworkPolicy"
        assert policy["metadata"]["namespace"] == "restate-test"
        assert policy["spec"]["podSelector"] == {"matchLabels": SELECTOR}
        assert empty_fields(policy) == []


def test_names_include_legacy_ones_for_cleanup() -> None:
    assert {"allow-egress-to-kube-dns", "allow-metrics-access"} <= NETWORK_POLICY_NAMES
    assert "allow-restate-egress-to-aws-pod-identity" in NETWORK_POLICY_NAMES


def test_disabled() -> None:
    assert policies({"security": {"disableNetworkPolicies": True}}) == {}
    assert len(policies({"security": {"disableNetworkPolicies": False}})) == 7


def test_deny_all() -> None:
    spec = policies()["deny-all"]["spec"]
    assert spec == {
        "podSelector": {"matchLabels": SELECTOR},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [],
        "egress": [],
    }


def test_dns() -> None:
    spec = policies()["allow-egress-to-dns"]["spec"]
    assert spec["policyTypes"] == ["Egress"]
    assert spec["egress"] == [
        {
            "to": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                    },
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                },
                {"ipBlock": {"cidr": "169.254.20.10/32"}},
            ],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        }
    ]


def test_public_internet() -> None:
    [rule] = policies()["allow-restate-egress-to-public-internet"]["spec"]["egress"]
    assert rule == {
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


def test_aws_pod_identity_only_with_a_role() -> None:
    arn = "arn:aws:iam::123456789012:role/r"
    built = policies({"security": {"awsPodIdentityAssociationRoleArn": arn}})
    assert built["allow-restate-egress-to-aws-pod-identity"]["spec"]["egress"] == [
        {
            "to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}],
            "ports": [{"protocol": "TCP", "port": 80}],
        }
    ]
    assert "allow-restate-egress-to-aws-pod-identity" not in policies()


def test_restate_egress_defaults() -> None:
    egress = policies()["allow-restate-egress"]["spec"]["egress"]
    assert egress == [
        {"to": [OWN_PODS], "ports": [{"protocol": "TCP", "port": 5122}]},
        {
            "to": [
                {
                    "namespaceSelector": {},
                    "podSelector": {"matchLabels": {"allow.restate.dev/restate-test": "true"}},
                }
            ]
        },
    ]


def test_restate_egress_user_rules_come_first_and_are_pruned() -> None:
    rules = [
        {"to": [{"ipBlock": {"cidr": "10.1.0.0/16", "except": []}}], "ports": [{"port": 443}]},
        {"to": [], "ports": []},
        {},
    ]
    egress = policies({"security": {"networkEgressRules": rules}})["allow-restate-egress"]["spec"][
        "egress"
    ]
    assert egress[:3] == [
        {"to": [{"ipBlock": {"cidr": "10.1.0.0/16"}}], "ports": [{"port": 443}]},
        {},
        {},
    ]
    assert len(egress) == 5


# --- peer semantics ------------------------------------------------------------------------


def test_ingress_absent_admits_nobody() -> None:
    assert ingress_rules(None, "allow-ingress-access") == []
    assert ingress_rules({"security": {"networkPeers": {}}}, "allow-ingress-access") == []


def test_ingress_empty_list_admits_everybody_without_from() -> None:
    rules = ingress_rules({"security": {"networkPeers": {"ingress": []}}}, "allow-ingress-access")
    assert rules == [{"ports": [{"protocol": "TCP", "port": 8080}]}]


def test_ingress_list_admits_those_peers() -> None:
    rules = ingress_rules(
        {"security": {"networkPeers": {"ingress": [PEER_A]}}}, "allow-ingress-access"
    )
    assert rules == [{"ports": [{"protocol": "TCP", "port": 8080}], "from": [PEER_A]}]


def test_admin_absent_admits_only_the_operator() -> None:
    assert ingress_rules(None, "allow-admin-access") == [
        {"ports": [{"protocol": "TCP", "port": 9070}], "from": [OPERATOR_PEER]}
    ]


def test_admin_list_gets_the_operator_appended() -> None:
    spec = {"security": {"networkPeers": {"admin": [PEER_A]}}}
    assert ingress_rules(spec, "allow-admin-access") == [
        {"ports": [{"protocol": "TCP", "port": 9070}], "from": [PEER_A, OPERATOR_PEER]}
    ]


def test_admin_empty_list_admits_everybody() -> None:
    spec: dict[str, Any] = {"security": {"networkPeers": {"admin": []}}}
    assert ingress_rules(spec, "allow-admin-access") == [
        {"ports": [{"protocol": "TCP", "port": 9070}]}
    ]


def test_admin_without_operator_access() -> None:
    spec: dict[str, Any] = {"security": {"allowOperatorAccessToAdmin": False}}
    assert ingress_rules(spec, "allow-admin-access") == []
    spec["security"]["networkPeers"] = {"admin": [PEER_A]}
    assert ingress_rules(spec, "allow-admin-access") == [
        {"ports": [{"protocol": "TCP", "port": 9070}], "from": [PEER_A]}
    ]


def test_node_absent_admits_own_pods_only() -> None:
    assert ingress_rules(None, "allow-node-access") == [
        {"ports": [{"protocol": "TCP", "port": 5122}], "from": [OWN_PODS]}
    ]


def test_node_admits_the_operator_when_it_provisions() -> None:
    for spec in ({"cluster": {"autoProvision": True}}, {"compute": {"replicas": 3}}):
        assert ingress_rules(spec, "allow-node-access") == [
            {"ports": [{"protocol": "TCP", "port": 5122}], "from": [OWN_PODS, OPERATOR_PEER]}
        ]


def test_node_peers_with_metrics_fallback() -> None:
    expected = [{"ports": [{"protocol": "TCP", "port": 5122}], "from": [PEER_A, OWN_PODS]}]
    assert (
        ingress_rules({"security": {"networkPeers": {"node": [PEER_A]}}}, "allow-node-access")
        == expected
    )
    assert (
        ingress_rules({"security": {"networkPeers": {"metrics": [PEER_A]}}}, "allow-node-access")
        == expected
    )
    other = {"podSelector": {"matchLabels": {"x": "y"}}}
    both = {"security": {"networkPeers": {"node": [PEER_A], "metrics": [other]}}}
    assert ingress_rules(both, "allow-node-access") == expected


def test_node_empty_list_admits_everybody() -> None:
    spec: dict[str, Any] = {"security": {"networkPeers": {"node": []}}}
    assert ingress_rules(spec, "allow-node-access") == [
        {"ports": [{"protocol": "TCP", "port": 5122}]}
    ]


def test_user_peers_are_pruned_but_keep_meaningful_empty_selectors() -> None:
    peer: dict[str, Any] = {"namespaceSelector": {}, "podSelector": {"matchLabels": {}}}
    rules = ingress_rules(
        {"security": {"networkPeers": {"ingress": [peer]}}}, "allow-ingress-access"
    )
    assert rules == [
        {
            "ports": [{"protocol": "TCP", "port": 8080}],
            "from": [{"namespaceSelector": {}, "podSelector": {}}],
        }
    ]


# --- no `from: []` anywhere ----------------------------------------------------------------

PEER_VARIANTS: list[dict[str, Any]] = [
    {},
    {"ingress": []},
    {"ingress": [], "admin": [], "node": [], "metrics": []},
    {"ingress": [PEER_A], "admin": [], "metrics": []},
]


@pytest.mark.parametrize("peers", PEER_VARIANTS)
@pytest.mark.parametrize("operator_access", [True, False])
@pytest.mark.parametrize("auto_provision", [True, False])
def test_never_an_empty_from_or_to(
    peers: dict[str, Any], operator_access: bool, auto_provision: bool
) -> None:
    spec = {
        "cluster": {"autoProvision": auto_provision},
        "security": {
            "networkPeers": peers,
            "allowOperatorAccessToAdmin": operator_access,
            "networkEgressRules": [{"to": []}, {}],
        },
    }
    for policy in policies(spec).values():
        for path, value in walk(policy):
            # Only the policy's own rule lists may be empty (that clears foreign rules).
            if path.endswith((".from", ".to", ".ingress", ".egress", ".ports")) and path not in (
                ".spec.ingress",
                ".spec.egress",
            ):
                assert value != [], path


def test_full_fixture_policies() -> None:
    built = {
        p["metadata"]["name"]: p
        for p in desired_network_policies(load_fixture("full.yaml"), SETTINGS)
    }
    assert "allow-restate-egress-to-aws-pod-identity" in built
    node = built["allow-node-access"]["spec"]["ingress"][0]["from"]
    assert len(node) == 3  # prometheus, own pods, operator (autoProvision)


def test_gke_metadata_server_only_with_the_gke_annotation() -> None:
    """GKE reads the annotation itself, flag or not; public egress excepts link-local."""
    email = "restate-sa@my-project.iam.gserviceaccount.com"
    annotated = {"serviceAccountAnnotations": {"iam.gke.io/gcp-service-account": email}}
    built = policies({"security": annotated})
    assert "allow-restate-egress-to-gke-metadata" in NETWORK_POLICY_NAMES
    assert built["allow-restate-egress-to-gke-metadata"]["spec"]["egress"] == [
        {
            "to": [{"ipBlock": {"cidr": "169.254.169.254/32"}}],
            "ports": [{"protocol": "TCP", "port": 80}],
        },
        {
            "to": [{"ipBlock": {"cidr": "169.254.169.252/32"}}],
            "ports": [{"protocol": "TCP", "port": 988}],
        },
        {
            "to": [{"ipBlock": {"cidr": "127.0.0.1/32"}}],
            "ports": [{"protocol": "TCP", "port": 988}],
        },
    ]
    assert "allow-restate-egress-to-gke-metadata" not in policies()
    other = {"serviceAccountAnnotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/r"}}
    assert "allow-restate-egress-to-gke-metadata" not in policies({"security": other})
