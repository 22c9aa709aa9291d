"""From an observation to a plan: what to apply, what to delete, where volumes stand.

Pure. The plan says *what* differs between the spec and the cluster; ``decide`` turns it into
a phase and ``actions`` carries it out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from restate_op import GROUP, KIND
from restate_op.children import aws, network_policies, restate_config
from restate_op.children.config_map import desired_config_map
from restate_op.children.constants import (
    CONFIG_MAP_PREFIX,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    PDB_NAME,
)
from restate_op.children.kube_values import check_kube_values, check_storage_class
from restate_op.children.metadata import selector_labels
from restate_op.children.namespace import desired_namespace, namespace_ownership
from restate_op.children.pdb import desired_pdb
from restate_op.children.secret_provider_class import desired_secret_provider_class
from restate_op.children.service_account import desired_service_account
from restate_op.children.services import desired_cluster_service, desired_service
from restate_op.children.statefulset import desired_statefulset
from restate_op.diff import DESIRED_HASH_ANNOTATION, desired_hash, up_to_date, with_desired_hash
from restate_op.observe import Observation
from restate_op.pod_health import pod_names
from restate_op.quantity import InvalidQuantity, quantity_bytes
from restate_op.restate_health import RestateHealth
from restate_op.roll import Roll, on_delete, plan_roll
from restate_op.validation import SpecProblem, validate
from restate_op.workload_identity import (
    Identity,
    IdentityProof,
    identity_bindings,
    workload_identity_problems,
)

#: Kinds the operator prunes when no longer desired (never Namespaces or PVCs).
PRUNABLE_KINDS = (
    "ConfigMap",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "PodIdentityAssociation",
    "IAMPolicyMember",
    "SecurityGroupPolicy",
    "SecretProviderClass",
    "Job",
)

NamespaceOwnership = Literal["absent", "owned", "adopted", "conflict"]


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
class ScaleDown:
    """A multi-node cluster getting fewer replicas: one pod at a time, highest ordinal first,
    each only after Restate let its node go (``states/`` ``ScalingDown``).

    Restate 1.7 needs, before a node disappears, that it is no longer a metadata-server
    member (else every departure weakens the metadata quorum for good); partition leaders
    move off a node that is gone on their own, and a node's log replicas are replaced by
    the cluster controller's new nodesets -- nothing an operator can ask for ahead of time.
    """

    #: The StatefulSet's replicas now, and what the spec asks for.
    live: int
    target: int
    #: The pod that leaves next, and its node id (None: it never joined).
    departing: str
    node_id: int | None
    #: The metadata member to remove first, through the leader at this node-port address;
    #: None when the departing node is not a member (the pod may go now).
    leader_address: str | None = None
    #: Something keeps the pod from going now and nothing here can change it: why.
    blocked: str | None = None
    #: The departure would break the metadata quorum: refused (Degraded) until the user
    #: acts; why, and the fix.
    refused: str | None = None
    #: Restate's view could not be read: scaling down without asking (said in the status).
    unchecked: str | None = None

    @property
    def replicas(self) -> int:
        """The StatefulSet's replicas for this reconcile."""
        may_go = self.blocked is None and self.refused is None and self.leader_address is None
        return self.live - 1 if may_go else self.live

    @property
    def removing(self) -> int | None:
        """The metadata member to remove now (None: none)."""
        return self.node_id if self.leader_address is not None else None


@dataclass(frozen=True)
class Plan:
    problems: tuple[SpecProblem, ...]
    namespace: NamespaceOwnership
    #: Manifests that differ from the live objects, in apply order.
    apply: tuple[dict[str, Any], ...] = ()
    delete: tuple[ChildRef, ...] = ()
    volumes: VolumePlan | None = None
    rollout: Rollout | None = None
    #: One per identity binding configured (EKS Pod Identity, GKE Workload Identity).
    identities: tuple[IdentityProof, ...] = ()
    provisioning_due: bool = False
    scale_down: ScaleDown | None = None
    #: A template change reaching the pods one at a time (``restate_op.roll``).
    roll: Roll | None = None


def make_plan(obs: Observation, now: float | None = None) -> Plan:
    """What differs between the spec and the cluster; never does I/O.

    ``now`` dates what waits too long (a rolling pod that does not come back); None: no
    clock, nothing is late.

    Returns a plan with only ``problems`` (and the namespace's ownership) when the spec
    cannot be built or the name is taken; otherwise every child to apply, in apply order,
    the stale ones to delete, and where volumes, identity and the rollout stand.
    """
    cluster = obs.cluster
    problems = (
        tuple(validate(cluster))
        + tuple(check_kube_values(cluster))
        + tuple(check_storage_class(cluster, obs.storage_classes, obs.pvcs))
        + _capability_problems(obs)
    )
    ownership: NamespaceOwnership = namespace_ownership(
        cluster, dict(obs.namespace) if obs.namespace is not None else None
    )
    if problems or ownership == "conflict":
        return Plan(problems=problems, namespace=ownership)

    identity = identity_bindings(obs)
    desired = [
        *_desired_children(obs, ownership),
        *identity.manifests,
        *_security_groups_and_keys(obs),
    ]
    statefulset = _statefulset(
        obs, identity, has_sgp=any(m["kind"] == "SecurityGroupPolicy" for m in desired)
    )
    scale_down = _scale_down(obs)
    if scale_down is not None and _raised_by_someone_else(obs.statefulset, statefulset):
        # Drift, not a scale-down: restored at once (and said so), as any edited child.
        scale_down = None
    if statefulset is not None and scale_down is not None:
        statefulset["spec"]["replicas"] = scale_down.replicas
    if statefulset is not None:
        desired.append(statefulset)
    desired = [with_desired_hash(m) for m in desired]
    apply = tuple(m for m in desired if not up_to_date(obs.live(m), m))
    status = cluster.status
    # A StatefulSet applied now has a revision its controller has not counted yet.
    rolling = not any(m["kind"] == "StatefulSet" for m in apply) and scale_down is None
    return Plan(
        problems=(),
        namespace=ownership,
        apply=apply,
        delete=_stale(obs, {(m["kind"], m["metadata"]["name"]) for m in desired}),
        volumes=_volume_plan(obs),
        rollout=_rollout(obs),
        scale_down=scale_down,
        roll=plan_roll(obs.statefulset, obs.pods, obs.restate_health, now) if rolling else None,
        identities=tuple(b.proof for b in identity.bindings),
        provisioning_due=restate_config.effective_auto_provision(cluster)
        and not (status and status.provisioned)
        and cluster.spec.compute.desired_replicas > 0,
    )


def _desired_children(obs: Observation, ownership: NamespaceOwnership) -> list[dict[str, Any]]:
    """The children every cluster has, in apply order (the Namespace first, if ours)."""
    cluster, settings = obs.cluster, obs.settings
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
    return desired


def _security_groups_and_keys(obs: Observation) -> list[dict[str, Any]]:
    cluster = obs.cluster
    found = [desired_secret_provider_class(cluster)]
    if obs.capabilities.security_group_policy:
        found.append(aws.desired_security_group_policy(cluster))
    return [m for m in found if m is not None]


def _statefulset(obs: Observation, identity: Identity, *, has_sgp: bool) -> dict[str, Any] | None:
    """The StatefulSet to apply, or None while it must be held back.

    Held back while a StatefulSet is being deleted (the orphan delete of an expansion: the
    next reconcile re-creates it once it is gone), and before a new cluster's identity
    bindings are proven (its pods would start without credentials).
    """
    cluster, settings = obs.cluster, obs.settings
    live = obs.statefulset
    # Security groups are attached at pod creation too, so they roll the pods the same way.
    groups = aws.identity_pod_annotations(cluster, settings, False, has_sgp)
    pod_annotations = dict(sorted({**groups, **identity.pod_annotations}.items()))
    statefulset = desired_statefulset(cluster, settings, pod_annotations)
    live_size = _claim_template_bytes(live)
    if live_size is not None:
        # Claim templates are immutable: keep the live size. Growing it is the Expanding
        # state's job (orphan-delete and re-create), so other spec changes never wait on it.
        for template in statefulset["spec"].get("volumeClaimTemplates", []):
            template["spec"]["resources"]["requests"]["storage"] = str(live_size)
    terminating = live is not None and bool(live.get("metadata", {}).get("deletionTimestamp"))
    unproven = not identity.proven and live is None
    return None if terminating or unproven else statefulset


def _stale(obs: Observation, desired: set[tuple[str, str]]) -> tuple[ChildRef, ...]:
    """Children of prunable kinds no longer desired (never Namespaces or PVCs).

    A failed canary Job is one: ``restate_op.workload_identity`` leaves it out of the desired
    children, so it is deleted here and re-created by the next reconcile.
    """
    name = obs.cluster.name
    stale = tuple(
        ChildRef(
            str(obj.get("apiVersion", "")), kind, name, child, obj.get("metadata", {}).get("uid")
        )
        for (kind, child), obj in sorted(obs.children.items())
        if kind in PRUNABLE_KINDS and (kind, child) not in desired and _prunable(kind, child)
    )
    # What the upstream operator left that restate-op does not want (docs/migrating.md).
    stale += tuple(
        ChildRef(str(obj.get("apiVersion", "")), obj["kind"], name, child, meta.get("uid"))
        for obj in sorted(obs.foreign, key=lambda o: (o["kind"], o["metadata"]["name"]))
        for meta in [obj.get("metadata") or {}]
        for child in [str(meta.get("name", ""))]
        if (obj["kind"], child) not in desired
        and (obj["kind"], child) not in obs.children
        and not _ours(obj)
        and _upstream_leftover(obs, obj["kind"], child, obj)
    )
    return stale


def _capability_problems(obs: Observation) -> tuple[SpecProblem, ...]:
    """Spec fields that need an API the cluster does not serve, or a flag's input it refuses."""
    return _signing_key_problems(obs) + workload_identity_problems(obs)


def _signing_key_problems(obs: Observation) -> tuple[SpecProblem, ...]:
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


def _prunable(kind: str, name: str) -> bool:
    # NetworkPolicies only by the operator's own names. (A passed canary Job is kept as the
    # marker that identity was proven, as upstream: it stays desired while it passes.)
    return kind != "NetworkPolicy" or name in network_policies.NETWORK_POLICY_NAMES


#: Names the upstream Rust operator (v2.9) gives children restate-op names differently or does
#: not create: its node-port policy (``allow-node-access`` here), its pre-2.1 DNS policy, its
#: PodDisruptionBudget (restate-op makes none for one node), its ConfigMaps (it never deleted
#: one whose config changed). docs/migrating.md has the reasons.
UPSTREAM_NETWORK_POLICY_NAMES = frozenset(
    {*network_policies.NETWORK_POLICY_NAMES, "allow-metrics-access", "allow-egress-to-kube-dns"}
)
_UPSTREAM_CONFIG_MAP = re.compile(re.escape(CONFIG_MAP_PREFIX) + r"[0-9a-f]{1,8}")


def _ours(obj: Mapping[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(MANAGED_BY_LABEL) == MANAGED_BY)


def _upstream_leftover(obs: Observation, kind: str, name: str, obj: Mapping[str, Any]) -> bool:
    """An object the upstream operator made for this very cluster, by name, labels and owner.

    Upstream set the cluster's selector labels and a controller reference to the
    RestateCluster (same uid) on every child; a user's object has neither, so it is never
    pruned, whatever its name.
    """
    if kind == "NetworkPolicy":
        known = name in UPSTREAM_NETWORK_POLICY_NAMES
    elif kind == "PodDisruptionBudget":
        known = name == PDB_NAME
    elif kind == "ConfigMap":
        known = _UPSTREAM_CONFIG_MAP.fullmatch(name) is not None
    else:
        known = False
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    uid = obs.cluster.metadata.uid
    owned = any(
        ref.get("controller") is True
        and ref.get("kind") == KIND
        and str(ref.get("apiVersion", "")).split("/")[0] == GROUP
        and ref.get("name") == obs.cluster.name
        and uid is not None
        and ref.get("uid") == uid
        for ref in meta.get("ownerReferences") or []
    )
    selected = all(labels.get(k) == v for k, v in selector_labels(obs.cluster).items())
    return known and owned and selected


def _claim_template_bytes(sts: Mapping[str, Any] | None) -> int | None:
    """The storage request of a StatefulSet's ``storage`` claim template, in bytes."""
    for template in (sts or {}).get("spec", {}).get("volumeClaimTemplates", []) or []:
        if template.get("metadata", {}).get("name") == "storage":
            return _bytes(_storage_request(template))
    return None


def _storage_request(claim: Mapping[str, Any]) -> Any:
    return claim.get("spec", {}).get("resources", {}).get("requests", {}).get("storage")


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
        request = _bytes(_storage_request(pvc))
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
    template_size = _claim_template_bytes(sts)
    template_outdated = template_size is not None and template_size < requested
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
    # OnDelete never moves currentRevision (kubernetes#73492): the pods' count says it.
    if on_delete(sts):
        caught_up = int(status.get("updatedReplicas", 0) or 0) >= int(
            status.get("replicas", 0) or 0
        )
    else:
        current = status.get("currentRevision")
        caught_up = current == status.get("updateRevision", current)
    settled = (
        status.get("observedGeneration", 0) >= generation
        and caught_up
        and status.get("replicas", 0) == desired
    )
    return Rollout(
        desired=desired,
        ready=int(status.get("readyReplicas", 0) or 0),
        updated=int(status.get("updatedReplicas", 0) or 0),
        settled=settled,
    )


def _quorum_after_removal(health: RestateHealth, node_id: int, live: int) -> str | None:
    """Why removing metadata member ``node_id`` would leave the metadata cluster without a
    majority of live members (None: it would not).

    Restate's metadata (Raft) serves only while a majority of its members answer: removing
    a member the remaining ones cannot outvote stops every node. That happens when other
    members are dead (a failed pod, or members of nodes gone for good, say scaled away by a
    tool that did not remove them), or when the departing node is the only member.
    """
    remaining = health.metadata_members - {node_id}
    alive = {n.node_id for n in health.nodes if n.alive}
    if len(remaining & alive) * 2 > len(remaining):
        return None
    if not remaining:
        what = "it is the only metadata-server member: the cluster would have no metadata"
    else:
        dead = ", ".join(f"N{n}" for n in sorted(remaining - alive))
        what = (
            f"the metadata cluster would keep {len(remaining)} members, of which only "
            f"{len(remaining & alive)} alive (dead: {dead}): no majority, so Restate's "
            "metadata and every node would stop"
        )
    return (
        f"removing node N{node_id} {what}. Bring the dead members back, or remove members "
        "whose nodes are gone for good (kubectl exec into a pod: restatectl metadata-server "
        f"remove-node <id>), or set spec.compute.replicas back to {live}"
    )


def _raised_by_someone_else(
    live: Mapping[str, Any] | None, manifest: dict[str, Any] | None
) -> bool:
    """Whether the live StatefulSet has more replicas than the spec only because someone
    else scaled it: its desired-hash is that of the manifest at the spec's count, so the
    operator's last apply already asked for fewer (``restate_op.drift``'s test)."""
    if live is None or manifest is None:
        return False
    applied = ((live.get("metadata") or {}).get("annotations") or {}).get(DESIRED_HASH_ANNOTATION)
    return applied is not None and applied == desired_hash(manifest)


def live_replicas(sts: Mapping[str, Any] | None) -> int:
    """The live StatefulSet's ``spec.replicas`` (0 without one)."""
    return int(((sts or {}).get("spec") or {}).get("replicas", 0) or 0)


def _scale_down(obs: Observation) -> ScaleDown | None:
    """Where a scale-down stands, or None when the cluster is not shrinking.

    Not for hibernation (``replicas: 0`` stops every pod, keeps every node) nor from a
    single node. Needs Restate's view: a departing metadata member is removed through the
    metadata leader first. When no node answers at all the pods go as a StatefulSet would
    shrink them, and the status says so.
    """
    sts = obs.statefulset
    target = obs.cluster.spec.compute.desired_replicas
    live = live_replicas(sts)
    if sts is None or target == 0 or live <= target or live <= 1:
        return None
    departing = pod_names(live)[-1]
    health = obs.restate_health
    if health is None:
        return ScaleDown(live, target, departing, None, blocked="Restate's view not read yet")
    if not health.ok:
        return ScaleDown(live, target, departing, None, unchecked=health.error)
    node_id = health.node_of(departing)
    if node_id is None or node_id not in health.metadata_members:
        return ScaleDown(live, target, departing, node_id)
    refused = _quorum_after_removal(health, node_id, live)
    if refused is not None:
        return ScaleDown(live, target, departing, node_id, refused=refused)
    leader = health.metadata_leader
    leader_pod = health.pod_of(leader) if leader is not None else None
    if leader is None or leader_pod is None:
        return ScaleDown(
            live, target, departing, node_id, blocked="the metadata cluster has no leader"
        )
    return ScaleDown(live, target, departing, node_id, leader_address=obs.node_address(leader_pod))
