"""What a reconcile sees: the cluster and its live children, as plain data.

An ``Observation`` is assembled from the informer caches (no API request), so everything
downstream of it -- planning, deciding, status -- is a pure function of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from restate_op.api.models import RestateCluster
from restate_op.settings import Capabilities, OperatorSettings

ChildKey = tuple[str, str]  # (kind, name) inside the cluster's namespace

DEFAULT_STORAGE_CLASS_ANNOTATIONS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)


@dataclass(frozen=True)
class Observation:
    """One RestateCluster and everything of it the operator can see."""

    cluster: RestateCluster
    #: The live RestateCluster object as the API server returned it.
    raw: Mapping[str, Any]
    namespace: Mapping[str, Any] | None
    #: Children the operator manages in the cluster's namespace, by (kind, name).
    children: Mapping[ChildKey, Mapping[str, Any]]
    #: The cluster's PersistentVolumeClaims (they belong to the user, never deleted).
    pvcs: tuple[Mapping[str, Any], ...]
    storage_classes: Mapping[str, Mapping[str, Any]]
    settings: OperatorSettings
    capabilities: Capabilities = field(default_factory=Capabilities)

    def child(self, kind: str, name: str) -> Mapping[str, Any] | None:
        return self.children.get((kind, name))

    def children_of_kind(self, kind: str) -> list[Mapping[str, Any]]:
        return [obj for (k, _), obj in sorted(self.children.items()) if k == kind]

    @property
    def statefulset(self) -> Mapping[str, Any] | None:
        return self.child("StatefulSet", "restate")

    @property
    def phase(self) -> str | None:
        return self.cluster.status.phase if self.cluster.status else None

    def storage_class(self, name: str | None) -> Mapping[str, Any] | None:
        """The named StorageClass, or the cluster default when ``name`` is None."""
        if name is not None:
            return self.storage_classes.get(name)
        for sc in self.storage_classes.values():
            annotations = sc.get("metadata", {}).get("annotations", {}) or {}
            if any(annotations.get(a) == "true" for a in DEFAULT_STORAGE_CLASS_ANNOTATIONS):
                return sc
        return None
