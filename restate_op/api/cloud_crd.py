"""The RestateCloudEnvironment CustomResourceDefinition, generated from the models.

Identity as upstream's (``restate.dev/v1beta1``, cluster-scoped, short name ``rce``, names
of at most 56 characters) so its manifests carry over; plus what upstream lacks: a status
subresource and printer columns (upstream PR #133 asks for Environment, Region and Age).
"""

from __future__ import annotations

from typing import Any

from restate_op import GROUP
from restate_op.api.cloud import (
    MAX_NAME_LENGTH,
    RestateCloudEnvironmentSpec,
    RestateCloudEnvironmentStatus,
)
from restate_op.api.schema import structural_schema

VERSION = "v1beta1"
KIND = "RestateCloudEnvironment"
PLURAL = "restatecloudenvironments"
CRD_NAME = f"{PLURAL}.{GROUP}"
API_VERSION = f"{GROUP}/{VERSION}"
#: Upstream's finalizer: released by restate-op on deletion (it needs no finalizer itself,
#: its children go by garbage collection), so objects upstream finalized can be deleted.
FINALIZER = "cloudenvironments.restate.dev"


def printer_columns() -> list[dict[str, Any]]:
    """What ``kubectl get rce`` shows; ``-o wide`` adds the tunnel and the message."""
    return [
        {"name": "Environment", "type": "string", "jsonPath": ".spec.environmentId"},
        {"name": "Region", "type": "string", "jsonPath": ".spec.region"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {
            "name": "Ready",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
        },
        {"name": "Tunnels", "type": "integer", "jsonPath": ".status.readyReplicas"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Tunnel", "type": "string", "jsonPath": ".status.tunnel", "priority": 1},
        {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
    ]


def openapi_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": (
            "A Restate Cloud environment: the operator runs its tunnel client, and "
            "RestateDeployments with register.cloud register with it."
        ),
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": structural_schema(RestateCloudEnvironmentSpec),
            "status": structural_schema(RestateCloudEnvironmentStatus),
        },
        "x-kubernetes-validations": [
            {
                "rule": f"size(self.metadata.name) <= {MAX_NAME_LENGTH}",
                "message": f"metadata.name must be at most {MAX_NAME_LENGTH} characters: the "
                "tunnel is named tunnel-<name>",
            },
        ],
    }


def restatecloudenvironment_crd() -> dict[str, Any]:
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
                "shortNames": ["rce"],
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
