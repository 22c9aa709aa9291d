"""The RestateCluster controller: what it watches, how it observes, and its pure reconcile.

The first controller the runtime hosts. Its key is the cluster's name, which is also its
Namespace's, so a child's event maps to the key by the child's namespace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from restate_op.api.crd import CRD_NAME
from restate_op.api.models import RestateCluster
from restate_op.children.constants import APP_NAME, MANAGED_BY, MANAGED_BY_LABEL, NAME_LABEL
from restate_op.coalesce import Held
from restate_op.config_figures import CONFIG_FIGURES, config_figures
from restate_op.controller import Caches, Conclusion, Decision, RequiredApi, Watch
from restate_op.decide import (
    CONTROLLER,
    MACHINE,
    ClusterObservation,
    conclude,
    decide,
    forget,
    health_key,
    poll_key,
    snapshot_key,
)
from restate_op.decide import memory_key as _memory_key
from restate_op.effects import Effect, Outcome
from restate_op.kube import resources
from restate_op.kube.resources import Kind
from restate_op.memory import Memory
from restate_op.metrics import METRICS
from restate_op.observe import ChildKey, Observation, Unreadable
from restate_op.settings import Capabilities, OperatorSettings

log = logging.getLogger(__name__)

#: The operator's own children carry this label; PVCs (made by the StatefulSet) carry the name.
MANAGED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
PVC_SELECTOR = f"{NAME_LABEL}={APP_NAME}"
POD_SELECTOR = PVC_SELECTOR
#: What the upstream Rust operator left: its children carry the name label but not ours.
#: Watched only for the kinds restate-op may not want under the same name (plan.py prunes
#: the ones it recognises as upstream's); same-named children are taken over by the apply.
UPSTREAM_SELECTOR = f"{NAME_LABEL}={APP_NAME},!{MANAGED_BY_LABEL}"
UPSTREAM_LEFTOVER_KINDS: tuple[Kind, ...] = (
    resources.CONFIG_MAP,
    resources.POD_DISRUPTION_BUDGET,
    resources.NETWORK_POLICY,
)

CHILD_KINDS: tuple[Kind, ...] = (
    resources.SERVICE_ACCOUNT,
    resources.SERVICE,
    resources.CONFIG_MAP,
    resources.STATEFUL_SET,
    resources.POD_DISRUPTION_BUDGET,
    resources.NETWORK_POLICY,
    resources.JOB,
)


def _pod_identity(capabilities: Capabilities, settings: OperatorSettings) -> bool:
    # Only with --aws-pod-identity-association-cluster are PodIdentityAssociations the
    # operator's (and only then does the chart grant access to them).
    return capabilities.pod_identity_association and bool(
        settings.aws_pod_identity_association_cluster
    )


def _workload_identity(capabilities: Capabilities, settings: OperatorSettings) -> bool:
    # Only with --gcp-workload-identity: elsewhere the chart grants no access to
    # IAMPolicyMembers, and watching (or pruning) them would loop on 403s (upstream v2.3.1).
    return capabilities.iam_policy_member and settings.gcp_workload_identity


#: Optional child kinds, and when the operator watches (and so manages) them.
OPTIONAL_CHILD_KINDS: tuple[tuple[Kind, Callable[[Capabilities, OperatorSettings], bool]], ...] = (
    (resources.POD_IDENTITY_ASSOCIATION, _pod_identity),
    (resources.IAM_POLICY_MEMBER, _workload_identity),
    (resources.SECURITY_GROUP_POLICY, lambda c, _s: c.security_group_policy),
    (resources.SECRET_PROVIDER_CLASS, lambda c, _s: c.secret_provider_class),
)


class RestateClusterController:
    name = CONTROLLER
    kind = resources.RESTATE_CLUSTER

    def __init__(
        self,
        caches: Caches,
        memory: Memory,
        settings: OperatorSettings,
        capabilities: Callable[[], Capabilities],
    ) -> None:
        self.caches = caches
        self.memory = memory
        self.settings = settings
        self.capabilities = capabilities
        #: Each cluster's configuration figures, by the generation they were read from.
        self._config_figures: dict[str, tuple[int, Mapping[str, int | None]]] = {}

    # -- what it watches -----------------------------------------------------------------

    def watches(self) -> Sequence[Watch]:
        children = [Watch(kind, MANAGED_SELECTOR, self._by_namespace) for kind in CHILD_KINDS]
        upstream = [
            Watch(kind, UPSTREAM_SELECTOR, self._by_namespace) for kind in UPSTREAM_LEFTOVER_KINDS
        ]
        optional = [
            Watch(kind, MANAGED_SELECTOR, self._by_namespace, enabled=enabled)
            for kind, enabled in OPTIONAL_CHILD_KINDS
        ]
        return (
            Watch(resources.RESTATE_CLUSTER, None, lambda obj, _c: [obj["metadata"]["name"]]),
            Watch(resources.NAMESPACE, None, self._by_name),
            *children,
            *optional,
            *upstream,
            Watch(resources.PERSISTENT_VOLUME_CLAIM, PVC_SELECTOR, self._by_namespace),
            # Pods say why they cannot run (image, crash loop, OOM, scheduling), and when
            # restate-0 runs, so that provisioning can start.
            Watch(resources.POD, POD_SELECTOR, self._by_namespace),
            # A class created or made expandable may unblock any cluster waiting for it.
            Watch(resources.STORAGE_CLASS, None, self._every_cluster),
        )

    def required_apis(self, settings: OperatorSettings) -> Sequence[RequiredApi]:
        required = [
            RequiredApi(
                "restate.dev/v1", "restateclusters", f"{CRD_NAME} (install the chart's CRDs)"
            )
        ]
        if settings.aws_pod_identity_association_cluster:
            required.append(
                RequiredApi(
                    "eks.services.k8s.aws/v1alpha1",
                    "podidentityassociations",
                    "podidentityassociations.eks.services.k8s.aws (started with "
                    "--aws-pod-identity-association-cluster; install the ACK EKS controller)",
                )
            )
        return required

    def _cluster_exists(self, name: str) -> bool:
        return self.caches.get(resources.RESTATE_CLUSTER, None, name) is not None

    def _by_name(self, obj: Mapping[str, Any], _caches: Caches) -> Iterable[str]:
        name = obj["metadata"]["name"]
        return [name] if self._cluster_exists(name) else []

    def _by_namespace(self, obj: Mapping[str, Any], _caches: Caches) -> Iterable[str]:
        namespace = obj["metadata"].get("namespace")
        return [namespace] if namespace and self._cluster_exists(namespace) else []

    def _every_cluster(self, _obj: Mapping[str, Any], caches: Caches) -> Iterable[str]:
        return [c["metadata"]["name"] for c in caches.list(resources.RESTATE_CLUSTER)]

    # -- the reconcile -------------------------------------------------------------------

    def observe(self, key: str) -> ClusterObservation | None:
        """The cluster and everything of it the caches hold; None once it is gone or going."""
        raw = self.caches.get(resources.RESTATE_CLUSTER, None, key)
        if raw is None or raw.get("metadata", {}).get("deletionTimestamp"):
            return None
        try:
            cluster = RestateCluster.model_validate(raw)
        except ValidationError as exc:
            log.error("RestateCluster does not match the model: %s", exc)
            return Unreadable(key, raw, exc)
        held = self.memory.get(_memory_key(key))
        held_since = None
        if isinstance(held, Held) and held.uid == cluster.metadata.uid:
            # The status this operator decided but has not written yet is the latest word.
            cluster = cluster.model_copy(update={"status": held.status})
            held_since = held.since
        return Observation(
            cluster=cluster,
            raw=raw,
            namespace=self.caches.get(resources.NAMESPACE, None, key),
            children=self._children(key),
            pvcs=tuple(self.caches.list(resources.PERSISTENT_VOLUME_CLAIM, key, PVC_SELECTOR)),
            storage_classes={
                sc["metadata"]["name"]: sc for sc in self.caches.list(resources.STORAGE_CLASS)
            },
            settings=self.settings,
            pods=tuple(self.caches.list(resources.POD, key, POD_SELECTOR)),
            capabilities=self.capabilities(),
            held_since=held_since,
            restate_health=self.memory.get(health_key(key)),
            health_poll=self.memory.get(poll_key(key)),
            snapshot_run=self.memory.get(snapshot_key(key)),
            foreign=tuple(
                obj
                for kind in UPSTREAM_LEFTOVER_KINDS
                for obj in self.caches.list(kind, key, UPSTREAM_SELECTOR)
            ),
        )

    def _children(self, namespace: str) -> dict[ChildKey, Mapping[str, Any]]:
        found: dict[ChildKey, Mapping[str, Any]] = {}
        kinds = (*CHILD_KINDS, *(kind for kind, _ in OPTIONAL_CHILD_KINDS))
        for kind in kinds:
            for obj in self.caches.list(kind, namespace, MANAGED_SELECTOR):
                found[(obj["kind"], obj["metadata"]["name"])] = obj
        return found

    def decide(self, obs: ClusterObservation, now: float) -> Decision:
        return decide(obs, now)

    def conclude(
        self, obs: ClusterObservation, decision: Decision, outcome: Outcome, now: float
    ) -> Conclusion:
        return conclude(obs, decision, outcome, now)

    def forget(self, key: str) -> Sequence[Effect]:
        return forget(key)

    def update_gauges(self) -> None:
        """Clusters per phase and each cluster's configuration figures, from the cache (no
        API request; a spec is read again only when its generation changed)."""
        counts: dict[str, int] = dict.fromkeys(MACHINE.phases, 0)
        seen = set()
        for obj in self.caches.list(resources.RESTATE_CLUSTER):
            phase = (obj.get("status") or {}).get("phase") or MACHINE.initial
            counts[phase] = counts.get(phase, 0) + 1
            seen.add(obj["metadata"]["name"])
            self._record_config(obj)
        for phase, count in counts.items():
            METRICS.clusters.labels(phase=phase).set(count)
        for gone in set(self._config_figures) - seen:
            del self._config_figures[gone]
            METRICS.forget_config(gone)

    def _record_config(self, obj: Mapping[str, Any]) -> None:
        name, generation = obj["metadata"]["name"], obj["metadata"].get("generation", 0)
        known = self._config_figures.get(name)
        if known is not None and known[0] == generation:
            return
        try:
            figures = config_figures(RestateCluster.model_validate(obj))
        except ValidationError:
            figures = dict.fromkeys(CONFIG_FIGURES)  # Degraded InvalidSpec says why
        self._config_figures[name] = (generation, figures)
        METRICS.record_config(name, figures)
