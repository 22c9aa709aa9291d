"""The standalone CRDs chart (charts/restate-operator-crds) with the real helm.

- installed on its own it creates every CRD, Established and kept on uninstall; CRDs that
  already exist (applied with kubectl, or another release's) are taken over with
  ``--take-ownership`` (Helm >= 3.17), the path upstream documents for its 3.0 chart;
- the operator chart with ``installCrds=false`` then installs no CRD, and the operator, run
  with a token of that release's ServiceAccount, gives a RestateCluster its status;
- ``helm uninstall`` of the CRDs release leaves the CRDs and the custom resources.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.helm import Helm, kubeconfig_with_token, write_kubeconfig
from e2e.operator_fixtures import HasKubeconfig, cluster_manifest, condition, wait_phase
from e2e.operator_process import REPO, Kubectl, OperatorProcess
from restate_op.api.crd_builder import custom_resource_definition
from restate_op.generate import CRD_KINDS

CRDS_CHART = REPO / "charts" / "restate-operator-crds"
OPERATOR_CHART = REPO / "charts" / "restate-operator-helm"
CRDS_RELEASE = "restate-crds"
CRDS_NS = "restate-crds-e2e"
RELEASE = "restate-op-nocrds"
RELEASE_NS = "restate-op-nocrds-e2e"
SERVICE_ACCOUNT = "restate-op-nocrds"
VALUES: dict[str, Any] = {
    "installCrds": False,
    "nameOverride": SERVICE_ACCOUNT,
    "image": {"repository": "e2e.invalid/restate-operator"},  # kwok "runs" any image
    "leaderElection": {"enabled": True, "leaseDuration": 4, "renewPeriod": 1},
}
CRDS = {kind.crd_name: custom_resource_definition(kind) for kind in CRD_KINDS}


@pytest.fixture(scope="module")
def helm(kube: HasKubeconfig, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm.locate(kube.kubeconfig, tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="module")
def crds_release(helm: Helm, kubectl: Kubectl) -> Iterator[None]:
    helm.uninstall(CRDS_RELEASE, CRDS_NS, ignore_not_found=True)
    helm.install(CRDS_RELEASE, CRDS_CHART, CRDS_NS, None, "--take-ownership")
    try:
        yield
    finally:
        helm.uninstall(CRDS_RELEASE, CRDS_NS, ignore_not_found=True)
        kubectl.run("delete", "namespace", CRDS_NS, "--wait=false", check=False)


#: What upstream's chart leaves on its CRDs after ``helm uninstall`` (resource-policy keep).
UPSTREAM_OWNER = {
    "meta.helm.sh/release-name": "restate-operator",
    "meta.helm.sh/release-namespace": "restate-operator",
}


def test_crds_upstreams_release_left_are_refused_then_taken_over_keeping_resources(
    helm: Helm, kubectl: Kubectl
) -> None:
    """docs/migrating.md step 3: the CRDs upstream's uninstalled release kept name that
    release as their owner; helm refuses to adopt them without ``--take-ownership`` and,
    with it, takes them over without touching a RestateCluster (same UID).

    Runs first in this module: ``crds_release`` below then installs with the flag as usual.
    """
    helm.uninstall(CRDS_RELEASE, CRDS_NS, ignore_not_found=True)
    for crd_file in sorted((REPO / "crd").glob("*.yaml")):
        kubectl.run("apply", "--server-side", "--force-conflicts", "-f", str(crd_file))
    for crd in CRDS:
        kubectl.wait_established(crd)
    name = "crds-takeover"
    kubectl.apply(cluster_manifest(name))
    uid = kubectl.json("get", "restatecluster", name)["metadata"]["uid"]
    try:
        for crd in CRDS:
            kubectl.run(
                "annotate", "crd", crd, "--overwrite",
                *(f"{k}={v}" for k, v in UPSTREAM_OWNER.items()),
            )  # fmt: skip
            kubectl.run("label", "crd", crd, "--overwrite", "app.kubernetes.io/managed-by=Helm")
        refused = helm.run(
            "install", CRDS_RELEASE, str(CRDS_CHART), "-n", CRDS_NS, "--create-namespace",
            check=False,
        )  # fmt: skip
        assert refused.returncode != 0, "helm adopted another release's CRDs silently"
        assert "restate-operator" in refused.stderr and "ownership" in refused.stderr, (
            refused.stderr
        )
        helm.install(CRDS_RELEASE, CRDS_CHART, CRDS_NS, None, "--take-ownership")
        for crd in CRDS:
            meta = kubectl.json("get", "crd", crd)["metadata"]
            assert meta["annotations"]["meta.helm.sh/release-name"] == CRDS_RELEASE
            assert meta["annotations"]["meta.helm.sh/release-namespace"] == CRDS_NS
        assert kubectl.json("get", "restatecluster", name)["metadata"]["uid"] == uid
    finally:
        kubectl.run("delete", "restatecluster", name, "--wait=false", check=False)
        helm.uninstall(CRDS_RELEASE, CRDS_NS, ignore_not_found=True)


def test_the_crds_chart_alone_installs_every_crd_kept_and_established(
    crds_release: None, helm: Helm, kubectl: Kubectl
) -> None:
    objects = helm.manifest(CRDS_RELEASE, CRDS_NS)
    assert sorted(o["metadata"]["name"] for o in objects) == sorted(CRDS)
    for name, generated in CRDS.items():
        kubectl.wait_established(name)
        live = kubectl.json("get", "crd", name)
        assert live["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert live["metadata"]["annotations"]["meta.helm.sh/release-name"] == CRDS_RELEASE
        assert live["spec"]["versions"] == generated["spec"]["versions"]


def _token_kubeconfig(kubectl: Kubectl, path: Path) -> Path:
    token = kubectl.run(
        "create", "token", SERVICE_ACCOUNT, "-n", RELEASE_NS, "--duration=3600s"
    ).stdout.strip()
    config = kubeconfig_with_token(kubectl.kubeconfig, token, SERVICE_ACCOUNT)
    return write_kubeconfig(path, config)


def test_the_operator_chart_without_crds_runs_on_the_crds_charts_crds(
    crds_release: None, helm: Helm, kubectl: Kubectl, tmp_path: Path
) -> None:
    helm.uninstall(RELEASE, RELEASE_NS, ignore_not_found=True)
    helm.install(RELEASE, OPERATOR_CHART, RELEASE_NS, VALUES)
    name = "e2e-crds-chart"
    operator = OperatorProcess(
        _token_kubeconfig(kubectl, tmp_path / "sa.kubeconfig"),
        tmp_path,
        name="nocrds",
        args=["--operator-namespace", RELEASE_NS, "--leader-elect", "true"],
    )
    try:
        kinds = [o["kind"] for o in helm.manifest(RELEASE, RELEASE_NS)]
        assert "CustomResourceDefinition" not in kinds and "Deployment" in kinds
        operator.start().wait_ready()
        kubectl.apply(cluster_manifest(name))
        ready = wait_phase(kubectl, name, "Ready", timeout=90)
        assert condition(ready, "Ready")["status"] == "True"
        for crd in CRDS:  # still the CRDs chart's, not the operator release's
            live = kubectl.json("get", "crd", crd)
            assert live["metadata"]["annotations"]["meta.helm.sh/release-name"] == CRDS_RELEASE
    finally:
        operator.stop()
        kubectl.run("delete", "restatecluster", name, "--wait=false", check=False)
        helm.uninstall(RELEASE, RELEASE_NS, ignore_not_found=True)
        kubectl.run("delete", "namespace", RELEASE_NS, "--wait=false", check=False)


def test_uninstalling_the_crds_chart_keeps_the_crds_and_the_resources(
    crds_release: None, helm: Helm, kubectl: Kubectl
) -> None:
    name = "e2e-crds-kept"
    kubectl.apply(cluster_manifest(name))
    try:
        uid = kubectl.json("get", "restatecluster", name)["metadata"]["uid"]
        helm.uninstall(CRDS_RELEASE, CRDS_NS)
        assert helm.status(CRDS_RELEASE, CRDS_NS) is None
        for crd in CRDS:
            live = kubectl.get("crd", crd)
            assert live is not None and not live["metadata"].get("deletionTimestamp"), crd
        kept = kubectl.get("restatecluster", name)
        assert kept is not None and kept["metadata"]["uid"] == uid
    finally:
        kubectl.run("delete", "restatecluster", name, "--wait=false", check=False)
