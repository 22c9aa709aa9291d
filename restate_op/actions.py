"""The effects of each state: the only code that changes the cluster.

Actions never decide. The plan says what differs, the verdict which state the cluster is in;
``STATE_ACTIONS`` lists what entering (or staying in) each state does. Every write is a
server-side apply with the single field manager ``restate-operator``, retried on transient
API errors; a permanent error propagates to the reconciler, which reports it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from restate_op import FIELD_MANAGER
from restate_op.drift import drift
from restate_op.faults import fault_point
from restate_op.kube import resources
from restate_op.kube.client import KubeClient
from restate_op.kube.errors import KubeError, with_retries
from restate_op.kube.events import EventRecorder
from restate_op.machine import Phase
from restate_op.observe import Observation
from restate_op.plan import Plan
from restate_op.provisioning import node_address, provision_cluster

log = logging.getLogger(__name__)


class ChildConflict(Exception):
    """A child's name is taken by an object this RestateCluster does not control."""


def controlled_by(obj: Mapping[str, Any], uid: str) -> bool:
    """Whether ``obj`` has a controller owner reference to the object with ``uid``."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid and ref.get("controller") for ref in refs)


@dataclass
class Outcome:
    """What the actions of one reconcile found out, fed back into status."""

    provisioned: bool | None = None
    messages: list[str] = field(default_factory=list)
    requeue_after: float | None = None

    def requeue(self, seconds: float) -> None:
        self.requeue_after = (
            seconds if self.requeue_after is None else min(self.requeue_after, seconds)
        )


class Actions:
    """Carries out a plan against the API server."""

    def __init__(
        self,
        client: KubeClient,
        recorder: EventRecorder,
        provision: Callable[[str], Awaitable[Any]] = provision_cluster,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self._provision = provision

    async def run(self, state: Phase, obs: Observation, plan: Plan, outcome: Outcome) -> None:
        for action in STATE_ACTIONS[state]:
            await action(self, obs, plan, outcome)

    async def apply_children(self, obs: Observation, plan: Plan, outcome: Outcome) -> None:
        restored: list[str] = []
        for manifest in plan.apply:
            kind, name = manifest["kind"], manifest["metadata"]["name"]
            why = drift(obs, manifest)
            # Only an adopted namespace can hold someone else's object of the same name: a
            # namespace the operator created is checked by nobody, at no request per child.
            if plan.namespace == "adopted" and obs.child(kind, name) is None:
                await self._refuse_foreign(obs, manifest)
            fault_point(f"before-apply-{kind}/{name}")
            try:
                await with_retries(self.client.apply, manifest, FIELD_MANAGER)
            except KubeError as exc:
                if manifest["kind"] == "Job" and exc.status == 422:
                    # A Job's pod template is immutable: a changed canary (image, tolerations)
                    # is deleted and re-created by the next reconcile.
                    await with_retries(
                        self.client.delete,
                        resources.JOB,
                        manifest["metadata"]["name"],
                        obs.cluster.name,
                        propagation_policy="Background",
                    )
                    outcome.requeue(1.0)
                    continue
                raise
            log.info("applied %s/%s", kind, name, extra={"cluster": obs.cluster.name})
            if why is not None:
                restored.append(f"{kind}/{name} ({why})")
        if restored:
            # Someone else edited or deleted what the operator owns: say what was put back.
            note = "Restored children changed by someone else: " + "; ".join(restored)
            log.warning("%s", note, extra={"cluster": obs.cluster.name})
            await self.recorder.emit(dict(obs.raw), "Normal", "DriftCorrected", "Restore", note)
        if plan.apply:
            fault_point("after-apply-children")

    async def _refuse_foreign(self, obs: Observation, manifest: dict[str, Any]) -> None:
        """Never take over an object of the same name that someone else made.

        The caches hold only the operator's own children, so a child they lack may still
        exist (say, in an adopted namespace): applying would silently rewrite it, and fields
        its owner manages would keep the apply from ever converging.
        """
        meta = manifest["metadata"]
        # A list by name, not a get: the operator's role has no get on cached kinds.
        found, _ = await with_retries(
            self.client.list,
            resources.kind_of(manifest),
            meta.get("namespace"),
            field_selector=f"metadata.name={meta['name']}",
        )
        if not found or all(controlled_by(obj, obs.cluster.metadata.uid) for obj in found):
            return
        raise ChildConflict(
            f"{manifest['kind']} {meta['name']} already exists in namespace "
            f"{meta.get('namespace')} and is not managed by this RestateCluster; the operator "
            f"leaves it alone. Delete or rename it so that the operator can create its own."
        )

    async def delete_stale_children(self, obs: Observation, plan: Plan, outcome: Outcome) -> None:
        for ref in plan.delete:
            kind = resources.kind_for(ref.api_version, ref.kind)
            fault_point(f"before-delete-{ref.kind}/{ref.name}")
            await with_retries(
                self.client.delete, kind, ref.name, ref.namespace, propagation_policy="Background"
            )
            log.info("deleted stale %s/%s", ref.kind, ref.name, extra={"cluster": obs.cluster.name})

    async def expand_volumes(self, obs: Observation, plan: Plan, outcome: Outcome) -> None:
        """Grow the PVCs, then re-create the StatefulSet around them (pods untouched)."""
        volumes = plan.volumes
        if volumes is None:
            return
        namespace = obs.cluster.name
        for pvc in volumes.to_patch:
            fault_point(f"before-patch-pvc-{pvc}")
            await with_retries(
                self.client.apply,
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": pvc, "namespace": namespace},
                    "spec": {"resources": {"requests": {"storage": str(volumes.requested_bytes)}}},
                },
                FIELD_MANAGER,
            )
        if volumes.to_patch:
            fault_point("after-patch-pvcs")
            await self.recorder.emit(
                dict(obs.raw),
                "Normal",
                "VolumesResized",
                "ExpandVolumes",
                f"Requested {volumes.requested_bytes} bytes on {', '.join(volumes.to_patch)}",
            )
        if volumes.template_outdated and volumes.statefulset_uid:
            # The claim template is immutable: delete the StatefulSet but orphan its pods and
            # PVCs, then re-create it with the new template; it re-adopts them by selector.
            # The uid precondition makes sure we never delete a StatefulSet we did not see.
            await with_retries(
                self.client.delete,
                resources.STATEFUL_SET,
                "restate",
                namespace,
                propagation_policy="Orphan",
                uid_precondition=volumes.statefulset_uid,
            )
            fault_point("after-orphan-delete")
            await self.recorder.emit(
                dict(obs.raw),
                "Normal",
                "StatefulSetRecreated",
                "ExpandVolumes",
                "Deleted StatefulSet restate (pods and volumes orphaned, "
                "not restarted) to re-create it with the larger claim "
                "template",
            )
            outcome.requeue(0.5)
        elif volumes.resizing:
            outcome.requeue(5.0)

    async def provision_restate(self, obs: Observation, plan: Plan, outcome: Outcome) -> None:
        """Provision the Restate cluster once its first pod runs (before it can be ready)."""
        if not plan.provisioning_due:
            return
        namespace = obs.cluster.name
        pod = await with_retries(self.client.get, resources.POD, "restate-0", namespace)
        if pod is None or pod.get("status", {}).get("phase") != "Running":
            outcome.messages.append("Waiting for pod restate-0 to run before provisioning")
            outcome.requeue(5.0)
            return
        fault_point("before-provision")
        result = await self._provision(
            node_address(
                namespace,
                obs.settings.cluster_dns,
                template=obs.settings.node_address_template,
            )
        )
        if result.provisioned:
            outcome.provisioned = True
            await self.recorder.emit(
                dict(obs.raw), "Normal", "Provisioned", "Provision", result.message
            )
            outcome.requeue(0.0)
        else:
            outcome.messages.append(result.message)
            await self.recorder.emit(
                dict(obs.raw), "Warning", "ProvisioningFailed", "Provision", result.message
            )
            outcome.requeue(5.0)


StateAction = Callable[[Actions, Observation, Plan, Outcome], Awaitable[None]]

#: What each state does on entry and on every resync.
STATE_ACTIONS: dict[Phase, tuple[StateAction, ...]] = {
    "Pending": (),
    "Provisioning": (
        Actions.apply_children,
        Actions.delete_stale_children,
        Actions.provision_restate,
    ),
    "Expanding": (Actions.apply_children, Actions.delete_stale_children, Actions.expand_volumes),
    "Ready": (Actions.apply_children, Actions.delete_stale_children),
    "Degraded": (Actions.apply_children, Actions.delete_stale_children),
}
