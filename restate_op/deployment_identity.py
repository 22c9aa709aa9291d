"""A RestateDeployment version's identity, names and URLs: pure functions of the spec.

**What makes a version.** A version is named ``<rsd>-<hash>``; its ReplicaSet, Service and
(later) HPA share the name, and the endpoint registered with Restate is that Service's URL.
The hash covers exactly what changes the pods or the registered endpoint:

1. the pod template (as compact JSON with sorted keys);
2. ``restate.register.cluster`` -- the pods carry the label ``allow.restate.dev/<cluster>``;
3. ``restate.servicePath`` -- the path of the registered URI;
4. ``restate.useHttp11`` when true -- the protocol Restate speaks to the endpoint;
5. ``status.collisionCount`` when set -- bumped when a name is taken by another template.

Not hashed, so changing them re-points without a new version: ``replicas``,
``minReadySeconds``, ``selector``, ``drainDelaySeconds``, ``revisionHistoryLimit``, and the
admin-API targets ``register.service`` / ``register.url`` (where to register, not what).

The algorithm is upstream's (FNV-1a 64 over those bytes in that order, the top 32 bits in
decimal with each digit mapped through ``456789bcdf``), so that a ReplicaSet the upstream
operator created is recognised as the same version by name. Note: the digits are written
most significant first (the Rust loop fills its buffer from the end); upstream-2026 §1.4
says "least-significant first", which is a misreading.

**URLs.** ``register.service.path`` and a path in ``register.url`` are kept: admin
requests append to the base URL, they never replace its path (upstream's ``Url::join`` with a
leading ``/`` drops it, §1.6).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from restate_op.api.deployment import (
    DEFAULT_ADMIN_PORT,
    PodTemplate,
    RegisterTarget,
    RestateDeploymentSpec,
)
from restate_op.children.constants import ADMIN_PORT, SERVICE_NAME

#: The port every version's Service listens on (upstream's).
ENDPOINT_PORT = 9080
PORT_NAME = "restate"

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = (1 << 64) - 1
_DIGITS = "456789bcdf"


def fnv1a64(data: bytes, state: int = _FNV_OFFSET) -> int:
    """FNV-1a, 64 bit; ``state`` continues an earlier hash (a Rust ``Hasher::write``)."""
    for byte in data:
        state = ((state ^ byte) * _FNV_PRIME) & _MASK
    return state


def safe_encode(value: int) -> str:
    """Upstream's (and Kubernetes') digit encoding: no vowels, so no words in names."""
    return "".join(_DIGITS[int(d)] for d in str(value))


def template_json(template: PodTemplate) -> str:
    """The template as upstream serialises it (serde_json: compact, sorted, ``null`` meta).

    Also stored on each ReplicaSet (``restate.dev/pod-template``), where it tells a hash
    collision (same name, another template) from the same version.
    """
    metadata = template.metadata.to_kube() if template.metadata is not None else None
    return json.dumps(
        {"metadata": metadata, "spec": template.spec},
        separators=(",", ":"),
        sort_keys=True,
        ensure_ascii=False,
    )


def version_hash(spec: RestateDeploymentSpec, collision_count: int | None = None) -> str:
    state = fnv1a64(template_json(spec.template).encode())
    restate = spec.restate
    if restate.register.cluster is not None:
        state = fnv1a64(restate.register.cluster.encode(), state)
    if restate.service_path is not None:
        state = fnv1a64(restate.service_path.encode(), state)
    if restate.use_http11 is True:
        state = fnv1a64(b"use_http11", state)
    if collision_count is not None:
        state = fnv1a64(collision_count.to_bytes(4, "big", signed=True), state)
    return safe_encode(state >> 32)


def versioned_name(rsd_name: str, hash_: str) -> str:
    return f"{rsd_name}-{hash_}"


def endpoint_uri(version: str, namespace: str, cluster_dns: str, service_path: str | None) -> str:
    """The URI registered for a version: its Service, with ``servicePath`` as the path."""
    path = "/" + (service_path or "").lstrip("/")
    return f"http://{version}.{namespace}.svc.{cluster_dns}:{ENDPOINT_PORT}{path}"


def same_uri(a: str, b: str) -> bool:
    """Whether two endpoint URIs are the same (Restate may store ``/`` or not at the end)."""
    return a.rstrip("/") == b.rstrip("/")


def admin_url(register: RegisterTarget, cluster_dns: str) -> str | None:
    """The base URL of the admin API the versions register with; None for ``cloud``."""
    if register.cluster is not None:
        # A restate-op RestateCluster lives in the Namespace of its name, Service "restate".
        return f"http://{SERVICE_NAME}.{register.cluster}.svc.{cluster_dns}:{ADMIN_PORT}"
    if register.service is not None:
        svc = register.service
        port = svc.port or DEFAULT_ADMIN_PORT
        path = "/" + svc.path.strip("/") if svc.path and svc.path.strip("/") else ""
        return f"http://{svc.name}.{svc.namespace}.svc.{cluster_dns}:{port}{path}"
    if register.url is not None:
        return register.url.rstrip("/")
    return None


def admin_request_url(base: str, *segments: str) -> str:
    """``base`` + ``/segment/...``: the base URL's own path is kept (upstream drops it)."""
    return "/".join([base.rstrip("/"), *(s.strip("/") for s in segments)])


def target_port(pod_spec: Mapping[str, Any]) -> int:
    """The container port named ``restate``, else the first container port, else 9080."""
    first: int | None = None
    for container in pod_spec.get("containers") or []:
        for port in container.get("ports") or []:
            number = port.get("containerPort")
            if port.get("name") == PORT_NAME and number is not None:
                return int(number)
            if first is None and number is not None:
                first = int(number)
    return first if first is not None else ENDPOINT_PORT
