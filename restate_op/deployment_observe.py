"""What a RestateDeployment reconcile sees, as plain data: Kubernetes' view and Restate's.

Kubernetes' view comes from the informer caches: the RestateDeployment, the ReplicaSets,
Services and pods it owns, and (for ``register.cluster``) the target RestateCluster.

Restate's view is *as last read*: a ``QueryRestate`` effect asks the admin API which
deployments exist, which is the latest for each service and how many non-completed
invocations are pinned to each, and the executor keeps the answer in memory; the next
observation carries it here. So the decision is a pure function of both views, and a
missing or failed answer is data too (``RestateView.error``) that the decision must treat
with care -- it never reads as "Restate needs none of these versions".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from restate_op.api.deployment import RestateDeployment, RestateDeploymentStatus
from restate_op.cloud_identity import CloudAccess, external_tunnel_uri, in_process_tunnel_uri
from restate_op.deployment_identity import admin_url, endpoint_uri, same_uri
from restate_op.settings import OperatorSettings

# Labels and annotations: upstream's names where upstream has one, so its objects are read.
TEMPLATE_HASH_LABEL = "pod-template-hash"
OWNED_BY_LABEL = "restate.dev/owned-by"
LATEST_LABEL = "restate.dev/latest"
ALLOW_LABEL_PREFIX = "allow.restate.dev/"
POD_TEMPLATE_ANNOTATION = "restate.dev/pod-template"
DEPLOYMENT_ID_ANNOTATION = "restate.dev/deployment-id"
REMOVE_AT_ANNOTATION = "restate.dev/remove-version-at"
#: The URI a version is registered under. An old version's endpoint cannot be recomputed
#: from the spec once servicePath changed (a new version, but the old one keeps its path).
ENDPOINT_ANNOTATION = "restate.dev/endpoint"


@dataclass(frozen=True)
class KnownDeployment:
    """One deployment Restate lists."""

    id: str
    uri: str
    #: The services it offers.
    services: tuple[str, ...] = ()
    #: The services whose latest deployment it is (new invocations go to it).
    latest_for: tuple[str, ...] = ()
    #: Non-completed invocations pinned to it (they finish on it, nowhere else).
    pinned: int = 0


@dataclass(frozen=True)
class RestateView:
    """Restate's answer to the last ``QueryRestate``, or why there was none."""

    admin_url: str
    read_at: float
    deployments: tuple[KnownDeployment, ...] = ()
    #: The query failed (transport error, 5xx, unparseable answer): what happened.
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def by_uri(self, uri: str) -> KnownDeployment | None:
        return next((d for d in self.deployments if same_uri(d.uri, uri)), None)


@dataclass(frozen=True)
class Rejection:
    """Restate refused a version's registration (a 4xx): kept so the retry can back off."""

    #: The RestateDeployment's generation it was refused at: a spec change retries at once.
    generation: int
    #: Refusals in a row; the backoff grows with it.
    attempts: int
    #: Not tried again before this (epoch seconds).
    retry_at: float
    status: int | None = None
    code: str | None = None
    message: str = ""


def parse_time(value: str | None) -> float | None:
    """An RFC 3339 time stamp (as the status and the annotations hold them) in epoch seconds."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def recorded_rejections(status: RestateDeploymentStatus | None) -> dict[str, Rejection]:
    """The rejections the status records, for when memory has none (after a restart): the
    backoff carries on instead of starting over, and a spec change still retries at once."""
    if status is None:
        return {}
    found: dict[str, Rejection] = {}
    for v in status.versions or []:
        retry_at = parse_time(v.retry_at)
        if v.phase != "Rejected" or not v.rejections or retry_at is None:
            continue
        found[v.name] = Rejection(
            generation=status.observed_generation or 0,
            attempts=v.rejections,
            retry_at=retry_at,
            message=v.message or "",
        )
    return found


@dataclass(frozen=True)
class DeploymentObservation:
    """One RestateDeployment and everything of it the operator can see."""

    rsd: RestateDeployment
    #: The live object as the API server returned it (Events are about it).
    raw: Mapping[str, Any]
    #: The ReplicaSets it controls (one per version), any order.
    replica_sets: tuple[Mapping[str, Any], ...] = ()
    #: The Services it owns (versioned and stable), by name.
    services: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Its pods (every version's), for the restate.dev/latest label.
    pods: tuple[Mapping[str, Any], ...] = ()
    #: The HorizontalPodAutoscalers it owns (one per draining version), by name.
    autoscalers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Knative mode: the Configurations it controls (one per version), any order; the
    #: Routes they control and the Revisions of those Configurations, by name.
    configurations: tuple[Mapping[str, Any], ...] = ()
    routes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    revisions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Whether Knative Serving's API is served (the operator watches it only then).
    knative_served: bool = False
    #: The target RestateCluster (``register.cluster``), None if it does not exist.
    cluster: Mapping[str, Any] | None = None
    #: What ``register.cloud`` resolves to (None: another target).
    cloud: CloudAccess | None = None
    #: Restate's view as last read; None when it was never read (say, after a restart).
    restate: RestateView | None = None
    #: Refused registrations by version name (memory, else the recorded status).
    rejections: Mapping[str, Rejection] = field(default_factory=dict)
    settings: OperatorSettings = field(default_factory=OperatorSettings)

    @property
    def admin(self) -> str | None:
        """The admin API the versions register with; None while a cloud target is unusable."""
        if self.cloud is not None:
            return self.cloud.admin_url if self.cloud.usable else None
        return admin_url(self.rsd.spec.restate.register, self.settings.cluster_dns)

    @property
    def token(self) -> str | None:
        return self.cloud.token if self.cloud is not None else None

    @property
    def in_process(self) -> bool:
        return self.rsd.spec.restate.tunnel_mode == "in-process"

    def endpoint(self, version: str) -> str:
        """The URI a version is registered under: its Service, or its tunnel URL (cloud)."""
        path = self.rsd.spec.restate.service_path
        cloud = self.cloud
        if cloud is not None and cloud.found and cloud.tunnel_base:
            if self.in_process:
                return in_process_tunnel_uri(cloud, version, path)
            return external_tunnel_uri(
                cloud, version, self.rsd.namespace, self.settings.cluster_dns, path
            )
        return endpoint_uri(version, self.rsd.namespace, self.settings.cluster_dns, path)

    @property
    def deleting(self) -> bool:
        return self.rsd.metadata.deletion_timestamp is not None

    @property
    def knative(self) -> bool:
        return self.rsd.spec.mode == "knative"

    @property
    def version_objects(self) -> tuple[Mapping[str, Any], ...]:
        """One object per version: its ReplicaSet, or in Knative mode its Configuration."""
        return self.configurations if self.knative else self.replica_sets

    def replica_set(self, name: str) -> Mapping[str, Any] | None:
        """The version object named ``name`` (a Configuration in Knative mode)."""
        return next((o for o in self.version_objects if o["metadata"]["name"] == name), None)

    def pods_of(self, hash_: str) -> tuple[Mapping[str, Any], ...]:
        return tuple(
            p
            for p in self.pods
            if (p.get("metadata", {}).get("labels") or {}).get(TEMPLATE_HASH_LABEL) == hash_
        )

    @property
    def cluster_ready(self) -> bool:
        conditions = (self.cluster or {}).get("status", {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
