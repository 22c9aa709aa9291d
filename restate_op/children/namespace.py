"""The cluster's Namespace, and whether an existing one may be used (spec §3)."""

from __future__ import annotations

from typing import Any, Literal

from restate_op.api.models import RestateCluster
from restate_op.children.constants import ADOPT_ANNOTATION
from restate_op.children.metadata import child_metadata, namespace_name

NamespaceOwnership = Literal["absent", "owned", "adopted", "conflict"]

#: Pod Security Admission labels: the Restate pods are built to pass ``restricted``, so the
#: namespace enforces it and nothing weaker can be scheduled next to them by accident.
POD_SECURITY_LABELS: dict[str, str] = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/warn-version": "latest",
    "pod-security.kubernetes.io/audit": "restricted",
    "pod-security.kubernetes.io/audit-version": "latest",
}


def desired_namespace(cluster: RestateCluster) -> dict[str, Any]:
    """The Namespace named after the cluster, owned by it and enforcing restricted PSS.

    Only applied when the Namespace is absent or owned; an adopted Namespace is left as is.
    """
    metadata = child_metadata(cluster, namespace_name(cluster))
    metadata["labels"] = dict(sorted({**metadata["labels"], **POD_SECURITY_LABELS}.items()))
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


def namespace_ownership(
    cluster: RestateCluster, live_namespace: dict[str, Any] | None
) -> NamespaceOwnership:
    """Classify the live Namespace of the cluster's name.

    - ``absent``: none exists; the operator creates it.
    - ``owned``: one of its ownerReferences carries this cluster's uid (uids are unique, so
      a same-named cluster that was deleted and re-created does not count).
    - ``adopted``: not owned, but annotated ``restate.dev/adopt: "true"``; used untouched and
      never deleted.
    - ``conflict``: anything else; the cluster must not touch it (Degraded ``NameConflict``).
    """
    if live_namespace is None:
        return "absent"
    metadata = live_namespace.get("metadata") or {}
    uid = cluster.metadata.uid
    owners = metadata.get("ownerReferences") or []
    if uid and any(ref.get("uid") == uid for ref in owners):
        return "owned"
    annotations = metadata.get("annotations") or {}
    if annotations.get(ADOPT_ANNOTATION) == "true":
        return "adopted"
    return "conflict"
