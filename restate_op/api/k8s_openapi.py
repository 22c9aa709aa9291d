"""The Kubernetes types RestateCluster and RestateDeployment pass through, as CRD schemas.

Affinity, containers, volumes, lifecycle hooks and the like belong to Kubernetes; the CRDs
embed Kubernetes' own OpenAPI schema of them (the pinned version's, vendored in
``k8s_definitions.json`` by ``restate_op.api.k8s_vendor``), so the API server refuses a typo
inside them when the custom resource is applied, with the field's path, and ``kubectl
explain`` documents them. Kubernetes' OpenAPI is not a structural CRD schema, so
:func:`kubernetes_schema` converts it: ``$ref`` inlined, IntOrString and Quantity as
``x-kubernetes-int-or-string``, list maps whose keys are not all required made atomic.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any, Literal

Schema = dict[str, Any]
#: How a CRD carries the embedded Kubernetes types: their full schema, the same with each
#: description cut to its first sentence (for a CRD that must stay small), or only named.
KubernetesTypes = Literal["full", "brief", "named"]

DEFINITIONS_FILE = Path(__file__).with_name("k8s_definitions.json")
CORE = "io.k8s.api.core.v1."
#: Kubernetes' string-or-number types: in a CRD, ``x-kubernetes-int-or-string``.
INT_OR_STRING = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
    "io.k8s.apimachinery.pkg.api.resource.Quantity",
}
#: The formats a CRD schema may carry (Kubernetes' own int-or-string is not one).
FORMATS = {"int32", "int64", "byte", "date-time", "double", "float"}
#: Marker a model field's JSON schema carries to say "this is that Kubernetes type".
MARKER = "x-restate-kubernetes-type"
#: Beside the marker: required fields of the Kubernetes type the model makes optional.
NOT_REQUIRED = "x-restate-not-required"


@functools.cache
def _vendored() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DEFINITIONS_FILE.read_text())
    return loaded


def kubernetes_version() -> str:
    """The Kubernetes version whose OpenAPI the vendored definitions come from."""
    return str(_vendored()["kubernetesVersion"])


def definitions() -> dict[str, Schema]:
    found: dict[str, Schema] = _vendored()["definitions"]
    return found


def short_name(name: str) -> str:
    """``io.k8s.api.core.v1.Affinity`` -> ``Affinity``."""
    return name.rsplit(".", 1)[-1]


def api_reference_url(name: str) -> str:
    """The type's section in the Kubernetes API reference of the pinned minor version."""
    minor = ".".join(kubernetes_version().lstrip("v").split(".")[:2])
    group_version = name.removeprefix("io.k8s.api.").rsplit(".", 1)[0]  # core.v1, autoscaling.v2
    group, version = group_version.rsplit(".", 1)
    anchor = f"{short_name(name).lower()}-{version}-{group}"
    return f"https://kubernetes.io/docs/reference/generated/kubernetes-api/v{minor}/#{anchor}"


def kubernetes_schema(name: str, *, brief: bool = False) -> Schema:
    """The structural CRD schema of the Kubernetes type ``name`` (all references inlined)."""
    return copy.deepcopy(_structural(name, brief))


@functools.cache
def _structural(name: str, brief: bool) -> Schema:
    schema = _convert({"$ref": name}, definitions(), ())
    return _first_sentences(schema) if brief else schema


def first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]


def _first_sentences(node: Schema) -> Schema:
    out: Schema = {}
    for key, value in node.items():
        if key == "description":
            out[key] = first_sentence(value)
        elif key == "properties":
            out[key] = {prop: _first_sentences(sub) for prop, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _first_sentences(value)
        else:
            out[key] = value
    return out


def _convert(node: Schema, defs: dict[str, Schema], stack: tuple[str, ...]) -> Schema:
    ref = node.get("$ref") or _single_all_of(node)
    if ref is not None:
        name = ref.rsplit("/", 1)[-1]
        if name in stack:
            raise ValueError(f"recursive Kubernetes type {' -> '.join((*stack, name))}")
        rest = {k: v for k, v in node.items() if k not in ("$ref", "allOf")}
        if name in INT_OR_STRING:
            description = rest.get("description", defs[name].get("description"))
            return _int_or_string(description)
        return _convert({**defs[name], **rest}, defs, (*stack, name))
    if node.get("format") == "int-or-string":
        return _int_or_string(node.get("description"))

    out: Schema = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {prop: _convert(sub, defs, stack) for prop, sub in value.items()}
        elif key == "items":
            out[key] = _convert(value, defs, stack)
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out[key] = _convert(value, defs, stack)
        elif key == "format":
            if value in FORMATS:
                out[key] = value
        elif key in ("description", "type", "required") or key.startswith("x-kubernetes-"):
            out[key] = value
    if "properties" in out:
        out.setdefault("type", "object")
    if out.get("type") == "array":
        _atomic_unless_keys_required(out)
    return out


def _single_all_of(node: Schema) -> str | None:
    """Kubernetes wraps a reference with a description as ``allOf: [{$ref}]``."""
    options = node.get("allOf")
    if isinstance(options, list) and len(options) == 1 and "$ref" in options[0]:
        ref: str = options[0]["$ref"]
        return ref
    return None


def _int_or_string(description: str | None) -> Schema:
    schema: Schema = {"x-kubernetes-int-or-string": True}
    if description:
        schema["description"] = description
    return schema


def _atomic_unless_keys_required(array: Schema) -> None:
    """A list map needs every key required (or defaulted); else the list is atomic.

    Defaults are not carried over (they would change stored objects, and with them
    RestateDeployment version hashes), so a key like ``ports[].protocol`` is optional here.
    """
    keys = array.get("x-kubernetes-list-map-keys")
    if array.get("x-kubernetes-list-type") != "map" or not keys:
        return
    required = set(array.get("items", {}).get("required", []))
    if not set(keys) <= required:
        array["x-kubernetes-list-type"] = "atomic"
        del array["x-kubernetes-list-map-keys"]
