"""pydantic models of ``restate.dev/v1beta1`` RestateCloudEnvironment: the single source of truth.

A RestateCloudEnvironment names a Restate Cloud environment (its id, region and request
signing key) and the Secret holding the bearer token for its admin API. The operator runs
the tunnel client that lets Restate Cloud reach services inside the cluster, and
RestateDeployments with ``register.cloud`` register their versions with that environment.

Field names and defaults follow the upstream operator's CRD (``crd/
restatecloudenvironments.yaml``) so its manifests apply unchanged. Upstream validates the
environment id, the region and the key prefix only when a RestateDeployment uses them; here
the CRD refuses them at apply time (CEL) and the operator checks them again on every
reconcile (an object stored under an older CRD). The status is restate-op's own: upstream
has none.

The CRD (``crd/restatecloudenvironments.yaml``), ``crd/RestateCloudEnvironment.pkl`` and
the reference section are generated from these models by ``python -m restate_op generate``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field

from restate_op.api.kube_types import (
    Affinity,
    EnvVar,
    KubeModel,
    PodDNSConfig,
    ResourceRequirements,
    StringMap,
    Toleration,
)
from restate_op.api.models import Condition, ObjectMeta

#: ``tunnel-<name>`` must fit a 63-character name.
MAX_NAME_LENGTH = 56
TUNNEL_PREFIX = "tunnel-"
ENVIRONMENT_PREFIX = "env_"
KEY_PREFIX = "publickeyv1_"
#: Upstream's rules (§1.8): the id alphanumeric, ``_`` or ``-``; the region lowercase
#: DNS-style, one label or several (BYOC regions, upstream v2.6.1).
ENVIRONMENT_ID_PATTERN = r"^[A-Za-z0-9_-]+$"
#: ``[.]`` rather than a backslash: the rule is also a CEL string literal.
REGION_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

ENVIRONMENT_ID_MESSAGE = (
    "environmentId must be letters, digits, '_' or '-' (the id Restate Cloud shows, "
    "e.g. env_201k...)"
)
REGION_MESSAGE = "region must be lowercase DNS labels separated by dots, e.g. us or eu"
KEY_MESSAGE = f"signingPublicKey must begin with {KEY_PREFIX}"


def _cel(rule: str, message: str) -> dict[str, object]:
    return {"x-kubernetes-validations": [{"rule": rule, "message": message}]}


class SecretKeySelector(KubeModel):
    """A key of a Secret in the operator's namespace."""

    name: str = Field(description="The Secret's name; it lives in the operator's namespace.")
    key: str = Field(description="The key holding the token (surrounding whitespace trimmed).")


class Authentication(KubeModel):
    secret: SecretKeySelector = Field(
        description="The Secret holding the bearer token of the environment's admin API; "
        "it must be in the same namespace as the operator."
    )


class TunnelSpec(KubeModel):
    """The tunnel client pods that let Restate Cloud reach services in this cluster."""

    remote_proxy: bool | None = Field(
        default=None,
        description="Also expose unauthenticated access to the Cloud environment on ports "
        "8080 (ingress) and 9070 (admin) of the tunnel Service.",
    )
    replicas: int | None = Field(
        default=None,
        ge=0,
        description="Tunnel client pods (default 1); more than one gets a PodDisruptionBudget.",
        json_schema_extra={"format": "int32"},
    )
    image: str | None = Field(
        default=None,
        description="Tunnel client image (default: the operator's --tunnel-client-default-image).",
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    env: Annotated[
        list[EnvVar] | None,
        Field(
            description="Environment of the tunnel client; overrides the operator's "
            "defaults by name.",
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
            },
        ),
    ] = None
    resources: ResourceRequirements | None = Field(
        default=None,
        description="Default: requests 1 CPU / 1Gi, limits 2 CPU / 2Gi.",
    )
    dns_config: PodDNSConfig | None = None
    dns_policy: Literal["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"] | None = None
    tolerations: list[Toleration] | None = None
    node_selector: Annotated[
        StringMap | None, Field(json_schema_extra={"x-kubernetes-map-type": "atomic"})
    ] = None
    affinity: Affinity | None = Field(
        default=None,
        description="Default: preferred pod anti-affinity across zones (upstream documents it "
        "but does not set it); {} disables all affinity.",
    )

    @property
    def desired_replicas(self) -> int:
        return 1 if self.replicas is None else self.replicas


class RestateCloudEnvironmentSpec(KubeModel):
    environment_id: Annotated[
        str,
        Field(
            description="The environment's id; begins env_ (an unprefixed id is tolerated).",
            json_schema_extra=_cel(
                f"self.matches('{ENVIRONMENT_ID_PATTERN}')", ENVIRONMENT_ID_MESSAGE
            ),
        ),
    ]
    region: Annotated[
        str,
        Field(
            description="The environment's region, e.g. us or eu (several labels for BYOC).",
            json_schema_extra=_cel(f"self.matches('{REGION_PATTERN}')", REGION_MESSAGE),
        ),
    ]
    signing_public_key: Annotated[
        str,
        Field(
            description=f"The environment's request signing key; begins {KEY_PREFIX}. It is "
            "not a secret.",
            json_schema_extra=_cel(f"self.startsWith('{KEY_PREFIX}')", KEY_MESSAGE),
        ),
    ]
    authentication: Authentication
    tunnel: TunnelSpec | None = None

    @property
    def tunnel_spec(self) -> TunnelSpec:
        return self.tunnel or TunnelSpec()

    @property
    def unprefixed_id(self) -> str:
        """The id without ``env_``: the form Restate Cloud's host names use."""
        return self.environment_id.removeprefix(ENVIRONMENT_PREFIX)

    @property
    def prefixed_id(self) -> str:
        """The id with ``env_``: the form the tunnel clients are given."""
        return ENVIRONMENT_PREFIX + self.unprefixed_id


def spec_problems(spec: RestateCloudEnvironmentSpec) -> list[str]:
    """The CRD's rules, checked again by the operator (an object stored under an older CRD
    was never held to them); empty when the spec is valid."""
    problems = []
    if not re.fullmatch(ENVIRONMENT_ID_PATTERN, spec.environment_id):
        problems.append(f"spec.environmentId {spec.environment_id!r}: {ENVIRONMENT_ID_MESSAGE}")
    if not re.fullmatch(REGION_PATTERN, spec.region):
        problems.append(f"spec.region {spec.region!r}: {REGION_MESSAGE}")
    if not spec.signing_public_key.startswith(KEY_PREFIX):
        problems.append(f"spec.signingPublicKey: {KEY_MESSAGE}")
    return problems


class RestateCloudEnvironmentStatus(KubeModel):
    phase: str | None = None
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
    tunnel: str | None = Field(
        default=None, description="The tunnel Deployment and Service (in the operator namespace)."
    )
    replicas: int | None = Field(default=None, json_schema_extra={"format": "int32"})
    ready_replicas: int | None = Field(default=None, json_schema_extra={"format": "int32"})
    available_replicas: int | None = Field(default=None, json_schema_extra={"format": "int32"})
    message: str | None = None


class CloudEnvironmentMeta(ObjectMeta):
    finalizers: list[str] | None = None


class RestateCloudEnvironment(KubeModel):
    """A Restate Cloud environment, its admin API credentials and its tunnel client."""

    api_version: Literal["restate.dev/v1beta1"] = "restate.dev/v1beta1"
    kind: Literal["RestateCloudEnvironment"] = "RestateCloudEnvironment"
    metadata: CloudEnvironmentMeta
    spec: RestateCloudEnvironmentSpec
    status: RestateCloudEnvironmentStatus | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def tunnel_name(self) -> str:
        return TUNNEL_PREFIX + self.metadata.name
