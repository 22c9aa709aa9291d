"""PodDisruptionBudget."""

from __future__ import annotations

from restate_op.children.pdb import desired_pdb
from tests.children.helpers import make_cluster


def test_no_pdb_for_zero_or_one_node() -> None:
    assert desired_pdb(make_cluster()) is None
    assert desired_pdb(make_cluster({"compute": {"replicas": 1}})) is None
    assert desired_pdb(make_cluster({"compute": {"replicas": 0}})) is None


def test_pdb_for_several_nodes() -> None:
    pdb = desired_pdb(make_cluster({"compute": {"replicas": 3}}))
    assert pdb is not None
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["kind"] == "PodDisruptionBudget"
    assert pdb["metadata"]["name"] == "restate"
    assert pdb["metadata"]["namespace"] == "restate-test"
    assert pdb["spec"] == {
        "maxUnavailable": 1,
        "selector": {
            "matchLabels": {
                "app.kubernetes.io/name": "restate",
                "app.kubernetes.io/instance": "restate-test",
            }
        },
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
