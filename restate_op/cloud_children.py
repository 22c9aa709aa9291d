"""The tunnel client of a RestateCloudEnvironment, as desired manifests: pure builders.

As upstream (§2.3): a Deployment and a Service ``tunnel-<name>`` in the operator's namespace,
labelled with the RCE's labels plus ``app.kubernetes.io/name: restate-cloud-tunnel-client``
and ``app.kubernetes.io/instance: tunnel-<name>``, owned by the RCE (garbage-collected with
it), the bearer token mounted from the Secret. Beyond upstream: a PodDisruptionBudget when
there is more than one tunnel pod, and by default a preferred pod anti-affinity across zones
(upstream documents that default but does not set it), so one zone's outage or one drain
never takes every tunnel away.
"""

from __future__ import annotations

from typing import Any

from restate_op.api.cloud import RestateCloudEnvironment
from restate_op.api.cloud_crd import API_VERSION, KIND
from restate_op.children.constants import MANAGED_BY, MANAGED_BY_LABEL
from restate_op.children.pod_security import container_security_context, pod_security_context
from restate_op.diff import with_desired_hash
from restate_op.settings import OperatorSettings

APP_NAME = "restate-cloud-tunnel-client"
CONTAINER_NAME = APP_NAME
NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
#: Selects every object of every tunnel (the controller's watches).
TUNNEL_SELECTOR = f"{NAME_LABEL}={APP_NAME}"
HEALTH_PORT = 9090
INGRESS_PORT = 8080
ADMIN_PORT = 9070
TOKEN_PATH = "/restate-bearer-token"
TOKEN_VOLUME = "bearer-token"
#: Upstream's: a tunnel drains its connections for up to five minutes.
TERMINATION_GRACE_SECONDS = 310
DEFAULT_RESOURCES = {
    "requests": {"cpu": "1", "memory": "1Gi"},
    "limits": {"cpu": "2", "memory": "2Gi"},
}
ZONE_KEY = "topology.kubernetes.io/zone"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def selector_labels(rce: RestateCloudEnvironment) -> dict[str, str]:
    return {NAME_LABEL: APP_NAME, INSTANCE_LABEL: rce.tunnel_name}


def owner_reference(rce: RestateCloudEnvironment) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": rce.name,
        "uid": rce.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _metadata(rce: RestateCloudEnvironment, namespace: str) -> dict[str, Any]:
    """The RCE's labels and annotations (minus kubectl's last-applied), as upstream."""
    labels = {**(rce.metadata.labels or {}), **selector_labels(rce), MANAGED_BY_LABEL: MANAGED_BY}
    meta: dict[str, Any] = {
        "name": rce.tunnel_name,
        "namespace": namespace,
        "labels": labels,
        "ownerReferences": [owner_reference(rce)],
    }
    annotations = {k: v for k, v in (rce.metadata.annotations or {}).items() if k != LAST_APPLIED}
    if annotations:
        meta["annotations"] = annotations
    return meta


def _env(rce: RestateCloudEnvironment) -> list[dict[str, Any]]:
    """The operator's variables, each replaced in place by the user's of the same name."""
    spec = rce.spec
    remote_proxy = spec.tunnel_spec.remote_proxy is True
    defaults: list[dict[str, Any]] = [
        {"name": "RESTATE_TUNNEL_NAME", "value": rce.metadata.uid},
        {"name": "RESTATE_SIGNING_PUBLIC_KEY", "value": spec.signing_public_key},
        {"name": "RESTATE_ENVIRONMENT_ID", "value": spec.prefixed_id},
        {"name": "RESTATE_CLOUD_REGION", "value": spec.region},
        {"name": "RESTATE_BEARER_TOKEN_FILE", "value": TOKEN_PATH},
        {"name": "RESTATE_REMOTE_PROXY", "value": "true" if remote_proxy else "false"},
        {"name": "RUST_BACKTRACE", "value": "1"},
        {"name": "RUST_LIB_BACKTRACE", "value": "0"},
        {"name": "RUST_LOG", "value": "info"},
    ]
    users = {e.name: e.to_kube() for e in spec.tunnel_spec.env or []}
    merged = [users.pop(e["name"], e) for e in defaults]
    return merged + list(users.values())


def _ports(rce: RestateCloudEnvironment) -> list[tuple[str, int]]:
    ports = [("health", HEALTH_PORT)]
    if rce.spec.tunnel_spec.remote_proxy:
        ports += [("ingress", INGRESS_PORT), ("admin", ADMIN_PORT)]
    return ports


def _affinity(rce: RestateCloudEnvironment) -> dict[str, Any] | None:
    """The user's affinity; unset: tunnel pods preferably in different zones ({}: none)."""
    affinity = rce.spec.tunnel_spec.affinity
    if affinity is not None:
        return dict(affinity) or None
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": ZONE_KEY,
                        "labelSelector": {"matchLabels": selector_labels(rce)},
                    },
                }
            ]
        }
    }


def tunnel_deployment(rce: RestateCloudEnvironment, settings: OperatorSettings) -> dict[str, Any]:
    tunnel = rce.spec.tunnel_spec
    secret = rce.spec.authentication.secret
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": tunnel.image or settings.tunnel_client_default_image,
        "env": _env(rce),
        "ports": [
            {"name": name, "containerPort": port, "protocol": "TCP"} for name, port in _ports(rce)
        ],
        "readinessProbe": {"httpGet": {"path": "/health", "port": HEALTH_PORT}},
        "resources": tunnel.resources.to_kube() if tunnel.resources else DEFAULT_RESOURCES,
        "securityContext": container_security_context(),
        "volumeMounts": [
            {
                "name": TOKEN_VOLUME,
                "mountPath": TOKEN_PATH,
                "subPath": TOKEN_VOLUME,
                "readOnly": True,
            }
        ],
    }
    if tunnel.image_pull_policy is not None:
        container["imagePullPolicy"] = tunnel.image_pull_policy
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": [
            {
                "name": TOKEN_VOLUME,
                "secret": {
                    "secretName": secret.name,
                    "items": [{"key": secret.key, "path": TOKEN_VOLUME}],
                },
            }
        ],
    }
    affinity = _affinity(rce)
    if affinity is not None:
        pod["affinity"] = affinity
    if tunnel.dns_config is not None:
        pod["dnsConfig"] = tunnel.dns_config.to_kube()
    if tunnel.dns_policy is not None:
        pod["dnsPolicy"] = tunnel.dns_policy
    if tunnel.tolerations:
        pod["tolerations"] = [t.to_kube() for t in tunnel.tolerations]
    if tunnel.node_selector:
        pod["nodeSelector"] = dict(tunnel.node_selector)
    return with_desired_hash(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _metadata(rce, settings.operator_namespace),
            "spec": {
                "replicas": tunnel.desired_replicas,
                "selector": {"matchLabels": selector_labels(rce)},
                "template": {"metadata": {"labels": selector_labels(rce)}, "spec": pod},
            },
        }
    )


def tunnel_service(rce: RestateCloudEnvironment, settings: OperatorSettings) -> dict[str, Any]:
    ports: list[dict[str, Any]] = []
    for name, port in _ports(rce):
        entry: dict[str, Any] = {"name": name, "port": port, "targetPort": port, "protocol": "TCP"}
        if name != "health":
            entry["appProtocol"] = "kubernetes.io/h2c"
        ports.append(entry)
    return with_desired_hash(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _metadata(rce, settings.operator_namespace),
            "spec": {"type": "ClusterIP", "selector": selector_labels(rce), "ports": ports},
        }
    )


def tunnel_pdb(rce: RestateCloudEnvironment, settings: OperatorSettings) -> dict[str, Any] | None:
    """At most one tunnel pod down at a time; none for a single pod (it would block every
    drain). ``AlwaysAllow``: an unhealthy pod protects nothing."""
    if rce.spec.tunnel_spec.desired_replicas <= 1:
        return None
    return with_desired_hash(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": _metadata(rce, settings.operator_namespace),
            "spec": {
                "maxUnavailable": 1,
                "selector": {"matchLabels": selector_labels(rce)},
                "unhealthyPodEvictionPolicy": "AlwaysAllow",
            },
        }
    )
