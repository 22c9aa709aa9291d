"""pydantic models of ``restate.dev/v1`` RestateCluster: the single source of truth.

The CRD (``crd/restateclusters.yaml``), the chart's copy of it and ``crd/RestateCluster.pkl``
are generated from these models by ``python -m restate_op generate``. Field names follow the
upstream Rust operator so that its manifests apply unchanged.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from restate_op.api.kube_types import (
    Affinity,
    Container,
    EnvVar,
    KubeModel,
    Lifecycle,
    LocalObjectReference,
    NetworkEgressRule,
    NetworkPolicyPeer,
    PodDNSConfig,
    ResourceRequirements,
    SecretKeyRef,
    StringMap,
    Toleration,
    TopologySpreadConstraint,
    Volume,
    VolumeMount,
)
from restate_op.api.lifecycle import Phase

DEFAULT_REPLICAS = 1
DEFAULT_TERMINATION_GRACE_SECONDS = 60
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def _atomic(**extra: Any) -> Any:
    """Field metadata for a list the API server must treat as one value (replaced whole)."""
    return Field(default=None, json_schema_extra={"x-kubernetes-list-type": "atomic", **extra})


def _cel(rule: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"x-kubernetes-validations": [{"rule": rule, "message": message, **extra}]}


class Compute(KubeModel):
    """How the Restate pods run: image, size, scheduling and pod customisation."""

    image: str = Field(description="Container image of Restate, e.g. restatedev/restate:1.7.")
    replicas: int | None = Field(
        default=None,
        ge=0,
        description="Number of Restate nodes (default 1). 0 hibernates the cluster.",
        json_schema_extra={"format": "int32"},
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    image_pull_secrets: list[LocalObjectReference] | None = None
    env: Annotated[
        list[EnvVar] | None,
        Field(
            description="Environment of the restate container; "
            "overrides operator defaults by name.",
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
            },
        ),
    ] = None
    resources: ResourceRequirements | None = None
    dns_policy: Literal["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"] | None = None
    dns_config: PodDNSConfig | None = None
    tolerations: list[Toleration] | None = None
    node_selector: Annotated[
        StringMap | None, Field(json_schema_extra={"x-kubernetes-map-type": "atomic"})
    ] = None
    affinity: Affinity | None = None
    topology_spread_constraints: list[TopologySpreadConstraint] | None = None
    priority_class_name: str | None = None
    annotations: StringMap | None = Field(
        default=None, description="Pod template annotations; operator annotations win."
    )
    labels: StringMap | None = Field(
        default=None, description="Pod template labels; operator labels win."
    )
    command: list[str] | None = None
    args: list[str] | None = None
    lifecycle: Lifecycle | None = None
    sidecars: list[Container] | None = Field(
        default=None, description="Native sidecars: init containers with restartPolicy Always."
    )
    termination_grace_period_seconds: int | None = Field(
        default=None, ge=0, json_schema_extra={"format": "int64"}
    )
    extra_volumes: list[Volume] | None = None
    extra_volume_mounts: list[VolumeMount] | None = None

    @property
    def desired_replicas(self) -> int:
        return DEFAULT_REPLICAS if self.replicas is None else self.replicas


class Storage(KubeModel):
    """The data volume of every Restate node."""

    storage_request_bytes: int = Field(
        ge=1,
        description="Size of each node's volume in bytes. May grow (online), never shrink.",
        json_schema_extra={
            "format": "int64",
            **_cel("self >= oldSelf", "storageRequestBytes cannot be decreased"),
        },
    )
    storage_class_name: str | None = Field(
        default=None,
        description="StorageClass of the volumes (cluster default when unset). Immutable.",
        json_schema_extra=_cel("self == oldSelf", "storageClassName is immutable"),
    )
    volume_attributes_class_name: str | None = None


class SigningKeySecretProvider(KubeModel):
    provider: str
    parameters: StringMap | None = None
    path: str


class RequestSigningPrivateKey(KubeModel):
    """Key Restate signs requests to services with; exactly one source."""

    version: Literal["v1"]
    secret: SecretKeyRef | None = None
    secret_provider: SigningKeySecretProvider | None = None

    @model_validator(mode="after")
    def _exactly_one_source(self) -> RequestSigningPrivateKey:
        if (self.secret is None) == (self.secret_provider is None):
            raise ValueError("set exactly one of secret or secretProvider")
        return self


class NetworkPeers(KubeModel):
    """Who may connect. Absent: nobody. ``[]``: everybody (not recommended)."""

    ingress: list[NetworkPolicyPeer] | None = _atomic()
    admin: list[NetworkPolicyPeer] | None = _atomic()
    node: list[NetworkPolicyPeer] | None = _atomic()
    metrics: list[NetworkPolicyPeer] | None = _atomic(
        description="Deprecated alias of node, used when node is unset."
    )

    @property
    def node_peers(self) -> list[NetworkPolicyPeer] | None:
        return self.node if self.node is not None else self.metrics


class Security(KubeModel):
    """Annotations, cloud identity and network fencing of the cluster."""

    service_annotations: StringMap | None = None
    service_account_annotations: StringMap | None = None
    aws_pod_identity_association_role_arn: str | None = None
    aws_pod_security_groups: list[str] | None = None
    network_peers: NetworkPeers | None = None
    network_egress_rules: list[NetworkEgressRule] | None = None
    disable_network_policies: bool | None = None
    allow_operator_access_to_admin: bool | None = None
    request_signing_private_key: RequestSigningPrivateKey | None = None
    trusted_ca_certs: list[SecretKeyRef] | None = None

    @property
    def network_policies_enabled(self) -> bool:
        return not self.disable_network_policies

    @property
    def operator_may_reach_admin(self) -> bool:
        return self.allow_operator_access_to_admin is not False


class ClusterOptions(KubeModel):
    auto_provision: bool | None = Field(
        default=None,
        description="The operator provisions the Restate cluster once "
        "(nodes must not self-provision).",
    )


#: Restate 1.7 writes snapshots to an S3(-compatible) object store only: its server refuses
#: ``file://`` at start-up ("Unsupported protocol"; Restate enables it in its own tests).
SNAPSHOT_DESTINATION_PATTERN = r"^s3://.+"


class Snapshots(KubeModel):
    """Where Restate puts partition snapshots (``[worker.snapshots]`` of every node).

    A snapshot is taken on request: annotate the RestateCluster with
    ``restate.dev/snapshot=<token>`` (a new token each time).
    """

    destination: str = Field(
        pattern=SNAPSHOT_DESTINATION_PATTERN,
        description="The snapshot repository, s3://bucket/prefix: an S3 or S3-compatible "
        "object store shared by every node (Restate 1.7 supports no other). Region, "
        "endpoint and credentials as Restate reads them: the pod's cloud identity, AWS_* "
        "variables, or [worker.snapshots] aws-* keys in spec.config.",
    )
    interval_records: int | None = Field(
        default=None,
        ge=1,
        description="Restate also snapshots a partition on its own every this many log "
        "records (snapshot-interval-num-records); unset: only on request.",
        json_schema_extra={"format": "int64"},
    )
    retained: int | None = Field(
        default=None,
        ge=1,
        le=255,
        description="Snapshots Restate keeps per partition in the repository (num-retained); "
        "unset: Restate's default.",
        json_schema_extra={"format": "int32"},
    )


class RestateClusterSpec(KubeModel):
    compute: Compute
    storage: Storage
    security: Security | None = None
    cluster_name: str | None = Field(
        default=None,
        description="Restate cluster name (RESTATE_CLUSTER_NAME); default: object name. "
        "Immutable: nodes refuse to start under a changed cluster name.",
        json_schema_extra=_cel("self == oldSelf", "clusterName is immutable"),
    )
    config: str | None = Field(default=None, description="Restate configuration file (TOML).")
    cluster: ClusterOptions | None = None
    snapshots: Snapshots | None = Field(
        default=None,
        description="The repository of partition snapshots; a snapshot is taken when the "
        "annotation restate.dev/snapshot gets a new value.",
    )

    @property
    def security_or_default(self) -> Security:
        return self.security or Security()


class Condition(KubeModel):
    """A Kubernetes API convention condition (``kubectl wait --for=condition=Ready``)."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = Field(
        default=None, json_schema_extra={"format": "date-time"}
    )
    observed_generation: int | None = Field(default=None, json_schema_extra={"format": "int64"})


class StorageStatus(KubeModel):
    requested_bytes: int | None = Field(default=None, json_schema_extra={"format": "int64"})
    current_bytes: int | None = Field(
        default=None,
        description="Smallest capacity among the cluster's volumes.",
        json_schema_extra={"format": "int64"},
    )
    capacity: str | None = Field(default=None, description="currentBytes, human-readable.")


class RestateHealthStatus(KubeModel):
    """Restate's own account of the cluster, as the operator last read it from the nodes."""

    members: list[str] | None = Field(
        default=None, description="Pods whose node is a metadata-server member."
    )
    nodes_alive: int | None = Field(
        default=None,
        description="Nodes the cluster controller sees alive.",
        json_schema_extra={"format": "int32"},
    )
    partitions: int | None = Field(
        default=None,
        description="Partitions the cluster was provisioned with.",
        json_schema_extra={"format": "int32"},
    )
    partitions_led: int | None = Field(
        default=None,
        description="Partitions an alive node leads.",
        json_schema_extra={"format": "int32"},
    )
    replication: str | None = Field(
        default=None, description="The partition replication the cluster runs with."
    )
    problems: list[str] | None = Field(
        default=None, description="What keeps the cluster from being healthy, by pod."
    )
    drift: list[str] | None = Field(
        default=None,
        description="Spec settings the running cluster does not follow (set at provisioning).",
    )
    error: str | None = Field(
        default=None, description="Why the nodes could not be asked (nothing is judged then)."
    )


class PartitionSnapshot(KubeModel):
    """One partition's snapshot, or why Restate did not take it."""

    partition: int = Field(json_schema_extra={"format": "int32"})
    snapshot_id: str | None = Field(default=None, description="Restate's id of the snapshot.")
    min_applied_lsn: int | None = Field(
        default=None,
        description="The log position the snapshot covers (up to and including).",
        json_schema_extra={"format": "int64"},
    )
    error: str | None = Field(
        default=None, description="Why this request made no new snapshot of the partition."
    )


class SnapshotsStatus(KubeModel):
    """The last snapshot request the operator handled (annotation restate.dev/snapshot)."""

    request: str | None = Field(
        default=None, description="The annotation's value handled last (a snapshot per token)."
    )
    taken_at: str | None = Field(
        default=None,
        description="When that request's snapshots were taken (none: no partition was).",
        json_schema_extra={"format": "date-time"},
    )
    partitions: list[PartitionSnapshot] | None = Field(
        default=None, description="The last snapshot of every partition."
    )
    error: str | None = Field(
        default=None, description="Why no snapshot, or not every one, was taken."
    )


class RestateClusterStatus(KubeModel):
    phase: Phase | None = None
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
    replicas: int | None = Field(default=None, json_schema_extra={"format": "int32"})
    ready_replicas: int | None = Field(default=None, json_schema_extra={"format": "int32"})
    replica_summary: str | None = Field(default=None, description="ready/desired, for kubectl get.")
    storage: StorageStatus | None = None
    provisioned: bool | None = None
    restate: RestateHealthStatus | None = None
    snapshots: SnapshotsStatus | None = None
    message: str | None = None


class ObjectMeta(KubeModel):
    """The part of metadata the operator reads."""

    name: str
    uid: str = ""
    generation: int = 0
    resource_version: str = ""
    labels: StringMap | None = None
    annotations: StringMap | None = None
    deletion_timestamp: str | None = None


class RestateCluster(KubeModel):
    """A Restate cluster: one Namespace of the same name holding everything it needs."""

    api_version: Literal["restate.dev/v1"] = "restate.dev/v1"
    kind: Literal["RestateCluster"] = "RestateCluster"
    metadata: ObjectMeta
    spec: RestateClusterSpec
    status: RestateClusterStatus | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def restate_cluster_name(self) -> str:
        return self.spec.cluster_name or self.metadata.name
