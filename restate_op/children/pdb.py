"""The PodDisruptionBudget that keeps voluntary disruptions to one Restate node at a time."""

from __future__ import annotations

from typing import Any

from restate_op.api.models import RestateCluster
from restate_op.children.constants import PDB_NAME
from restate_op.children.metadata import child_metadata, namespace_name, selector_labels


def desired_pdb(cluster: RestateCluster) -> dict[str, Any] | None:
    """PDB ``restate`` with ``maxUnavailable: 1``, or None for a cluster of at most one node.

    One at a time keeps a replicated (Raft) metadata and log quorum through node drains. A
    single node cannot be protected without blocking every drain, so it gets no budget.
    ``AlwaysAllow`` lets a drain evict a pod that is already unhealthy: protecting it
    protects nothing and would wedge the drain.
    """
    if cluster.spec.compute.desired_replicas <= 1:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": child_metadata(cluster, PDB_NAME, namespace_name(cluster)),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(cluster)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
