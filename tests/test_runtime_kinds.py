"""Which kinds the operator watches: only those it may manage with its RBAC."""

from __future__ import annotations

from typing import cast

from restate_op.cluster_controller import UPSTREAM_LEFTOVER_KINDS
from restate_op.kube import resources
from restate_op.kube.client import KubeClient
from restate_op.runtime import Operator
from restate_op.settings import Capabilities, OperatorSettings

EVERYTHING = Capabilities(
    pod_identity_association=True, security_group_policy=True, secret_provider_class=True
)


def _kinds(settings: OperatorSettings) -> list[resources.Kind]:
    operator = Operator(cast(KubeClient, object()), settings, identity="test")
    operator.capabilities = EVERYTHING
    return [informer.kind for informer in operator._watch()]


def test_pod_identity_associations_are_watched_only_with_the_eks_cluster_flag() -> None:
    """Without the flag the chart grants no access to them: watching would 403 for ever and
    the caches would never sync (an EKS cluster with ACK installed, chart defaults)."""
    assert resources.POD_IDENTITY_ASSOCIATION not in _kinds(OperatorSettings())
    with_flag = OperatorSettings(aws_pod_identity_association_cluster="prod")
    assert resources.POD_IDENTITY_ASSOCIATION in _kinds(with_flag)
    assert resources.SECURITY_GROUP_POLICY in _kinds(OperatorSettings())


def test_one_informer_per_kind_and_selector() -> None:
    kinds = _kinds(OperatorSettings())
    operator = Operator(cast(KubeClient, object()), OperatorSettings(), identity="test")
    operator.capabilities = EVERYTHING
    keys = [(i.kind, str(i.label_selector)) for i in operator._watch()]
    assert len(keys) == len(set(keys))
    # A kind has a second informer only for what the upstream operator left behind.
    twice = {k for k in kinds if kinds.count(k) > 1}
    assert twice == set(UPSTREAM_LEFTOVER_KINDS)
    assert resources.RESTATE_CLUSTER in kinds and resources.STORAGE_CLASS in kinds
