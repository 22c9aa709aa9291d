"""The Kubernetes types embedded in the CRDs: Kubernetes' own schemas, structural, small enough.

The vendored definitions come from the pinned Kubernetes (``generate --check`` rebuilds them);
here: what the conversion makes of them, and what the CRDs carry in the end.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from restate_op.api import k8s_openapi
from restate_op.api.cloud_crd import openapi_schema as cloud_schema
from restate_op.api.crd import openapi_schema
from restate_op.api.crd_builder import MAX_CRD_BYTES, custom_resource_definition
from restate_op.api.deployment_crd import openapi_schema as deployment_schema
from restate_op.api.k8s_openapi import (
    MARKER,
    first_sentence,
    kubernetes_schema,
    kubernetes_version,
)
from restate_op.generate import CRD_KINDS

ROOT = Path(__file__).resolve().parents[1]
#: What a CRD's structural schema may hold (apiextensions.k8s.io/v1 JSONSchemaProps we use).
ALLOWED_KEYS = {
    "type",
    "format",
    "description",
    "properties",
    "items",
    "additionalProperties",
    "required",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "pattern",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
}


def nodes(schema: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every schema node with its path (``.a.b[]``)."""
    found = [(path, schema)]
    for name, sub in schema.get("properties", {}).items():
        found += nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        found += nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        found += nodes(schema["additionalProperties"], f"{path}{{}}")
    return found


def spec(schema: dict[str, Any], *path: str) -> dict[str, Any]:
    node = schema
    for name in path:
        node = node["items"] if name == "[]" else node["properties"][name]
    return node


def test_the_vendored_definitions_are_of_the_pinned_kubernetes() -> None:
    pins = (ROOT / "e2e" / "versions.env").read_text()
    assert f"KUBERNETES_VERSION={kubernetes_version()}\n" in pins


@pytest.mark.parametrize("kind", CRD_KINDS, ids=lambda k: k.kind)
def test_every_node_is_structural_and_no_field_is_free_form_any_more(kind: Any) -> None:
    schema = custom_resource_definition(kind)["spec"]["versions"][0]["schema"]
    for path, node in nodes(schema["openAPIV3Schema"]):
        assert set(node) <= ALLOWED_KEYS, (path, set(node) - ALLOWED_KEYS)
        assert "type" in node or node.get("x-kubernetes-int-or-string"), path
        if node.get("x-kubernetes-list-type") == "map":
            assert set(node["x-kubernetes-list-map-keys"]) <= set(node["items"]["required"]), path
        # Only the pass-through config-like fields stay open (none of them Kubernetes types).
        if node.get("x-kubernetes-preserve-unknown-fields"):
            assert not path.startswith((".spec.compute", ".spec.tunnel")), path


@pytest.mark.parametrize("kind", CRD_KINDS, ids=lambda k: k.kind)
def test_each_crd_stays_below_the_client_side_apply_limit(kind: Any) -> None:
    """Client-side ``kubectl apply`` stores the object in a 256 KiB annotation; etcd's limit
    (1.5 MiB) is far off. The sizes are printed for the docs."""
    crd = custom_resource_definition(kind)
    size = len(json.dumps(crd, separators=(",", ":")))
    yaml_size = len(yaml.safe_dump(crd, sort_keys=False, width=100))
    print(f"{kind.crd_name}: {size} bytes as JSON, {yaml_size} as YAML")
    assert size < MAX_CRD_BYTES


def test_restatecluster_embeds_kubernetes_schemas_with_their_docs() -> None:
    schema = openapi_schema()
    compute = spec(schema, "spec", "compute")
    affinity = spec(compute, "affinity")
    assert set(affinity["properties"]) == {"nodeAffinity", "podAffinity", "podAntiAffinity"}
    terms = spec(
        affinity,
        "nodeAffinity",
        "requiredDuringSchedulingIgnoredDuringExecution",
        "nodeSelectorTerms",
        "[]",
        "matchExpressions",
        "[]",
    )
    assert terms["required"] == ["key", "operator"]
    assert "description" in spec(affinity, "podAntiAffinity")
    sidecar = spec(compute, "sidecars", "[]")
    assert sidecar["required"] == ["name"]
    # Ports' keys include protocol, optional without Kubernetes' default: an atomic list.
    assert spec(sidecar, "ports")["x-kubernetes-list-type"] == "atomic"
    assert spec(sidecar, "resources", "limits")["additionalProperties"] == {
        "x-kubernetes-int-or-string": True,
        "description": kubernetes_schema("io.k8s.api.core.v1.ResourceRequirements")["properties"][
            "limits"
        ]["additionalProperties"]["description"],
    }
    assert spec(sidecar, "livenessProbe", "httpGet", "port")["x-kubernetes-int-or-string"]
    assert spec(compute, "extraVolumes", "[]", "configMap", "items", "[]")["required"] == [
        "key",
        "path",
    ]
    assert spec(compute, "env", "[]", "valueFrom", "secretKeyRef")["required"] == ["key"]
    # The model's own descriptions win over Kubernetes' where it has one.
    assert spec(compute, "sidecars")["description"].startswith("Native sidecars")


def test_restatecloudenvironment_tunnel_embeds_kubernetes_affinity_and_env_sources() -> None:
    """The tunnel's pass-through fields: affinity was free-form before the merge with the
    generic builder; env ``valueFrom`` shares EnvVar with RestateCluster."""
    tunnel = spec(cloud_schema(), "spec", "tunnel")
    affinity = spec(tunnel, "affinity")
    assert set(affinity["properties"]) == {"nodeAffinity", "podAffinity", "podAntiAffinity"}
    assert "x-kubernetes-preserve-unknown-fields" not in affinity
    # The model's description (the default and how {} disables it) wins over Kubernetes'.
    assert affinity["description"].startswith("Default: preferred pod anti-affinity")
    assert spec(tunnel, "env", "[]", "valueFrom", "secretKeyRef")["required"] == ["key"]
    assert spec(tunnel, "tolerations", "[]", "operator")["enum"] == ["Exists", "Equal"]
    assert spec(tunnel, "resources", "requests")["additionalProperties"] == {
        "x-kubernetes-int-or-string": True
    }
    assert spec(tunnel, "dnsConfig", "options", "[]", "name")["type"] == "string"
    named = spec(cloud_schema(kubernetes_types="named"), "spec", "tunnel", "affinity")
    assert named[MARKER] == "io.k8s.api.core.v1.Affinity"


def test_restatedeployment_pod_spec_keeps_knative_fields_and_hpa_needs_no_target() -> None:
    schema = deployment_schema()
    pod = spec(schema, "spec", "template", "spec")
    assert pod["required"] == ["containers"]
    for knative in ("timeoutSeconds", "containerConcurrency"):
        assert pod["properties"][knative]["type"] == "integer"
    assert spec(pod, "containers")["x-kubernetes-list-type"] == "map"
    hpa = spec(schema, "spec", "autoscaling")
    assert hpa["required"] == ["maxReplicas"]
    assert "scaleTargetRef" in hpa["properties"]
    # Brief: each Kubernetes description cut to its first sentence (the size limit).
    description = spec(pod, "containers", "[]", "image")["description"]
    assert description == first_sentence(description)


def test_pkl_and_reference_name_kubernetes_types_instead_of_expanding_them() -> None:
    named = openapi_schema(kubernetes_types="named")
    affinity = spec(named, "spec", "compute", "affinity")
    assert affinity[MARKER] == "io.k8s.api.core.v1.Affinity"
    assert affinity["x-kubernetes-preserve-unknown-fields"] is True
    reference = (ROOT / "docs" / "reference.md").read_text()
    minor = re.sub(r"^v(\d+\.\d+).*", r"\1", kubernetes_version())
    assert (
        "| `spec.compute.affinity` | Kubernetes [Affinity](https://kubernetes.io/docs/reference/"
        f"generated/kubernetes-api/v{minor}/#affinity-v1-core) |"
    ) in reference
    assert (
        "class RestateClusterSpecComputeAffinity"
        not in (ROOT / "crd" / "RestateCluster.pkl").read_text()
    )


def test_a_recursive_type_is_refused() -> None:
    loop: dict[str, dict[str, Any]] = {
        "A": {"properties": {"b": {"$ref": "#/components/schemas/B"}}},
        "B": {"$ref": "A"},
    }
    with pytest.raises(ValueError, match="recursive Kubernetes type A -> B -> A"):
        k8s_openapi._convert({"$ref": "A"}, loop, ())
