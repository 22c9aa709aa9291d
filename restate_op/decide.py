"""From a plan to a verdict: the phase the cluster is in and the sentence that says why.

Pure, and the only place phases are chosen. The order of the checks is the priority of the
messages: a spec the operator cannot build wins over everything, a healthy cluster is Ready
only when nothing else applies.
"""

from __future__ import annotations

from restate_op.machine import Phase
from restate_op.observe import Observation
from restate_op.plan import Plan
from restate_op.status import Verdict


def decide(obs: Observation, plan: Plan) -> Verdict:
    cluster = obs.cluster
    if plan.problems and all(p.reason == "MissingCRD" for p in plan.problems):
        # A prerequisite the cluster lacks, not a mistake in the spec: wait for it.
        return Verdict("Pending", "WaitingForCRD", plan.problems[0].message)
    if plan.problems:
        first = next(p for p in plan.problems if p.reason != "MissingCRD")
        more = f" (and {len(plan.problems) - 1} more problem(s))" if len(plan.problems) > 1 else ""
        return Verdict("Degraded", first.reason, first.message + more)
    if plan.namespace == "conflict":
        return Verdict(
            "Degraded",
            "NameConflict",
            f"Namespace {cluster.name} already exists and is not managed by this "
            f"RestateCluster; choose another metadata.name, or annotate the Namespace with "
            f"restate.dev/adopt=true to let this cluster use it",
        )

    volumes = plan.volumes
    if volumes is not None and volumes.expansion_needed:
        if volumes.expandable is False:
            return Verdict(
                "Degraded",
                "VolumeExpansionNotSupported",
                f"spec.storage.storageRequestBytes asks for {volumes.requested_bytes} bytes but "
                f"StorageClass {volumes.storage_class} does not allow volume expansion; set "
                f"allowVolumeExpansion: true on it (volumes are left as they are)",
            )
        if volumes.to_patch or volumes.template_outdated:
            return Verdict(
                "Expanding",
                "VolumeExpansion",
                f"Growing {len(volumes.to_patch) or 'the'} volume(s) to "
                f"{volumes.requested_bytes} bytes",
            )
        waiting = ", ".join(
            f"{name} ({'/'.join(kinds) or 'waiting for the resizer'})"
            for name, kinds in volumes.resizing
        )
        return Verdict(
            "Expanding",
            "VolumeExpansion",
            f"Waiting for volumes to reach {volumes.requested_bytes} bytes: {waiting}",
        )

    if plan.apply or plan.delete:
        kinds = sorted({m["kind"] for m in plan.apply} | {d.kind for d in plan.delete})
        return Verdict("Provisioning", "ApplyingChildren", f"Applying {', '.join(kinds)}")
    if plan.identity_synced is False:
        return Verdict(
            "Provisioning",
            "PodIdentityAssociationNotSynced",
            "Waiting for the AWS ACK controller to sync the PodIdentityAssociation",
        )
    if plan.canary == "failed":
        return Verdict(
            "Provisioning",
            "PodIdentityAssociationCanaryFailed",
            "The canary Job did not receive Pod Identity credentials; retrying "
            "(the Pod Identity webhook may need to catch up)",
        )
    if plan.canary == "pending":
        return Verdict(
            "Provisioning",
            "PodIdentityAssociationCanaryPending",
            "Waiting for the canary Job to prove Pod Identity credentials",
        )

    rollout = plan.rollout
    if rollout is not None and not rollout.complete:
        # Ready counts only: a message that changed with every updated pod would cost a
        # status write each time and tell a human nothing kubectl get pods does not.
        progress = f"{rollout.ready}/{rollout.desired} pods ready"
        was_serving = obs.phase in ("Ready", "Degraded")
        unchanged = (
            cluster.status is not None
            and cluster.status.observed_generation == cluster.metadata.generation
        )
        if was_serving and unchanged and rollout.settled:
            return Verdict(
                "Degraded",
                "PodsNotReady",
                f"Pods stopped being ready: {progress}; check the pods of namespace {cluster.name}",
            )
        return Verdict("Provisioning", "RollingOut", f"Waiting for pods: {progress}")

    if plan.provisioning_due:
        return Verdict("Provisioning", "ProvisioningCluster", "Provisioning the Restate cluster")
    replicas = rollout.desired if rollout else cluster.spec.compute.desired_replicas
    if replicas == 0:
        return Verdict("Ready", "Hibernated", "Hibernated: spec.compute.replicas is 0")
    return Verdict("Ready", "Ready", f"Restate cluster ready: {replicas}/{replicas} pods")


def reachable(current: Phase, target: Phase) -> Phase:
    """The phase to move to now: Pending never jumps straight to Ready or Expanding."""
    if current == "Pending" and target in ("Ready", "Expanding"):
        return "Provisioning"
    return target
