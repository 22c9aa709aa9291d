"""The Kubernetes kinds the operator talks to, and how their URLs are built.

A :class:`Kind` is the little bit of discovery information a REST call needs (group/version,
plural, scope). The constants below are every kind the operator reads or writes; keeping
them in one table also bounds the ``kind`` label of the API request metric.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    """Where a request goes, split the way ``kr8s.Api.call_api`` takes it.

    ``call_api`` joins ``base/version[/namespaces/<ns>]/url``; :attr:`path` does the same so
    the path can be logged and tested without an API object.
    """

    base: str
    version: str
    namespace: str | None
    url: str

    @property
    def path(self) -> str:
        """The request path, e.g. ``/apis/apps/v1/namespaces/ns/statefulsets/web``."""
        parts = [self.base]
        if self.version:
            parts.append(self.version)
        if self.namespace:
            parts += ["namespaces", self.namespace]
        parts.append(self.url)
        return "/".join(parts)

    def call_api_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``call_api`` (``base``, ``version``, ``namespace``, ``url``)."""
        return {
            "base": self.base,
            "version": self.version,
            "namespace": self.namespace,
            "url": self.url,
        }


@dataclass(frozen=True)
class Kind:
    """One resource type: ``apiVersion`` + ``kind``, its plural and its scope.

    Example:
        >>> STATEFUL_SET.path("ns", "web", "status")
        '/apis/apps/v1/namespaces/ns/statefulsets/web/status'
    """

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def group(self) -> str:
        """The API group; ``""`` for the core group."""
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        """The version within the group, e.g. ``v1``."""
        return self.api_version.rpartition("/")[2]

    def target(
        self,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> Target:
        """The request target for a collection (no ``name``) or one object.

        A namespaced kind without a namespace addresses the collection across all namespaces
        (list/watch only). Raises ``ValueError`` for combinations that can only be bugs: a
        namespace on a cluster-scoped kind, a single namespaced object without its namespace,
        or a subresource without a name.
        """
        if namespace and not self.namespaced:
            raise ValueError(f"{self.kind} is cluster-scoped; got namespace {namespace!r}")
        if name is not None and self.namespaced and not namespace:
            raise ValueError(f"{self.kind} {name!r} is namespaced; a namespace is required")
        if subresource and name is None:
            raise ValueError(f"subresource {subresource!r} needs an object name")
        if name is not None and not name:
            raise ValueError(f"empty {self.kind} name")
        url = self.plural
        if name is not None:
            url += f"/{name}"
            if subresource:
                url += f"/{subresource}"
        base = "/apis" if self.group else "/api"
        return Target(base=base, version=self.api_version, namespace=namespace or None, url=url)

    def path(
        self,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        """The request path for a collection or one object (see :meth:`target`)."""
        return self.target(namespace, name, subresource).path

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


NAMESPACE = Kind("v1", "Namespace", "namespaces", namespaced=False)
SERVICE_ACCOUNT = Kind("v1", "ServiceAccount", "serviceaccounts", namespaced=True)
SERVICE = Kind("v1", "Service", "services", namespaced=True)
CONFIG_MAP = Kind("v1", "ConfigMap", "configmaps", namespaced=True)
SECRET = Kind("v1", "Secret", "secrets", namespaced=True)
PERSISTENT_VOLUME_CLAIM = Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims", True)
POD = Kind("v1", "Pod", "pods", namespaced=True)
NODE = Kind("v1", "Node", "nodes", namespaced=False)
CORE_EVENT = Kind("v1", "Event", "events", namespaced=True)
STATEFUL_SET = Kind("apps/v1", "StatefulSet", "statefulsets", namespaced=True)
JOB = Kind("batch/v1", "Job", "jobs", namespaced=True)
REPLICA_SET = Kind("apps/v1", "ReplicaSet", "replicasets", namespaced=True)
DEPLOYMENT = Kind("apps/v1", "Deployment", "deployments", namespaced=True)
HORIZONTAL_POD_AUTOSCALER = Kind(
    "autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", namespaced=True
)
POD_DISRUPTION_BUDGET = Kind(
    "policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", namespaced=True
)
NETWORK_POLICY = Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", True)
STORAGE_CLASS = Kind("storage.k8s.io/v1", "StorageClass", "storageclasses", namespaced=False)
LEASE = Kind("coordination.k8s.io/v1", "Lease", "leases", namespaced=True)
EVENT = Kind("events.k8s.io/v1", "Event", "events", namespaced=True)
CUSTOM_RESOURCE_DEFINITION = Kind(
    "apiextensions.k8s.io/v1",
    "CustomResourceDefinition",
    "customresourcedefinitions",
    namespaced=False,
)
RESTATE_CLUSTER = Kind("restate.dev/v1", "RestateCluster", "restateclusters", namespaced=False)
RESTATE_DEPLOYMENT = Kind(
    "restate.dev/v1beta1", "RestateDeployment", "restatedeployments", namespaced=True
)
RESTATE_CLOUD_ENVIRONMENT = Kind(
    "restate.dev/v1beta1", "RestateCloudEnvironment", "restatecloudenvironments", namespaced=False
)
POD_IDENTITY_ASSOCIATION = Kind(
    "eks.services.k8s.aws/v1alpha1",
    "PodIdentityAssociation",
    "podidentityassociations",
    namespaced=True,
)
SECURITY_GROUP_POLICY = Kind(
    "vpcresources.k8s.aws/v1beta1",
    "SecurityGroupPolicy",
    "securitygrouppolicies",
    namespaced=True,
)
IAM_POLICY_MEMBER = Kind(
    "iam.cnrm.cloud.google.com/v1beta1",
    "IAMPolicyMember",
    "iampolicymembers",
    namespaced=True,
)
SECRET_PROVIDER_CLASS = Kind(
    "secrets-store.csi.x-k8s.io/v1",
    "SecretProviderClass",
    "secretproviderclasses",
    namespaced=True,
)
KNATIVE_CONFIGURATION = Kind(
    "serving.knative.dev/v1", "Configuration", "configurations", namespaced=True
)
KNATIVE_ROUTE = Kind("serving.knative.dev/v1", "Route", "routes", namespaced=True)
KNATIVE_REVISION = Kind("serving.knative.dev/v1", "Revision", "revisions", namespaced=True)

#: Every kind the operator knows, by ``(apiVersion, kind)``.
KINDS: Mapping[tuple[str, str], Kind] = {
    (k.api_version, k.kind): k
    for k in (
        NAMESPACE,
        SERVICE_ACCOUNT,
        SERVICE,
        CONFIG_MAP,
        SECRET,
        PERSISTENT_VOLUME_CLAIM,
        POD,
        NODE,
        CORE_EVENT,
        STATEFUL_SET,
        JOB,
        REPLICA_SET,
        HORIZONTAL_POD_AUTOSCALER,
        POD_DISRUPTION_BUDGET,
        NETWORK_POLICY,
        STORAGE_CLASS,
        LEASE,
        EVENT,
        CUSTOM_RESOURCE_DEFINITION,
        RESTATE_CLUSTER,
        RESTATE_DEPLOYMENT,
        RESTATE_CLOUD_ENVIRONMENT,
        DEPLOYMENT,
        POD_IDENTITY_ASSOCIATION,
        IAM_POLICY_MEMBER,
        SECURITY_GROUP_POLICY,
        SECRET_PROVIDER_CLASS,
        KNATIVE_CONFIGURATION,
        KNATIVE_ROUTE,
        KNATIVE_REVISION,
    )
}


def kind_for(api_version: str, kind: str) -> Kind:
    """The :class:`Kind` for ``apiVersion`` + ``kind``.

    Raises ``LookupError`` for a kind the operator does not know: builders only produce
    known kinds, so an unknown one is a bug worth failing loudly on.
    """
    try:
        return KINDS[(api_version, kind)]
    except KeyError:
        raise LookupError(f"unknown kind {kind!r} in apiVersion {api_version!r}") from None


def kind_of(manifest: Mapping[str, Any]) -> Kind:
    """The :class:`Kind` of a manifest, by its ``apiVersion`` and ``kind``."""
    return kind_for(str(manifest.get("apiVersion", "")), str(manifest.get("kind", "")))
