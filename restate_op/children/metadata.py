"""Labels, owner reference and metadata shared by every child of a RestateCluster."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from restate_op import GROUP, KIND, VERSION
from restate_op.api.models import RestateCluster
from restate_op.children.constants import (
    APP_NAME,
    INSTANCE_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    NAME_LABEL,
)


def sorted_map(*maps: Mapping[str, str] | None) -> dict[str, str]:
    """Merge string maps left to right (later wins), keys sorted for deterministic output."""
    merged: dict[str, str] = {}
    for m in maps:
        if m:
            merged.update(m)
    return dict(sorted(merged.items()))


def namespace_name(cluster: RestateCluster) -> str:
    """The Namespace holding the cluster's children: the cluster's own name (spec §3)."""
    return cluster.name


def selector_labels(cluster: RestateCluster) -> dict[str, str]:
    """The labels that select the Restate pods of this cluster.

    They appear in the StatefulSet selector and claim template, which are immutable, so they
    must never change for an existing cluster: user labels are never part of them.
    """
    return {NAME_LABEL: APP_NAME, INSTANCE_LABEL: cluster.name}


def child_labels(cluster: RestateCluster) -> dict[str, str]:
    """Labels of every child: the cluster's own labels plus ours, ours winning on conflict.

    The cluster's labels are propagated so that label-based tooling (cost allocation, backup
    selection) sees the children as part of the cluster.
    """
    return sorted_map(
        cluster.metadata.labels, selector_labels(cluster), {MANAGED_BY_LABEL: MANAGED_BY}
    )


def owner_reference(cluster: RestateCluster) -> dict[str, Any]:
    """The controller reference that lets garbage collection reap children with the cluster."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": cluster.name,
        "uid": cluster.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_metadata(
    cluster: RestateCluster,
    name: str,
    namespace: str | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``metadata`` of a child: name, labels, owner reference and optional annotations.

    ``namespace=None`` means a cluster-scoped object (the Namespace itself); namespaced
    builders pass ``namespace_name(cluster)`` explicitly. The cluster's annotations are
    deliberately not propagated: most are about the RestateCluster object itself (e.g.
    ``kubectl.kubernetes.io/last-applied-configuration``) and would be wrong on a child.
    """
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = child_labels(cluster)
    if annotations:
        meta["annotations"] = sorted_map(annotations)
    meta["ownerReferences"] = [owner_reference(cluster)]
    return meta
