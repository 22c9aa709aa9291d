"""The restate container's environment, and the node addresses it advertises."""

from __future__ import annotations

import json
import posixpath
from typing import Any

from restate_op.api.models import RestateCluster
from restate_op.children.constants import (
    CLUSTER_SERVICE_NAME,
    COMBINED_CA_BUNDLE,
    CONFIG_DIR,
    CONFIG_FILE_KEY,
    DATA_DIR,
    NODE_PORT,
    SIGNING_KEY_DIR,
)
from restate_op.children.metadata import namespace_name
from restate_op.children.restate_config import (
    AUTO_PROVISION_ENV,
    METADATA_CLIENT_ENV_PREFIX,
    effective_auto_provision,
    user_sets_metadata_client,
)
from restate_op.settings import OperatorSettings
from restate_op.snapshots import snapshot_env

SIGNING_KEY_ENV = "RESTATE_REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE"
SIGNING_KEY_FILE = "private.pem"
SSL_CERT_FILE_ENV = "SSL_CERT_FILE"


def advertised_address(cluster: RestateCluster, settings: OperatorSettings) -> str:
    """The node address each pod advertises (``$(POD_NAME)`` expanded by the kubelet).

    Fully qualified, so peers and the operator in other namespaces resolve it the same way.
    """
    return _advertised_address(cluster, settings.cluster_dns)


def metadata_client_address(cluster: RestateCluster, settings: OperatorSettings) -> str:
    """The address nodes use to reach the metadata store: every node, via the headless Service."""
    return _metadata_client_address(cluster, settings.cluster_dns)


def _advertised_address(cluster: RestateCluster, cluster_dns: str) -> str:
    domain = f"{CLUSTER_SERVICE_NAME}.{namespace_name(cluster)}.svc.{cluster_dns}"
    return f"http://$(POD_NAME).{domain}:{NODE_PORT}"


def _metadata_client_address(cluster: RestateCluster, cluster_dns: str) -> str:
    host = f"{CLUSTER_SERVICE_NAME}.{namespace_name(cluster)}.svc.{cluster_dns}"
    return f"http://{host}:{NODE_PORT}"


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}


def _value_env(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def restate_env(cluster: RestateCluster, settings: OperatorSettings) -> list[dict[str, Any]]:
    """The restate container's environment, in upstream's order (B3.2).

    Downward-API variables, then the operator's defaults, then the user's ``env`` verbatim,
    then the signing-key and CA-bundle paths. Any operator variable is dropped when the user
    supplies one of the same name: the user overrides by name, and Kubernetes server-side
    apply rejects a list with two entries of one name.
    """
    return _restate_env(cluster, settings.cluster_dns)


def restate_env_names(cluster: RestateCluster) -> list[str]:
    """The names of :func:`restate_env`'s variables, which no operator setting changes."""
    return [e["name"] for e in _restate_env(cluster, _ANY_CLUSTER_DNS)]


#: Only the values of the address variables depend on the cluster's DNS domain.
_ANY_CLUSTER_DNS = "cluster.local"


def _restate_env(cluster: RestateCluster, cluster_dns: str) -> list[dict[str, Any]]:
    user_env = [e.to_kube() for e in cluster.spec.compute.env or []]
    user_names = {e["name"] for e in user_env}

    head = [
        _field_env("POD_NAME", "metadata.name"),
        _field_env("POD_ZONE", "metadata.labels['topology.kubernetes.io/zone']"),
        _field_env("POD_REGION", "metadata.labels['topology.kubernetes.io/region']"),
        _value_env("RESTATE_LOG_FORMAT", "json"),
        _value_env("RESTATE_CLUSTER_NAME", cluster.restate_cluster_name),
        _value_env("RESTATE_BASE_DIR", DATA_DIR),
        _value_env("RUST_BACKTRACE", "1"),
        _value_env("RUST_LIB_BACKTRACE", "0"),
        _value_env("RESTATE_CONFIG", f"{CONFIG_DIR}/{CONFIG_FILE_KEY}"),
        _value_env("RESTATE_ADVERTISED_ADDRESS", _advertised_address(cluster, cluster_dns)),
        _value_env("RESTATE_NODE_NAME", "$(POD_NAME)"),
    ]
    auto_provision = effective_auto_provision(cluster)
    if auto_provision:
        # The operator provisions once; nodes provisioning themselves could split the cluster.
        head.append(_value_env(AUTO_PROVISION_ENV, "false"))
    if (cluster.spec.compute.desired_replicas > 1 or auto_provision) and not (
        user_sets_metadata_client(cluster)
    ):
        addresses = json.dumps([_metadata_client_address(cluster, cluster_dns)])
        head.append(_value_env(f"{METADATA_CLIENT_ENV_PREFIX}ADDRESSES", addresses))
    # spec.snapshots: the repository every node writes partition snapshots to.
    head.extend(_value_env(name, value) for name, value in snapshot_env(cluster))

    tail = []
    signing_key_path = _signing_key_path(cluster)
    if signing_key_path is not None:
        tail.append(_value_env(SIGNING_KEY_ENV, signing_key_path))
    if cluster.spec.security_or_default.trusted_ca_certs:
        tail.append(_value_env(SSL_CERT_FILE_ENV, COMBINED_CA_BUNDLE))

    return [
        *(e for e in head if e["name"] not in user_names),
        *user_env,
        *(e for e in tail if e["name"] not in user_names),
    ]


def _signing_key_path(cluster: RestateCluster) -> str | None:
    key = cluster.spec.security_or_default.request_signing_private_key
    if key is None:
        return None
    if key.secret is not None:
        return f"{SIGNING_KEY_DIR}/{SIGNING_KEY_FILE}"
    if key.secret_provider is not None:
        return posixpath.join(SIGNING_KEY_DIR, key.secret_provider.path)
    return None
