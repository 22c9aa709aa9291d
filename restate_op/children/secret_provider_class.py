"""The SecretProviderClass that mounts the request-signing key from an external secret store."""

from __future__ import annotations

from typing import Any

from restate_op.api.models import RestateCluster
from restate_op.children.constants import SECRET_PROVIDER_CLASS_NAME
from restate_op.children.metadata import child_metadata, namespace_name


def desired_secret_provider_class(cluster: RestateCluster) -> dict[str, Any] | None:
    """``request-signing-key-v1`` (Secrets Store CSI driver), or None without a provider source.

    The StatefulSet's CSI volume names this class; the provider (AWS Secrets Manager, Vault,
    ...) and its parameters come from ``requestSigningPrivateKey.secretProvider``.
    """
    key = cluster.spec.security_or_default.request_signing_private_key
    if key is None or key.secret_provider is None:
        return None
    spec: dict[str, Any] = {"provider": key.secret_provider.provider}
    if key.secret_provider.parameters:
        spec["parameters"] = dict(sorted(key.secret_provider.parameters.items()))
    return {
        "apiVersion": "secrets-store.csi.x-k8s.io/v1",
        "kind": "SecretProviderClass",
        "metadata": child_metadata(cluster, SECRET_PROVIDER_CLASS_NAME, namespace_name(cluster)),
        "spec": spec,
    }
