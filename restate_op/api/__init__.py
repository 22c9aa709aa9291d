"""The ``restate.dev/v1`` RestateCluster API: pydantic models, CRD and Pkl generation."""

from restate_op.api.models import (
    ClusterOptions,
    Compute,
    Condition,
    NetworkPeers,
    RestateCluster,
    RestateClusterSpec,
    RestateClusterStatus,
    Security,
    Storage,
    StorageStatus,
)

__all__ = [
    "ClusterOptions",
    "Compute",
    "Condition",
    "NetworkPeers",
    "RestateCluster",
    "RestateClusterSpec",
    "RestateClusterStatus",
    "Security",
    "Storage",
    "StorageStatus",
]
