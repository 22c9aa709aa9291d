"""The cluster Namespace and the ownership rules of spec §3."""

from __future__ import annotations

from typing import Any

import pytest

from restate_op.children.namespace import desired_namespace, namespace_ownership
from tests.children.helpers import UID, make_cluster


def test_namespace_is_named_after_the_cluster_and_enforces_restricted() -> None:
    ns = desired_namespace(make_cluster(name="c1", labels={"team": "a"}))
    assert ns["apiVersion"] == "v1"
    assert ns["kind"] == "Namespace"
    assert ns["metadata"]["name"] == "c1"
    assert "namespace" not in ns["metadata"]
    labels = ns["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"] == "latest"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"
    assert labels["team"] == "a"
    assert labels["app.kubernetes.io/instance"] == "c1"
    assert ns["metadata"]["ownerReferences"][0]["uid"] == UID
    assert set(ns) == {"apiVersion", "kind", "metadata"}


def test_user_labels_cannot_weaken_pod_security() -> None:
    ns = desired_namespace(
        make_cluster(labels={"pod-security.kubernetes.io/enforce": "privileged"})
    )
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def _ns(owner_uids: list[str] | None = None, adopt: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "restate-test"}
    if owner_uids is not None:
        metadata["ownerReferences"] = [
            {"apiVersion": "restate.dev/v1", "kind": "RestateCluster", "name": "x", "uid": u}
            for u in owner_uids
        ]
    if adopt is not None:
        metadata["annotations"] = {"restate.dev/adopt": adopt}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


@pytest.mark.parametrize(
    ("live", "expected"),
    [
        (None, "absent"),
        (_ns([UID]), "owned"),
        (_ns(["other", UID]), "owned"),
        (_ns([UID], adopt="true"), "owned"),
        (_ns(), "conflict"),
        (_ns(["someone-else"]), "conflict"),
        (_ns(adopt="true"), "adopted"),
        (_ns(["someone-else"], adopt="true"), "adopted"),
        (_ns(adopt="false"), "conflict"),
        (_ns(adopt="True"), "conflict"),
    ],
)
def test_namespace_ownership(live: dict[str, Any] | None, expected: str) -> None:
    assert namespace_ownership(make_cluster(), live) == expected


def test_cluster_without_uid_owns_nothing() -> None:
    cluster = make_cluster()
    cluster.metadata.uid = ""
    assert namespace_ownership(cluster, _ns([""])) == "conflict"
