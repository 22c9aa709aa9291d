"""Why a Restate pod cannot run, as the kubelet and the scheduler say it, and what to fix.

A StatefulSet only reports how many pods are ready; "0/1 ready" tells a user nothing. The
pods themselves say why: an image the node cannot get, a container that keeps exiting, one
the kernel killed for memory, or no node that fits. Each becomes a Degraded reason whose
message names the pod, the kubelet's or scheduler's own reason and the spec field to change.
Pure: read from the pods in the informer cache.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from restate_op.api.lifecycle import Reason
from restate_op.children.constants import (
    CA_INIT_CONTAINER_NAME,
    CONTAINER_NAME,
    STATEFULSET_NAME,
)

#: Waiting reasons of a container whose image the node does not have and cannot pull.
IMAGE_REASONS = frozenset(
    {"ErrImageNeverPull", "ImagePullBackOff", "ErrImagePull", "InvalidImageName"}
)
#: A pod the scheduler cannot place is reported once it has waited this long: placing pods
#: can take a moment (volumes binding, a node autoscaler adding nodes).
UNSCHEDULABLE_GRACE_SECONDS = 20.0
#: Scheduler messages that only say a moment has not passed yet (a claim still binding).
TRANSIENT_SCHEDULING = ("unbound immediate PersistentVolumeClaims",)


@dataclass(frozen=True)
class PodProblem:
    reason: Reason
    message: str


def _image_field(container: str) -> str:
    """The spec field that sets a container's image."""
    if container in (CONTAINER_NAME, CA_INIT_CONTAINER_NAME):
        return "spec.compute.image"
    return f"spec.compute.sidecars[{container}].image"


def _statuses(status: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    yield from status.get("initContainerStatuses") or ()
    yield from status.get("containerStatuses") or ()


def _detail(message: Any) -> str:
    text = " ".join(str(message or "").split())
    return f" ({text[:300]})" if text else ""


def _container_problem(pod: str, namespace: str, cs: Mapping[str, Any]) -> PodProblem | None:
    name = str(cs.get("name", ""))
    state = cs.get("state") or {}
    waiting = state.get("waiting") or {}
    terminated = state.get("terminated") or {}
    last = (cs.get("lastState") or {}).get("terminated") or {}
    reason = waiting.get("reason")
    if reason in IMAGE_REASONS:
        return PodProblem(
            Reason.POD_IMAGE_UNAVAILABLE,
            f"Pod {pod}: container {name} cannot get its image: {reason}"
            f"{_detail(waiting.get('message'))}; fix {_image_field(name)} (or load the image "
            "onto the nodes / set imagePullSecrets)",
        )
    # A container that was OOM-killed once but runs and is ready again is not failing now.
    if "OOMKilled" in (terminated.get("reason"), last.get("reason")) and not cs.get("ready"):
        return PodProblem(
            Reason.POD_OOM_KILLED,
            f"Pod {pod}: container {name} was OOMKilled (out of memory, restarted "
            f"{cs.get('restartCount', 0)} times); raise the memory limit in "
            "spec.compute.resources",
        )
    if reason == "CrashLoopBackOff":
        exited = last.get("exitCode")
        why = f", last exit code {exited}" if exited is not None else ""
        return PodProblem(
            Reason.POD_CRASH_LOOPING,
            f"Pod {pod}: container {name} keeps exiting: CrashLoopBackOff{why}; see "
            f"kubectl logs -n {namespace} {pod} -c {name} --previous, then fix spec.config "
            "(or spec.compute.env / args)",
        )
    return None


def kube_timestamp(value: Any) -> float | None:
    """A Kubernetes timestamp (``2026-12-02T16:48:34Z``) as seconds; None if it is none."""
    try:
        when = datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None
    return when.replace(tzinfo=UTC).timestamp()


def _unschedulable_since(status: Mapping[str, Any]) -> float | None:
    """When the scheduler started saying it cannot place the pod, unless it is transient."""
    for c in status.get("conditions") or ():
        unscheduled = c.get("type") == "PodScheduled" and c.get("status") == "False"
        if not unscheduled or c.get("reason") != "Unschedulable":
            continue
        if any(t in str(c.get("message", "")) for t in TRANSIENT_SCHEDULING):
            return None
        return kube_timestamp(c.get("lastTransitionTime"))
    return None


def _unschedulable(pod: str, status: Mapping[str, Any], now: float) -> PodProblem | None:
    since = _unschedulable_since(status)
    if since is None or now - since < UNSCHEDULABLE_GRACE_SECONDS:
        return None
    for c in status.get("conditions") or ():
        if c.get("type") == "PodScheduled":
            return PodProblem(
                Reason.POD_UNSCHEDULABLE,
                f"Pod {pod} cannot be scheduled: Unschedulable{_detail(c.get('message'))}; "
                "fix spec.compute.nodeSelector (or tolerations, affinity, resources)",
            )
    return None


def pod_problems(pods: Iterable[Mapping[str, Any]], now: float) -> list[PodProblem]:
    """One problem per pod that cannot run, in pod-name order (each pod's first problem)."""
    found = []
    for pod in sorted(pods, key=lambda p: str(p.get("metadata", {}).get("name", ""))):
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        name, namespace = str(meta.get("name", "")), str(meta.get("namespace", ""))
        status = pod.get("status") or {}
        problem = _unschedulable(name, status, now) or next(
            (p for cs in _statuses(status) if (p := _container_problem(name, namespace, cs))),
            None,
        )
        if problem is not None:
            found.append(problem)
    return found


def recheck_after(pods: Iterable[Mapping[str, Any]], now: float) -> float | None:
    """When an unplaced pod's grace ends (its report is due without any watch event)."""
    due = [
        since + UNSCHEDULABLE_GRACE_SECONDS - now
        for p in pods
        if (since := _unschedulable_since(p.get("status") or {})) is not None
        and since + UNSCHEDULABLE_GRACE_SECONDS > now
    ]
    return max(min(due), 0.0) if due else None


def pod_running(pods: Iterable[Mapping[str, Any]], name: str) -> bool:
    """Whether the pod called ``name`` is in phase Running."""
    return any(
        p.get("metadata", {}).get("name") == name
        and (p.get("status") or {}).get("phase") == "Running"
        for p in pods
    )


def pod_names(replicas: int) -> tuple[str, ...]:
    """The pods a StatefulSet of ``replicas`` runs, by ordinal."""
    return tuple(f"{STATEFULSET_NAME}-{i}" for i in range(replicas))


def running_pods(pods: Iterable[Mapping[str, Any]], replicas: int) -> tuple[str, ...]:
    """The wanted pods (ordinal below ``replicas``) in phase Running, by ordinal."""
    wanted = pod_names(replicas)
    return tuple(name for name in wanted if pod_running(pods, name))
