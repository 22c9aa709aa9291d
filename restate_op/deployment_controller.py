"""The RestateDeployment controller: what it watches, how it observes, and its pure reconcile.

The runtime's second controller, registered only with ``--restate-deployments``. Its kind is
namespaced, so its key is ``namespace/name``. It watches its RestateDeployments; the
ReplicaSets, Services and HorizontalPodAutoscalers they own (label ``restate.dev/owned-by``,
whose value is the RestateDeployment's name); the pods of those ReplicaSets (label
``pod-template-hash``, mapped through their ReplicaSet); RestateClusters, whose changes
(Ready or not, gone) concern every RestateDeployment that registers against them; and
RestateCloudEnvironments and the Secrets of the operator's namespace, whose changes (a new
region, a rotated token) reach every RestateDeployment with that ``register.cloud`` at once
rather than on the next resync.

``observe`` reads only the caches and the operator's memory: Restate's view is whatever the
last ``QueryRestate`` left there (``restate_op.deployment_decide.view_key``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from restate_op import deployment_knative as knative
from restate_op.api.deployment import RestateDeployment
from restate_op.api.deployment_crd import CRD_NAME, PLURAL, VERSION
from restate_op.cloud_controller import served
from restate_op.cloud_identity import cloud_access
from restate_op.controller import Caches, Conclusion, Decision, RequiredApi, Watch
from restate_op.deployment_decide import CONTROLLER, conclude, decide, rejections_key, view_key
from restate_op.deployment_observe import (
    OWNED_BY_LABEL,
    TEMPLATE_HASH_LABEL,
    DeploymentObservation,
    Rejection,
    RestateView,
    recorded_rejections,
)
from restate_op.deployment_unreadable import (
    UnreadableDeployment,
    conclude_unreadable,
    decide_unreadable,
)
from restate_op.effects import Effect, Forget, Outcome
from restate_op.executor import controlled_by
from restate_op.kube import resources
from restate_op.kube.resources import Kind
from restate_op.memory import Memory
from restate_op.settings import Capabilities, OperatorSettings

log = logging.getLogger(__name__)

#: The objects a RestateDeployment owns carry its name under this label.
OWNED_SELECTOR = OWNED_BY_LABEL
#: Pods of ReplicaSets carry the template hash (a ReplicaSet's pods do not copy its labels).
POD_SELECTOR = TEMPLATE_HASH_LABEL

OWNED_KINDS: tuple[Kind, ...] = (
    resources.REPLICA_SET,
    resources.SERVICE,
    resources.HORIZONTAL_POD_AUTOSCALER,
)
#: Knative mode, watched only where Knative Serving is served: Configurations and Routes
#: carry the owned-by label; Revisions are Knative's, labelled with their Configuration.
KNATIVE_OWNED_KINDS: tuple[Kind, ...] = (resources.KNATIVE_CONFIGURATION, resources.KNATIVE_ROUTE)
REVISION_SELECTOR = knative.CONFIGURATION_LABEL


def _knative(capabilities: Capabilities, _settings: OperatorSettings) -> bool:
    return capabilities.knative_serving


def key_of(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def split_key(key: str) -> tuple[str, str]:
    namespace, _, name = key.partition("/")
    return namespace, name


def _owned_by(obj: Mapping[str, Any]) -> Iterable[str]:
    meta = obj.get("metadata") or {}
    owner = (meta.get("labels") or {}).get(OWNED_BY_LABEL)
    namespace = meta.get("namespace")
    return [key_of(namespace, owner)] if owner and namespace else []


class RestateDeploymentController:
    name = CONTROLLER
    kind = resources.RESTATE_DEPLOYMENT

    def __init__(
        self,
        caches: Caches,
        memory: Memory,
        settings: OperatorSettings,
        capabilities: Callable[[], Capabilities] = Capabilities,
    ) -> None:
        self.caches = caches
        self.memory = memory
        self.settings = settings
        self.capabilities = capabilities

    # -- what it watches -----------------------------------------------------------------

    def watches(self) -> Sequence[Watch]:
        return (
            Watch(resources.RESTATE_DEPLOYMENT, None, self._by_self),
            *(Watch(kind, OWNED_SELECTOR, self._by_owner) for kind in OWNED_KINDS),
            Watch(resources.POD, POD_SELECTOR, self._by_replica_set),
            Watch(resources.RESTATE_CLUSTER, None, self._by_cluster),
            *(
                Watch(kind, OWNED_SELECTOR, self._by_owner, enabled=_knative)
                for kind in KNATIVE_OWNED_KINDS
            ),
            Watch(
                resources.KNATIVE_REVISION,
                REVISION_SELECTOR,
                self._by_configuration,
                enabled=_knative,
            ),
            Watch(resources.RESTATE_CLOUD_ENVIRONMENT, None, self._by_cloud, enabled=served),
            Watch(
                resources.SECRET,
                None,
                self._by_secret,
                namespace=self.settings.operator_namespace,
                enabled=served,
            ),
        )

    def required_apis(self, settings: OperatorSettings) -> Sequence[RequiredApi]:
        return [
            RequiredApi(
                f"restate.dev/{VERSION}",
                PLURAL,
                f"{CRD_NAME} (started with --restate-deployments; install the chart with "
                f"restateDeployments.enabled=true)",
            ),
        ]

    @staticmethod
    def _by_self(obj: Mapping[str, Any], _caches: Caches) -> Iterable[str]:
        meta = obj["metadata"]
        return [key_of(meta["namespace"], meta["name"])]

    @staticmethod
    def _by_owner(obj: Mapping[str, Any], _caches: Caches) -> Iterable[str]:
        return _owned_by(obj)

    @staticmethod
    def _by_replica_set(obj: Mapping[str, Any], caches: Caches) -> Iterable[str]:
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace")
        keys: list[str] = []
        for ref in meta.get("ownerReferences") or []:
            if ref.get("kind") != "ReplicaSet" or not ref.get("controller"):
                continue
            rs = caches.get(resources.REPLICA_SET, namespace, ref.get("name", ""))
            if rs is not None:
                keys.extend(_owned_by(rs))
        return keys

    @staticmethod
    def _by_configuration(obj: Mapping[str, Any], caches: Caches) -> Iterable[str]:
        meta = obj.get("metadata") or {}
        name = (meta.get("labels") or {}).get(knative.CONFIGURATION_LABEL, "")
        config = caches.get(resources.KNATIVE_CONFIGURATION, meta.get("namespace"), name)
        return _owned_by(config) if config is not None else []

    @staticmethod
    def _by_cluster(obj: Mapping[str, Any], caches: Caches) -> Iterable[str]:
        cluster = obj["metadata"]["name"]
        keys = []
        for rsd in caches.list(resources.RESTATE_DEPLOYMENT):
            register = ((rsd.get("spec") or {}).get("restate") or {}).get("register") or {}
            if register.get("cluster") == cluster:
                keys.append(key_of(rsd["metadata"]["namespace"], rsd["metadata"]["name"]))
        return keys

    @staticmethod
    def _using(caches: Caches, environments: set[str]) -> list[str]:
        keys = []
        for rsd in caches.list(resources.RESTATE_DEPLOYMENT):
            register = ((rsd.get("spec") or {}).get("restate") or {}).get("register") or {}
            if register.get("cloud") in environments:
                keys.append(key_of(rsd["metadata"]["namespace"], rsd["metadata"]["name"]))
        return keys

    def _by_cloud(self, obj: Mapping[str, Any], caches: Caches) -> Iterable[str]:
        return self._using(caches, {obj["metadata"]["name"]})

    def _by_secret(self, obj: Mapping[str, Any], caches: Caches) -> Iterable[str]:
        """The RestateDeployments of every environment whose token this Secret holds."""
        secret = obj["metadata"]["name"]
        environments = {
            rce["metadata"]["name"]
            for rce in caches.list(resources.RESTATE_CLOUD_ENVIRONMENT)
            if (((rce.get("spec") or {}).get("authentication") or {}).get("secret") or {}).get(
                "name"
            )
            == secret
        }
        return self._using(caches, environments) if environments else []

    # -- the reconcile -------------------------------------------------------------------

    def observe(self, key: str) -> DeploymentObservation | UnreadableDeployment | None:
        """The RestateDeployment, what it owns, its cluster and Restate's view as last read;
        None once it is gone (a deleting one is observed: its finalizer is ours to release)."""
        namespace, name = split_key(key)
        raw = self.caches.get(resources.RESTATE_DEPLOYMENT, namespace, name)
        if raw is None:
            return None
        try:
            rsd = RestateDeployment.model_validate(raw)
        except ValidationError as exc:
            # Past the CRD (an older one, or a rule it cannot express): not acted on
            # half-understood, but told which field to fix (restate_op.deployment_unreadable).
            log.error("RestateDeployment %s does not match the model: %s", key, exc)
            return UnreadableDeployment(raw, exc)
        uid = rsd.metadata.uid

        def owned(kind: Kind) -> list[Mapping[str, Any]]:
            return [
                obj
                for obj in self.caches.list(kind, namespace, OWNED_SELECTOR)
                if controlled_by(obj, uid)
            ]

        replica_sets = owned(resources.REPLICA_SET)
        rs_names = {rs["metadata"]["name"] for rs in replica_sets}
        pods = tuple(
            pod
            for pod in self.caches.list(resources.POD, namespace, POD_SELECTOR)
            if any(
                ref.get("kind") == "ReplicaSet" and ref.get("name") in rs_names
                for ref in pod["metadata"].get("ownerReferences") or []
            )
        )
        register = rsd.spec.restate.register
        cluster = (
            self.caches.get(resources.RESTATE_CLUSTER, None, register.cluster)
            if register.cluster is not None
            else None
        )
        cloud = None
        if register.cloud is not None:
            rce = self.caches.get(resources.RESTATE_CLOUD_ENVIRONMENT, None, register.cloud)
            ref = (((rce or {}).get("spec") or {}).get("authentication") or {}).get("secret")
            secret = (
                self.caches.get(
                    resources.SECRET, self.settings.operator_namespace, str(ref.get("name"))
                )
                if isinstance(ref, Mapping)
                else None
            )
            cloud = cloud_access(register.cloud, rce, secret, self.settings)
        knative_served = self.capabilities().knative_serving
        configurations = owned(resources.KNATIVE_CONFIGURATION) if knative_served else []
        config_uids = {c["metadata"].get("uid") for c in configurations}
        config_names = {c["metadata"]["name"] for c in configurations}
        routes = (
            [
                r
                for r in self.caches.list(resources.KNATIVE_ROUTE, namespace, OWNED_SELECTOR)
                if any(controlled_by(r, u) for u in config_uids if u)
            ]
            if knative_served
            else []
        )
        revisions = (
            [
                r
                for r in self.caches.list(resources.KNATIVE_REVISION, namespace, REVISION_SELECTOR)
                if (r["metadata"].get("labels") or {}).get(knative.CONFIGURATION_LABEL)
                in config_names
            ]
            if knative_served
            else []
        )
        observation = DeploymentObservation(
            rsd=rsd,
            raw=raw,
            replica_sets=tuple(replica_sets),
            services={s["metadata"]["name"]: s for s in owned(resources.SERVICE)},
            pods=pods,
            autoscalers={
                h["metadata"]["name"]: h for h in owned(resources.HORIZONTAL_POD_AUTOSCALER)
            },
            configurations=tuple(configurations),
            routes={r["metadata"]["name"]: r for r in routes},
            revisions={r["metadata"]["name"]: r for r in revisions},
            knative_served=knative_served,
            cluster=cluster,
            cloud=cloud,
            rejections=self._rejections(rsd),
            settings=self.settings,
        )
        admin = observation.admin
        view = self.memory.get(view_key(admin)) if admin is not None else None
        if not isinstance(view, RestateView):
            return observation
        return replace(observation, restate=view)

    def _rejections(self, rsd: RestateDeployment) -> dict[str, Rejection]:
        """Memory first; after a restart, what the status recorded."""
        found = recorded_rejections(rsd.status)
        held = self.memory.get(rejections_key(rsd.namespace, rsd.name))
        if isinstance(held, Mapping):
            found.update({k: v for k, v in held.items() if isinstance(v, Rejection)})
        return found

    def decide(self, obs: DeploymentObservation | UnreadableDeployment, now: float) -> Decision:
        if isinstance(obs, UnreadableDeployment):
            return decide_unreadable(obs)
        return decide(obs, now)

    def conclude(
        self,
        obs: DeploymentObservation | UnreadableDeployment,
        decision: Decision,
        outcome: Outcome,
        now: float,
    ) -> Conclusion:
        if isinstance(obs, UnreadableDeployment):
            return conclude_unreadable(obs, decision, now)
        return conclude(obs, decision, outcome, now)

    def forget(self, key: str) -> Sequence[Effect]:
        """Gone: its remembered rejections go with it (a namesake created later starts
        afresh, and memory does not grow with every RestateDeployment ever seen)."""
        return (Forget(rejections_key(*split_key(key))),)

    def update_gauges(self) -> None:
        return None
