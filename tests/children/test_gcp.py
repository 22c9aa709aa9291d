"""GKE Workload Identity children: email parsing, IAMPolicyMember, canary Job, annotations."""

from __future__ import annotations

from typing import Any

import pytest

from restate_op.children.gcp import (
    desired_iam_policy_member,
    desired_wi_canary_job,
    gcp_pod_annotations,
    iam_policy_member_ready,
    ignored_annotation_warning,
    parse_service_account,
    service_account_problem,
    workload_identity,
)
from restate_op.settings import OperatorSettings
from tests.children.helpers import empty_fields, make_cluster, restricted_violations

EMAIL = "restate-sa@my-project.iam.gserviceaccount.com"
WITH_WI = OperatorSettings(gcp_workload_identity=True, canary_image="alpine:3.21")
WITHOUT_WI = OperatorSettings()


def annotated(email: str = EMAIL, **spec: Any) -> dict[str, Any]:
    return {
        "security": {"serviceAccountAnnotations": {"iam.gke.io/gcp-service-account": email}},
        **spec,
    }


@pytest.mark.parametrize(
    ("email", "project"),
    [
        (EMAIL, "my-project"),
        ("abcdef@p12345.iam.gserviceaccount.com", "p12345"),
        ("restate@.iam.gserviceaccount.com", None),  # no project
        ("restate@my-project", None),
        ("restate@my-project.iam.gserviceaccount.com.evil", None),
        ("restate-sa@my-project.gserviceaccount.com", None),
        ("123-compute@developer.gserviceaccount.com", None),  # default SA: project number
        ("@my-project.iam.gserviceaccount.com", None),
        ("restate-sa@My-Project.iam.gserviceaccount.com", None),
        ("restate-sa@my-project.iam.gserviceaccount.com; rm -rf /", None),
    ],
)
def test_project_is_parsed_from_the_email(email: str, project: str | None) -> None:
    parsed = parse_service_account(email)
    assert (parsed.project if parsed else None) == project


def test_binding_needs_both_flag_and_annotation() -> None:
    assert workload_identity(make_cluster(annotated()), WITHOUT_WI) is None
    assert workload_identity(make_cluster(), WITH_WI) is None
    other = {"security": {"serviceAccountAnnotations": {"example.com/x": "y"}}}
    assert workload_identity(make_cluster(other), WITH_WI) is None
    gsa = workload_identity(make_cluster(annotated()), WITH_WI)
    assert gsa is not None and (gsa.email, gsa.project) == (EMAIL, "my-project")


def test_malformed_email_names_the_annotation_and_the_format() -> None:
    cluster = make_cluster(annotated("restate@example.com"))
    problem = service_account_problem(cluster, WITH_WI)
    assert problem is not None
    assert "spec.security.serviceAccountAnnotations[iam.gke.io/gcp-service-account]" in problem
    assert "'restate@example.com'" in problem
    assert "NAME@PROJECT.iam.gserviceaccount.com" in problem
    # Not the operator's business without the flag, nor for a valid email.
    assert service_account_problem(cluster, WITHOUT_WI) is None
    assert service_account_problem(make_cluster(annotated()), WITH_WI) is None


def test_iam_policy_member_shape() -> None:
    gsa = parse_service_account(EMAIL)
    assert gsa is not None
    ipm = desired_iam_policy_member(make_cluster(annotated()), gsa)
    assert ipm["apiVersion"] == "iam.cnrm.cloud.google.com/v1beta1"
    assert ipm["kind"] == "IAMPolicyMember"
    assert ipm["metadata"]["name"] == "restate-workload-identity"
    assert ipm["metadata"]["namespace"] == "restate-test"
    assert ipm["metadata"]["annotations"] == {"cnrm.cloud.google.com/project-id": "my-project"}
    assert ipm["metadata"]["ownerReferences"][0]["kind"] == "RestateCluster"
    assert ipm["spec"] == {
        "member": "serviceAccount:my-project.svc.id.goog[restate-test/restate]",
        "role": "roles/iam.workloadIdentityUser",
        "resourceRef": {
            "kind": "IAMServiceAccount",
            "external": f"projects/my-project/serviceAccounts/{EMAIL}",
        },
    }
    assert empty_fields(ipm) == []


@pytest.mark.parametrize(
    ("status", "ready"),
    [
        (None, False),
        ({}, False),
        ({"conditions": [{"type": "Ready", "status": "False", "reason": "UpdateFailed"}]}, False),
        ({"conditions": [{"type": "ACK.ResourceSynced", "status": "True"}]}, False),
        ({"conditions": [{"type": "Ready", "status": "True", "reason": "UpToDate"}]}, True),
    ],
)
def test_iam_policy_member_ready(status: dict[str, Any] | None, ready: bool) -> None:
    ipm: dict[str, Any] = {"metadata": {"name": "restate-workload-identity"}}
    if status is not None:
        ipm["status"] = status
    assert iam_policy_member_ready(ipm) is ready


def test_canary_job_shape() -> None:
    tolerations = [{"key": "dedicated", "operator": "Exists"}]
    cluster = make_cluster(annotated(compute={"tolerations": tolerations}))
    gsa = parse_service_account(EMAIL)
    assert gsa is not None
    job = desired_wi_canary_job(cluster, WITH_WI, gsa)
    assert job["metadata"]["name"] == "restate-wi-canary"
    assert job["metadata"]["labels"]["app.kubernetes.io/name"] == "restate-wi-canary"
    assert job["spec"]["backoffLimit"] == 1
    template = job["spec"]["template"]
    assert template["metadata"]["labels"]["app.kubernetes.io/name"] == "restate-wi-canary"
    pod = template["spec"]
    assert pod["serviceAccountName"] == "restate"
    assert pod["restartPolicy"] == "Never"
    assert pod["tolerations"] == tolerations
    [container] = pod["containers"]
    assert container["image"] == "alpine:3.21"
    shell, flag, script = container["command"]
    assert (shell, flag) == ("sh", "-c")
    # The metadata server must act as this very account, then hand out its token.
    metadata = "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts"
    assert f"{metadata}/default/email | grep -qxF {EMAIL} &&" in script
    assert script.endswith(f"{metadata}/default/token")
    assert script.count("--header 'Metadata-Flavor: Google'") == 2
    assert restricted_violations(pod) == []
    assert empty_fields(job) == []


def test_pod_annotation_names_the_bound_account() -> None:
    gsa = parse_service_account(EMAIL)
    assert gsa is not None
    assert gcp_pod_annotations(gsa) == {"restate.dev/gcp-service-account": EMAIL}


def test_ignored_annotation_warning_names_the_flag() -> None:
    warning = ignored_annotation_warning(make_cluster(annotated()), WITHOUT_WI)
    assert warning is not None
    assert "--gcp-workload-identity" in warning and "gcpWorkloadIdentity: true" in warning
    assert "GCP_WORKLOAD_IDENTITY" in warning and EMAIL in warning
    assert ignored_annotation_warning(make_cluster(annotated()), WITH_WI) is None
    assert ignored_annotation_warning(make_cluster(), WITHOUT_WI) is None
