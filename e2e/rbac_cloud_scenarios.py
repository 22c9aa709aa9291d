"""What makes the RestateCloudEnvironment controller use each write verb it is granted, and
what a user sees when the verb is refused: the steps of ``e2e/test_helm.py``'s RBAC ablation
for RestateCloudEnvironments (the RCE rules of ``rbac.DEPLOYMENT_PERMISSIONS`` and the tunnel
``Role`` of ``rbac.CLOUD_TUNNEL_PERMISSIONS``).

An RCE is cluster-scoped and its tunnel runs in the operator's namespace, so each case gets
one RCE named after the case (cut to the CRD's 56 characters) and its token Secret in that
namespace, made with every right by the test. The controller never calls Restate Cloud (only
RestateDeployments registering with an environment do), so no stand-in is needed, and kwok
"runs" the tunnel image it only references.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

from e2e.operator_process import Kubectl, wait_for
from restate_op.api.cloud_crd import FINALIZER

#: The CRD refuses longer names (tunnel-<name> must fit in 63).
MAX_NAME = 56
WAIT = 60.0

Step = Callable[[Kubectl, str], None]


def rce_name(name: str) -> str:
    """The case's name as an RCE may carry it (the random part comes first, so it is kept)."""
    return name[:MAX_NAME].rstrip("-")


def _secret_name(name: str) -> str:
    return f"{rce_name(name)}-token"


def manifest(name: str, *, finalized: bool = False) -> dict[str, Any]:
    """A valid RCE; ``finalized``: carrying upstream's finalizer, which the operator releases
    on deletion (restate-op adds none)."""
    metadata: dict[str, Any] = {"name": rce_name(name)}
    if finalized:
        metadata["finalizers"] = [FINALIZER]
    return {
        "apiVersion": "restate.dev/v1beta1",
        "kind": "RestateCloudEnvironment",
        "metadata": metadata,
        "spec": {
            "environmentId": "env_201e2e",
            "region": "eu",
            "signingPublicKey": "publickeyv1_e2e",
            "authentication": {"secret": {"name": _secret_name(name), "key": "token"}},
            "tunnel": {"image": "e2e.invalid/tunnel-client:0"},
        },
    }


def secret_in(namespace: str) -> Step:
    """The RCE's token Secret in the operator's namespace (so it is not merely Degraded for
    want of it)."""

    def step(kubectl: Kubectl, name: str) -> None:
        kubectl.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": _secret_name(name), "namespace": namespace},
                "data": {"token": base64.b64encode(b"e2e-token\n").decode()},
            }
        )

    return step


def create(kubectl: Kubectl, name: str) -> None:
    """A new RCE: the operator applies its tunnel Deployment and Service, writes its status."""
    kubectl.apply(manifest(name))


def _condition(kubectl: Kubectl, name: str, ctype: str) -> dict[str, Any]:
    status = (kubectl.get("rce", rce_name(name)) or {}).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c["type"] == ctype), {})


def finalized_and_ready(namespace: str) -> Step:
    """An RCE carrying upstream's finalizer, Ready (set up with every right)."""
    make_secret = secret_in(namespace)

    def step(kubectl: Kubectl, name: str) -> None:
        make_secret(kubectl, name)
        kubectl.apply(manifest(name, finalized=True))
        wait_for(
            lambda: _condition(kubectl, name, "Ready").get("status") == "True",
            WAIT,
            what=f"RCE {rce_name(name)} Ready",
        )

    return step


def delete(kubectl: Kubectl, name: str) -> None:
    kubectl.run("delete", "rce", rce_name(name), "--wait=false")


def cleanup_in(namespace: str) -> Step:
    """The RCE goes (its tunnel with it, by the garbage collector) and its Secret. A finalizer
    the refused operator could not release is dropped by the test: the operator, every right
    back, may be in backoff, and the next case must not wait for it."""

    def step(kubectl: Kubectl, name: str) -> None:
        rce = rce_name(name)
        kubectl.run("delete", "rce", rce, "--wait=false", "--ignore-not-found", check=False)
        if kubectl.get("rce", rce) is not None:
            kubectl.merge_patch("rce", rce, {"metadata": {"finalizers": None}}, check=False)
        kubectl.run(
            "delete",
            "secret",
            _secret_name(name),
            "-n",
            namespace,
            "--ignore-not-found",
            "--wait=false",
            check=False,
        )

    return step


# -- what the user sees ----------------------------------------------------------------------


def degraded_says_forbidden(kubectl: Kubectl, name: str, _log: str) -> None:
    """The tunnel could not be applied: Degraded, not Ready, and the condition says why."""

    def forbidden() -> dict[str, Any] | None:
        degraded = _condition(kubectl, name, "Degraded")
        found = degraded.get("status") == "True"
        return degraded if found and "forbidden" in degraded.get("message", "").lower() else None

    wait_for(forbidden, 20, what="Degraded saying forbidden")
    assert _condition(kubectl, name, "Ready")["status"] == "False"


def no_status_in(namespace: str) -> Callable[[Kubectl, str, str], None]:
    """Nobody can write the RCE's status: it never gets one, though the reconcile ran (its
    tunnel Deployment, applied before the status, is there)."""

    def effect(kubectl: Kubectl, name: str, _log: str) -> None:
        obj = kubectl.get("rce", rce_name(name))
        assert obj is not None and not obj.get("status"), obj
        assert kubectl.get("deployment", f"tunnel-{rce_name(name)}", namespace) is not None

    return effect


def finalizer_kept(kubectl: Kubectl, name: str, _log: str) -> None:
    """Deleted, but upstream's finalizer is never released: the RCE stays, finalizer and all."""
    time.sleep(2)
    obj = kubectl.get("rce", rce_name(name))
    assert obj is not None and obj["metadata"].get("deletionTimestamp"), obj
    assert FINALIZER in (obj["metadata"].get("finalizers") or []), obj
