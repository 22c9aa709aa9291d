"""One builder for every restate.dev CustomResourceDefinition.

Each kind says what differs (names, scope, models, printer columns, rules, subresources) in a
:class:`CrdKind`; the object around it is the same for all, so a new kind is one ``CrdKind``
and one line in ``restate_op.generate.CRD_KINDS``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from restate_op import GROUP
from restate_op.api.k8s_openapi import KubernetesTypes
from restate_op.api.schema import Schema, structural_schema

Rule = dict[str, str]
#: Client-side ``kubectl apply`` keeps the whole object in an annotation, and all annotations
#: together may not exceed 256 KiB; the CRDs stay below that with room for Helm's metadata.
MAX_CRD_BYTES = 240 * 1024


@dataclass(frozen=True)
class CrdKind:
    """What makes one custom resource kind's CRD its own."""

    kind: str
    plural: str
    version: str
    scope: Literal["Cluster", "Namespaced"]
    short_names: tuple[str, ...]
    description: str
    spec: type[BaseModel]
    status: type[BaseModel]
    printer_columns: Callable[[], list[dict[str, Any]]]
    #: CEL rules on the whole object (``self.metadata``...) and on ``spec``.
    object_rules: Sequence[Rule] = ()
    spec_rules: Sequence[Rule] = ()
    #: ``{"scale": {...}}`` and the like; ``status`` is always there.
    subresources: Mapping[str, Any] = field(default_factory=dict)
    #: ``brief`` when the embedded Kubernetes types' full descriptions would make the CRD
    #: too large for ``kubectl apply`` without ``--server-side`` (``MAX_CRD_BYTES``).
    kubernetes_types: KubernetesTypes = "full"

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def api_version(self) -> str:
        return f"{GROUP}/{self.version}"


def openapi_schema(kind: CrdKind, *, kubernetes_types: KubernetesTypes | None = None) -> Schema:
    """The top-level schema: spec required, status written only by the operator.

    ``kubernetes_types`` defaults to the kind's own; ``named`` leaves the embedded Kubernetes
    types as named objects (for the Pkl template and the reference docs, which link to
    Kubernetes' documentation rather than repeat it).
    """
    kubernetes_types = kubernetes_types or kind.kubernetes_types
    spec = structural_schema(kind.spec, kubernetes_types=kubernetes_types)
    if kind.spec_rules:
        spec["x-kubernetes-validations"] = [dict(r) for r in kind.spec_rules]
    schema: Schema = {
        "type": "object",
        "description": kind.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": structural_schema(kind.status, kubernetes_types=kubernetes_types),
        },
    }
    if kind.object_rules:
        schema["x-kubernetes-validations"] = [dict(r) for r in kind.object_rules]
    return schema


def custom_resource_definition(kind: CrdKind) -> dict[str, Any]:
    """The full CustomResourceDefinition object of ``kind``."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.kind.lower(),
                "shortNames": list(kind.short_names),
            },
            "scope": kind.scope,
            "versions": [
                {
                    "name": kind.version,
                    "served": True,
                    "storage": True,
                    "additionalPrinterColumns": kind.printer_columns(),
                    "schema": {"openAPIV3Schema": openapi_schema(kind)},
                    "subresources": {"status": {}, **kind.subresources},
                }
            ],
        },
    }
