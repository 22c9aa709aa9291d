"""``deploy/restate-operator.yaml``: the chart rendered for people who use kubectl, not helm.

``python -m restate_op generate`` cannot make it: it needs the helm binary, which the static
checks do not build. This test renders the chart with the pinned helm and default values
(``helm template --include-crds``) and fails when the checked-in file differs;
``UPDATE_SNAPSHOTS=1`` rewrites it. No control plane is started.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from e2e.controlplane import Binaries

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "restate-operator-helm"
DEPLOY = ROOT / "deploy" / "restate-operator.yaml"
RELEASE = NAMESPACE = "restate-operator"
UPDATE = os.environ.get("UPDATE_SNAPSHOTS") == "1"

HEADER = f"""\
# restate-op for kubectl: the chart charts/restate-operator-helm rendered with its default values
#   helm template {RELEASE} charts/restate-operator-helm --namespace {NAMESPACE} --include-crds
# plus the Namespace. Do not edit: e2e/test_deploy_manifests.py (UPDATE_SNAPSHOTS=1) writes it.
#   kubectl apply --server-side -f deploy/restate-operator.yaml
# The image is the chart's default (ghcr.io/restate-op/restate-op:<appVersion>); to run an
# image of your own, use helm with --set image.repository=..., or edit the Deployment's image.
---
apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
  labels:
    app.kubernetes.io/name: restate-operator
"""


def rendered(tmp_path: Path) -> str:
    binary = Binaries.locate().helm
    assert binary is not None, "no helm binary: bash e2e/build-binaries.sh helm"
    proc = subprocess.run(
        [
            str(binary),
            "template",
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--include-crds",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "HELM_CACHE_HOME": str(tmp_path / "cache"),
            "HELM_CONFIG_HOME": str(tmp_path / "config"),
            "HELM_DATA_HOME": str(tmp_path / "data"),
        },
    )
    assert proc.returncode == 0, proc.stderr
    return HEADER + proc.stdout


def test_deploy_manifests_are_the_rendered_chart(tmp_path: Path) -> None:
    text = rendered(tmp_path)
    if UPDATE:
        DEPLOY.write_text(text)
    assert DEPLOY.read_text() == text, (
        "deploy/restate-operator.yaml is stale: "
        "UPDATE_SNAPSHOTS=1 .venv/bin/pytest e2e/test_deploy_manifests.py"
    )


def test_deploy_manifests_are_complete_for_kubectl() -> None:
    docs = [d for d in yaml.safe_load_all(DEPLOY.read_text()) if d]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("Namespace", NAMESPACE) in kinds
    assert ("CustomResourceDefinition", "restateclusters.restate.dev") in kinds
    assert ("Deployment", RELEASE) in kinds
    # Every namespaced object lands in the Namespace the file creates.
    cluster_scoped = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
    for doc in docs:
        if doc["kind"] not in cluster_scoped:
            assert doc["metadata"].get("namespace") == NAMESPACE, doc["metadata"]["name"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"ghcr.io/restate-op/restate-op:{chart['appVersion']}"
    # No Helm hooks or tests: kubectl would apply them as plain objects.
    for doc in docs:
        assert "helm.sh/hook" not in doc["metadata"].get("annotations", {}), doc["kind"]
