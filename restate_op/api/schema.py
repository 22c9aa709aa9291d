"""pydantic JSON Schema -> Kubernetes structural OpenAPI v3 schema.

The API server accepts only *structural* schemas: no ``$ref``, no ``anyOf`` that changes the
type, every node typed. This module inlines references, folds ``Optional[X]`` into ``X`` and
keeps the Kubernetes extensions (``x-kubernetes-*``) the models declare.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

Schema = dict[str, Any]

_DROPPED_KEYS = {"title", "default", "$defs", "additionalProperties_", "discriminator"}


def structural_schema(model: type[BaseModel]) -> Schema:
    """The structural OpenAPI v3 schema of ``model`` (camelCase field names)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs: dict[str, Schema] = raw.get("$defs", {})
    return _convert(raw, defs)


def _convert(node: Schema, defs: dict[str, Schema]) -> Schema:
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, defs)
    if node.get("x-kubernetes-int-or-string"):
        return {k: v for k, v in node.items() if k.startswith("x-") or k == "description"}
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if len(options) == 1:
            return _convert({**options[0], **rest}, defs)
        raise ValueError(f"non-structural anyOf: {node}")
    if "const" in node:
        node = {**{k: v for k, v in node.items() if k != "const"}, "enum": [node["const"]]}

    out: Schema = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "properties":
            out[key] = {name: _convert(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out[key] = _convert(value, defs)
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out[key] = _convert(value, defs)
        else:
            out[key] = value
    if "required" in out:
        out["required"] = sorted(out["required"])
    return out
