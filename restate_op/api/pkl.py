"""Pkl templates of the three kinds, from the CRDs' structural schemas.

Users who write their manifests in Pkl amend this module; its classes mirror the CRD's nested
objects, with optional fields nullable and the CRD's simple constraints as Pkl constraints.
"""

from __future__ import annotations

from typing import Any

from restate_op.api.cloud_crd import openapi_schema as cloud_openapi_schema
from restate_op.api.crd import openapi_schema
from restate_op.api.deployment_crd import openapi_schema as deployment_openapi_schema

Schema = dict[str, Any]


def _class_name(path: list[str]) -> str:
    return "".join(p[:1].upper() + p[1:] for p in path)


class _PklWriter:
    def __init__(self) -> None:
        self.classes: list[str] = []
        self.names: set[str] = set()

    def type_of(self, schema: Schema, path: list[str]) -> str:
        if schema.get("x-kubernetes-int-or-string"):
            return "Int|String"
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            # Kubernetes types (restate_op.api.k8s_openapi) too: the API server checks them.
            return "Dynamic"
        if "enum" in schema:
            return "|".join(f'"{v}"' for v in schema["enum"])
        kind = schema.get("type")
        if kind == "string":
            return "String"
        if kind == "integer":
            return "Int" + (f"(this >= {schema['minimum']})" if "minimum" in schema else "")
        if kind == "number":
            return "Number"
        if kind == "boolean":
            return "Boolean"
        if kind == "array":
            return f"Listing<{self.type_of(schema.get('items', {}), path)}>"
        if kind == "object":
            if "properties" in schema:
                return self.add_class(schema, path)
            value = schema.get("additionalProperties")
            inner = self.type_of(value, path) if isinstance(value, dict) else "Dynamic"
            return f"Mapping<String, {inner}>"
        return "Any"

    def add_class(self, schema: Schema, path: list[str]) -> str:
        name = _class_name(path)
        if name in self.names:
            return name
        self.names.add(name)
        required = set(schema.get("required", []))
        lines: list[str] = []
        if schema.get("description"):
            lines.extend(f"/// {line}" for line in schema["description"].splitlines())
        lines.append(f"class {name} {{")
        for prop, sub in schema["properties"].items():
            pkl_type = self.type_of(sub, [*path, prop])
            if prop not in required:
                pkl_type = f"({pkl_type})?" if "|" in pkl_type else f"{pkl_type}?"
            if sub.get("description"):
                lines.extend(f"  /// {line}" for line in sub["description"].splitlines())
            quoted = f"`{prop}`" if prop in {"except", "class", "module", "import"} else prop
            lines.append(f"  {quoted}: {pkl_type}")
            lines.append("")
        if lines[-1] == "":
            lines.pop()
        lines.append("}")
        self.classes.append("\n".join(lines))
        return name


def restatecluster_pkl() -> str:
    """The Pkl module text (``crd/RestateCluster.pkl``)."""
    return _module(
        openapi_schema(kubernetes_types="named"),
        "RestateCluster",
        "restate.dev/v1",
        "a Restate cluster run by restate-op",
        [
            "/// The metadata of a RestateCluster; the name becomes its Namespace (a DNS label).",
            "class ObjectMeta {",
            '  name: String(matches(Regex(#"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"#)), length <= 63)',
            "",
            "  labels: Mapping<String, String>?",
            "",
            "  annotations: Mapping<String, String>?",
            "}",
        ],
    )


def restatedeployment_pkl() -> str:
    """The Pkl module text (``crd/RestateDeployment.pkl``)."""
    return _module(
        deployment_openapi_schema(kubernetes_types="named"),
        "RestateDeployment",
        "restate.dev/v1beta1",
        "versioned Restate SDK services, registered and drained by restate-op",
        [
            "/// The metadata of a RestateDeployment (namespaced).",
            "class ObjectMeta {",
            "  name: String",
            "",
            "  namespace: String?",
            "",
            "  labels: Mapping<String, String>?",
            "",
            "  annotations: Mapping<String, String>?",
            "}",
        ],
    )


def restatecloudenvironment_pkl() -> str:
    """The Pkl module text (``crd/RestateCloudEnvironment.pkl``)."""
    return _module(
        cloud_openapi_schema(kubernetes_types="named"),
        "RestateCloudEnvironment",
        "restate.dev/v1beta1",
        "a Restate Cloud environment and its tunnel client, run by restate-op",
        [
            "/// The metadata of a RestateCloudEnvironment (cluster-scoped; the tunnel is "
            "tunnel-<name>).",
            "class ObjectMeta {",
            "  name: String(length <= 56)",
            "",
            "  labels: Mapping<String, String>?",
            "",
            "  annotations: Mapping<String, String>?",
            "}",
        ],
    )


def _module(
    schema: Schema, kind: str, api_version: str, what: str, metadata_class: list[str]
) -> str:
    writer = _PklWriter()
    spec_type = writer.type_of(schema["properties"]["spec"], [kind, "spec"])
    status_type = writer.type_of(schema["properties"]["status"], [kind, "status"])
    header = [
        f"/// {kind} ({api_version}): {what}.",
        "///",
        "/// Generated by `python -m restate_op generate` from the pydantic models; do not edit.",
        f"module {kind}",
        "",
        f'apiVersion: "{api_version}"',
        "",
        f'kind: "{kind}"',
        "",
        "metadata: ObjectMeta",
        "",
        f"spec: {spec_type}",
        "",
        f"status: {status_type}?",
        "",
        *metadata_class,
        "",
        "output {",
        "  renderer = new YamlRenderer {}",
        "}",
    ]
    return "\n".join(header) + "\n\n" + "\n\n".join(writer.classes) + "\n"
