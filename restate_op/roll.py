"""Ordered rolling updates: which pod restarts next, and whether Restate lets it go now.

The StatefulSet rolls ``OnDelete``: its controller never restarts a pod by itself, the
operator deletes one outdated pod at a time and the controller re-creates it from the new
template. That lets the order follow Restate rather than ordinals -- nodes that are not
metadata-server members first, members after them, the metadata leader last -- and lets each
next pod wait until Restate counts every node back in (every pod a live node, every
partition led, read after the last pod became ready), not just until probes pass.

A pod on the old template that is not ready serves nothing: it is replaced at once (a
StatefulSet's own rolling update waits for it forever, kubernetes#67250). A pod on the new
template that has not come back after ``ROLL_PATIENCE_SECONDS`` halts the roll: the cluster
turns Degraded naming it, and nothing else restarts until it does.

Pure: read from the StatefulSet and pods in the informer cache and the last health read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from restate_op.pod_health import kube_timestamp, pod_names
from restate_op.restate_health import RestateHealth, problems

#: How long a re-created pod may take to be ready and back in Restate before the roll halts.
ROLL_PATIENCE_SECONDS = 300.0
#: The label the StatefulSet controller puts on each pod: the revision it was made from.
REVISION_LABEL = "controller-revision-hash"


@dataclass(frozen=True)
class Roll:
    """Where a rolling update stands: pods still on the old template and what happens next."""

    #: Pods on the old template, in the order they restart.
    outdated: tuple[str, ...]
    #: How many of the StatefulSet's pods run the new template.
    updated: int
    total: int
    #: The pod to restart now and its uid (the delete's precondition); None: wait.
    restart: str | None = None
    restart_uid: str | None = None
    #: Why the next pod waits (None when one restarts now).
    waiting: str | None = None
    #: A re-created pod that did not come back in time: the roll is halted on it.
    halted: str | None = None
    #: Restate could not be asked (no node answered): paced by readiness alone, said so.
    unchecked: str | None = None
    #: The pod restarting now was not ready on the old template (replaced without waiting).
    broken: bool = False


def _ready_since(pod: Mapping[str, Any]) -> float | None:
    """When the pod last became ready; None when it is not ready."""
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            if c.get("status") != "True":
                return None
            return kube_timestamp(c.get("lastTransitionTime")) or 0.0
    return None


def _meta(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = pod.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _revision(pod: Mapping[str, Any]) -> str | None:
    labels = _meta(pod).get("labels") or {}
    value = labels.get(REVISION_LABEL)
    return str(value) if value is not None else None


def on_delete(statefulset: Mapping[str, Any] | None) -> bool:
    """Whether the live StatefulSet leaves restarts to the operator."""
    strategy = ((statefulset or {}).get("spec") or {}).get("updateStrategy") or {}
    return strategy.get("type") == "OnDelete"


def _order(pods: Iterable[str], health: RestateHealth | None) -> tuple[str, ...]:
    """Non-members first, then metadata members, the metadata leader last; each group by
    highest ordinal first (as a StatefulSet would)."""

    def key(pod: str) -> tuple[bool, bool, int]:
        ordinal = -int(pod.rsplit("-", 1)[-1])
        if health is None or not health.ok:
            return (False, False, ordinal)
        node = health.node_of(pod)
        leader = node is not None and node == health.metadata_leader
        member = pod in health.members or (node is not None and node in health.metadata_members)
        return (leader, member, ordinal)

    return tuple(sorted(pods, key=key))


def node_label(health: RestateHealth | None, pod: str) -> str:
    """`` (N3)`` for a pod whose node id Restate told; "" otherwise."""
    node = health.node_of(pod) if health is not None else None
    return f" (N{node})" if node is not None else ""


def plan_roll(
    statefulset: Mapping[str, Any] | None,
    pods: Iterable[Mapping[str, Any]],
    health: RestateHealth | None,
    now: float | None,
) -> Roll | None:
    """The next step of the roll, or None when no pod runs an old template (or the
    StatefulSet's controller has not caught up with its latest template yet)."""
    if statefulset is None or not on_delete(statefulset):
        return None
    status = statefulset.get("status") or {}
    generation = _meta(statefulset).get("generation", 0)
    update_revision = status.get("updateRevision")
    if not update_revision or status.get("observedGeneration", 0) < generation:
        return None
    replicas = int((statefulset.get("spec") or {}).get("replicas", 0) or 0)
    wanted = pod_names(replicas)
    by_name = {str(_meta(p).get("name", "")): p for p in pods}
    present = {name: by_name[name] for name in wanted if name in by_name}
    live = {n: p for n, p in present.items() if not _meta(p).get("deletionTimestamp")}
    # A pod without the controller's revision label is none of its making: never restarted.
    outdated = [n for n, p in live.items() if _revision(p) not in (None, update_revision)]
    if not outdated:
        return None
    order = _order(outdated, health)
    updated = sum(1 for p in live.values() if _revision(p) == update_revision)
    roll = Roll(outdated=order, updated=updated, total=replicas)

    def restart(pod: str) -> Roll:
        uid = _meta(live[pod]).get("uid")
        return replace(roll, restart=pod, restart_uid=str(uid) if uid else None)

    halted = _halted(live, update_revision, health, now) if now is not None else None
    if halted is not None:
        return replace(roll, halted=halted, waiting=f"the roll is halted: {halted}")
    broken = [n for n in order if _ready_since(live[n]) is None]
    if broken:
        # Not ready on the old template: it serves nothing, so replacing it costs nothing.
        return replace(restart(broken[0]), broken=True)
    gone = [n for n in wanted if n not in live]
    if gone:
        return replace(roll, waiting=f"pod {gone[0]} is being replaced")
    unready = [n for n in wanted if _ready_since(live[n]) is None]
    if unready:
        return replace(roll, waiting=f"pod {unready[0]} is not ready")
    if health is None:
        return replace(roll, waiting="Restate's view not read yet")
    if not health.ok:
        return replace(restart(order[0]), unchecked=health.error)
    found = problems(health, wanted)
    if found:
        return replace(roll, waiting=f"Restate reports: {'; '.join(found)}")
    newest = max(wanted, key=lambda n: _ready_since(live[n]) or 0.0)
    # Timestamps have whole seconds: a read in the same second may predate the readiness.
    if health.read_at < (_ready_since(live[newest]) or 0.0) + 1.0:
        return replace(roll, waiting=f"waiting for Restate to count {newest} back in")
    return restart(order[0])


def _halted(
    live: Mapping[str, Mapping[str, Any]],
    update_revision: str,
    health: RestateHealth | None,
    now: float,
) -> str | None:
    """The first re-created pod still not back (ready, and a live node if Restate answers)
    ``ROLL_PATIENCE_SECONDS`` after it was created."""
    for name, pod in sorted(live.items()):
        if _revision(pod) != update_revision:
            continue
        created = kube_timestamp(_meta(pod).get("creationTimestamp"))
        if created is None or now - created < ROLL_PATIENCE_SECONDS:
            continue
        if _ready_since(pod) is None:
            late = int(now - created)
            return f"pod {name}{node_label(health, name)} is not ready {late}s after it restarted"
        if health is not None and health.ok and health.read_at > created + ROLL_PATIENCE_SECONDS:
            found = [p for p in problems(health, (name,)) if name in p]
            if found:
                return f"{found[0]}, {int(now - created)}s after it restarted"
    return None
