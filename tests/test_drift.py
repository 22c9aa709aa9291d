"""Drift detection: an edited or deleted child is told apart from a changed desire."""

from __future__ import annotations

import copy
from typing import Any

from restate_op.drift import drift, first_difference
from restate_op.plan import make_plan
from tests.test_verdicts import cluster, observe


def _converged_children(raw: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The children exactly as the operator would have applied them (hash annotation too)."""
    plan = make_plan(observe(raw))
    return {
        (m["kind"], m["metadata"]["name"]): copy.deepcopy(m)
        for m in plan.apply
        if m["kind"] != "Namespace"
    }


def _namespace(raw: dict[str, Any]) -> dict[str, Any]:
    plan = make_plan(observe(raw))
    return next(copy.deepcopy(m) for m in plan.apply if m["kind"] == "Namespace")


def _manifest(raw: dict[str, Any], kind: str, children: Any, namespace: Any) -> dict[str, Any]:
    plan = make_plan(observe(raw, children, namespace))
    return next(m for m in plan.apply if m["kind"] == kind)


def test_first_difference_names_the_field() -> None:
    assert first_difference({"a": {"b": 1}}, {"a": {"b": 1}}) is None
    assert first_difference({"a": {"b": 2}}, {"a": {"b": 1}}) == "a.b"
    assert first_difference({"a": {}}, {"a": {"b": 1}}) == "a.b"
    assert first_difference({"a": [1, 2]}, {"a": [1]}) == "a"
    assert first_difference({"a": [{"x": 1}]}, {"a": [{"x": 2}]}) == "a[0].x"
    assert first_difference({"q": "2Gi"}, {"q": 2147483648}) is None, "quantities by value"


def test_first_creation_is_not_drift() -> None:
    raw = cluster(None)
    obs = observe(raw)
    assert all(drift(obs, m) is None for m in make_plan(obs).apply)


def test_a_child_deleted_after_ready_is_drift() -> None:
    raw = cluster("Ready")
    children = _converged_children(raw)
    del children[("Service", "restate")]
    obs = observe(raw, children, _namespace(raw))
    plan = make_plan(obs)
    assert [(m["kind"], drift(obs, m)) for m in plan.apply] == [("Service", "deleted")]


def test_a_missing_child_while_provisioning_is_not_drift() -> None:
    raw = cluster("Provisioning")
    children = _converged_children(raw)
    del children[("Service", "restate")]
    obs = observe(raw, children, _namespace(raw))
    assert [drift(obs, m) for m in make_plan(obs).apply] == [None]


def test_a_missing_child_after_a_spec_change_is_not_drift() -> None:
    raw = cluster("Ready", generation=2, observed=1)
    children = _converged_children(raw)
    del children[("Service", "restate")]
    obs = observe(raw, children, _namespace(raw))
    assert all(drift(obs, m) is None for m in make_plan(obs).apply)


def test_an_edited_child_is_drift_naming_the_field() -> None:
    raw = cluster("Ready")
    children = _converged_children(raw)
    children[("StatefulSet", "restate")]["spec"]["replicas"] = 3
    obs = observe(raw, children, _namespace(raw))
    sts = _manifest(raw, "StatefulSet", children, _namespace(raw))
    assert drift(obs, sts) == "spec.replicas changed"


def test_a_changed_spec_is_not_drift() -> None:
    before = cluster("Ready")
    children = _converged_children(before)
    after = cluster("Ready", replicas=3, generation=2)
    obs = observe(after, children, _namespace(after))
    sts = _manifest(after, "StatefulSet", children, _namespace(after))
    assert drift(obs, sts) is None


def test_a_rule_added_to_a_policy_that_admits_nobody_is_drift() -> None:
    """Opening the fence (an ingress rule on deny-all or on a port nobody may reach) must be
    undone: the operator owns the whole rule list, also when it is empty."""
    raw = cluster("Ready")
    children = _converged_children(raw)
    for policy in ("deny-all", "allow-ingress-access"):
        tampered = copy.deepcopy(children)
        tampered[("NetworkPolicy", policy)]["spec"]["ingress"] = [{"ports": [{"port": 8080}]}]
        obs = observe(raw, tampered, _namespace(raw))
        applied = [m for m in make_plan(obs).apply if m["metadata"]["name"] == policy]
        assert applied, f"{policy}: a foreign ingress rule went unnoticed"
        assert applied[0]["spec"]["ingress"] == [], "an empty list clears the foreign rules"
        assert drift(obs, applied[0]) == "spec.ingress changed"


def test_policies_without_rules_converge_to_what_the_server_stores() -> None:
    """The server drops empty rule lists; that is no difference (or every reconcile writes)."""
    raw = cluster("Ready")
    children = _converged_children(raw)
    for key, child in children.items():
        if key[0] == "NetworkPolicy":
            for direction in ("ingress", "egress"):
                if child["spec"].get(direction) == []:
                    del child["spec"][direction]
    obs = observe(raw, children, _namespace(raw))
    assert make_plan(obs).apply == ()


def test_first_creation_after_a_failed_first_reconcile_is_not_drift() -> None:
    # A rejected apply or an API outage makes a brand-new cluster Degraded before any child
    # exists; creating the children afterwards restores nothing.
    raw = cluster("Degraded")
    raw["status"]["conditions"] = [
        {"type": "Degraded", "status": "True", "reason": "ApplyRejected", "message": "x"}
    ]
    obs = observe(raw)
    assert all(drift(obs, m) is None for m in make_plan(obs).apply)


def test_a_child_deleted_while_pods_are_not_ready_is_drift() -> None:
    raw = cluster("Degraded")
    raw["status"]["conditions"] = [
        {"type": "Degraded", "status": "True", "reason": "PodsNotReady", "message": "x"}
    ]
    children = _converged_children(raw)
    del children[("Service", "restate")]
    obs = observe(raw, children, _namespace(raw))
    assert [drift(obs, m) for m in make_plan(obs).apply] == ["deleted"]
