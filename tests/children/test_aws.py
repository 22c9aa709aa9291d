"""AWS children: Pod Identity association, canary Job, security groups, rollout annotations."""

from __future__ import annotations

from typing import Any

import pytest

from restate_op.children.aws import (
    desired_pia_canary_job,
    desired_pod_identity_association,
    desired_security_group_policy,
    identity_pod_annotations,
    pod_identity_synced,
)
from restate_op.children.canary import canary_outcome
from restate_op.settings import OperatorSettings
from tests.children.helpers import empty_fields, make_cluster, restricted_violations

ARN = "arn:aws:iam::123456789012:role/restate"
WITH_PIA = OperatorSettings(
    aws_pod_identity_association_cluster="eks-prod", canary_image="alpine:3.21"
)
WITHOUT_PIA = OperatorSettings()
ROLE: dict[str, Any] = {"security": {"awsPodIdentityAssociationRoleArn": ARN}}


def test_pia_needs_both_flag_and_role() -> None:
    assert desired_pod_identity_association(make_cluster(ROLE), WITHOUT_PIA) is None
    assert desired_pod_identity_association(make_cluster(), WITH_PIA) is None


def test_pia_shape() -> None:
    pia = desired_pod_identity_association(make_cluster(ROLE), WITH_PIA)
    assert pia is not None
    assert pia["apiVersion"] == "eks.services.k8s.aws/v1alpha1"
    assert pia["kind"] == "PodIdentityAssociation"
    assert pia["metadata"]["name"] == "restate"
    assert pia["metadata"]["namespace"] == "restate-test"
    assert pia["spec"] == {
        "clusterName": "eks-prod",
        "namespace": "restate-test",
        "serviceAccount": "restate",
        "roleARN": ARN,
    }


@pytest.mark.parametrize(
    ("status", "synced"),
    [
        (None, False),
        ({}, False),
        ({"conditions": [{"type": "ACK.ResourceSynced", "status": "False"}]}, False),
        ({"conditions": [{"type": "Ready", "status": "True"}]}, False),
        (
            {
                "conditions": [
                    {"type": "ACK.Terminal", "status": "False"},
                    {"type": "ACK.ResourceSynced", "status": "True"},
                ]
            },
            True,
        ),
    ],
)
def test_pod_identity_synced(status: dict[str, Any] | None, synced: bool) -> None:
    pia: dict[str, Any] = {"metadata": {"name": "restate"}}
    if status is not None:
        pia["status"] = status
    assert pod_identity_synced(pia) is synced


def test_canary_job_shape() -> None:
    tolerations = [{"key": "dedicated", "operator": "Exists"}]
    cluster = make_cluster({"compute": {"tolerations": tolerations}}, labels={"team": "a"})
    job = desired_pia_canary_job(cluster, WITH_PIA)
    assert job["apiVersion"] == "batch/v1"
    assert job["kind"] == "Job"
    assert job["metadata"]["name"] == "restate-pia-canary"
    assert job["metadata"]["namespace"] == "restate-test"
    assert job["metadata"]["labels"]["app.kubernetes.io/name"] == "restate-pia-canary"
    assert job["metadata"]["labels"]["team"] == "a"
    spec = job["spec"]
    assert spec["backoffLimit"] == 1
    assert "ttlSecondsAfterFinished" not in spec
    template = spec["template"]
    assert template["metadata"]["labels"]["app.kubernetes.io/name"] == "restate-pia-canary"
    pod = template["spec"]
    assert pod["serviceAccountName"] == "restate"
    assert pod["restartPolicy"] == "Never"
    assert pod["tolerations"] == tolerations
    [container] = pod["containers"]
    assert container["name"] == "canary"
    assert container["image"] == "alpine:3.21"
    assert container["command"] == [
        "grep",
        "-q",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "/proc/self/environ",
    ]
    assert restricted_violations(pod) == []
    assert empty_fields(job) == []


def test_canary_does_not_match_restate_selectors() -> None:
    job = desired_pia_canary_job(make_cluster(), WITH_PIA)
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels.get("app.kubernetes.io/name") != "restate"


def test_canary_without_tolerations() -> None:
    assert (
        "tolerations"
        not in desired_pia_canary_job(make_cluster(), WITH_PIA)["spec"]["template"]["spec"]
    )


@pytest.mark.parametrize(
    ("job", "outcome"),
    [
        (None, "pending"),
        ({}, "pending"),
        ({"status": {}}, "pending"),
        ({"status": {"active": 1}}, "pending"),
        ({"status": {"conditions": [{"type": "Complete", "status": "True"}]}}, "passed"),
        ({"status": {"conditions": [{"type": "Failed", "status": "True"}]}}, "failed"),
        ({"status": {"conditions": [{"type": "Complete", "status": "False"}]}}, "pending"),
        ({"status": {"conditions": [{"type": "SuspendedX", "status": "True"}]}}, "pending"),
    ],
)
def test_canary_outcome(job: dict[str, Any] | None, outcome: str) -> None:
    assert canary_outcome(job) == outcome


def test_security_group_policy() -> None:
    assert desired_security_group_policy(make_cluster()) is None
    assert (
        desired_security_group_policy(make_cluster({"security": {"awsPodSecurityGroups": []}}))
        is None
    )
    groups = ["sg-0123456789abcdef0", "sg-12345678"]
    sgp = desired_security_group_policy(
        make_cluster({"security": {"awsPodSecurityGroups": groups}})
    )
    assert sgp is not None
    assert sgp["apiVersion"] == "vpcresources.k8s.aws/v1beta1"
    assert sgp["kind"] == "SecurityGroupPolicy"
    assert sgp["metadata"]["name"] == "restate"
    assert sgp["spec"] == {
        "podSelector": {
            "matchLabels": {
                "app.kubernetes.io/name": "restate",
                "app.kubernetes.io/instance": "restate-test",
            }
        },
        "securityGroups": {"groupIds": groups},
    }


def test_identity_pod_annotations() -> None:
    groups = ["sg-0123456789abcdef0", "sg-12345678"]
    cluster = make_cluster(
        {"security": {"awsPodIdentityAssociationRoleArn": ARN, "awsPodSecurityGroups": groups}}
    )
    assert identity_pod_annotations(cluster, WITH_PIA, True, True) == {
        "restate.dev/aws-pod-identity-association-cluster": "eks-prod",
        "restate.dev/aws-pod-identity-association-role-arn": ARN,
        "restate.dev/aws-security-groups": "sg-0123456789abcdef0,sg-12345678",
    }
    assert identity_pod_annotations(cluster, WITH_PIA, False, False) == {}
    assert identity_pod_annotations(cluster, WITH_PIA, False, True) == {
        "restate.dev/aws-security-groups": "sg-0123456789abcdef0,sg-12345678"
    }
    # Without the operator flag there is no association to describe.
    assert identity_pod_annotations(cluster, WITHOUT_PIA, True, False) == {}
