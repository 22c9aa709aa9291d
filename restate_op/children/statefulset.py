"""The StatefulSet ``restate``: the Restate nodes, their environment, volumes and probes."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from restate_op.api.kube_types import SecretKeyRef
from restate_op.api.models import DEFAULT_TERMINATION_GRACE_SECONDS, RestateCluster
from restate_op.children.constants import (
    ADMIN_PORT,
    CA_INIT_CONTAINER_NAME,
    CLUSTER_SERVICE_NAME,
    COMBINED_CA_BUNDLE,
    COMBINED_CERTS_DIR,
    COMBINED_CERTS_VOLUME,
    CONFIG_DIR,
    CONFIG_VOLUME,
    CONTAINER_NAME,
    DATA_DIR,
    INGRESS_PORT,
    NODE_PORT,
    SECRET_PROVIDER_CLASS_NAME,
    SERVICE_ACCOUNT_NAME,
    SIGNING_KEY_DIR,
    SIGNING_KEY_VOLUME,
    STATEFULSET_NAME,
    STORAGE_VOLUME,
    TMP_DIR,
    TMP_VOLUME,
    TRUSTED_CA_ANNOTATION,
    TRUSTED_CA_DIR,
    TRUSTED_CA_VOLUME,
)
from restate_op.children.env import SIGNING_KEY_FILE, restate_env
from restate_op.children.metadata import (
    child_labels,
    child_metadata,
    namespace_name,
    selector_labels,
    sorted_map,
)
from restate_op.children.pod_security import (
    container_security_context,
    harden_sidecar,
    pod_security_context,
)
from restate_op.children.restate_config import config_map_name, config_toml, restate_roles
from restate_op.settings import OperatorSettings

#: Where Debian-based images, Restate's included, keep the system CA bundle.
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

# The system bundle first, then each extra CA; the paths arrive as arguments ("$@"), so no
# user-provided text is ever interpolated into the script. The echo guards against a PEM
# file without a trailing newline gluing two certificates together.
_COMBINE_CA_SCRIPT = (
    "set -eu\n"
    f'bundle="{COMBINED_CA_BUNDLE}"\n'
    f'cat "{SYSTEM_CA_BUNDLE}" > "$bundle"\n'
    'for cert in "$@"; do echo >> "$bundle"; cat "$cert" >> "$bundle"; done\n'
)


def pvc_names(cluster: RestateCluster) -> list[str]:
    """Names of the data PVCs the StatefulSet's pods use (``storage-restate-<i>``)."""
    return [
        f"{STORAGE_VOLUME}-{STATEFULSET_NAME}-{i}"
        for i in range(cluster.spec.compute.desired_replicas)
    ]


# --- request signing key -------------------------------------------------------------------


def _signing_key_volume(cluster: RestateCluster) -> dict[str, Any] | None:
    key = cluster.spec.security_or_default.request_signing_private_key
    if key is None:
        return None
    if key.secret is not None:
        # 0400: only the key's owner reads it (the fsGroup adds group read for Restate).
        item = {"key": key.secret.key, "path": SIGNING_KEY_FILE, "mode": 0o400}
        return {
            "name": SIGNING_KEY_VOLUME,
            "secret": {"secretName": key.secret.secret_name, "items": [item]},
        }
    if key.secret_provider is not None:
        return {
            "name": SIGNING_KEY_VOLUME,
            "csi": {
                "driver": "secrets-store.csi.k8s.io",
                "readOnly": True,
                "volumeAttributes": {"secretProviderClass": SECRET_PROVIDER_CLASS_NAME},
            },
        }
    return None


# --- trusted CA certificates -------------------------------------------------------------


def trusted_ca_annotation(certs: list[SecretKeyRef]) -> str:
    """SHA-256 hex of the concatenated ``name:key,`` refs (upstream's rollout trigger)."""
    refs = "".join(f"{c.secret_name}:{c.key}," for c in certs)
    return hashlib.sha256(refs.encode("utf-8")).hexdigest()


def _trusted_ca_source_volume(certs: list[SecretKeyRef]) -> dict[str, Any]:
    """One projected volume holding every extra CA as ``ca-<i>.crt``, in spec order.

    Grouped by Secret (a projection lists each Secret once); file names are generated, so
    user keys never become paths or shell words.
    """
    items_by_secret: dict[str, list[dict[str, str]]] = {}
    for i, cert in enumerate(certs):
        items_by_secret.setdefault(cert.secret_name, []).append(
            {"key": cert.key, "path": f"ca-{i}.crt"}
        )
    sources = [
        {"secret": {"name": secret, "items": items}} for secret, items in items_by_secret.items()
    ]
    return {"name": TRUSTED_CA_VOLUME, "projected": {"sources": sources}}


def _ca_init_container(cluster: RestateCluster, certs: list[SecretKeyRef]) -> dict[str, Any]:
    """Init container writing system CAs + extra CAs to the shared ``combined-certs`` bundle.

    It runs Restate's own image (Debian-based: ``sh``, ``cat`` and the system bundle): it is
    already on the node and covered by the same pull secrets, and its bundle is exactly the
    one Restate would otherwise trust.
    """
    compute = cluster.spec.compute
    paths = [f"{TRUSTED_CA_DIR}/ca-{i}.crt" for i in range(len(certs))]
    container: dict[str, Any] = {
        "name": CA_INIT_CONTAINER_NAME,
        "image": compute.image,
        "command": ["/bin/sh", "-c", _COMBINE_CA_SCRIPT, CA_INIT_CONTAINER_NAME, *paths],
        "securityContext": container_security_context(),
        "volumeMounts": [
            {"name": TRUSTED_CA_VOLUME, "mountPath": TRUSTED_CA_DIR, "readOnly": True},
            {"name": COMBINED_CERTS_VOLUME, "mountPath": COMBINED_CERTS_DIR},
        ],
    }
    if compute.image_pull_policy:
        container["imagePullPolicy"] = compute.image_pull_policy
    return container


# --- the pod -------------------------------------------------------------------------------


def readiness_probe(cluster: RestateCluster) -> dict[str, Any]:
    """The HTTP check that says a node serves what its roles offer (verified on Restate 1.7).

    ``admin``: GET ``/health`` on 9070, which answers only once the node has joined a
    provisioned cluster (before that it does not respond). Without admin (allowed only when
    the user's ``[metadata-client]`` joins another cluster, see ``validate``): the ingress'
    ``/restate/health`` on 8080 if the node serves ingress, else ``/health`` on the node port,
    which Restate answers with 200 as soon as the process listens - Restate 1.7 has no HTTP
    endpoint on that port that waits for the node to be up. Upstream always probes 9070,
    which a node without admin never opens.
    No ``initialDelaySeconds`` (upstream: 30): a failed readiness probe restarts nothing, so
    a delay only postpones the moment a healthy node starts serving; probing every 5 s from
    the start with a failure threshold of 3 makes nodes ready as soon as they are.
    """
    roles = restate_roles(cluster)
    if "admin" in roles:
        path, port = "/health", ADMIN_PORT
    elif "http-ingress" in roles:
        path, port = "/restate/health", INGRESS_PORT
    else:
        path, port = "/health", NODE_PORT
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": 5,
        "failureThreshold": 3,
    }


def _ports() -> list[dict[str, Any]]:
    return [
        {"name": "ingress", "containerPort": INGRESS_PORT, "protocol": "TCP"},
        {"name": "admin", "containerPort": ADMIN_PORT, "protocol": "TCP"},
        {"name": "node", "containerPort": NODE_PORT, "protocol": "TCP"},
    ]


def _volumes_and_mounts(
    cluster: RestateCluster,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Pod volumes and restate-container mounts: the operator's first, then the user's."""
    compute = cluster.spec.compute
    volumes: list[dict[str, Any]] = [
        {"name": TMP_VOLUME, "emptyDir": {}},
        {"name": CONFIG_VOLUME, "configMap": {"name": config_map_name(config_toml(cluster))}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": STORAGE_VOLUME, "mountPath": DATA_DIR},
        {"name": TMP_VOLUME, "mountPath": TMP_DIR},
        {"name": CONFIG_VOLUME, "mountPath": CONFIG_DIR, "readOnly": True},
    ]
    signing_key = _signing_key_volume(cluster)
    if signing_key is not None:
        volumes.append(signing_key)
        mounts.append({"name": SIGNING_KEY_VOLUME, "mountPath": SIGNING_KEY_DIR, "readOnly": True})
    certs = cluster.spec.security_or_default.trusted_ca_certs
    if certs:
        volumes.append(_trusted_ca_source_volume(certs))
        volumes.append({"name": COMBINED_CERTS_VOLUME, "emptyDir": {}})
        mounts.append(
            {"name": COMBINED_CERTS_VOLUME, "mountPath": COMBINED_CERTS_DIR, "readOnly": True}
        )
    volumes.extend(compute.extra_volumes or [])
    mounts.extend(compute.extra_volume_mounts or [])
    return volumes, mounts


def _restate_container(
    cluster: RestateCluster, settings: OperatorSettings, mounts: list[dict[str, Any]]
) -> dict[str, Any]:
    compute = cluster.spec.compute
    container: dict[str, Any] = {"name": CONTAINER_NAME, "image": compute.image}
    if compute.image_pull_policy:
        container["imagePullPolicy"] = compute.image_pull_policy
    if compute.command:
        container["command"] = list(compute.command)
    if compute.args:
        container["args"] = list(compute.args)
    container["env"] = restate_env(cluster, settings)
    container["ports"] = _ports()
    container["readinessProbe"] = readiness_probe(cluster)
    resources = compute.resources.to_kube() if compute.resources else {}
    if resources:
        container["resources"] = resources
    if compute.lifecycle:
        container["lifecycle"] = compute.lifecycle
    container["securityContext"] = container_security_context()
    container["volumeMounts"] = mounts
    return container


def _init_containers(cluster: RestateCluster) -> list[dict[str, Any]]:
    """The CA-bundle init container (if any), then the user's sidecars.

    Sidecars become native sidecars (``restartPolicy: Always``, forced): they start before
    Restate and stop after it. Fields the restricted standard needs are filled in.
    """
    containers = []
    certs = cluster.spec.security_or_default.trusted_ca_certs
    if certs:
        containers.append(_ca_init_container(cluster, certs))
    for sidecar in cluster.spec.compute.sidecars or []:
        containers.append({**harden_sidecar(sidecar), "restartPolicy": "Always"})
    return containers


def _pod_annotations(
    cluster: RestateCluster, pod_annotations: Mapping[str, str] | None
) -> dict[str, str]:
    operator: dict[str, str] = {}
    certs = cluster.spec.security_or_default.trusted_ca_certs
    if certs:
        operator[TRUSTED_CA_ANNOTATION] = trusted_ca_annotation(certs)
    return sorted_map(cluster.spec.compute.annotations, operator, pod_annotations)


def _pod_spec(cluster: RestateCluster, settings: OperatorSettings) -> dict[str, Any]:
    compute = cluster.spec.compute
    volumes, mounts = _volumes_and_mounts(cluster)
    grace = compute.termination_grace_period_seconds
    spec: dict[str, Any] = {
        "serviceAccountName": SERVICE_ACCOUNT_NAME,
        # Restate never calls the Kubernetes API; identity webhooks project their own tokens.
        "automountServiceAccountToken": False,
        # Service links would inject RESTATE_SERVICE_HOST, RESTATE_PORT_... for the Service
        # ``restate``: variables in Restate's own config namespace.
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": (
            DEFAULT_TERMINATION_GRACE_SECONDS if grace is None else grace
        ),
        "securityContext": pod_security_context(),
    }
    init_containers = _init_containers(cluster)
    if init_containers:
        spec["initContainers"] = init_containers
    spec["containers"] = [_restate_container(cluster, settings, mounts)]
    spec["volumes"] = volumes

    if compute.image_pull_secrets:
        spec["imagePullSecrets"] = [s.to_kube() for s in compute.image_pull_secrets]
    if compute.dns_policy:
        spec["dnsPolicy"] = compute.dns_policy
    if compute.dns_config:
        spec["dnsConfig"] = compute.dns_config.to_kube()
    if compute.tolerations:
        spec["tolerations"] = [t.to_kube() for t in compute.tolerations]
    if compute.node_selector:
        spec["nodeSelector"] = sorted_map(compute.node_selector)
    if compute.affinity:
        spec["affinity"] = compute.affinity
    if compute.topology_spread_constraints:
        spec["topologySpreadConstraints"] = compute.topology_spread_constraints
    if compute.priority_class_name:
        spec["priorityClassName"] = compute.priority_class_name
    return spec


def _claim_template(cluster: RestateCluster) -> dict[str, Any]:
    storage = cluster.spec.storage
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"]}
    if storage.storage_class_name:
        spec["storageClassName"] = storage.storage_class_name
    if storage.volume_attributes_class_name:
        spec["volumeAttributesClassName"] = storage.volume_attributes_class_name
    spec["resources"] = {"requests": {"storage": str(storage.storage_request_bytes)}}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        # Selector labels only: claim templates are immutable, user labels may change.
        "metadata": {"name": STORAGE_VOLUME, "labels": selector_labels(cluster)},
        "spec": spec,
    }


def desired_statefulset(
    cluster: RestateCluster,
    settings: OperatorSettings,
    pod_annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """StatefulSet ``restate`` (spec §3, upstream B3).

    ``pod_annotations`` are the operator's rollout triggers that depend on live state (AWS
    identity, security groups); they win over ``compute.annotations``, as do the operator's
    labels over ``compute.labels``. ``Parallel`` pod management starts all nodes together so
    a metadata quorum can form; serving through ``restate-cluster`` gives each pod a stable
    DNS name. ``OnDelete``: a changed template reaches the pods only as the operator restarts
    them, in the order and at the pace Restate allows (``restate_op.roll``).
    """
    compute = cluster.spec.compute
    template_metadata: dict[str, Any] = {
        "labels": sorted_map(compute.labels, child_labels(cluster))
    }
    annotations = _pod_annotations(cluster, pod_annotations)
    if annotations:
        template_metadata["annotations"] = annotations
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": child_metadata(cluster, STATEFULSET_NAME, namespace_name(cluster)),
        "spec": {
            "replicas": compute.desired_replicas,
            "selector": {"matchLabels": selector_labels(cluster)},
            "serviceName": CLUSTER_SERVICE_NAME,
            "podManagementPolicy": "Parallel",
            # The operator restarts pods, one at a time in Restate's order (restate_op.roll).
            "updateStrategy": {"type": "OnDelete"},
            "template": {"metadata": template_metadata, "spec": _pod_spec(cluster, settings)},
            "volumeClaimTemplates": [_claim_template(cluster)],
        },
    }
