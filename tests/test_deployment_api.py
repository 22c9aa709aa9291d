"""The RestateDeployment API: upstream manifests validate unchanged, and its rules hold."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from restate_op.api.deployment import (
    AUTOSCALING_RULE,
    EXACTLY_ONE_TARGET_RULE,
    MODE_UNCHANGED_RULE,
    RestateDeployment,
)
from restate_op.api.deployment_crd import FINALIZER, restatedeployment_crd
from restate_op.api.pkl import restatedeployment_pkl
from restate_op.api.reference import reference_markdown

FIXTURES = Path(__file__).parent / "fixtures"
MANIFESTS = ["restatedeployment-upstream.yaml", "restatedeployment-full.yaml"]


def manifest(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((FIXTURES / name).read_text())
    return loaded


def schema() -> dict[str, Any]:
    version = restatedeployment_crd()["spec"]["versions"][0]
    found: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return found


def pruned_paths(obj: Any, node: dict[str, Any], path: str = "") -> list[str]:
    """The paths of ``obj`` the API server would prune (unknown to the structural schema)."""
    if node.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(obj, dict):
        props = node.get("properties")
        if props is None:
            extra = node.get("additionalProperties")
            if isinstance(extra, dict):
                return [p for k, v in obj.items() for p in pruned_paths(v, extra, f"{path}.{k}")]
            return [] if node.get("type") == "object" else [path]
        missing = [f"{path}.{k}" for k in obj if k not in props]
        return missing + [
            p
            for k, v in obj.items()
            if k in props
            for p in pruned_paths(v, props[k], f"{path}.{k}")
        ]
    if isinstance(obj, list):
        return [
            p for i, v in enumerate(obj) for p in pruned_paths(v, node["items"], f"{path}[{i}]")
        ]
    return []


@pytest.mark.parametrize("name", MANIFESTS)
def test_upstream_manifests_validate_and_round_trip_unchanged(name: str) -> None:
    raw = manifest(name)
    rsd = RestateDeployment.model_validate(raw)
    assert rsd.to_kube()["spec"] == raw["spec"]
    assert rsd.api_version == "restate.dev/v1beta1" and rsd.kind == "RestateDeployment"


@pytest.mark.parametrize("name", MANIFESTS)
def test_upstream_manifests_lose_no_field_to_pruning(name: str) -> None:
    raw = manifest(name)
    spec_schema = schema()["properties"]["spec"]
    assert pruned_paths(raw["spec"], spec_schema, "spec") == []
    assert set(spec_schema.get("required", [])) <= set(raw["spec"])


def test_defaults_are_upstreams() -> None:
    rsd = RestateDeployment.model_validate(manifest("restatedeployment-upstream.yaml"))
    assert rsd.spec.desired_replicas == 1
    assert rsd.spec.history_limit == 10
    assert rsd.spec.restate.drain_delay == 300
    assert rsd.spec.mode == "replicaset"
    assert rsd.spec.restate.register.cluster == "restate"


@pytest.mark.parametrize(
    "register",
    [
        {},
        {"cluster": "a", "url": "http://x:9070"},
        {"cloud": "env", "service": {"name": "s", "namespace": "n"}},
    ],
)
def test_register_takes_exactly_one_target_in_the_model(register: dict[str, Any]) -> None:
    raw = manifest("restatedeployment-upstream.yaml")
    raw["spec"]["restate"]["register"] = register
    with pytest.raises(ValidationError, match="Exactly one of `cluster`, `cloud`"):
        RestateDeployment.model_validate(raw)


@pytest.mark.parametrize(
    "register",
    [
        {"cluster": "c"},
        {"cloud": "env"},
        {"url": "http://a/b"},
        {"service": {"name": "s", "namespace": "n"}},
    ],
)
def test_each_single_target_is_accepted(register: dict[str, Any]) -> None:
    raw = manifest("restatedeployment-upstream.yaml")
    raw["spec"]["restate"]["register"] = register
    RestateDeployment.model_validate(raw)


def test_register_takes_exactly_one_target_in_the_crd() -> None:
    register = schema()["properties"]["spec"]["properties"]["restate"]["properties"]["register"]
    assert set(register["properties"]) == {"cluster", "cloud", "service", "url"}
    [rule] = register["x-kubernetes-validations"]
    assert rule["rule"] == EXACTLY_ONE_TARGET_RULE
    # Every target the model knows is counted by the rule.
    for target in register["properties"]:
        assert f"has(self.{target})" in rule["rule"]


def test_deployment_mode_is_immutable_also_when_first_set() -> None:
    spec = schema()["properties"]["spec"]
    field_rules = spec["properties"]["deploymentMode"]["x-kubernetes-validations"]
    assert field_rules == [
        {"rule": "self == oldSelf", "message": "deploymentMode is immutable after creation"}
    ]
    # The field's own rule is not evaluated when the old object lacks the field; the rule on
    # spec (present in both objects) compares the effective modes, unset meaning replicaset.
    rules = [r["rule"] for r in spec["x-kubernetes-validations"]]
    assert MODE_UNCHANGED_RULE in rules and AUTOSCALING_RULE in rules
    assert "has(oldSelf.deploymentMode)" in MODE_UNCHANGED_RULE


def test_autoscaling_is_refused_in_knative_mode() -> None:
    raw = manifest("restatedeployment-full.yaml")
    raw["spec"]["deploymentMode"] = "knative"
    with pytest.raises(ValidationError, match="only supported in replicaset mode"):
        RestateDeployment.model_validate(raw)


def test_knative_tag_pattern_and_scale_bounds() -> None:
    raw = manifest("restatedeployment-upstream.yaml")
    raw["spec"]["deploymentMode"] = "knative"
    raw["spec"]["knative"] = {"tag": "v2", "minScale": 0, "maxScale": 3, "target": 10}
    RestateDeployment.model_validate(raw)
    for bad in ({"tag": "V2"}, {"minScale": -1}):
        broken = copy.deepcopy(raw)
        broken["spec"]["knative"] = bad
        with pytest.raises(ValidationError):
            RestateDeployment.model_validate(broken)


def test_crd_identity_subresources_and_columns() -> None:
    crd = restatedeployment_crd()
    assert crd["metadata"]["name"] == "restatedeployments.restate.dev"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["shortNames"] == ["rsd"]
    [version] = crd["spec"]["versions"]
    assert version["name"] == "v1beta1"
    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.labelSelector",
        },
    }
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    for name in ("Desired", "Up-To-Date", "Ready", "Available", "Age"):
        assert "priority" not in columns[name]
    for name in ("Deployment ID", "Containers", "Images", "Selector"):
        assert columns[name]["priority"] == 1
    assert FINALIZER == "deployments.restate.dev"


def test_status_has_conditions_and_a_per_version_list() -> None:
    status = schema()["properties"]["status"]["properties"]
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
    versions = status["versions"]
    assert versions["x-kubernetes-list-map-keys"] == ["name"]
    item = versions["items"]["properties"]
    assert {"name", "hash", "deploymentId", "phase", "replicas", "pinnedInvocations"} <= set(item)
    assert item["phase"]["enum"] == [
        "Starting",
        "Registering",
        "Latest",
        "Draining",
        "Retired",
        "Rejected",
    ]
    upstream = {
        "deploymentId",
        "knative",
        "replicas",
        "desiredReplicas",
        "readyReplicas",
        "availableReplicas",
        "unavailableReplicas",
        "collisionCount",
        "observedGeneration",
        "conditions",
        "labelSelector",
    }
    assert upstream <= set(status)


def test_pkl_and_reference_cover_the_deployment() -> None:
    pkl = restatedeployment_pkl()
    assert 'apiVersion: "restate.dev/v1beta1"' in pkl and "drainDelaySeconds: Int" in pkl
    reference = reference_markdown()
    assert "# RestateDeployment field reference" in reference
    assert "`spec.restate.register.service.path`" in reference
