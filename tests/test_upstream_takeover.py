"""Taking over from the upstream Rust operator: what it left that restate-op does not want.

restate-op watches objects with the cluster's name label but without its own
``app.kubernetes.io/managed-by`` (``Observation.foreign``) and prunes only those it recognises
as upstream's for this cluster: a name upstream uses, the cluster's selector labels and a
controller reference to this RestateCluster's uid. Everything else (a user's) stays.
e2e/test_migration.py proves it on exactly what upstream v2.9 left.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from restate_op.cluster_controller import UPSTREAM_LEFTOVER_KINDS, UPSTREAM_SELECTOR
from restate_op.plan import ChildRef, make_plan
from tests.test_verdicts import UID, cluster, converged

SELECTOR = {"app.kubernetes.io/name": "restate", "app.kubernetes.io/instance": "rc"}


def upstreams(kind: str, name: str, **changes: Any) -> dict[str, Any]:
    """An object as upstream v2.9 made it for cluster ``rc`` (no managed-by label)."""
    api = {"NetworkPolicy": "networking.k8s.io/v1", "PodDisruptionBudget": "policy/v1"}
    obj: dict[str, Any] = {
        "apiVersion": api.get(kind, "v1"),
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": "rc",
            "uid": f"uid-upstream-{name}",
            "labels": dict(SELECTOR),
            "ownerReferences": [
                {"apiVersion": "restate.dev/v1", "kind": "RestateCluster", "name": "rc",
                 "uid": UID, "controller": True}
            ],
        },
    }  # fmt: skip
    obj["metadata"].update(changes)
    return obj


def stale(*foreign: dict[str, Any], replicas: int = 1) -> set[tuple[str, str]]:
    obs = replace(converged(cluster("Ready", replicas=replicas)), foreign=foreign)
    return {(ref.kind, ref.name) for ref in make_plan(obs).delete}


def test_the_selector_finds_what_upstream_labelled_and_restate_op_did_not() -> None:
    assert UPSTREAM_SELECTOR == "app.kubernetes.io/name=restate,!app.kubernetes.io/managed-by"
    kinds = {k.kind for k in UPSTREAM_LEFTOVER_KINDS}
    assert kinds == {"ConfigMap", "PodDisruptionBudget", "NetworkPolicy"}


def test_upstream_only_objects_are_pruned() -> None:
    assert stale(
        upstreams("NetworkPolicy", "allow-metrics-access"),
        upstreams("NetworkPolicy", "allow-egress-to-kube-dns"),
        upstreams("PodDisruptionBudget", "restate"),  # one node: restate-op wants none
        upstreams("ConfigMap", "restate-config-0badc0de"),  # an older config's
    ) == {
        ("NetworkPolicy", "allow-metrics-access"),
        ("NetworkPolicy", "allow-egress-to-kube-dns"),
        ("PodDisruptionBudget", "restate"),
        ("ConfigMap", "restate-config-0badc0de"),
    }


def test_the_delete_names_the_object_and_its_uid() -> None:
    obs = replace(
        converged(cluster("Ready")), foreign=(upstreams("NetworkPolicy", "allow-metrics-access"),)
    )
    (ref,) = make_plan(obs).delete
    assert ref == ChildRef(
        "networking.k8s.io/v1", "NetworkPolicy", "rc", "allow-metrics-access",
        "uid-upstream-allow-metrics-access",
    )  # fmt: skip


def test_a_desired_name_is_taken_over_not_pruned() -> None:
    # Two nodes: restate-op wants PDB `restate` too; the apply takes upstream's over.
    assert stale(upstreams("PodDisruptionBudget", "restate"), replicas=2) == set()
    assert stale(upstreams("NetworkPolicy", "deny-all")) == set()


@pytest.mark.parametrize(
    ("why", "obj"),
    [
        ("unknown name", upstreams("NetworkPolicy", "allow-my-monitoring")),
        ("not a config hash", upstreams("ConfigMap", "restate-config-mine")),
        ("no owner", upstreams("NetworkPolicy", "allow-metrics-access", ownerReferences=[])),
        (
            "another cluster's uid",
            upstreams(
                "NetworkPolicy",
                "allow-metrics-access",
                ownerReferences=[
                    {"apiVersion": "restate.dev/v1", "kind": "RestateCluster", "name": "rc",
                     "uid": "some-other-uid", "controller": True}
                ],
            ),
        ),
        (
            "not a controller reference",
            upstreams(
                "PodDisruptionBudget",
                "restate",
                ownerReferences=[
                    {"apiVersion": "restate.dev/v1", "kind": "RestateCluster", "name": "rc",
                     "uid": UID}
                ],
            ),
        ),
        (
            "another instance's labels",
            upstreams(
                "PodDisruptionBudget",
                "restate",
                labels={"app.kubernetes.io/name": "restate", "app.kubernetes.io/instance": "x"},
            ),
        ),
        (
            "managed by restate-op",
            upstreams(
                "PodDisruptionBudget",
                "restate",
                labels={**SELECTOR, "app.kubernetes.io/managed-by": "restate-operator"},
            ),
        ),
    ],
)  # fmt: skip
def test_what_is_not_provably_upstreams_stays(why: str, obj: dict[str, Any]) -> None:
    assert stale(copy.deepcopy(obj)) == set(), why


def test_nothing_foreign_changes_nothing() -> None:
    obs = converged(cluster("Ready"))
    assert obs.foreign == ()
    assert make_plan(obs).delete == make_plan(replace(obs, foreign=())).delete
