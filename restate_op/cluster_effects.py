"""What each RestateCluster state does, as effects: the planners ``states/`` names.

Pure. A state's ``effects:`` list in ``states/restatecluster.yaml`` names planners from
``PLANNERS``; a reconcile in that state runs them in order and hands the effects to the
executor. To change what a state does, edit its list there; to add a kind of work, add a
planner here (the machine refuses to load when the two disagree).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from restate_op.children import gcp
from restate_op.children.constants import STATEFULSET_NAME
from restate_op.children.restate_config import snapshot_destination
from restate_op.drift import drift
from restate_op.effects import (
    Apply,
    Delete,
    Effect,
    Emit,
    OrphanDelete,
    PatchClaimSize,
    Provision,
    RemoveMetadataMember,
    RestartPod,
    SwitchToOnDelete,
    TakeSnapshots,
)
from restate_op.observe import Observation
from restate_op.plan import Plan
from restate_op.pod_health import pod_running, running_pods
from restate_op.roll import node_label, on_delete
from restate_op.snapshots import SNAPSHOT_MEMORY, pending_token

FIRST_POD = f"{STATEFULSET_NAME}-0"


@dataclass(frozen=True)
class Planned:
    effects: tuple[Effect, ...] = ()
    #: Look again this soon (the effects start something that finishes on its own).
    requeue_after: float | None = None
    #: What the state is waiting for, appended to the status message.
    notes: tuple[str, ...] = ()


Planner = Callable[[Observation, Plan], Planned]


def apply_children(obs: Observation, plan: Plan) -> Planned:
    """Apply every child that differs; say with an Event which ones someone else changed."""
    uid = obs.cluster.metadata.uid
    effects: list[Effect] = []
    restored: list[str] = []
    for manifest in plan.apply:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        # Only an adopted namespace can hold someone else's object of the same name: a
        # namespace the operator created is checked by nobody, at no request per child.
        foreign_possible = plan.namespace == "adopted" and obs.child(kind, name) is None
        live = obs.child(kind, name)
        if kind == "StatefulSet" and live is not None and not on_delete(live):
            effects.append(SwitchToOnDelete(obs.cluster.name, name))
        effects.append(
            Apply(
                manifest,
                refuse_foreign_of=uid if foreign_possible else None,
                # A Job's pod template is immutable: a changed canary is re-created.
                replace_if_immutable=kind == "Job",
            )
        )
        why = drift(obs, manifest)
        if why is not None:
            restored.append(f"{kind}/{name} ({why})")
    if restored:
        note = "Restored children changed by someone else: " + "; ".join(restored)
        effects.append(Emit(obs.raw, "Normal", "DriftCorrected", "Restore", note))
    effects.extend(_ignored_annotation(obs, plan))
    return Planned(tuple(effects))


def _ignored_annotation(obs: Observation, plan: Plan) -> tuple[Effect, ...]:
    """Warn, when the ServiceAccount is applied, that its GKE annotation is not bound.

    Only then: the warning follows each change of the annotation (and the first apply),
    not every reconcile.
    """
    warning = gcp.ignored_annotation_warning(obs.cluster, obs.settings)
    if warning is None or not any(m["kind"] == "ServiceAccount" for m in plan.apply):
        return ()
    return (Emit(obs.raw, "Warning", "WorkloadIdentityDisabled", "IgnoreAnnotation", warning),)


def delete_stale_children(obs: Observation, plan: Plan) -> Planned:
    return Planned(
        tuple(Delete(ref.api_version, ref.kind, ref.namespace, ref.name) for ref in plan.delete)
    )


def expand_volumes(obs: Observation, plan: Plan) -> Planned:
    """Grow the PVCs, then re-create the StatefulSet around them (pods untouched)."""
    volumes = plan.volumes
    if volumes is None:
        return Planned()
    namespace = obs.cluster.name
    effects: list[Effect] = [
        PatchClaimSize(namespace, pvc, volumes.requested_bytes) for pvc in volumes.to_patch
    ]
    if volumes.to_patch:
        effects.append(
            Emit(
                obs.raw,
                "Normal",
                "VolumesResized",
                "ExpandVolumes",
                f"Requested {volumes.requested_bytes} bytes on {', '.join(volumes.to_patch)}",
            )
        )
    if volumes.template_outdated and volumes.statefulset_uid:
        # The claim template is immutable: delete the StatefulSet but orphan its pods and
        # PVCs, then re-create it with the new template; it re-adopts them by selector. The
        # uid precondition makes sure we never delete a StatefulSet we did not see.
        effects.append(OrphanDelete(namespace, STATEFULSET_NAME, volumes.statefulset_uid))
        effects.append(
            Emit(
                obs.raw,
                "Normal",
                "StatefulSetRecreated",
                "ExpandVolumes",
                f"Deleted StatefulSet {STATEFULSET_NAME} (pods and volumes orphaned, "
                "not restarted) to re-create it with the larger claim template",
            )
        )
        return Planned(tuple(effects), requeue_after=0.5)
    return Planned(tuple(effects), requeue_after=5.0 if volumes.resizing else None)


def provision_restate(obs: Observation, plan: Plan) -> Planned:
    """Provision the Restate cluster once its first pod runs (before it can be ready)."""
    if not plan.provisioning_due:
        return Planned()
    if not pod_running(obs.pods, FIRST_POD):
        # Its pod's events bring the cluster back; the requeue is a safety net.
        note = f"Waiting for pod {FIRST_POD} to run before provisioning"
        return Planned(requeue_after=5.0, notes=(note,))
    namespace = obs.cluster.name
    target = obs.node_address(FIRST_POD)
    return Planned((Provision(namespace, target),))


def scale_down(obs: Observation, plan: Plan) -> Planned:
    """Let Restate release the departing node before its pod goes (the StatefulSet's
    replicas are held by the plan until then), and report the volumes that stay."""
    step = plan.scale_down
    if step is None:
        return Planned()
    if step.removing is not None and step.leader_address is not None:
        return Planned(
            (
                RemoveMetadataMember(step.leader_address, step.removing, health_key(obs)),
                Emit(
                    obs.raw,
                    "Normal",
                    "MetadataMemberRemoved",
                    "ScaleDown",
                    f"Removed node N{step.removing} ({step.departing}) from the Restate "
                    f"metadata cluster before its pod goes ({step.live} -> {step.target})",
                ),
            ),
            requeue_after=0.0,
        )
    # The pod goes with this reconcile's StatefulSet (apply_children); look again soon.
    return Planned(requeue_after=5.0)


def roll_pods(obs: Observation, plan: Plan) -> Planned:
    """Restart the next pod of a rolling update when Restate lets it go (``plan.roll``);
    the StatefulSet re-creates it from the new template. Waiting needs nothing: the pods'
    events and the health reads' clock bring the cluster back."""
    roll = plan.roll
    if roll is None or roll.restart is None:
        return Planned()
    node = node_label(obs.restate_health, roll.restart)
    if roll.broken:
        paced = "it was not ready on the old template"
    elif roll.unchecked:
        paced = "paced by readiness alone: Restate's view unread"
    else:
        paced = "paced by Restate's health"
    return Planned(
        (
            RestartPod(obs.cluster.name, roll.restart, roll.restart_uid, health_key(obs)),
            Emit(
                obs.raw,
                "Normal",
                "PodRestarted",
                "RollingUpdate",
                f"Restarted pod {roll.restart}{node} for the new pod template "
                f"({roll.updated}/{roll.total} updated before it; {paced})",
            ),
        ),
        requeue_after=5.0,
    )


def take_snapshots(obs: Observation, plan: Plan) -> Planned:
    """Snapshot every partition once per new ``restate.dev/snapshot`` value, through a node
    that joined (by the last health read) and whose pod runs.

    Nothing while the spec is refused, without a repository (``conclude`` answers with the
    field to set) or once the answer is in memory (``conclude`` records it).
    """
    token = pending_token(obs.cluster)
    if token is None or plan.problems or snapshot_destination(obs.cluster) is None:
        return Planned()
    run = obs.snapshot_run
    if run is not None and run.token == token:
        return Planned()
    target = _snapshot_node(obs)
    health = obs.restate_health
    config = health.configuration if health is not None and health.ok else None
    if target is None or config is None or not config.partitions:
        # No requeue of its own: the next health read (on its clock, while pods run) or a
        # pod's event brings the cluster back.
        note = f"Snapshot request {token!r} waits for a Restate node that joined the cluster"
        return Planned(notes=(note,))
    return Planned(
        (TakeSnapshots(snapshot_key(obs), token, obs.node_address(target), config.partitions),),
        requeue_after=0.0,
    )


def _snapshot_node(obs: Observation) -> str | None:
    """A running pod whose node joined and is alive, one running the admin role (the
    cluster controller serves ``CreatePartitionSnapshot``) if the roles are known."""
    health = obs.restate_health
    if health is None or not health.ok:
        return None
    running = set(running_pods(obs.pods, obs.cluster.spec.compute.desired_replicas))
    joined = [
        p
        for p in health.pods
        if p.pod in running
        and p.ident is not None
        and p.ident.node_id is not None
        and p.ident.status == "Alive"
    ]
    admins = [p for p in joined if p.ident is not None and "admin" in p.ident.roles]
    chosen = admins or joined
    return chosen[0].pod if chosen else None


def snapshot_key(obs: Observation) -> tuple[str, str]:
    return (SNAPSHOT_MEMORY, obs.cluster.name)


def health_key(obs: Observation) -> tuple[str, str]:
    return (HEALTH_MEMORY, obs.cluster.name)


#: Where the executor keeps the last read of a cluster's Restate health.
HEALTH_MEMORY = "restatecluster-health"
#: Where the executor keeps a Ready cluster's standing health poll.
HEALTH_POLL_MEMORY = "restatecluster-health-poll"


#: Every planner a state may name in ``states/restatecluster.yaml``.
PLANNERS: Mapping[str, Planner] = {
    "apply_children": apply_children,
    "delete_stale_children": delete_stale_children,
    "expand_volumes": expand_volumes,
    "provision_restate": provision_restate,
    "roll_pods": roll_pods,
    "scale_down": scale_down,
    "take_snapshots": take_snapshots,
}
