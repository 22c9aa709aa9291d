"""The RestateCluster CustomResourceDefinition, generated from the models."""

from __future__ import annotations

from typing import Any

from restate_op import GROUP, KIND, PLURAL, VERSION
from restate_op.api import crd_builder
from restate_op.api.crd_builder import CrdKind, custom_resource_definition
from restate_op.api.k8s_openapi import KubernetesTypes
from restate_op.api.models import (
    DNS_LABEL_PATTERN,
    RestateClusterSpec,
    RestateClusterStatus,
)

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


RESTATECLUSTER = CrdKind(
    kind=KIND,
    plural=PLURAL,
    version=VERSION,
    scope="Cluster",
    short_names=("rsc",),
    description=(
        "A Restate cluster. The operator creates a Namespace of the same name holding "
        "everything the cluster needs."
    ),
    spec=RestateClusterSpec,
    status=RestateClusterStatus,
    printer_columns=printer_columns,
    # The name becomes a Namespace name, so it must be a DNS label (no dots, <= 63).
    object_rules=(
        {
            "rule": f"self.metadata.name.matches('{DNS_LABEL_PATTERN}')",
            "message": "metadata.name must be a DNS label (lowercase letters, digits and "
            "'-', no dots): it becomes the cluster's Namespace name",
        },
        {
            "rule": "size(self.metadata.name) <= 63",
            "message": "metadata.name must be at most 63 characters: it becomes a Namespace name",
        },
    ),
)


def openapi_schema(*, kubernetes_types: KubernetesTypes | None = None) -> dict[str, Any]:
    return crd_builder.openapi_schema(RESTATECLUSTER, kubernetes_types=kubernetes_types)


def restatecluster_crd() -> dict[str, Any]:
    return custom_resource_definition(RESTATECLUSTER)
