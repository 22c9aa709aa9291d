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
import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.operator_process import wait_for
from e2e.real.support import RealEnv
from e2e.realnode import REAL_NODE_TOLERATION

# An address that is not on the pod (TEST-NET-1): binding it fails (EADDRNOTAVAIL) without any
# packet being sent. It is a valid socket address, so the operator's validation passes it.
CRASHING_CONFIG = '[admin]\nbind-address = "192.0.2.1:9070"\n'


CASES: dict[str, dict[str, Any]] = {
    "image": {"compute": {"image": "localhost/restate-op/no-such-image:0"}},
    "crash": {"config": CRASHING_CONFIG},
    "oom": {
        "compute": {
            "resources": {
                "requests": {"cpu": "20m", "memory": "24Mi"},
                "limits": {"memory": "24Mi"},
            }
        }
    },
    "unschedulable": {
        "compute": {
            "nodeSelector": {"restate.dev/no-such-node": "true"},
            "tolerations": [REAL_NODE_TOLERATION],
        }
    },
}


@pytest.fixture(scope="module")
def failing(real_env: RealEnv) -> Iterator[dict[str, tuple[str, float]]]:
    """All four broken clusters, created at once so their waits overlap: case -> (name, t0)."""
    made: dict[str, tuple[str, float]] = {}
    try:
        for case, spec in CASES.items():
            name = f"real-fail-{case[:5]}-{secrets.token_hex(2)}"
            manifest = real_env.restate_cluster(name, **spec)
            real_env.kubectl.apply(manifest)
            made[case] = (name, time.monotonic())
        yield made
    finally:
        for name, _ in made.values():
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


def _wait(real_env: RealEnv, case: tuple[str, float], reason: str, within: float) -> Any:
    name, created = case
    remaining = max(5.0, within - (time.monotonic() - created))
    return wait_degraded(real_env, name, reason, timeout=remaining)


def test_missing_image_is_reported(real_env: RealEnv, failing: dict[str, Any]) -> None:
    """An image that is not on the node (pull policy Never): ErrImageNeverPull."""
    cond = _wait(real_env, failing["image"], "PodImageUnavailable", 60)
    assert_message(cond, "restate-0", "ErrImageNeverPull", "spec.compute.image")


def test_crash_looping_restate_is_reported(real_env: RealEnv, failing: dict[str, Any]) -> None:
    """A config that passes validation but makes Restate exit: CrashLoopBackOff."""
    cond = _wait(real_env, failing["crash"], "PodCrashLooping", 90)
    assert_message(cond, "restate-0", "CrashLoopBackOff", "spec.config")


def test_oom_killed_container_is_reported(real_env: RealEnv, failing: dict[str, Any]) -> None:
    """A memory limit far below what Restate needs: the kernel OOM-kills it.

    The pod's phase reads CrashLoopBackOff too; the OOM is in lastState.terminated.reason.
    """
    cond = _wait(real_env, failing["oom"], "PodOOMKilled", 90)
    assert_message(cond, "restate-0", "OOMKilled", "spec.compute.resources")


def test_unschedulable_pod_is_reported(real_env: RealEnv, failing: dict[str, Any]) -> None:
    """A nodeSelector no node matches: the scheduler reports Unschedulable."""
    cond = _wait(real_env, failing["unschedulable"], "PodUnschedulable", 60)
    assert_message(cond, "restate-0", "Unschedulable", "spec.compute.nodeSelector")
