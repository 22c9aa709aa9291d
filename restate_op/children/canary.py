"""Canary Jobs: a pod of the cluster's ServiceAccount proving a cloud identity really works.

Shared by every identity binding (EKS Pod Identity, GKE Workload Identity): a binding being
reported ready by its controller does not mean a pod gets credentials yet, so only a pod that
ran as ``restate`` and found them lets the Restate pods start.
"""

from __future__ import annotations

from typing import Any, Literal

from restate_op.api.models import RestateCluster
from restate_op.children.constants import (
    INSTANCE_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    NAME_LABEL,
    SERVICE_ACCOUNT_NAME,
)
from restate_op.children.metadata import child_metadata, namespace_name
from restate_op.children.pod_security import container_security_context, pod_security_context
from restate_op.settings import OperatorSettings

CanaryOutcome = Literal["passed", "failed", "pending"]


def _canary_labels(cluster: RestateCluster, name: str) -> dict[str, str]:
    # The name label is overridden so the canary matches none of the selectors of the
    # Restate pods (Services, NetworkPolicies, SecurityGroupPolicy, PDB).
    return {INSTANCE_LABEL: cluster.name, MANAGED_BY_LABEL: MANAGED_BY, NAME_LABEL: name}


def desired_canary_job(
    cluster: RestateCluster, settings: OperatorSettings, name: str, command: list[str]
) -> dict[str, Any]:
    """Job ``name`` running ``command`` in the canary image as the ``restate`` ServiceAccount.

    Its pod runs like the Restate pods (same ServiceAccount, no API token, restricted
    security context so the namespace admits it, the user's tolerations and pull secrets so
    it schedules where they can). The pod template is immutable: when it must change, the
    Job is deleted and re-created.
    """
    compute = cluster.spec.compute
    metadata = child_metadata(cluster, name, namespace_name(cluster))
    metadata["labels"] = dict(
        sorted({**metadata["labels"], **_canary_labels(cluster, name)}.items())
    )
    pod_spec: dict[str, Any] = {
        "serviceAccountName": SERVICE_ACCOUNT_NAME,
        "automountServiceAccountToken": False,
        "restartPolicy": "Never",
        "securityContext": pod_security_context(),
        "containers": [
            {
                "name": "canary",
                "image": settings.canary_image,
                "command": command,
                "securityContext": container_security_context(),
            }
        ],
    }
    if compute.tolerations:
        pod_spec["tolerations"] = [t.to_kube() for t in compute.tolerations]
    if compute.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [s.to_kube() for s in compute.image_pull_secrets]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            # One retry at most: a failure is acted on (Job deleted and re-created) anyway.
            "backoffLimit": 1,
            "template": {
                "metadata": {"labels": dict(sorted(_canary_labels(cluster, name).items()))},
                "spec": pod_spec,
            },
        },
    }


def canary_outcome(job: dict[str, Any] | None) -> CanaryOutcome:
    """``passed`` on ``Complete``=True, ``failed`` on ``Failed``=True, else ``pending``."""
    if job is None:
        return "pending"
    conditions = (job.get("status") or {}).get("conditions") or []
    true_types = {c.get("type") for c in conditions if c.get("status") == "True"}
    if "Complete" in true_types:
        return "passed"
    if "Failed" in true_types:
        return "failed"
    return "pending"
