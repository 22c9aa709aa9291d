"""Checked-in generated files must match what the models and states/ produce."""

from restate_op.api.crd import restatecluster_crd
from restate_op.generate import artefacts, stale_artefacts


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
    }
    assert len(artefacts()) == 16  # the CRDs twice: crd/ and the chart's copies


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

    walk(restatecluster_crd())
