"""The subset of Kubernetes core types that RestateCluster, RestateDeployment and
RestateCloudEnvironment embed.

Types the operator reads (env vars, network policy peers, label selectors, tolerations) are
modelled field by field. Types it only passes through to the pod (affinity, containers,
volumes, lifecycle hooks, a whole PodSpec) stay plain dicts in Python, but their CRD schema
is Kubernetes' own (``restate_op.api.k8s_openapi``), so the API server checks them when the
custom resource is applied, not only later when the operator applies the child.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

from restate_op.api.k8s_openapi import CORE, MARKER


def _kubernetes(name: str) -> WithJsonSchema:
    """The field is the Kubernetes type ``name``; ``structural_schema`` expands its schema."""
    return WithJsonSchema({MARKER: name})


# Kubernetes objects passed through verbatim, with Kubernetes' schema in the CRD.
Affinity = Annotated[dict[str, Any], _kubernetes(f"{CORE}Affinity")]
Container = Annotated[dict[str, Any], _kubernetes(f"{CORE}Container")]
EnvVarSource = Annotated[dict[str, Any], _kubernetes(f"{CORE}EnvVarSource")]
Lifecycle = Annotated[dict[str, Any], _kubernetes(f"{CORE}Lifecycle")]
TopologySpreadConstraint = Annotated[dict[str, Any], _kubernetes(f"{CORE}TopologySpreadConstraint")]
Volume = Annotated[dict[str, Any], _kubernetes(f"{CORE}Volume")]
VolumeMount = Annotated[dict[str, Any], _kubernetes(f"{CORE}VolumeMount")]
IntOrString = Annotated[
    int | str,
    WithJsonSchema({"x-kubernetes-int-or-string": True}),
]
StringMap = dict[str, str]


class KubeModel(BaseModel):
    """Base for every API model: camelCase on the wire, unknown fields ignored.

    Unknown fields are ignored rather than rejected so that an operator reading an object
    written by a newer CRD version keeps working; the API server's pruning is the gate.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=False,
    )

    def to_kube(self) -> dict[str, Any]:
        """The object as the API server sees it: camelCase, unset fields omitted."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class LabelSelectorRequirement(KubeModel):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] | None = None


class LabelSelector(KubeModel):
    match_labels: StringMap | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None


class IPBlock(KubeModel):
    cidr: str
    except_: list[str] | None = Field(default=None, alias="except")


class NetworkPolicyPeer(KubeModel):
    ip_block: IPBlock | None = None
    namespace_selector: LabelSelector | None = None
    pod_selector: LabelSelector | None = None


class NetworkPolicyPort(KubeModel):
    port: IntOrString | None = None
    protocol: Literal["TCP", "UDP", "SCTP"] | None = None
    end_port: int | None = Field(default=None, json_schema_extra={"format": "int32"})


class NetworkEgressRule(KubeModel):
    """One NetworkPolicy egress rule; ``{}`` allows all egress."""

    ports: Annotated[
        list[NetworkPolicyPort] | None,
        Field(json_schema_extra={"x-kubernetes-list-type": "atomic"}),
    ] = None
    to: Annotated[
        list[NetworkPolicyPeer] | None,
        Field(json_schema_extra={"x-kubernetes-list-type": "atomic"}),
    ] = None


class EnvVar(KubeModel):
    name: str
    value: str | None = None
    value_from: EnvVarSource | None = None


class LocalObjectReference(KubeModel):
    name: str


class ResourceClaim(KubeModel):
    name: str
    request: str | None = None


class ResourceRequirements(KubeModel):
    claims: list[ResourceClaim] | None = None
    limits: dict[str, IntOrString] | None = None
    requests: dict[str, IntOrString] | None = None


class PodDNSConfigOption(KubeModel):
    name: str | None = None
    value: str | None = None


class PodDNSConfig(KubeModel):
    nameservers: list[str] | None = None
    options: list[PodDNSConfigOption] | None = None
    searches: list[str] | None = None


class Toleration(KubeModel):
    key: str | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


class SecretKeyRef(KubeModel):
    secret_name: str
    key: str
