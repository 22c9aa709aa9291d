"""The RestateCluster CustomResourceDefinition, generated from the models."""

from __future__ import annotations

from typing import Any

from restate_op import GROUP, KIND, PLURAL, VERSION
from restate_op.api.models import (
    DNS_LABEL_PATTERN,
    RestateClusterSpec,
    RestateClusterStatus,
)
from restate_op.api.schema import structural_schema

CRD_NAME = f"{PLURAL}.{GROUP}"


def printer_columns() -> list[dict[str, Any]]:
    """What ``kubectl get rsc`` shows; ``-o wide`` adds the message."""
    return [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {
            "name": "Ready",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
        },
        {"name": "Replicas", "type": "string", "jsonPath": ".status.replicaSummary"},
        {"name": "Storage", "type": "string", "jsonPath": ".status.storage.capacity"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
    ]


def openapi_schema() -> dict[str, Any]:
    """The top-level schema: spec required, status written only by the operator."""
    return {
        "type": "object",
        "description": (
            "A Restate cluster. The operator creates a Namespace of the same name holding "
            "everything the cluster needs."
        ),
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": structural_schema(RestateClusterSpec),
            "status": structural_schema(RestateClusterStatus),
        },
        # The name becomes a Namespace name, so it must be a DNS label (no dots, <= 63).
        "x-kubernetes-validations": [
            {
                "rule": f"self.metadata.name.matches('{DNS_LABEL_PATTERN}')",
                "message": "metadata.name must be a DNS label (lowercase letters, digits and "
                "'-', no dots): it becomes the cluster's Namespace name",
            },
            {
                "rule": "size(self.metadata.name) <= 63",
                "message": "metadata.name must be at most 63 characters: it becomes a "
                "Namespace name",
            },
        ],
    }


def restatecluster_crd() -> dict[str, Any]:
    """The full CustomResourceDefinition object."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": ["rsc"],
            },
            "scope": "Cluster",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "additionalPrinterColumns": printer_columns(),
                    "schema": {"openAPIV3Schema": openapi_schema()},
                    "subresources": {"status": {}},
                }
            ],
        },
    }
