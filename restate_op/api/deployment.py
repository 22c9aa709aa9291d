"""pydantic models of ``restate.dev/v1beta1`` RestateDeployment: the single source of truth.

A RestateDeployment is a Deployment-like object for Restate SDK services: every distinct pod
template (plus the few fields that change the endpoint Restate is told about) is a *version*,
run as its own ReplicaSet and Service, registered with a Restate admin API and retired only
once Restate no longer needs it.

Field names, defaults and validation follow the upstream operator's CRD (restatedev/
restate-operator, ``crd/restatedeployments.yaml``) so that its manifests apply unchanged;
the differences are additions (a per-version status list, three conditions) and rules the
upstream CRD states but does not enforce (``deploymentMode`` immutable also when it is first
set; exactly one registration target, enforced by CEL and by the model alike).

The CRD (``crd/restatedeployments.yaml``), ``crd/RestateDeployment.pkl`` and the reference
section are generated from these models by ``python -m restate_op generate``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema, model_validator

from restate_op.api.k8s_openapi import CORE, MARKER, NOT_REQUIRED
from restate_op.api.kube_types import KubeModel, LabelSelector, StringMap
from restate_op.api.models import Condition, ObjectMeta

DEFAULT_REPLICAS = 1
DEFAULT_REVISION_HISTORY_LIMIT = 10
#: Upstream's ``drain_delay_seconds()``: how long an unused version is kept before removal.
DEFAULT_DRAIN_DELAY_SECONDS = 300
DEFAULT_ADMIN_PORT = 9070
KNATIVE_TAG_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"

#: ``registerTarget`` has exactly one of these; the message is upstream's.
REGISTER_TARGETS = ("cluster", "cloud", "service", "url")
EXACTLY_ONE_TARGET = (
    "Exactly one of `cluster`, `cloud`, `service` or `url` must be specified in "
    "spec.restate.register"
)
EXACTLY_ONE_TARGET_RULE = (
    "[has(self.cluster), has(self.cloud), has(self.service), has(self.url)]"
    ".filter(x, x).size() == 1"
)
#: Unset means ReplicaSet mode, so "unset" and "replicaset" are the same mode: moving between
#: them is allowed, and any move to or from knative is refused -- also the first time the
#: field is set, which a rule on the field itself cannot see (Kubernetes evaluates a
#: transition rule only when the field exists in both objects; upstream's rule misses it).
MODE_UNCHANGED_RULE = (
    "(has(self.deploymentMode) ? self.deploymentMode : 'replicaset') == "
    "(has(oldSelf.deploymentMode) ? oldSelf.deploymentMode : 'replicaset')"
)
AUTOSCALING_RULE = (
    "!has(self.autoscaling) || !has(self.deploymentMode) || self.deploymentMode != 'knative'"
)

VersionPhase = Literal["Starting", "Registering", "Latest", "Draining", "Retired", "Rejected"]


def _int32(**extra: Any) -> Any:
    return Field(default=None, ge=0, json_schema_extra={"format": "int32"}, **extra)


class KnativeSpec(KubeModel):
    """Knative Serving mode: one Configuration and Route per tag instead of a ReplicaSet."""

    tag: str | None = Field(
        default=None,
        pattern=KNATIVE_TAG_PATTERN,
        description="The same tag updates the version in place (a new Knative Revision, the "
        "same Restate deployment); a new tag makes a new version. Unset: the template hash.",
    )
    min_scale: int | None = _int32(
        description="autoscaling.knative.dev/min-scale (default 0); a user annotation wins."
    )
    max_scale: int | None = _int32(description="autoscaling.knative.dev/max-scale.")
    target: int | None = _int32(description="autoscaling.knative.dev/target.")


class ServiceReference(KubeModel):
    """A Service in front of a Restate admin API (register.service)."""

    name: str
    namespace: str
    path: str | None = Field(
        default=None,
        description="Path prefix of the admin API; kept in every admin URL (upstream drops it).",
    )
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Admin port (default 9070).",
        json_schema_extra={"format": "int32"},
    )


class RegisterTarget(KubeModel):
    """The Restate whose admin API the versions are registered with: exactly one."""

    cluster: str | None = Field(
        default=None,
        description="A RestateCluster (restate.dev/v1) by name; versions register once it "
        "is Ready.",
    )
    cloud: str | None = Field(
        default=None,
        description="A RestateCloudEnvironment by name: its admin URL and bearer token; "
        "versions register their tunnel URLs.",
    )
    service: ServiceReference | None = None
    url: str | None = Field(
        default=None, description="The admin API's base URL; a path in it is kept."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> RegisterTarget:
        if sum(getattr(self, t) is not None for t in REGISTER_TARGETS) != 1:
            raise ValueError(EXACTLY_ONE_TARGET)
        return self


class RestateOptions(KubeModel):
    """How the versions are registered with Restate."""

    register_: Annotated[
        RegisterTarget,
        Field(
            alias="register",
            json_schema_extra={
                "x-kubernetes-validations": [
                    {"rule": EXACTLY_ONE_TARGET_RULE, "message": EXACTLY_ONE_TARGET}
                ]
            },
        ),
    ]
    service_path: str | None = Field(
        default=None, description="Path appended to the version's Service URL when registering."
    )
    use_http11: bool | None = Field(
        default=None, description="Register with use_http_11 (HTTP/1.1 instead of HTTP/2)."
    )
    tunnel_mode: Literal["external", "in-process"] | None = Field(
        default=None,
        description="Only with register.cloud: external (the environment's tunnel client) "
        "or in-process (RESTATE_INPROC_* injected into the pods).",
    )
    drain_delay_seconds: int | None = Field(
        default=None,
        ge=0,
        description="How long a version no invocation needs any more is kept before it is "
        "scaled to zero and removed from Restate (default 300).",
        json_schema_extra={"format": "int64"},
    )

    @property
    def register(self) -> RegisterTarget:
        """``register`` (the field is ``register_`` in Python: BaseModel has a ``register``)."""
        return self.register_

    @property
    def drain_delay(self) -> int:
        return (
            DEFAULT_DRAIN_DELAY_SECONDS
            if self.drain_delay_seconds is None
            else self.drain_delay_seconds
        )


class PodTemplateMetadata(KubeModel):
    """The part of ObjectMeta a pod template may carry."""

    annotations: StringMap | None = None
    labels: StringMap | None = None


def _int64(description: str) -> dict[str, Any]:
    return {"type": "integer", "format": "int64", "description": description}


#: A PodSpec, plus the fields a Knative revision template adds to it (upstream allows them).
KnativePodSpec = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            MARKER: f"{CORE}PodSpec",
            "properties": {
                "timeoutSeconds": _int64("Knative: the request timeout of the revision."),
                "containerConcurrency": _int64("Knative: concurrent requests per container."),
                "idleTimeoutSeconds": _int64("Knative: the idle timeout of a request."),
                "responseStartTimeoutSeconds": _int64(
                    "Knative: how long to wait for the first byte of a response."
                ),
            },
        }
    ),
]
#: An HPA spec without scaleTargetRef, which the operator sets on each draining version.
AutoscalingSpec = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            MARKER: "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec",
            NOT_REQUIRED: ["scaleTargetRef"],
        }
    ),
]


class PodTemplate(KubeModel):
    """A pod template; its spec is passed through verbatim (with Kubernetes' schema)."""

    metadata: PodTemplateMetadata | None = None
    spec: KnativePodSpec = Field(
        description="A PodSpec (in Knative mode also timeoutSeconds, containerConcurrency); "
        "passed through to the version's ReplicaSet."
    )


class RestateDeploymentSpec(KubeModel):
    replicas: int | None = _int32(
        description="Pods of the latest version (default 1); ReplicaSet mode only."
    )
    revision_history_limit: int | None = _int32(
        description="Retired versions kept at zero replicas for rollback (default 10)."
    )
    min_ready_seconds: int | None = _int32(description="Passed to each version's ReplicaSet.")
    selector: LabelSelector | None = None
    template: PodTemplate
    restate: RestateOptions
    deployment_mode: Literal["replicaset", "knative"] | None = Field(
        default=None,
        description="replicaset (default) or knative. Immutable, also when first set.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self == oldSelf", "message": "deploymentMode is immutable after creation"}
            ]
        },
    )
    knative: KnativeSpec | None = None
    autoscaling: AutoscalingSpec | None = Field(
        default=None,
        description="A HorizontalPodAutoscaler spec applied to each draining version "
        "(scaleTargetRef is set by the operator); ReplicaSet mode only.",
    )

    @model_validator(mode="after")
    def _autoscaling_only_in_replicaset_mode(self) -> RestateDeploymentSpec:
        if self.autoscaling is not None and self.deployment_mode == "knative":
            raise ValueError("spec.autoscaling is only supported in replicaset mode (not knative)")
        return self

    @property
    def desired_replicas(self) -> int:
        return DEFAULT_REPLICAS if self.replicas is None else self.replicas

    @property
    def history_limit(self) -> int:
        if self.revision_history_limit is None:
            return DEFAULT_REVISION_HISTORY_LIMIT
        return self.revision_history_limit

    @property
    def mode(self) -> Literal["replicaset", "knative"]:
        return self.deployment_mode or "replicaset"


class KnativeStatus(KubeModel):
    configuration_name: str | None = None
    route_name: str | None = None
    url: str | None = None
    latest_revision: str | None = None


class VersionStatus(KubeModel):
    """One version: why it still exists, and what Restate and Kubernetes say about it."""

    name: str = Field(description="The versioned name of its ReplicaSet and Service.")
    hash: str = Field(description="The template hash (restate.dev pod-template-hash).")
    phase: VersionPhase
    reason: str | None = None
    message: str | None = None
    deployment_id: str | None = Field(default=None, description="Restate's deployment id.")
    replicas: int | None = Field(default=None, json_schema_extra={"format": "int32"})
    ready_replicas: int | None = Field(default=None, json_schema_extra={"format": "int32"})
    pinned_invocations: int | None = Field(
        default=None,
        description="Non-completed invocations Restate has pinned to this version.",
        json_schema_extra={"format": "int64"},
    )
    remove_at: str | None = Field(
        default=None,
        description="When a version nothing needs any more is retired (drainDelaySeconds).",
        json_schema_extra={"format": "date-time"},
    )
    rejections: int | None = Field(
        default=None,
        description="Registrations Restate refused in a row (the backoff grows with it).",
        json_schema_extra={"format": "int32"},
    )
    retry_at: str | None = Field(
        default=None,
        description="When a rejected registration is tried again.",
        json_schema_extra={"format": "date-time"},
    )


class RestateDeploymentStatus(KubeModel):
    observed_generation: int | None = Field(default=None, json_schema_extra={"format": "int64"})
    conditions: Annotated[
        list[Condition] | None,
        Field(
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            }
        ),
    ] = None
    deployment_id: str | None = Field(
        default=None, description="Restate's deployment id of the latest version."
    )
    latest_version: str | None = Field(default=None, description="Name of the latest version.")
    replicas: int | None = Field(
        default=None,
        description="Pods of the latest version (the scale subresource's status replicas).",
        json_schema_extra={"format": "int32"},
    )
    desired_replicas: int | None = Field(default=None, json_schema_extra={"format": "int32"})
    ready_replicas: int | None = Field(default=None, json_schema_extra={"format": "int32"})
    available_replicas: int | None = Field(default=None, json_schema_extra={"format": "int32"})
    unavailable_replicas: int | None = Field(default=None, json_schema_extra={"format": "int32"})
    collision_count: int | None = Field(
        default=None,
        description="Bumped on a version-name collision; part of the hash.",
        json_schema_extra={"format": "int32"},
    )
    label_selector: str | None = Field(
        default=None, description="Selects the latest version's pods (for the scale subresource)."
    )
    knative: KnativeStatus | None = None
    versions: Annotated[
        list[VersionStatus] | None,
        Field(
            description="Every version that still exists, newest first.",
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
            },
        ),
    ] = None
    message: str | None = None

    def version(self, name: str) -> VersionStatus | None:
        return next((v for v in self.versions or () if v.name == name), None)


class DeploymentMeta(ObjectMeta):
    """The metadata a RestateDeployment's reconcile reads (it is namespaced)."""

    namespace: str | None = None
    finalizers: list[str] | None = None


class RestateDeployment(KubeModel):
    """Versioned Restate SDK services, registered with Restate and drained safely."""

    api_version: Literal["restate.dev/v1beta1"] = "restate.dev/v1beta1"
    kind: Literal["RestateDeployment"] = "RestateDeployment"
    metadata: DeploymentMeta
    spec: RestateDeploymentSpec
    status: RestateDeploymentStatus | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"
