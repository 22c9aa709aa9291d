"""EKS integrations end to end: Pod Identity (with its canary) and Security Groups for Pods.

The AWS controllers do not run here: stand-in CRDs give the API, and the test plays the ACK
controller by marking the PodIdentityAssociation synced.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from e2e.operator_fixtures import OPERATOR_NAMESPACE, cluster_manifest, wait_phase
from e2e.operator_process import REPO, Kubectl, OperatorProcess, wait_for

EKS_CLUSTER = "e2e-eks"
OPERATOR_ARGS = ["--aws-pod-identity-association-cluster", EKS_CLUSTER]
ROLE_ARN = "arn:aws:iam::123456789012:role/restate"
AWS_CRDS = REPO / "e2e" / "crds" / "aws-stand-ins.yaml"


def test_operator_waits_for_the_ack_crd_instead_of_crashing(
    kube: object, kubectl: Kubectl, restate_crd: None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    kubectl.run("delete", "-f", str(AWS_CRDS), "--ignore-not-found", "--wait=true")
    proc = OperatorProcess(
        kubectl.kubeconfig,
        tmp_path_factory.mktemp("waiting"),
        name="waiting",
        args=[*OPERATOR_ARGS, "--lease-name", "e2e-waiting"],
    )
    proc.start()
    try:
        status, body = wait_for(lambda: (r := proc.http("/readyz"))[0] and r, 30, what="HTTP up")
        assert status == 503 and "podidentityassociations.eks.services.k8s.aws" in body
        wait_for(
            lambda: "install the ACK EKS controller" in proc.logs(),
            10,
            what="a log line naming the missing CRD",
        )
        assert proc.alive, "the operator waits; it does not exit"
        kubectl.run("apply", "-f", str(AWS_CRDS))
        proc.wait_ready(timeout=45)
    finally:
        proc.stop()


@pytest.fixture
def aws_operator(operator: OperatorProcess) -> Iterator[OperatorProcess]:
    yield operator


def test_pod_identity_association_and_canary(
    kubectl: Kubectl, aws_operator: OperatorProcess
) -> None:
    name = "e2e-pia"
    kubectl.apply(cluster_manifest(name, security={"awsPodIdentityAssociationRoleArn": ROLE_ARN}))
    try:
        pia = wait_for(
            lambda: kubectl.get("podidentityassociation", "restate", name),
            60,
            what="PodIdentityAssociation",
        )
        assert pia["spec"] == {
            "clusterName": EKS_CLUSTER,
            "namespace": name,
            "serviceAccount": "restate",
            "roleARN": ROLE_ARN,
        }
        wait_phase(kubectl, name, "Provisioning", reason="PodIdentityAssociationNotSynced")
        assert kubectl.get("statefulset", "restate", name) is None, (
            "no Restate pod before identity is proven"
        )
        # Play the ACK controller.
        kubectl.merge_patch(
            "podidentityassociation",
            "restate",
            {"status": {"conditions": [{"type": "ACK.ResourceSynced", "status": "True"}]}},
            namespace=name,
            subresource="status",
        )
        job = wait_for(
            lambda: kubectl.get("job", "restate-pia-canary", name), 60, what="canary Job"
        )
        assert job["spec"]["template"]["spec"]["serviceAccountName"] == "restate"
        assert job["metadata"]["labels"]["app.kubernetes.io/name"] == "restate-pia-canary"
        wait_phase(kubectl, name, "Ready", timeout=90)
        sts = kubectl.json("get", "statefulset", "restate", "-n", name)
        annotations = sts["spec"]["template"]["metadata"]["annotations"]
        assert annotations["restate.dev/aws-pod-identity-association-role-arn"] == ROLE_ARN
        assert annotations["restate.dev/aws-pod-identity-association-cluster"] == EKS_CLUSTER
        assert (
            kubectl.get("networkpolicy", "allow-restate-egress-to-aws-pod-identity", name)
            is not None
        )
    finally:
        kubectl.run("delete", "restatecluster", name, "--wait=false", check=False)


def test_security_group_policy_created_and_removed(
    kubectl: Kubectl, aws_operator: OperatorProcess
) -> None:
    name = "e2e-sgp"
    groups = ["sg-0123456789abcdef0", "sg-0fedcba9876543210"]
    kubectl.apply(cluster_manifest(name, security={"awsPodSecurityGroups": groups}))
    try:
        wait_phase(kubectl, name, "Ready", timeout=90)
        sgp = kubectl.json("get", "securitygrouppolicy", "restate", "-n", name)
        assert sgp["spec"]["securityGroups"]["groupIds"] == groups
        assert sgp["spec"]["podSelector"]["matchLabels"] == {
            "app.kubernetes.io/name": "restate",
            "app.kubernetes.io/instance": name,
        }
        sts = kubectl.json("get", "statefulset", "restate", "-n", name)
        assert sts["spec"]["template"]["metadata"]["annotations"][
            "restate.dev/aws-security-groups"
        ] == ",".join(groups)
        kubectl.merge_patch("rsc", name, {"spec": {"security": {"awsPodSecurityGroups": None}}})
        wait_for(
            lambda: kubectl.get("securitygrouppolicy", "restate", name) is None,
            60,
            what="SecurityGroupPolicy removed",
        )
        wait_phase(kubectl, name, "Ready", timeout=90)
    finally:
        kubectl.run("delete", "restatecluster", name, "--wait=false", check=False)
        assert OPERATOR_NAMESPACE
