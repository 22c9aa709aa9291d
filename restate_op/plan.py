"""From an observation to a plan: what to apply, what to delete, where volumes stand.

Pure. The plan says *what* differs between the spec and the cluster; ``decide`` turns it into
a phase and ``actions`` carries it out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from restate_op.children import aws, network_policies, restate_config
from restate_op.children.config_map import desired_config_map
from restate_op.children.kube_values import check_kube_values, check_storage_class
from restate_op.children.metadata import selector_labels
from restate_op.children.namespace import desired_namespace, namespace_ownership
from restate_op.children.pdb import desired_pdb
from restate_op.children.restate_config import SpecProblem
from restate_op.children.secret_provider_class import desired_secret_provider_class
from restate_op.children.service_account import desired_service_account
from restate_op.children.services import desired_cluster_service, desired_service
from restate_op.children.statefulset import desired_statefulset
from restate_op.diff import up_to_date, with_desired_hash
from restate_op.observe import Observation
from restate_op.quantity import InvalidQuantity, quantity_bytes

#: Kinds the operator prunes when no longer desired (never Namespaces or PVCs).
PRUNABLE_KINDS = (
    "ConfigMap",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "PodIdentityAssociation",
    "SecurityGroupPolicy",
    "SecretProviderClass",
    "Job",
)

NamespaceOwnership = Literal["absent", "owned", "adopted", "conflict"]
CanaryOutcome = Literal["passed", "failed", "pending"]


@dataclass(frozen=True)
class ChildRef:
    api_version: str
    kind: str
    namespace: str | None
    name: str
    uid: str | None = None


@dataclass(frozen=True)
class VolumePlan:
    """Where the cluster's volumes stand against ``storageRequestBytes``."""

    requested_bytes: int
    storage_class: str | None
    #: None when the StorageClass is unknown (the API server will decide).
    expandable: bool | None
    #: PVCs whose request is below the spec.
    to_patch: tuple[str, ...]
    #: The StatefulSet's claim template asks for less than the spec (needs re-creation).
    template_outdated: bool
    statefulset_uid: str | None
    #: Bound PVCs whose capacity has not reached the request yet, with their condition types.
    resizing: tuple[tuple[str, tuple[str, ...]], ...]
    current_bytes: int | None

    @property
    def expansion_needed(self) -> bool:
        return bool(self.to_patch or self.template_outdated or self.resizing)


@dataclass(frozen=True)
class Rollout:
    desired: int
    ready: int
    updated: int
    settled: bool  # the StatefulSet controller has caught up with the latest spec

    @property
    def complete(self) -> bool:
        return self.settled and self.ready >= self.desired and self.updated >= self.desired


@dataclass(frozen=True)
class Plan:
    problems: tuple[SpecProblem, ...]
    namespace: NamespaceOwnership
    #: Manifests that differ from the live objects, in apply order.
    apply: tuple[dict[str, Any], ...] = ()
    delete: tuple[ChildRef, ...] = ()
    volumes: VolumePlan | None = None
    rollout: Rollout | None = None
    #: Pod Identity: None when not configured.
    identity_synced: bool | None = None
    canary: CanaryOutcome | None = None
    #: The StatefulSet is held back until identity is proven.
    statefulset_held: bool = False
    provisioning_due: bool = False
    notes: tuple[str, ...] = field(default=())


def make_plan(obs: Observation) -> Plan:
    cluster = obs.cluster
    problems = (
        tuple(restate_config.validate(cluster))
        + tuple(check_kube_values(cluster))
        + tuple(check_storage_class(cluster, obs.storage_classes, obs.pvcs))
        + _capability_problems(obs)
    )
    ownership: NamespaceOwnership = namespace_ownership(
        cluster, dict(obs.namespace) if obs.namespace is not None else None
    )
    if problems or ownership == "conflict":
        return Plan(problems=problems, namespace=ownership)

    settings = obs.settings
    desired: list[dict[str, Any]] = []
    if ownership in ("absent", "owned"):
        desired.append(desired_namespace(cluster))
    desired.extend(network_policies.desired_network_policies(cluster, settings))
    desired.append(desired_service_account(cluster))
    desired.append(desired_config_map(cluster))
    desired.append(desired_service(cluster))
    desired.append(desired_cluster_service(cluster))
    pdb = desired_pdb(cluster)
    if pdb is not None:
        desired.append(pdb)

    # Pod Identity: the association, then a canary proving pods receive credentials.
    identity_synced: bool | None = None
    canary: CanaryOutcome | None = None
    pia = aws.desired_pod_identity_association(cluster, settings)
    pia_active = False
    if pia is not None and obs.capabilities.pod_identity_association:
        desired.append(pia)
        live_pia = obs.child("PodIdentityAssociation", "restate")
        identity_synced = live_pia is not None and aws.pod_identity_synced(dict(live_pia))
        if identity_synced:
            job = obs.child("Job", "restate-pia-canary")
            canary = aws.canary_outcome(dict(job) if job is not None else None)
            if canary != "failed":
                desired.append(aws.desired_pia_canary_job(cluster, settings))
            pia_active = canary == "passed"
    spc = desired_secret_provider_class(cluster)
    if spc is not None:
        desired.append(spc)
    sgp = (
        aws.desired_security_group_policy(cluster)
        if obs.capabilities.security_group_policy
        else None
    )
    if sgp is not None:
        desired.append(sgp)

    volumes = _volume_plan(obs)
    sts_live = obs.statefulset
    pod_annotations = aws.identity_pod_annotations(cluster, settings, pia_active, sgp is not None)
    statefulset = desired_statefulset(cluster, settings, pod_annotations)
    live_size = _live_template_size(sts_live)
    if live_size is not None:
        # Claim templates are immutable: keep the live size. Growing it is the Expanding
        # state's job (orphan-delete and re-create), so other spec changes never wait on it.
        for template in statefulset["spec"].get("volumeClaimTemplates", []):
            template["spec"]["resources"]["requests"]["storage"] = live_size
    # A StatefulSet being deleted (the orphan delete of an expansion) is neither patched nor
    # deleted again: the next reconcile re-creates it once it is gone.
    terminating = sts_live is not None and bool(
        sts_live.get("metadata", {}).get("deletionTimestamp")
    )
    held = terminating or (identity_synced is not None and not pia_active and sts_live is None)
    if not held:
        desired.append(statefulset)

    desired = [with_desired_hash(m) for m in desired]
    apply = tuple(m for m in desired if not up_to_date(_live_of(obs, m), m))
    desired_keys = {(m["kind"], m["metadata"]["name"]) for m in desired}
    delete = tuple(
        ChildRef(
            str(obj.get("apiVersion", "")),
            kind,
            cluster.name,
            name,
            obj.get("metadata", {}).get("uid"),
        )
        for (kind, name), obj in sorted(obs.children.items())
        if kind in PRUNABLE_KINDS
        and (kind, name) not in desired_keys
        and _prunable(kind, name, canary)
    )
    if canary == "failed":
        delete = (*delete, ChildRef("batch/v1", "Job", cluster.name, "restate-pia-canary"))

    status = cluster.status
    provisioned = bool(status and status.provisioned)
    return Plan(
        problems=(),
        namespace=ownership,
        apply=apply,
        delete=delete,
        volumes=volumes,
        rollout=_rollout(obs),
        identity_synced=identity_synced,
        canary=canary,
        statefulset_held=held,
        provisioning_due=restate_config.effective_auto_provision(cluster)
        and not provisioned
        and cluster.spec.compute.desired_replicas > 0,
    )


def _capability_problems(obs: Observation) -> tuple[SpecProblem, ...]:
    """Spec fields that need an API the cluster does not serve."""
    key = obs.cluster.spec.security_or_default.request_signing_private_key
    if (
        key is not None
        and key.secret_provider is not None
        and not obs.capabilities.secret_provider_class
    ):
        return (
            SpecProblem(
                reason="MissingCRD",
                field="spec.security.requestSigningPrivateKey.secretProvider",
                message="spec.security.requestSigningPrivateKey.secretProvider needs the Secrets "
                "Store CSI driver (secretproviderclasses.secrets-store.csi.x-k8s.io), which this "
                "cluster does not serve; install the driver or use requestSigningPrivateKey.secret",
            ),
        )
    return ()


def _prunable(kind: str, name: str, canary: CanaryOutcome | None) -> bool:
    # A passed canary Job is kept as the marker that identity was proven (as upstream).
    if kind == "NetworkPolicy":
        return name in network_policies.NETWORK_POLICY_NAMES
    return not (kind == "Job" and name == "restate-pia-canary" and canary == "passed")


def _live_of(obs: Observation, manifest: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if manifest["kind"] == "Namespace":
        return obs.namespace
    return obs.child(manifest["kind"], manifest["metadata"]["name"])


def _live_template_size(sts: Mapping[str, Any] | None) -> str | None:
    """The storage request of the live StatefulSet's ``storage`` claim template, as bytes."""
    if sts is None:
        return None
    for template in sts.get("spec", {}).get("volumeClaimTemplates", []) or []:
        if template.get("metadata", {}).get("name") == "storage":
            size = _bytes(
                template.get("spec", {}).get("resources", {}).get("requests", {}).get("storage")
            )
            return str(size) if size is not None else None
    return None


def _bytes(value: Any) -> int | None:
    try:
        return quantity_bytes(value) if value is not None else None
    except InvalidQuantity:
        return None


def _volume_plan(obs: Observation) -> VolumePlan:
    spec = obs.cluster.spec.storage
    requested = spec.storage_request_bytes
    instance = selector_labels(obs.cluster)
    to_patch: list[str] = []
    resizing: list[tuple[str, tuple[str, ...]]] = []
    capacities: list[int] = []
    class_name = spec.storage_class_name
    for pvc in obs.pvcs:
        labels = pvc.get("metadata", {}).get("labels", {}) or {}
        if any(labels.get(k) != v for k, v in instance.items()):
            continue
        name = pvc["metadata"]["name"]
        class_name = class_name or pvc.get("spec", {}).get("storageClassName")
        request = _bytes(
            pvc.get("spec", {}).get("resources", {}).get("requests", {}).get("storage")
        )
        if request is not None and request < requested:
            to_patch.append(name)
        status = pvc.get("status", {}) or {}
        capacity = _bytes((status.get("capacity") or {}).get("storage"))
        if status.get("phase") != "Bound" or capacity is None:
            continue  # an unbound claim blocks nothing
        capacities.append(capacity)
        if capacity < requested:
            kinds = tuple(
                c.get("type", "")
                for c in status.get("conditions", []) or []
                if c.get("status") == "True"
            )
            resizing.append((name, kinds))
    sc = obs.storage_class(class_name)
    expandable = None if sc is None else bool(sc.get("allowVolumeExpansion"))
    sts = obs.statefulset
    template_outdated = False
    if sts is not None:
        for t in sts.get("spec", {}).get("volumeClaimTemplates", []) or []:
            if t.get("metadata", {}).get("name") == "storage":
                size = _bytes(
                    t.get("spec", {}).get("resources", {}).get("requests", {}).get("storage")
                )
                template_outdated = size is not None and size < requested
    return VolumePlan(
        requested_bytes=requested,
        storage_class=sc.get("metadata", {}).get("name") if sc else class_name,
        expandable=expandable,
        to_patch=tuple(sorted(to_patch)),
        template_outdated=template_outdated,
        statefulset_uid=(
            sts.get("metadata", {}).get("uid")
            if sts is not None and not sts.get("metadata", {}).get("deletionTimestamp")
            else None
        ),
        resizing=tuple(sorted(resizing)),
        current_bytes=min(capacities) if capacities else None,
    )


def _rollout(obs: Observation) -> Rollout:
    desired = obs.cluster.spec.compute.desired_replicas
    sts = obs.statefulset
    if sts is None:
        return Rollout(desired=desired, ready=0, updated=0, settled=False)
    status = sts.get("status", {}) or {}
    generation = sts.get("metadata", {}).get("generation", 0)
    settled = (
        status.get("observedGeneration", 0) >= generation
        and status.get("currentRevision")
        == status.get("updateRevision", status.get("currentRevision"))
        and status.get("replicas", 0) == desired
    )
    return Rollout(
        desired=desired,
        ready=int(status.get("readyReplicas", 0) or 0),
        updated=int(status.get("updatedReplicas", 0) or 0),
        settled=settled,
    )
