"""The RestateCloudEnvironment controller: what it watches, how it observes.

The runtime's third controller, registered with the RestateDeployment one (both behind
``--restate-deployments``: an environment matters only to the RestateDeployments that
register with it, and one flag keeps the chart's value, CRDs and rules together). Its kind
is cluster-scoped, so its key is the name. It watches its RCEs; the tunnel Deployments,
Services and PodDisruptionBudgets (label ``app.kubernetes.io/name:
restate-cloud-tunnel-client``) and the Secrets, both in the operator's namespace only
(Secrets are never cached cluster-wide), a Secret mapping to every RCE whose token it holds.
All of it only while the RCE CRD is served (an optional API, like the AWS ones): an operator
whose RestateDeployments never use Restate Cloud needs only the RestateDeployment CRD.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from restate_op.api.cloud import RestateCloudEnvironment
from restate_op.cloud_children import TUNNEL_SELECTOR
from restate_op.cloud_decide import CONTROLLER, CloudObservation, conclude, decide
from restate_op.controller import Caches, Conclusion, Decision, RequiredApi, Watch
from restate_op.effects import Effect, Outcome
from restate_op.executor import controlled_by
from restate_op.kube import resources
from restate_op.kube.resources import Kind
from restate_op.settings import Capabilities, OperatorSettings

log = logging.getLogger(__name__)

OWNED_KINDS: tuple[Kind, ...] = (
    resources.DEPLOYMENT,
    resources.SERVICE,
    resources.POD_DISRUPTION_BUDGET,
)


def served(capabilities: Capabilities, _settings: OperatorSettings) -> bool:
    """The RCE CRD is optional: without it nothing of Restate Cloud is watched (and no Secret
    is cached); installed later, the runtime's re-discovery starts the watches."""
    return capabilities.restate_cloud_environment


def _owner(obj: Mapping[str, Any], _caches: Caches) -> Iterable[str]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [r["name"] for r in refs if r.get("kind") == "RestateCloudEnvironment" and r.get("name")]


class RestateCloudEnvironmentController:
    name = CONTROLLER
    kind = resources.RESTATE_CLOUD_ENVIRONMENT

    def __init__(self, caches: Caches, settings: OperatorSettings) -> None:
        self.caches = caches
        self.settings = settings

    def watches(self) -> Sequence[Watch]:
        namespace = self.settings.operator_namespace
        return (
            Watch(self.kind, None, lambda obj, _c: [obj["metadata"]["name"]], enabled=served),
            *(
                Watch(k, TUNNEL_SELECTOR, _owner, namespace=namespace, enabled=served)
                for k in OWNED_KINDS
            ),
            Watch(resources.SECRET, None, self._by_secret, namespace=namespace, enabled=served),
        )

    def required_apis(self, settings: OperatorSettings) -> Sequence[RequiredApi]:
        """None: the CRD is optional (see ``served``); the chart installs it with the
        RestateDeployment one."""
        return []

    def _by_secret(self, obj: Mapping[str, Any], caches: Caches) -> Iterable[str]:
        secret = obj["metadata"]["name"]
        return [
            rce["metadata"]["name"]
            for rce in caches.list(self.kind)
            if (((rce.get("spec") or {}).get("authentication") or {}).get("secret") or {}).get(
                "name"
            )
            == secret
        ]

    def observe(self, key: str) -> CloudObservation | None:
        raw = self.caches.get(self.kind, None, key)
        if raw is None:
            return None
        try:
            rce = RestateCloudEnvironment.model_validate(raw)
        except ValidationError as exc:
            log.error("RestateCloudEnvironment %s does not match the model: %s", key, exc)
            return None
        namespace = self.settings.operator_namespace

        def owned(kind: Kind) -> Mapping[str, Any] | None:
            found = self.caches.get(kind, namespace, rce.tunnel_name)
            return found if found is not None and controlled_by(found, rce.metadata.uid) else None

        return CloudObservation(
            rce=rce,
            raw=raw,
            secret=self.caches.get(
                resources.SECRET, namespace, rce.spec.authentication.secret.name
            ),
            deployment=owned(resources.DEPLOYMENT),
            service=owned(resources.SERVICE),
            pdb=owned(resources.POD_DISRUPTION_BUDGET),
            settings=self.settings,
        )

    def decide(self, obs: CloudObservation, now: float) -> Decision:
        return decide(obs, now)

    def conclude(
        self, obs: CloudObservation, decision: Decision, outcome: Outcome, now: float
    ) -> Conclusion:
        return conclude(obs, decision, outcome, now)

    def forget(self, key: str) -> Sequence[Effect]:
        return ()

    def update_gauges(self) -> None:
        return None
