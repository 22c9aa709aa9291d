"""The Services of a cluster: ``restate`` for clients and ``restate-cluster`` for peers."""

from __future__ import annotations

from typing import Any

from restate_op.api.models import RestateCluster
from restate_op.children.constants import (
    ADMIN_PORT,
    CLUSTER_SERVICE_NAME,
    INGRESS_PORT,
    NODE_PORT,
    SERVICE_NAME,
)
from restate_op.children.metadata import child_metadata, namespace_name, selector_labels

H2C = "kubernetes.io/h2c"


def _port(name: str, port: int) -> dict[str, Any]:
    # Restate speaks HTTP/2 cleartext on every port; the appProtocol lets meshes and
    # gateways pick h2c instead of guessing HTTP/1.1.
    return {"name": name, "port": port, "targetPort": port, "protocol": "TCP", "appProtocol": H2C}


def desired_service(cluster: RestateCluster) -> dict[str, Any]:
    """ClusterIP Service ``restate`` for clients: ingress, admin and node (metrics) ports.

    Carries ``security.serviceAnnotations`` (load-balancer and mesh settings); upstream
    built them and then dropped them, we apply them.
    """
    annotations = cluster.spec.security_or_default.service_annotations
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(cluster, SERVICE_NAME, namespace_name(cluster), annotations),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(cluster),
            "ports": [
                _port("ingress", INGRESS_PORT),
                _port("admin", ADMIN_PORT),
                _port("node", NODE_PORT),
            ],
        },
    }


def desired_cluster_service(cluster: RestateCluster) -> dict[str, Any]:
    """Headless Service ``restate-cluster``: stable per-pod DNS names for node-to-node traffic.

    ``publishNotReadyAddresses`` is essential: a Restate node only becomes ready once it can
    reach its peers, so peers must be resolvable before they are ready.
    """
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(cluster, CLUSTER_SERVICE_NAME, namespace_name(cluster)),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": selector_labels(cluster),
            "ports": [_port("node", NODE_PORT)],
        },
    }
