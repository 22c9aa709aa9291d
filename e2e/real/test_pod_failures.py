"""What only a real node shows, reported in the RestateCluster's status.

The contract (the operator side lands separately): for each failure below the cluster's
``Degraded`` condition becomes ``True`` with the given reason, and its message names the pod
(``restate-0``), the kubelet's or scheduler's reason and the spec field to fix.

- image not on the node: PodImageUnavailable, ErrImageNeverPull, spec.compute.image;
- Restate exits at start-up: PodCrashLooping, CrashLoopBackOff, spec.config;
- memory limit too low: PodOOMKilled, OOMKilled, spec.compute.resources;
- nodeSelector matches no node: PodUnschedulable, Unschedulable, spec.compute.nodeSelector.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.operator_process import wait_for
from e2e.real.support import RealEnv
from e2e.realnode import REAL_NODE_TOLERATION

# An address that is not on the pod (TEST-NET-1): binding it fails (EADDRNOTAVAIL) without any
# packet being sent. It is a valid socket address, so the operator's validation passes it.
CRASHING_CONFIG = '[admin]\nbind-address = "192.0.2.1:9070"\n'


@pytest.fixture
def cluster_name(real_env: RealEnv) -> Iterator[str]:
    """A fresh cluster name; the cluster (and its namespace) is deleted afterwards."""
    name = f"real-fail-{secrets.token_hex(3)}"
    try:
        yield name
    finally:
        real_env.delete_cluster(name)


def _pod_state(real_env: RealEnv, ns: str) -> str:
    pods = real_env.kubectl.run("get", "pods", "-n", ns, "-o", "wide", check=False)
    return pods.stdout + pods.stderr


def wait_degraded(real_env: RealEnv, name: str, reason: str, timeout: float = 60) -> dict[str, Any]:
    """Wait for Degraded=True with `reason`; the condition."""

    def degraded() -> dict[str, Any] | None:
        obj = real_env.kubectl.get("restatecluster", name)
        for c in (obj or {}).get("status", {}).get("conditions", []):
            if c["type"] == "Degraded" and c["status"] == "True" and c.get("reason") == reason:
                return dict(c)
        return None

    try:
        result: dict[str, Any] = wait_for(degraded, timeout, 1.0, f"{name} Degraded/{reason}")
    except AssertionError as err:
        obj = real_env.kubectl.get("restatecluster", name)
        raise AssertionError(
            f"{err}\nstatus: {(obj or {}).get('status')}\npods:\n{_pod_state(real_env, name)}"
        ) from None
    return result


def assert_message(condition: dict[str, Any], *needles: str) -> None:
    """The condition's message names every one of `needles`."""
    message = condition.get("message", "")
    missing = [n for n in needles if n not in message]
    assert not missing, f"message lacks {missing}: {message!r}"


def test_missing_image_is_reported(real_env: RealEnv, cluster_name: str) -> None:
    """An image that is not on the node (pull policy Never): ErrImageNeverPull."""
    manifest = real_env.restate_cluster(
        cluster_name, compute={"image": "localhost/restate-op/no-such-image:0"}
    )
    real_env.kubectl.apply(manifest)
    cond = wait_degraded(real_env, cluster_name, "PodImageUnavailable")
    assert_message(cond, "restate-0", "ErrImageNeverPull", "spec.compute.image")


def test_crash_looping_restate_is_reported(real_env: RealEnv, cluster_name: str) -> None:
    """A config that passes validation but makes Restate exit: CrashLoopBackOff."""
    manifest = real_env.restate_cluster(cluster_name, config=CRASHING_CONFIG)
    real_env.kubectl.apply(manifest)
    cond = wait_degraded(real_env, cluster_name, "PodCrashLooping", timeout=90)
    assert_message(cond, "restate-0", "CrashLoopBackOff", "spec.config")


def test_oom_killed_container_is_reported(real_env: RealEnv, cluster_name: str) -> None:
    """A memory limit far below what Restate needs: the kernel OOM-kills it."""
    manifest = real_env.restate_cluster(
        cluster_name,
        compute={
            "resources": {
                "requests": {"cpu": "20m", "memory": "24Mi"},
                "limits": {"memory": "24Mi"},
            }
        },
    )
    real_env.kubectl.apply(manifest)
    cond = wait_degraded(real_env, cluster_name, "PodOOMKilled", timeout=90)
    assert_message(cond, "restate-0", "OOMKilled", "spec.compute.resources")


def test_unschedulable_pod_is_reported(real_env: RealEnv, cluster_name: str) -> None:
    """A nodeSelector no node matches: the scheduler reports Unschedulable."""
    manifest = real_env.restate_cluster(
        cluster_name,
        compute={
            "nodeSelector": {"restate.dev/no-such-node": "true"},
            "tolerations": [REAL_NODE_TOLERATION],
        },
    )
    real_env.kubectl.apply(manifest)
    cond = wait_degraded(real_env, cluster_name, "PodUnschedulable")
    assert_message(cond, "restate-0", "Unschedulable", "spec.compute.nodeSelector")
