"""Which optional APIs the cluster serves, and whether the ones a controller needs are there."""

from __future__ import annotations

from collections.abc import Iterable

from restate_op.controller import RequiredApi
from restate_op.kube.client import KubeClient
from restate_op.settings import Capabilities


class Discovery:
    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def capabilities(self) -> Capabilities:
        """The optional APIs builders and watches depend on.

        One request says which API groups are served at all; only an optional group that is
        served is asked for its resources. Re-discovery thus costs one GET on a cluster
        without these APIs, not one per API.
        """
        served = await self.client.named_groups()

        async def has(group_version: str, plural: str) -> bool:
            return group_version in served and await self.client.has_api(group_version, plural)

        return Capabilities(
            pod_identity_association=await has(
                "eks.services.k8s.aws/v1alpha1", "podidentityassociations"
            ),
            iam_policy_member=await has("iam.cnrm.cloud.google.com/v1beta1", "iampolicymembers"),
            security_group_policy=await has(
                "vpcresources.k8s.aws/v1beta1", "securitygrouppolicies"
            ),
            secret_provider_class=await has(
                "secrets-store.csi.x-k8s.io/v1", "secretproviderclasses"
            ),
            knative_serving=await has("serving.knative.dev/v1", "configurations"),
            restate_cloud_environment=await has("restate.dev/v1beta1", "restatecloudenvironments"),
        )

    async def missing(self, required: Iterable[RequiredApi]) -> list[RequiredApi]:
        """The required APIs the cluster does not serve (yet)."""
        return [
            api for api in required if not await self.client.has_api(api.group_version, api.plural)
        ]


def crd_name(api: RequiredApi) -> str:
    """``restateclusters.restate.dev`` for ``restate.dev/v1`` + ``restateclusters``."""
    return f"{api.plural}.{api.group_version.split('/')[0]}"
