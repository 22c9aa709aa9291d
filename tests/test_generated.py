"""Checked-in generated files must match what the models and states/ produce."""

from pathlib import Path

import yaml

from restate_op import __version__
from restate_op.api.crd import restatecluster_crd
from restate_op.api.crd_builder import custom_resource_definition
from restate_op.generate import (
    CRD_KINDS,
    CRDS_CHART,
    VENDORED_CRDS_CHART,
    artefacts,
    crds_chart_files,
    stale_artefacts,
)


def test_checked_in_artefacts_are_fresh() -> None:
    stale = stale_artefacts()
    assert not stale, f"run `python -m restate_op generate`; stale: {stale}"


def test_generated_set_covers_crd_pkl_chart_and_diagram() -> None:
    names = {p.name for p in artefacts()}
    assert names == {
        "restateclusters.yaml",
        "RestateCluster.pkl",
        "restatedeployments.yaml",
        "RestateDeployment.pkl",
        "restatecluster.md",
        "restatedeployment.md",
        "restatecloudenvironments.yaml",
        "RestateCloudEnvironment.pkl",
        "restatecloudenvironment.md",
        "_rbac.tpl",
        "README.md",
        "reference.md",
        "lifecycle.py",
        "Chart.yaml",
        "k8s_definitions.json",
    }
    # Each CRD three times: crd/, the CRDs chart and its copy in the operator chart.
    assert len(artefacts()) == 11 + 3 * len(CRD_KINDS) + 2


def test_the_crds_chart_and_its_vendored_copy_have_every_kind_kept_on_uninstall() -> None:
    files = crds_chart_files()
    for kind in CRD_KINDS:
        template = yaml.safe_load(files[Path("templates") / f"{kind.plural}.yaml"])
        assert template["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert template["spec"] == custom_resource_definition(kind)["spec"]
    chart = yaml.safe_load(files[Path("Chart.yaml")])
    assert chart["name"] == "restate-operator-crds" and chart["version"] == __version__
    generated = artefacts()
    for relative, text in files.items():
        assert generated[CRDS_CHART / relative] == generated[VENDORED_CRDS_CHART / relative] == text


def test_crd_has_cel_rules_printer_columns_and_status() -> None:
    crd = restatecluster_crd()
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    storage = schema["properties"]["spec"]["properties"]["storage"]["properties"]
    assert (
        storage["storageRequestBytes"]["x-kubernetes-validations"][0]["rule"] == "self >= oldSelf"
    )
    assert storage["storageClassName"]["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Phase",
        "Ready",
        "Replicas",
        "Storage",
        "Age",
        "Message",
    ]
    assert version["subresources"] == {"status": {}}
    assert crd["spec"]["scope"] == "Cluster" and crd["spec"]["names"]["shortNames"] == ["rsc"]


def test_schema_is_structural() -> None:
    def walk(node: object) -> None:
        if isinstance(node, dict):
            assert ("$ref" not in node and "anyOf" not in node) or node.get(
                "x-kubernetes-int-or-string"
            )
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for kind in CRD_KINDS:
        walk(custom_resource_definition(kind))
