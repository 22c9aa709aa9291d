"""GKE Workload Identity end to end: the IAMPolicyMember, its canary, and the operator's flag.

Config Connector does not run here: a stand-in CRD gives the API, and the test plays Config
Connector by setting the IAMPolicyMember's Ready condition. kwok runs the canary's pod and
the Job controller marks it Complete, as it does for the Pod Identity canary.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from e2e.operator_fixtures import cluster_manifest, condition, wait_phase
from e2e.operator_process import REPO, Kubectl, OperatorProcess, wait_for

#: Optional APIs are looked for every 2 s (60 s by default) so a late CRD is noticed quickly.
OPERATOR_ARGS = ["--gcp-workload-identity", "true", "--discovery-seconds", "2"]
CONFIG_CONNECTOR_CRD = REPO / "e2e" / "crds" / "config-connector-stand-in.yaml"
CRD_NAME = "iampolicymembers.iam.cnrm.cloud.google.com"
ANNOTATION = "iam.gke.io/gcp-service-account"
EMAIL = "restate-sa@e2e-project.iam.gserviceaccount.com"
IPM = "restate-workload-identity"
CANARY = "restate-wi-canary"


def _annotated(name: str, email: str = EMAIL) -> dict[str, Any]:
    return cluster_manifest(name, security={"serviceAccountAnnotations": {ANNOTATION: email}})


def _delete(kubectl: Kubectl, name: str) -> None:
    kubectl.run("delete", "restatecluster", name, "--wait=false", "--ignore-not-found", check=False)


def _events(kubectl: Kubectl, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = kubectl.json(
        "get", "events", "-A", "--field-selector", f"involvedObject.name={name}"
    )["items"]
    return found


def _play_config_connector(kubectl: Kubectl, namespace: str) -> None:
    """What Config Connector does once the IAM binding is made."""
    kubectl.merge_patch(
        "iampolicymember",
        IPM,
        {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "UpToDate"}]}},
        namespace=namespace,
        subresource="status",
    )


def _install_config_connector(kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", str(CONFIG_CONNECTOR_CRD))
    kubectl.wait_established(CRD_NAME)


@pytest.fixture(scope="module", autouse=True)
def _config_connector_removed_afterwards(kubectl: Kubectl) -> Iterator[None]:
    """Other modules test the operator without Config Connector."""
    yield
    kubectl.run("delete", "-f", str(CONFIG_CONNECTOR_CRD), "--ignore-not-found", "--wait=false")


# -- without the flag: the first test, before the module's operator (with it) starts ------


def test_the_annotation_without_the_flag_is_ignored_with_a_warning(
    kubectl: Kubectl, restate_crd: None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _install_config_connector(kubectl)  # even where the API is served: the flag decides
    proc = OperatorProcess(
        kubectl.kubeconfig,
        tmp_path_factory.mktemp("no-flag"),
        name="no-flag",
        args=["--lease-name", "e2e-gcp-no-flag"],
    ).start()
    name = "e2e-wi-no-flag"
    try:
        proc.wait_ready()
        kubectl.apply(_annotated(name))
        wait_phase(kubectl, name, "Ready", timeout=90)
        sa = kubectl.json("get", "serviceaccount", "restate", "-n", name)
        assert sa["metadata"]["annotations"][ANNOTATION] == EMAIL
        assert kubectl.get("iampolicymember", IPM, name) is None
        assert kubectl.get("job", CANARY, name) is None
        warnings = [
            e
            for e in _events(kubectl, name)
            if e["type"] == "Warning" and e["reason"] == "WorkloadIdentityDisabled"
        ]
        assert warnings, _events(kubectl, name)
        assert "--gcp-workload-identity" in warnings[0]["message"]
        assert "gcpWorkloadIdentity: true" in warnings[0]["message"]
    finally:
        _delete(kubectl, name)
        proc.stop()


# -- with the flag ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def config_connector_absent(kubectl: Kubectl, restate_crd: None) -> None:
    """The module's operator starts on a cluster without Config Connector."""
    kubectl.run("delete", "-f", str(CONFIG_CONNECTOR_CRD), "--ignore-not-found", "--wait=true")


@pytest.fixture(scope="module")
def gcp_operator(config_connector_absent: None, operator: OperatorProcess) -> OperatorProcess:
    return operator


@pytest.fixture
def cleanup(kubectl: Kubectl) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        _delete(kubectl, name)


def test_without_config_connector_waits_then_binds_proves_and_becomes_ready(
    kubectl: Kubectl, gcp_operator: OperatorProcess, cleanup: list[str]
) -> None:
    name = "e2e-wi"
    cleanup.append(name)
    assert kubectl.get("crd", CRD_NAME) is None
    kubectl.apply(_annotated(name))
    waiting = wait_phase(kubectl, name, "Pending", reason="WaitingForCRD")
    assert CRD_NAME in condition(waiting, "Progressing")["message"]
    assert gcp_operator.alive, "the operator waits; it does not crash"
    assert kubectl.get("statefulset", "restate", name) is None

    _install_config_connector(kubectl)
    ipm = wait_for(lambda: kubectl.get("iampolicymember", IPM, name), 30, what="IAMPolicyMember")
    assert ipm["metadata"]["annotations"]["cnrm.cloud.google.com/project-id"] == "e2e-project"
    assert ipm["spec"] == {
        "member": f"serviceAccount:e2e-project.svc.id.goog[{name}/restate]",
        "role": "roles/iam.workloadIdentityUser",
        "resourceRef": {
            "kind": "IAMServiceAccount",
            "external": f"projects/e2e-project/serviceAccounts/{EMAIL}",
        },
    }
    assert ipm["metadata"]["ownerReferences"][0]["name"] == name
    wait_phase(kubectl, name, "Provisioning", reason="IAMPolicyMemberNotReady")
    assert kubectl.get("job", CANARY, name) is None, "no canary before the binding is made"
    assert kubectl.get("statefulset", "restate", name) is None, "no pod without credentials"

    _play_config_connector(kubectl, name)
    job = wait_for(lambda: kubectl.get("job", CANARY, name), 30, what="canary Job")
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "restate"
    assert job["metadata"]["labels"]["app.kubernetes.io/name"] == CANARY
    assert EMAIL in pod["containers"][0]["command"][-1]

    ready = wait_phase(kubectl, name, "Ready", timeout=90)
    assert condition(ready, "Ready")["status"] == "True"
    job = kubectl.json("get", "job", CANARY, "-n", name)
    assert condition(job, "Complete")["status"] == "True", "Ready only after the canary passed"
    sts = kubectl.json("get", "statefulset", "restate", "-n", name)
    assert (
        sts["spec"]["template"]["metadata"]["annotations"]["restate.dev/gcp-service-account"]
        == EMAIL
    )
    assert kubectl.get("networkpolicy", "allow-restate-egress-to-gke-metadata", name)


def test_a_malformed_email_is_degraded_naming_the_annotation(
    kubectl: Kubectl, gcp_operator: OperatorProcess, cleanup: list[str]
) -> None:
    name = "e2e-wi-malformed"
    cleanup.append(name)
    kubectl.apply(_annotated(name, email="restate@.iam.gserviceaccount.com"))
    degraded = wait_phase(kubectl, name, "Degraded", reason="InvalidConfig")
    message = condition(degraded, "Degraded")["message"]
    assert f"spec.security.serviceAccountAnnotations[{ANNOTATION}]" in message
    assert "NAME@PROJECT.iam.gserviceaccount.com" in message
    assert kubectl.get("iampolicymember", IPM, name) is None


def test_removing_the_annotation_removes_the_iam_policy_member(
    kubectl: Kubectl, gcp_operator: OperatorProcess, cleanup: list[str]
) -> None:
    name = "e2e-wi-removed"
    cleanup.append(name)
    if kubectl.get("crd", CRD_NAME) is None:  # this test alone: Config Connector from the start
        _install_config_connector(kubectl)
    kubectl.apply(_annotated(name))
    wait_for(lambda: kubectl.get("iampolicymember", IPM, name), 60, what="IAMPolicyMember")
    _play_config_connector(kubectl, name)
    wait_phase(kubectl, name, "Ready", timeout=90)

    kubectl.merge_patch("rsc", name, {"spec": {"security": {"serviceAccountAnnotations": None}}})
    wait_for(
        lambda: kubectl.get("iampolicymember", IPM, name) is None,
        60,
        what="IAMPolicyMember removed",
    )
    wait_for(lambda: kubectl.get("job", CANARY, name) is None, 60, what="canary Job removed")
    ready = wait_phase(kubectl, name, "Ready", timeout=90)
    assert ready["status"]["phase"] == "Ready"
    sts = kubectl.json("get", "statefulset", "restate", "-n", name)
    annotations = sts["spec"]["template"]["metadata"].get("annotations") or {}
    assert "restate.dev/gcp-service-account" not in annotations
