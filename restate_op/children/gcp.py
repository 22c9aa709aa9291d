"""GKE Workload Identity: the Config Connector ``IAMPolicyMember`` and its canary Job.

GKE gives a pod the credentials of the GCP service account its Kubernetes ServiceAccount's
``iam.gke.io/gcp-service-account`` annotation names, but only once that GCP service account
lets the Kubernetes one impersonate it (``roles/iam.workloadIdentityUser``). With
``--gcp-workload-identity`` the operator grants exactly that, through Config Connector, and
proves it with a canary before the Restate pods start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from restate_op.api.models import RestateCluster
from restate_op.children.canary import desired_canary_job
from restate_op.children.constants import (
    GCP_SERVICE_ACCOUNT_POD_ANNOTATION,
    GKE_SERVICE_ACCOUNT_ANNOTATION,
    IAM_POLICY_MEMBER_NAME,
    SERVICE_ACCOUNT_NAME,
    WI_CANARY_JOB_NAME,
)
from restate_op.children.metadata import child_metadata, namespace_name
from restate_op.settings import OperatorSettings

IAM_POLICY_MEMBER_API_VERSION = "iam.cnrm.cloud.google.com/v1beta1"
#: Config Connector reads the project an object acts in from this annotation.
PROJECT_ID_ANNOTATION = "cnrm.cloud.google.com/project-id"
WORKLOAD_IDENTITY_ROLE = "roles/iam.workloadIdentityUser"
EXPECTED_FORMAT = "NAME@PROJECT.iam.gserviceaccount.com"
ANNOTATION_FIELD = f"spec.security.serviceAccountAnnotations[{GKE_SERVICE_ACCOUNT_ANNOTATION}]"
#: The GKE metadata server's token endpoint, which answers only for a bound identity.
_METADATA = "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default"

# GCP's own rules for service account and project ids: 6 to 30 lowercase letters, digits and
# hyphens, starting with a letter, not ending with a hyphen. They also keep the email safe to
# place in the canary's shell command.
_ID = r"[a-z][a-z0-9-]{4,28}[a-z0-9]"
_EMAIL = re.compile(rf"(?P<name>{_ID})@(?P<project>{_ID})\.iam\.gserviceaccount\.com")


@dataclass(frozen=True)
class GcpServiceAccount:
    email: str
    project: str


def annotated_service_account(cluster: RestateCluster) -> str | None:
    """The value of ``iam.gke.io/gcp-service-account`` the user set, if any."""
    annotations = cluster.spec.security_or_default.service_account_annotations or {}
    return annotations.get(GKE_SERVICE_ACCOUNT_ANNOTATION)


def parse_service_account(email: str) -> GcpServiceAccount | None:
    """The project of a user-managed service account's email; None if it is not one."""
    match = _EMAIL.fullmatch(email)
    return GcpServiceAccount(email, match["project"]) if match else None


def service_account_problem(cluster: RestateCluster, settings: OperatorSettings) -> str | None:
    """Why the annotation cannot be bound (only asked with ``--gcp-workload-identity``)."""
    email = annotated_service_account(cluster)
    if not settings.gcp_workload_identity or email is None or parse_service_account(email):
        return None
    return (
        f"{ANNOTATION_FIELD}: {email!r} is not a GCP service account email; expected "
        f"{EXPECTED_FORMAT} (the project is taken from it for the IAMPolicyMember)"
    )


def workload_identity(
    cluster: RestateCluster, settings: OperatorSettings
) -> GcpServiceAccount | None:
    """The GCP service account to bind: None without the flag, annotation or a valid email."""
    email = annotated_service_account(cluster)
    if not settings.gcp_workload_identity or email is None:
        return None
    return parse_service_account(email)


def ignored_annotation_warning(cluster: RestateCluster, settings: OperatorSettings) -> str | None:
    """The Warning to give when the annotation is set but the operator will not bind it."""
    email = annotated_service_account(cluster)
    if settings.gcp_workload_identity or email is None:
        return None
    return (
        f"{ANNOTATION_FIELD} is {email!r}, but the operator runs without "
        f"--gcp-workload-identity (env GCP_WORKLOAD_IDENTITY, chart value "
        f"gcpWorkloadIdentity: true): no IAMPolicyMember is created and no canary checks the "
        f"credentials; the annotation is only set on ServiceAccount {SERVICE_ACCOUNT_NAME}"
    )


def desired_iam_policy_member(cluster: RestateCluster, gsa: GcpServiceAccount) -> dict[str, Any]:
    """``IAMPolicyMember`` letting the cluster's ServiceAccount impersonate ``gsa``.

    Named, annotated and shaped as upstream's, so a cluster moved from the Rust operator keeps
    its binding (the apply takes it over instead of creating a second one).
    """
    namespace = namespace_name(cluster)
    pool = f"{gsa.project}.svc.id.goog"  # the project's workload identity pool
    metadata = child_metadata(
        cluster, IAM_POLICY_MEMBER_NAME, namespace, {PROJECT_ID_ANNOTATION: gsa.project}
    )
    return {
        "apiVersion": IAM_POLICY_MEMBER_API_VERSION,
        "kind": "IAMPolicyMember",
        "metadata": metadata,
        "spec": {
            "member": f"serviceAccount:{pool}[{namespace}/{SERVICE_ACCOUNT_NAME}]",
            "role": WORKLOAD_IDENTITY_ROLE,
            "resourceRef": {
                "kind": "IAMServiceAccount",
                "external": f"projects/{gsa.project}/serviceAccounts/{gsa.email}",
            },
        },
    }


def iam_policy_member_ready(ipm: dict[str, Any]) -> bool:
    """Whether Config Connector reports the binding made in IAM (condition ``Ready`` True)."""
    conditions = (ipm.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def desired_wi_canary_job(
    cluster: RestateCluster, settings: OperatorSettings, gsa: GcpServiceAccount
) -> dict[str, Any]:
    """Job ``restate-wi-canary``: proves pods of ``restate`` get ``gsa``'s credentials.

    The metadata server must say the pod acts as ``gsa`` (not the node's account, as on a node
    pool without Workload Identity) and hand out a token for it, which it does only once the
    IAM binding has reached it.
    """
    header = "Metadata-Flavor: Google"
    script = (
        f"wget -q -T 10 -O - --header '{header}' {_METADATA}/email | grep -qxF {gsa.email} && "
        f"wget -q -T 10 -O /dev/null --header '{header}' {_METADATA}/token"
    )
    return desired_canary_job(cluster, settings, WI_CANARY_JOB_NAME, ["sh", "-c", script])


def gcp_pod_annotations(gsa: GcpServiceAccount) -> dict[str, str]:
    """Pod template annotation rolling the pods when the bound service account changes."""
    return {GCP_SERVICE_ACCOUNT_POD_ANNOTATION: gsa.email}
