"""pydantic JSON Schema -> Kubernetes structural OpenAPI v3 schema.

The API server accepts only *structural* schemas: no ``$ref``, no ``anyOf`` that changes the
type, every node typed. This module inlines references, folds ``Optional[X]`` into ``X``,
keeps the Kubernetes extensions (``x-kubernetes-*``) the models declare, and expands the
Kubernetes types the models embed (``restate_op.api.k8s_openapi``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from restate_op.api.k8s_openapi import MARKER, NOT_REQUIRED, KubernetesTypes, kubernetes_schema

Schema = dict[str, Any]

_DROPPED_KEYS = {"title", "default", "$defs", "additionalProperties_", "discriminator"}


def structural_schema(
    model: type[BaseModel], *, kubernetes_types: KubernetesTypes = "full"
) -> Schema:
    """The structural OpenAPI v3 schema of ``model`` (camelCase field names)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs: dict[str, Schema] = raw.get("$defs", {})
    return _convert(raw, defs, kubernetes_types)


def _kubernetes_type(node: Schema, expand: KubernetesTypes) -> Schema:
    """A field of a Kubernetes type: its schema, or (``named``) an object naming the type.

    The unexpanded form is for the Pkl template and the reference docs, which name the type
    and link to Kubernetes' documentation instead of repeating it.
    """
    extra = {k: v for k, v in node.items() if k not in (MARKER, NOT_REQUIRED)}
    if expand == "named":
        return {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            MARKER: node[MARKER],
            **{k: v for k, v in extra.items() if k == "description"},
        }
    schema = kubernetes_schema(node[MARKER], brief=expand == "brief")
    if "description" in extra:
        schema["description"] = extra["description"]
    schema["properties"].update(extra.get("properties", {}))
    dropped = set(node.get(NOT_REQUIRED, []))
    required = [r for r in schema.get("required", []) if r not in dropped]
    if required:
        schema["required"] = required
    else:
        schema.pop("required", None)
    return schema


def _convert(node: Schema, defs: dict[str, Schema], expand: KubernetesTypes) -> Schema:
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, defs, expand)
    if MARKER in node:
        return _kubernetes_type(node, expand)
    if node.get("x-kubernetes-int-or-string"):
        return {k: v for k, v in node.items() if k.startswith("x-") or k == "description"}
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if len(options) == 1:
            return _convert({**options[0], **rest}, defs, expand)
        raise ValueError(f"non-structural anyOf: {node}")
    if "const" in node:
        node = {**{k: v for k, v in node.items() if k != "const"}, "enum": [node["const"]]}

    out: Schema = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "properties":
            out[key] = {name: _convert(sub, defs, expand) for name, sub in value.items()}
        elif key == "items":
            out[key] = _convert(value, defs, expand)
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out[key] = _convert(value, defs, expand)
        else:
            out[key] = value
    if "required" in out:
        out["required"] = sorted(out["required"])
    return out
