"""What a reconcile sees: the cluster and its live children, as plain data.

An ``Observation`` is assembled from the informer caches and the operator's memory (no API
request), so everything downstream of it -- planning, deciding, status -- is a pure function
of it. It carries two statuses, named apart: ``recorded_status`` is the latest word (a status
decided but held back, see ``restate_op.coalesce``, or else the live one), which decisions
start from; ``live_status`` is what the API server holds, which a status write is diffed
against.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from restate_op.api.models import RestateCluster, RestateClusterStatus
from restate_op.effects import PollClusterHealth
from restate_op.node_address import node_address
from restate_op.restate_health import RestateHealth
from restate_op.settings import Capabilities, OperatorSettings
from restate_op.snapshots import SnapshotRun

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
    #: The cluster's Restate pods (made by the StatefulSet), as the kubelet reports them.
    pods: tuple[Mapping[str, Any], ...] = ()
    capabilities: Capabilities = field(default_factory=Capabilities)
    #: When the status held back in memory (``cluster.status``) became due; None if none.
    held_since: float | None = None
    #: Objects in the namespace with the cluster's name label but not the operator's: what
    #: the upstream Rust operator left (or a user's); plan.py prunes only upstream's own.
    foreign: tuple[Mapping[str, Any], ...] = ()
    #: Restate's own account of the cluster, as last read (memory; None: not read yet).
    restate_health: RestateHealth | None = None
    #: The standing health poll of this Ready cluster (memory; None: none stands).
    health_poll: PollClusterHealth | None = None
    #: The answer to the last snapshot request carried out (memory; None: none since start).
    snapshot_run: SnapshotRun | None = None

    @property
    def recorded_status(self) -> RestateClusterStatus | None:
        """The latest status this operator decided: held back, or else the live one."""
        return self.cluster.status

    @property
    def live_status(self) -> Mapping[str, Any] | None:
        """The status the API server holds."""
        status = self.raw.get("status")
        return status if isinstance(status, Mapping) else None

    def node_address(self, pod: str) -> str:
        """Where the operator reaches ``pod``'s node port (provisioning, Restate's view)."""
        return node_address(
            self.cluster.name,
            self.settings.cluster_dns,
            pod=pod,
            template=self.settings.node_address_template,
        )

    def child(self, kind: str, name: str) -> Mapping[str, Any] | None:
        return self.children.get((kind, name))

    def live(self, manifest: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The live object ``manifest`` describes (the Namespace, or a child in it)."""
        if manifest["kind"] == "Namespace":
            return self.namespace
        return self.child(manifest["kind"], manifest["metadata"]["name"])

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


@dataclass(frozen=True)
class Unreadable:
    """A RestateCluster the API server accepted but the operator's model cannot read.

    The CRD cannot express every rule of the models, and objects stored before a stricter
    CRD was installed are never re-validated; such a cluster still gets a status that names
    the field to fix (``restate_op.unreadable``).
    """

    name: str
    raw: Mapping[str, Any]
    error: ValidationError
