"""Pods that cannot run become Degraded reasons naming the pod, the kubelet's reason, the field."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from restate_op.plan import make_plan
from restate_op.pod_health import pod_problems, pod_running, recheck_after
from restate_op.verdicts import judge
from tests.test_verdicts import cluster, converged

NOW = 1_800_000_000.0
LONG_AGO = "2027-01-15T07:59:00Z"  # 60 s before NOW
JUST_NOW = "2027-01-15T07:59:55Z"  # 5 s before NOW


def pod(name: str = "restate-0", **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "rc"}, "status": status}


def container(name: str = "restate", **fields: Any) -> dict[str, Any]:
    return {"name": name, "ready": False, "restartCount": 3, **fields}


IMAGE = pod(
    phase="Pending",
    containerStatuses=[
        container(
            state={
                "waiting": {
                    "reason": "ErrImageNeverPull",
                    "message": 'Container image "localhost/nope:0" is not present with pull '
                    "policy of Never",
                }
            }
        )
    ],
)
CRASH = pod(
    phase="Running",
    containerStatuses=[
        container(
            state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
            lastState={"terminated": {"reason": "Error", "exitCode": 1}},
        )
    ],
)
OOM = pod(
    phase="Running",
    containerStatuses=[
        container(
            state={"waiting": {"reason": "CrashLoopBackOff"}},
            lastState={"terminated": {"reason": "OOMKilled", "exitCode": 137}},
        )
    ],
)
UNSCHEDULABLE = pod(
    phase="Pending",
    conditions=[
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "lastTransitionTime": LONG_AGO,
            "message": "0/4 nodes are available: 4 node(s) didn't match Pod's node "
            "affinity/selector.",
        }
    ],
)


@pytest.mark.parametrize(
    ("the_pod", "reason", "needles"),
    [
        (IMAGE, "PodImageUnavailable", ("restate-0", "ErrImageNeverPull", "spec.compute.image")),
        (CRASH, "PodCrashLooping", ("restate-0", "CrashLoopBackOff", "spec.config", "exit code 1")),
        (OOM, "PodOOMKilled", ("restate-0", "OOMKilled", "spec.compute.resources")),
        (
            UNSCHEDULABLE,
            "PodUnschedulable",
            ("restate-0", "Unschedulable", "spec.compute.nodeSelector", "node affinity/selector"),
        ),
    ],
)
def test_each_failure_names_the_pod_the_reason_and_the_field(
    the_pod: dict[str, Any], reason: str, needles: tuple[str, ...]
) -> None:
    [problem] = pod_problems([the_pod], NOW)
    assert problem.reason == reason
    assert all(n in problem.message for n in needles), problem.message


def test_a_sidecar_image_names_the_sidecar_field() -> None:
    sidecar = pod(
        containerStatuses=[
            container("log-shipper", state={"waiting": {"reason": "ImagePullBackOff"}})
        ]
    )
    [problem] = pod_problems([sidecar], NOW)
    assert "spec.compute.sidecars[log-shipper].image" in problem.message


def test_healthy_starting_and_terminating_pods_are_no_problem() -> None:
    healthy = pod(phase="Running", containerStatuses=[container(state={"running": {}})])
    starting = pod(
        "restate-1",
        phase="Pending",
        containerStatuses=[container(state={"waiting": {"reason": "ContainerCreating"}})],
    )
    terminating = {**IMAGE, "metadata": {**IMAGE["metadata"], "deletionTimestamp": "x"}}
    assert pod_problems([healthy, starting, terminating], NOW) == []


def test_the_cluster_is_degraded_with_the_first_pod_and_a_count() -> None:
    obs = converged(cluster("Provisioning", replicas=3, auto_provision=False), ready=1)
    broken = (pod("restate-2", **IMAGE["status"]), pod("restate-1", **CRASH["status"]))
    verdict = judge(replace(obs, pods=broken), make_plan(obs), NOW)
    assert verdict.phase == "Degraded" and verdict.reason == "PodCrashLooping"
    assert verdict.message.startswith("Pod restate-1") and "(and 1 more pod(s))" in verdict.message


def test_without_pod_problems_a_slow_rollout_is_still_provisioning() -> None:
    obs = converged(cluster("Provisioning", replicas=3), ready=1)
    assert judge(obs, make_plan(obs), NOW).reason == "RollingOut"


def test_pod_running() -> None:
    assert pod_running([pod(phase="Running")], "restate-0")
    assert not pod_running([pod(phase="Pending")], "restate-0")
    assert not pod_running([pod("restate-1", phase="Running")], "restate-0")


def _unschedulable(since: str, message: str = "0/4 nodes are available") -> dict[str, Any]:
    condition = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "lastTransitionTime": since,
        "message": message,
    }
    return pod(phase="Pending", conditions=[condition])


def test_an_unplaced_pod_is_reported_only_after_its_grace() -> None:
    recent = _unschedulable(JUST_NOW)
    assert pod_problems([recent], NOW) == []
    assert recheck_after([recent], NOW) == 15.0, "looked at again when the grace ends"
    assert [p.reason for p in pod_problems([recent], NOW + 15.0)] == ["PodUnschedulable"]
    assert recheck_after([recent], NOW + 15.0) is None


def test_a_claim_still_binding_is_not_a_scheduling_problem() -> None:
    binding = _unschedulable(
        LONG_AGO,
        "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. not found",
    )
    assert pod_problems([binding], NOW) == []
    assert recheck_after([binding], NOW) is None


def test_an_oom_kill_the_container_recovered_from_is_not_reported() -> None:
    recovered = pod(
        phase="Running",
        containerStatuses=[
            container(
                ready=True,
                state={"running": {}},
                lastState={"terminated": {"reason": "OOMKilled", "exitCode": 137}},
            )
        ],
    )
    assert pod_problems([recovered], NOW) == []
