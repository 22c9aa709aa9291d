"""Labels, owner references and metadata common to every child."""

from __future__ import annotations

from restate_op.children.metadata import (
    child_labels,
    child_metadata,
    owner_reference,
    selector_labels,
)
from tests.children.helpers import UID, make_cluster


def test_selector_labels_name_the_app_and_instance() -> None:
    assert selector_labels(make_cluster(name="c1")) == {
        "app.kubernetes.io/name": "restate",
        "app.kubernetes.io/instance": "c1",
    }


def test_selector_labels_ignore_user_labels() -> None:
    cluster = make_cluster(labels={"team": "a", "app.kubernetes.io/name": "other"})
    assert selector_labels(cluster) == selector_labels(make_cluster())


def test_child_labels_propagate_cluster_labels_and_operator_labels_win() -> None:
    cluster = make_cluster(
        name="c1",
        labels={
            "team": "payments",
            "app.kubernetes.io/name": "hijack",
            "app.kubernetes.io/instance": "hijack",
            "app.kubernetes.io/managed-by": "helm",
        },
    )
    assert child_labels(cluster) == {
        "app.kubernetes.io/instance": "c1",
        "app.kubernetes.io/managed-by": "restate-operator",
        "app.kubernetes.io/name": "restate",
        "team": "payments",
    }
    assert list(child_labels(cluster)) == sorted(child_labels(cluster))


def test_owner_reference_is_a_blocking_controller_reference() -> None:
    assert owner_reference(make_cluster(name="c1")) == {
        "apiVersion": "restate.dev/v1",
        "kind": "RestateCluster",
        "name": "c1",
        "uid": UID,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_child_metadata_cluster_scoped_has_no_namespace() -> None:
    meta = child_metadata(make_cluster(), "x")
    assert "namespace" not in meta
    assert "annotations" not in meta
    assert meta["ownerReferences"] == [owner_reference(make_cluster())]


def test_child_metadata_namespaced_with_annotations() -> None:
    meta = child_metadata(make_cluster(), "x", "ns", {"b": "2", "a": "1"})
    assert meta["namespace"] == "ns"
    assert meta["annotations"] == {"a": "1", "b": "2"}
    assert list(meta["annotations"]) == ["a", "b"]


def test_child_metadata_omits_empty_annotations() -> None:
    assert "annotations" not in child_metadata(make_cluster(), "x", "ns", {})


def test_cluster_annotations_are_not_propagated() -> None:
    cluster = make_cluster(
        annotations={"kubectl.kubernetes.io/last-applied-configuration": "{...}"}
    )
    assert "annotations" not in child_metadata(cluster, "x", "ns")
