"""AWS identity and networking children: Pod Identity, its canary Job, security groups."""

from __future__ import annotations

from typing import Any

from restate_op.api.models import RestateCluster
from restate_op.children.canary import desired_canary_job
from restate_op.children.constants import (
    PIA_CANARY_JOB_NAME,
    PIA_CLUSTER_ANNOTATION,
    PIA_NAME,
    PIA_ROLE_ARN_ANNOTATION,
    SECURITY_GROUPS_ANNOTATION,
    SERVICE_ACCOUNT_NAME,
    SGP_NAME,
)
from restate_op.children.metadata import child_metadata, namespace_name, selector_labels
from restate_op.settings import OperatorSettings

#: Set in a container's environment by the EKS Pod Identity webhook when it injected credentials.
PIA_TOKEN_ENV = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"


def desired_pod_identity_association(
    cluster: RestateCluster, settings: OperatorSettings
) -> dict[str, Any] | None:
    """ACK ``PodIdentityAssociation`` binding the ``restate`` ServiceAccount to the IAM role.

    None unless the operator runs with ``--aws-pod-identity-association-cluster`` and the
    spec names a role: both are needed to say which EKS cluster and which role.
    """
    eks_cluster = settings.aws_pod_identity_association_cluster
    role_arn = cluster.spec.security_or_default.aws_pod_identity_association_role_arn
    if not eks_cluster or not role_arn:
        return None
    namespace = namespace_name(cluster)
    return {
        "apiVersion": "eks.services.k8s.aws/v1alpha1",
        "kind": "PodIdentityAssociation",
        "metadata": child_metadata(cluster, PIA_NAME, namespace),
        "spec": {
            "clusterName": eks_cluster,
            "namespace": namespace,
            "serviceAccount": SERVICE_ACCOUNT_NAME,
            "roleARN": role_arn,
        },
    }


def pod_identity_synced(pia: dict[str, Any]) -> bool:
    """Whether ACK reports the association created in IAM (``ACK.ResourceSynced`` True)."""
    conditions = (pia.get("status") or {}).get("conditions") or []
    return any(
        c.get("type") == "ACK.ResourceSynced" and c.get("status") == "True" for c in conditions
    )


def desired_pia_canary_job(cluster: RestateCluster, settings: OperatorSettings) -> dict[str, Any]:
    """Job ``restate-pia-canary``: proves pods of ``restate`` really get Pod Identity credentials.

    The association being synced in IAM does not mean the webhook injects credentials yet;
    the canary succeeds only if its own environment carries the webhook's token variable.
    """
    command = ["grep", "-q", PIA_TOKEN_ENV, "/proc/self/environ"]
    return desired_canary_job(cluster, settings, PIA_CANARY_JOB_NAME, command)


def desired_security_group_policy(cluster: RestateCluster) -> dict[str, Any] | None:
    """``SecurityGroupPolicy`` giving the Restate pods the listed security groups; None if none.

    Whether the CRD is installed is the caller's question (``Capabilities``).
    """
    groups = cluster.spec.security_or_default.aws_pod_security_groups
    if not groups:
        return None
    return {
        "apiVersion": "vpcresources.k8s.aws/v1beta1",
        "kind": "SecurityGroupPolicy",
        "metadata": child_metadata(cluster, SGP_NAME, namespace_name(cluster)),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(cluster)},
            "securityGroups": {"groupIds": list(groups)},
        },
    }


def identity_pod_annotations(
    cluster: RestateCluster, settings: OperatorSettings, pia_active: bool, sgp_active: bool
) -> dict[str, str]:
    """Pod template annotations whose change must roll the pods.

    Credentials and security groups are attached to a pod when it is created, so a pod keeps
    the old ones until replaced; an annotation carrying the inputs forces the replacement.
    """
    security = cluster.spec.security_or_default
    annotations: dict[str, str] = {}
    eks_cluster = settings.aws_pod_identity_association_cluster
    role_arn = security.aws_pod_identity_association_role_arn
    if pia_active and eks_cluster and role_arn:
        annotations[PIA_CLUSTER_ANNOTATION] = eks_cluster
        annotations[PIA_ROLE_ARN_ANNOTATION] = role_arn
    if sgp_active and security.aws_pod_security_groups:
        annotations[SECURITY_GROUPS_ANNOTATION] = ",".join(security.aws_pod_security_groups)
    return dict(sorted(annotations.items()))
