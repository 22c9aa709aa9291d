"""The RestateDeployment CustomResourceDefinition, generated from the models.

Identity as upstream's (``restate.dev/v1beta1``, namespaced, short name ``rsd``, status and
scale subresources, the same printer columns), so that its manifests and ``kubectl``
habits carry over; plus a ``Latest`` column naming the version Restate routes to.
"""

from __future__ import annotations

from typing import Any

from restate_op import GROUP
from restate_op.api import crd_builder
from restate_op.api.crd_builder import CrdKind, custom_resource_definition
from restate_op.api.deployment import (
    AUTOSCALING_RULE,
    MODE_UNCHANGED_RULE,
    RestateDeploymentSpec,
    RestateDeploymentStatus,
)
from restate_op.api.k8s_openapi import KubernetesTypes

VERSION = "v1beta1"
KIND = "RestateDeployment"
PLURAL = "restatedeployments"
CRD_NAME = f"{PLURAL}.{GROUP}"
API_VERSION = f"{GROUP}/{VERSION}"
#: Upstream's finalizer name, so that objects it finalized are released by this operator.
FINALIZER = "deployments.restate.dev"


def printer_columns() -> list[dict[str, Any]]:
    """What ``kubectl get rsd`` shows (upstream's columns); ``-o wide`` adds the rest."""
    return [
        {"name": "Desired", "type": "integer", "jsonPath": ".status.desiredReplicas"},
        {"name": "Up-To-Date", "type": "integer", "jsonPath": ".status.replicas"},
        {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
        {"name": "Available", "type": "integer", "jsonPath": ".status.availableReplicas"},
        {"name": "Latest", "type": "string", "jsonPath": ".status.latestVersion"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {
            "name": "Deployment ID",
            "type": "string",
            "jsonPath": ".status.deploymentId",
            "priority": 1,
        },
        {
            "name": "Containers",
            "type": "string",
            "jsonPath": ".spec.template.spec.containers[*].name",
            "priority": 1,
        },
        {
            "name": "Images",
            "type": "string",
            "jsonPath": ".spec.template.spec.containers[*].image",
            "priority": 1,
        },
        {"name": "Selector", "type": "string", "jsonPath": ".status.labelSelector", "priority": 1},
        {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
    ]


RESTATEDEPLOYMENT = CrdKind(
    kind=KIND,
    plural=PLURAL,
    version=VERSION,
    scope="Namespaced",
    short_names=("rsd",),
    description=(
        "Versioned Restate SDK services: each pod template is a version (a ReplicaSet and "
        "a Service) registered with Restate and retired once no invocation needs it."
    ),
    spec=RestateDeploymentSpec,
    status=RestateDeploymentStatus,
    printer_columns=printer_columns,
    spec_rules=(
        {
            "rule": MODE_UNCHANGED_RULE,
            "message": "deploymentMode is immutable after creation (unset means replicaset)",
        },
        {
            "rule": AUTOSCALING_RULE,
            "message": "spec.autoscaling is only supported in replicaset mode (not knative)",
        },
    ),
    # A whole PodSpec with Kubernetes' full descriptions is 360 KB, above MAX_CRD_BYTES.
    kubernetes_types="brief",
    subresources={
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.labelSelector",
        },
    },
)


def openapi_schema(*, kubernetes_types: KubernetesTypes | None = None) -> dict[str, Any]:
    return crd_builder.openapi_schema(RESTATEDEPLOYMENT, kubernetes_types=kubernetes_types)


def restatedeployment_crd() -> dict[str, Any]:
    return custom_resource_definition(RESTATEDEPLOYMENT)
