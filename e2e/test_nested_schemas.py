"""Kubernetes' own schemas inside the CRDs, as the API server enforces them.

A typo inside a Kubernetes type (``spec.compute.affinity.nodeAffinty``, and the like in a
RestateDeployment or a RestateCloudEnvironment) is refused at apply time with its path:
``kubectl apply`` validates strictly by default, and the CRD's schema now
knows every field of Affinity. With validation turned off (``--validate=false``) the API
server prunes the unknown field, so it is never stored and never reaches the StatefulSet; a
wrong type is refused either way. ``kubectl explain`` documents the nested fields.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from e2e.operator_fixtures import cluster_manifest
from e2e.operator_process import REPO, Kubectl, wait_for

pytestmark = pytest.mark.usefixtures("restate_crd")

RSD_CRD = "restatedeployments.restate.dev"
TYPO: dict[str, Any] = {"nodeAffinty": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}


def _with_affinity(name: str, affinity: dict[str, Any]) -> dict[str, Any]:
    manifest = cluster_manifest(name)
    manifest["spec"]["compute"]["affinity"] = affinity
    return manifest


def _delete(kubectl: Kubectl, kind: str, name: str, *namespace: str) -> None:
    kubectl.run("delete", kind, name, *namespace, "--ignore-not-found", "--wait=false")


def test_a_typo_inside_affinity_is_refused_with_its_path(kubectl: Kubectl) -> None:
    name = "e2e-schema-typo"
    refused = kubectl.apply(_with_affinity(name, TYPO), check=False)
    assert refused.returncode != 0
    assert 'unknown field "spec.compute.affinity.nodeAffinty"' in refused.stderr, refused.stderr
    assert kubectl.get("restatecluster", name) is None
    # Server-side apply validates strictly by default too.
    refused = kubectl.apply(_with_affinity(name, TYPO), "--server-side", check=False)
    assert refused.returncode != 0 and "spec.compute.affinity.nodeAffinty" in refused.stderr


def test_without_validation_the_unknown_field_is_pruned_not_stored(kubectl: Kubectl) -> None:
    name = "e2e-schema-pruned"
    affinity = {**TYPO, "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    try:
        kubectl.apply(_with_affinity(name, affinity), "--validate=false")
        stored = kubectl.json("get", "restatecluster", name)
        assert stored["spec"]["compute"]["affinity"] == {
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}
        }
    finally:
        _delete(kubectl, "restatecluster", name)


def test_a_wrong_type_inside_a_kubernetes_type_is_refused_even_without_validation(
    kubectl: Kubectl,
) -> None:
    name = "e2e-schema-type"
    manifest = cluster_manifest(name)
    manifest["spec"]["compute"]["extraVolumes"] = [{"name": "x", "emptyDir": {"medium": 3}}]
    refused = kubectl.apply(manifest, "--validate=false", check=False)
    assert refused.returncode != 0
    assert "spec.compute.extraVolumes[0].emptyDir.medium" in refused.stderr, refused.stderr
    assert "must be of type string" in refused.stderr


def _server_echo(kubectl: Kubectl, manifest: dict[str, Any]) -> dict[str, Any]:
    """What the API server would store (``create --dry-run=server``): pruned, validated."""
    proc = kubectl.run(
        "create", "--dry-run=server", "-o", "json", "-f", "-", stdin=json.dumps(manifest)
    )
    echoed: dict[str, Any] = json.loads(proc.stdout)
    return echoed


def test_the_full_fixture_with_every_kubernetes_type_applies_unchanged(kubectl: Kubectl) -> None:
    """tests/fixtures/full.yaml sets tolerations, affinity and more: nothing is pruned."""
    full = yaml.safe_load((REPO / "tests" / "fixtures" / "full.yaml").read_text())
    assert _server_echo(kubectl, full)["spec"] == full["spec"]


def test_kubectl_explain_documents_the_nested_fields(kubectl: Kubectl) -> None:
    def explained() -> str | None:
        proc = kubectl.run("explain", "restatecluster.spec.compute.affinity", check=False)
        return proc.stdout if proc.returncode == 0 and "nodeAffinity" in proc.stdout else None

    text = wait_for(explained, 30, what="kubectl explain to know the nested schema")
    assert "podAntiAffinity" in text and "Describes node affinity scheduling rules" in text
    deep = kubectl.run(
        "explain", "restatecluster.spec.compute.sidecars.livenessProbe.httpGet.port"
    ).stdout
    assert "Name or number of the port to access on the container" in deep, deep


@pytest.fixture(scope="module")
def deployment_crd(kubectl: Kubectl) -> None:
    kubectl.run("apply", "--server-side", "-f", str(REPO / "crd" / "restatedeployments.yaml"))
    kubectl.wait_established(RSD_CRD)


def test_a_typo_in_a_restatedeployment_pod_spec_is_refused(
    kubectl: Kubectl, deployment_crd: None
) -> None:
    upstream = yaml.safe_load(
        (REPO / "tests" / "fixtures" / "restatedeployment-upstream.yaml").read_text()
    )
    upstream["metadata"]["namespace"] = "default"
    broken = copy.deepcopy(upstream)
    broken["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
    refused = kubectl.apply(broken, "--dry-run=server", check=False)
    assert refused.returncode != 0
    assert "spec.template.spec.containers[0].imagee" in refused.stderr, refused.stderr
    # The upstream manifest itself still applies unchanged (nothing pruned).
    assert _server_echo(kubectl, upstream)["spec"] == upstream["spec"]


RCE_CRD = "restatecloudenvironments.restate.dev"


@pytest.fixture(scope="module")
def cloud_environment_crd(kubectl: Kubectl) -> None:
    kubectl.run("apply", "--server-side", "-f", str(REPO / "crd" / "restatecloudenvironments.yaml"))
    kubectl.wait_established(RCE_CRD)


def _cloud_environment(**tunnel: Any) -> dict[str, Any]:
    return {
        "apiVersion": "restate.dev/v1beta1",
        "kind": "RestateCloudEnvironment",
        "metadata": {"name": "e2e-schema-rce"},
        "spec": {
            "environmentId": "env_201e2e",
            "region": "us",
            "signingPublicKey": "publickeyv1_e2e",
            "authentication": {"secret": {"name": "e2e-token", "key": "token"}},
            "tunnel": tunnel,
        },
    }


def test_a_typo_in_a_cloud_environment_tunnel_is_refused(
    kubectl: Kubectl, cloud_environment_crd: None
) -> None:
    """The tunnel's affinity and env ``valueFrom`` are Kubernetes' types in this CRD too (they
    were free-form in the RestateCloudEnvironment's first CRD)."""
    refused = kubectl.apply(_cloud_environment(affinity=TYPO), "--dry-run=server", check=False)
    assert refused.returncode != 0
    assert "spec.tunnel.affinity.nodeAffinty" in refused.stderr, refused.stderr
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"nme": "s", "key": "k"}}}]
    refused = kubectl.apply(_cloud_environment(env=env), "--dry-run=server", check=False)
    assert refused.returncode != 0
    assert "spec.tunnel.env[0].valueFrom.secretKeyRef.nme" in refused.stderr, refused.stderr
    valid = _cloud_environment(
        affinity={"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
        env=[{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
    )
    assert _server_echo(kubectl, valid)["spec"] == valid["spec"]
