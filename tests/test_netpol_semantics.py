"""NetworkPolicy semantics: first the evaluator against the API's rules, then the fences the
builders generate against the product's rules (e2e/test_security.py checks the same rules on
the objects the API server stores)."""

from __future__ import annotations

from typing import Any

import pytest

from e2e.netpol_eval import Endpoint, Network, external, pod, selector_matches
from e2e.netpol_expectations import Fence, failures, total_checks
from restate_op.children.network_policies import desired_network_policies
from restate_op.children.statefulset import desired_statefulset
from restate_op.settings import OperatorSettings
from tests.children.helpers import make_cluster

SETTINGS = OperatorSettings()

# -- the evaluator -------------------------------------------------------------------------

WEB = pod(
    "web",
    "shop",
    "10.0.1.1",
    {"app": "web"},
    [{"ports": [{"name": "http", "containerPort": 8080}]}],
)
DB = pod(
    "db", "shop", "10.0.1.2", {"app": "db"}, [{"ports": [{"name": "pg", "containerPort": 5432}]}]
)
TOOL = pod("tool", "ops", "10.0.2.1", {"role": "tool"})
OTHER = pod("other", "misc", "10.0.3.1", {"role": "tool"})
NAMESPACES = {"shop": {"env": "prod"}, "ops": {"team": "ops"}, "misc": {}}


def _np(name: str, spec: dict[str, Any], namespace: str = "shop") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


def test_no_policy_allows_everything() -> None:
    net = Network([], NAMESPACES)
    assert net.allowed(WEB, DB, 5432)
    assert net.allowed(TOOL, external("x", "8.8.8.8"), 1)


def test_an_ingress_policy_isolates_only_the_pods_it_selects() -> None:
    net = Network([_np("db", {"podSelector": {"matchLabels": {"app": "db"}}})], NAMESPACES)
    assert not net.allowed(WEB, DB, 5432), "selected and no rule: nothing in"
    assert net.allowed(DB, WEB, 8080), "web is not selected; egress of db is not isolated"


def test_policy_types_default_to_ingress_plus_egress_when_egress_rules_exist() -> None:
    spec = {
        "podSelector": {},
        "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "db"}}}]}],
    }
    net = Network([_np("e", spec)], NAMESPACES)
    assert net.allowed(WEB, DB, 5432) is False, "ingress isolation by default blocks db's side"
    only_egress = Network([_np("e", {**spec, "policyTypes": ["Egress"]})], NAMESPACES)
    assert only_egress.allowed(WEB, DB, 5432)
    assert not only_egress.allowed(WEB, TOOL, 1)


def test_rules_of_all_selecting_policies_add_up() -> None:
    deny = _np("deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    allow = _np(
        "allow",
        {
            "podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}],
        },
    )
    egress = _np(
        "egress",
        {
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Egress"],
            "egress": [{"ports": [{"port": 5432}]}],
        },
    )
    assert not Network([deny, allow], NAMESPACES).allowed(WEB, DB, 5432), "web's egress denied"
    assert Network([deny, allow, egress], NAMESPACES).allowed(WEB, DB, 5432)
    assert not Network([deny, allow, egress], NAMESPACES).allowed(WEB, DB, 5433)


def test_a_rule_without_peers_or_ports_matches_all_but_no_rules_match_nothing() -> None:
    everyone = _np("all", {"podSelector": {}, "ingress": [{}]})
    assert Network([everyone], NAMESPACES).allowed(OTHER, DB, 1)
    assert Network([everyone], NAMESPACES).allowed(external("x", "1.2.3.4"), DB, 1)
    empty_lists = _np("all", {"podSelector": {}, "ingress": [{"from": [], "ports": []}]})
    assert Network([empty_lists], NAMESPACES).allowed(OTHER, DB, 1)
    none = _np("none", {"podSelector": {}, "ingress": []})
    assert not Network([none], NAMESPACES).allowed(WEB, DB, 1)


def test_pod_selector_alone_means_the_policys_namespace() -> None:
    spec = {
        "podSelector": {},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "tool"}}}]}],
    }
    assert not Network([_np("p", spec)], NAMESPACES).allowed(TOOL, DB, 5432)
    local_tool = pod("tool", "shop", "10.0.1.9", {"role": "tool"})
    assert Network([_np("p", spec)], NAMESPACES).allowed(local_tool, DB, 5432)


def test_namespace_and_pod_selector_in_one_peer_must_both_match() -> None:
    together = {
        "podSelector": {},
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {"team": "ops"}},
                        "podSelector": {"matchLabels": {"role": "tool"}},
                    }
                ]
            }
        ],
    }
    apart = {
        "podSelector": {},
        "ingress": [
            {
                "from": [
                    {"namespaceSelector": {"matchLabels": {"team": "ops"}}},
                    {"podSelector": {"matchLabels": {"role": "tool"}}},
                ]
            }
        ],
    }
    ops_web = pod("web", "ops", "10.0.2.2", {"app": "web"})
    assert Network([_np("t", together)], NAMESPACES).allowed(TOOL, DB, 1)
    assert not Network([_np("t", together)], NAMESPACES).allowed(OTHER, DB, 1)
    assert not Network([_np("t", together)], NAMESPACES).allowed(ops_web, DB, 1)
    assert Network([_np("a", apart)], NAMESPACES).allowed(ops_web, DB, 1), "any pod of ops"
    assert not Network([_np("a", apart)], NAMESPACES).allowed(OTHER, DB, 1)


def test_namespaces_match_their_automatic_name_label() -> None:
    spec = {
        "podSelector": {},
        "ingress": [
            {
                "from": [
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "misc"}}}
                ]
            }
        ],
    }
    assert Network([_np("n", spec)], NAMESPACES).allowed(OTHER, DB, 1)
    assert not Network([_np("n", spec)], NAMESPACES).allowed(TOOL, DB, 1)


def test_ip_block_with_except() -> None:
    spec = {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/1", "except": ["10.0.0.0/8"]}}]}],
    }
    net = Network([_np("i", spec)], NAMESPACES)
    assert net.allowed(WEB, external("g", "8.8.8.8"), 443)
    assert not net.allowed(WEB, external("p", "10.9.9.9"), 443)
    assert not net.allowed(WEB, external("hi", "200.0.0.1"), 443)
    assert not net.allowed(WEB, external("v6", "2001:db8::1"), 443)


def test_ip_blocks_match_pod_ips_only_when_asked() -> None:
    spec = {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": "10.0.2.0/24"}}]}],
    }
    assert not Network([_np("i", spec)], NAMESPACES).allowed(WEB, TOOL, 1)
    assert Network([_np("i", spec)], NAMESPACES, ip_blocks_match_pods=True).allowed(WEB, TOOL, 1)


def test_ports_protocols_ranges_and_names() -> None:
    def net(*ports: dict[str, Any]) -> Network:
        return Network(
            [_np("p", {"podSelector": {}, "ingress": [{"ports": list(ports)}]})], NAMESPACES
        )

    assert net({"port": 5432}).allowed(WEB, DB, 5432)
    assert not net({"port": 5432}).allowed(WEB, DB, 5432, "UDP"), "protocol defaults to TCP"
    assert net({"port": 53, "protocol": "UDP"}).allowed(WEB, DB, 53, "UDP")
    assert net({"protocol": "TCP"}).allowed(WEB, DB, 1), "no port: every port"
    assert net({"port": 5000, "endPort": 6000}).allowed(WEB, DB, 5432)
    assert not net({"port": 5000, "endPort": 6000}).allowed(WEB, DB, 6001)
    assert net({"port": "pg"}).allowed(WEB, DB, 5432), "named port of the destination"
    assert not net({"port": "pg"}).allowed(WEB, DB, 5433)
    assert not net({"port": "http"}).allowed(DB, DB, 8080), "db has no port named http"


def test_a_connection_needs_egress_at_the_source_and_ingress_at_the_destination() -> None:
    src_fenced = _np(
        "s", {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"]}
    )
    dst_fenced = _np("d", {"podSelector": {"matchLabels": {"app": "db"}}})
    assert not Network([src_fenced], NAMESPACES).allowed(WEB, DB, 1)
    assert not Network([dst_fenced], NAMESPACES).allowed(WEB, DB, 1)
    assert Network([src_fenced], NAMESPACES).allowed(DB, WEB, 1)


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ({}, {"a": "1"}, True),
        (None, {"a": "1"}, False),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
            {"a": "2"},
            True,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
            {"a": "1"},
            False,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {}, True),
    ],
)
def test_label_selectors(selector: Any, labels: dict[str, str], matches: bool) -> None:
    assert selector_matches(selector, labels) is matches


# -- the generated fences ------------------------------------------------------------------

TEAM_A = {"namespaceSelector": {"matchLabels": {"team": "a"}}}
PROMETHEUS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}
ROLE_ARN = "arn:aws:iam::123456789012:role/restate"
DB_RULE = {"to": [{"ipBlock": {"cidr": "10.1.0.0/16"}}], "ports": [{"port": 5432}]}

FENCES: dict[str, tuple[dict[str, Any], Fence]] = {
    "baseline": ({}, Fence("demo")),
    "multi-node (operator provisions)": (
        {"compute": {"replicas": 3}},
        Fence("demo", operator_node=True),
    ),
    "provisioning by the user": (
        {"compute": {"replicas": 3}, "cluster": {"autoProvision": False}},
        Fence("demo"),
    ),
    "peers, egress rules and pod identity": (
        {
            "security": {
                "networkPeers": {"ingress": [TEAM_A], "admin": [], "node": [PROMETHEUS]},
                "networkEgressRules": [DB_RULE],
                "awsPodIdentityAssociationRoleArn": ROLE_ARN,
            }
        },
        Fence(
            "demo",
            ingress=frozenset({"client-a"}),
            admin="everybody",
            node=frozenset({"prometheus"}),
            pod_identity=True,
            egress_open=frozenset({("db", 5432, "TCP")}),
            egress_closed=frozenset({("db", 5433, "TCP")}),
        ),
    ),
    "ingress open to everybody": (
        {"security": {"networkPeers": {"ingress": []}}},
        Fence("demo", ingress="everybody"),
    ),
    "deprecated metrics peers stand for node": (
        {"security": {"networkPeers": {"metrics": [PROMETHEUS]}}},
        Fence("demo", node=frozenset({"prometheus"})),
    ),
    "node peers win over metrics": (
        {"security": {"networkPeers": {"node": [TEAM_A], "metrics": [PROMETHEUS]}}},
        Fence("demo", node=frozenset({"client-a"})),
    ),
    "operator kept out of admin": (
        {"security": {"allowOperatorAccessToAdmin": False}},
        Fence("demo", operator_admin=False),
    ),
    "ip peers and a port range": (
        {
            "security": {
                "networkPeers": {"ingress": [{"ipBlock": {"cidr": "192.168.0.0/16"}}]},
                "networkEgressRules": [
                    {
                        "to": [{"ipBlock": {"cidr": "10.1.0.0/16"}}],
                        "ports": [{"port": 5400, "endPort": 5500}],
                    }
                ],
            }
        },
        Fence(
            "demo",
            ingress=frozenset({"vpc-192"}),
            egress_open=frozenset({("db", 5432, "TCP")}),
            egress_closed=frozenset({("db", 5501, "TCP"), ("vpc-10", 5432, "TCP")}),
        ),
    ),
    "policies disabled": (
        {"security": {"disableNetworkPolicies": True}},
        Fence("demo", enabled=False),
    ),
}


def restate_endpoints(spec: dict[str, Any], count: int = 2) -> list[Endpoint]:
    """The cluster's pods as the StatefulSet would create them (labels and container ports)."""
    cluster = make_cluster(spec, name="demo")
    template = desired_statefulset(cluster, SETTINGS, {})["spec"]["template"]
    return [
        pod(
            f"restate-{i}",
            "demo",
            f"10.244.0.{10 + i}",
            template["metadata"]["labels"],
            template["spec"]["containers"],
        )
        for i in range(count)
    ]


@pytest.mark.parametrize("case", list(FENCES))
def test_generated_fence_lets_through_exactly_what_the_rules_say(case: str) -> None:
    spec, fence = FENCES[case]
    cluster = make_cluster(spec, name="demo")
    policies = desired_network_policies(cluster, SETTINGS)
    restate = restate_endpoints(spec)
    wrong = failures(policies, {"demo": {}}, fence, restate)
    assert not wrong, f"{len(wrong)} of {total_checks(fence, restate)} checks:\n" + "\n".join(wrong)


def test_every_fence_rule_is_exercised() -> None:
    """The check table is not vacuous: both verdicts occur, and a broken fence is caught."""
    spec, fence = FENCES["peers, egress rules and pod identity"]
    cluster = make_cluster(spec, name="demo")
    policies = desired_network_policies(cluster, SETTINGS)
    restate = restate_endpoints(spec)
    assert total_checks(fence, restate) > 80
    broken = [p for p in policies if p["metadata"]["name"] != "allow-restate-egress"]
    assert any(
        "nodes reach each other" in w for w in failures(broken, {"demo": {}}, fence, restate)
    )
    no_dns = [p for p in policies if p["metadata"]["name"] != "allow-egress-to-dns"]
    assert any("DNS" in w for w in failures(no_dns, {"demo": {}}, fence, restate))
