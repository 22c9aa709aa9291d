"""The ServiceAccount ``restate`` the Restate pods run as."""

from __future__ import annotations

from typing import Any

from restate_op.api.models import RestateCluster
from restate_op.children.constants import SERVICE_ACCOUNT_NAME
from restate_op.children.metadata import child_metadata, namespace_name


def desired_service_account(cluster: RestateCluster) -> dict[str, Any]:
    """ServiceAccount with the user's annotations (IRSA role, GKE service account, ...).

    ``automountServiceAccountToken`` is left unset here: identity webhooks (EKS Pod Identity,
    IRSA) inspect the account and project their own tokens. The pod spec opts out of the
    Kubernetes API token itself, which Restate never uses.
    """
    annotations = cluster.spec.security_or_default.service_account_annotations
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": child_metadata(
            cluster, SERVICE_ACCOUNT_NAME, namespace_name(cluster), annotations
        ),
    }
