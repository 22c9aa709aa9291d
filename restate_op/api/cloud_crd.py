"""The RestateCloudEnvironment CustomResourceDefinition, generated from the models.

Identity as upstream's (``restate.dev/v1beta1``, cluster-scoped, short name ``rce``, names
of at most 56 characters) so its manifests carry over; plus what upstream lacks: a status
subresource and printer columns (upstream PR #133 asks for Environment, Region and Age).
The object around it is ``restate_op.api.crd_builder``'s, as for the other kinds.
"""

from __future__ import annotations

from typing import Any

from restate_op import GROUP
from restate_op.api import crd_builder
from restate_op.api.cloud import (
    MAX_NAME_LENGTH,
    RestateCloudEnvironmentSpec,
    RestateCloudEnvironmentStatus,
)
from restate_op.api.crd_builder import CrdKind, custom_resource_definition
from restate_op.api.k8s_openapi import KubernetesTypes

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


RESTATECLOUDENVIRONMENT = CrdKind(
    kind=KIND,
    plural=PLURAL,
    version=VERSION,
    scope="Cluster",
    short_names=("rce",),
    description=(
        "A Restate Cloud environment: the operator runs its tunnel client, and "
        "RestateDeployments with register.cloud register with it."
    ),
    spec=RestateCloudEnvironmentSpec,
    status=RestateCloudEnvironmentStatus,
    printer_columns=printer_columns,
    # The tunnel Deployment and Service are tunnel-<name>, which must fit 63 characters.
    object_rules=(
        {
            "rule": f"size(self.metadata.name) <= {MAX_NAME_LENGTH}",
            "message": f"metadata.name must be at most {MAX_NAME_LENGTH} characters: the "
            "tunnel is named tunnel-<name>",
        },
    ),
)


def openapi_schema(*, kubernetes_types: KubernetesTypes | None = None) -> dict[str, Any]:
    return crd_builder.openapi_schema(RESTATECLOUDENVIRONMENT, kubernetes_types=kubernetes_types)


def restatecloudenvironment_crd() -> dict[str, Any]:
    return custom_resource_definition(RESTATECLOUDENVIRONMENT)
