"""Kind paths must be exactly what kr8s's ``call_api`` builds from the same arguments."""

from __future__ import annotations

from typing import Any

import pytest
from kr8s._api import Api

from restate_op.kube import resources
from restate_op.kube.resources import (
    EVENT,
    KINDS,
    LEASE,
    NAMESPACE,
    POD,
    RESTATE_CLUSTER,
    STATEFUL_SET,
    kind_for,
    kind_of,
)


def kr8s_path(**kwargs: Any) -> str:
    """The path kr8s would request (``_construct_url`` does not use ``self``)."""
    return str(Api._construct_url(None, **kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "namespace", "name", "subresource", "expected"),
    [
        (POD, "ns", "p", None, "/api/v1/namespaces/ns/pods/p"),
        (POD, "ns", None, None, "/api/v1/namespaces/ns/pods"),
        (POD, None, None, None, "/api/v1/pods"),
        (NAMESPACE, None, "ns", None, "/api/v1/namespaces/ns"),
        (
            STATEFUL_SET,
            "ns",
            "web",
            "status",
            "/apis/apps/v1/namespaces/ns/statefulsets/web/status",
        ),
        (
            RESTATE_CLUSTER,
            None,
            "demo",
            "status",
            "/apis/restate.dev/v1/restateclusters/demo/status",
        ),
        (RESTATE_CLUSTER, None, None, None, "/apis/restate.dev/v1/restateclusters"),
        (LEASE, "op", "leader", None, "/apis/coordination.k8s.io/v1/namespaces/op/leases/leader"),
        (EVENT, "default", None, None, "/apis/events.k8s.io/v1/namespaces/default/events"),
    ],
)
def test_paths_match_kr8s(
    kind: resources.Kind,
    namespace: str | None,
    name: str | None,
    subresource: str | None,
    expected: str,
) -> None:
    target = kind.target(namespace, name, subresource)
    assert target.path == expected
    assert kind.path(namespace, name, subresource) == expected
    assert kr8s_path(**target.call_api_kwargs()) == expected


def test_every_kind_builds_a_kr8s_compatible_path() -> None:
    for kind in KINDS.values():
        namespace = "ns" if kind.namespaced else None
        target = kind.target(namespace, "x")
        assert kr8s_path(**target.call_api_kwargs()) == target.path
        prefix = "/api/v1/" if kind.api_version == "v1" else f"/apis/{kind.api_version}/"
        assert target.path.startswith(prefix)
        assert target.path.endswith(f"{kind.plural}/x")


def test_group_and_version() -> None:
    assert STATEFUL_SET.group == "apps"
    assert STATEFUL_SET.version == "v1"
    assert POD.group == ""
    assert POD.version == "v1"
    assert str(STATEFUL_SET) == "statefulsets.apps"
    assert str(POD) == "pods"


@pytest.mark.parametrize(
    ("kind", "namespace", "name", "subresource"),
    [
        (RESTATE_CLUSTER, "ns", "demo", None),  # namespace on a cluster-scoped kind
        (POD, None, "p", None),  # namespaced object without namespace
        (POD, "ns", None, "status"),  # subresource without a name
        (POD, "ns", "", None),  # empty name
    ],
)
def test_impossible_targets_raise(
    kind: resources.Kind, namespace: str | None, name: str | None, subresource: str | None
) -> None:
    with pytest.raises(ValueError):
        kind.target(namespace, name, subresource)


def test_required_kinds_and_scopes() -> None:
    expected = {
        "NAMESPACE": ("v1", "namespaces", False),
        "SERVICE_ACCOUNT": ("v1", "serviceaccounts", True),
        "SERVICE": ("v1", "services", True),
        "CONFIG_MAP": ("v1", "configmaps", True),
        "STATEFUL_SET": ("apps/v1", "statefulsets", True),
        "POD_DISRUPTION_BUDGET": ("policy/v1", "poddisruptionbudgets", True),
        "NETWORK_POLICY": ("networking.k8s.io/v1", "networkpolicies", True),
        "PERSISTENT_VOLUME_CLAIM": ("v1", "persistentvolumeclaims", True),
        "STORAGE_CLASS": ("storage.k8s.io/v1", "storageclasses", False),
        "POD": ("v1", "pods", True),
        "JOB": ("batch/v1", "jobs", True),
        "LEASE": ("coordination.k8s.io/v1", "leases", True),
        "EVENT": ("events.k8s.io/v1", "events", True),
        "RESTATE_CLUSTER": ("restate.dev/v1", "restateclusters", False),
        "POD_IDENTITY_ASSOCIATION": (
            "eks.services.k8s.aws/v1alpha1",
            "podidentityassociations",
            True,
        ),
        "SECURITY_GROUP_POLICY": ("vpcresources.k8s.aws/v1beta1", "securitygrouppolicies", True),
        "SECRET_PROVIDER_CLASS": (
            "secrets-store.csi.x-k8s.io/v1",
            "secretproviderclasses",
            True,
        ),
        "CUSTOM_RESOURCE_DEFINITION": (
            "apiextensions.k8s.io/v1",
            "customresourcedefinitions",
            False,
        ),
    }
    for constant, (api_version, plural, namespaced) in expected.items():
        kind = getattr(resources, constant)
        assert (kind.api_version, kind.plural, kind.namespaced) == (api_version, plural, namespaced)


def test_kind_of_manifest() -> None:
    assert kind_of({"apiVersion": "apps/v1", "kind": "StatefulSet"}) is STATEFUL_SET
    assert kind_of({"apiVersion": "events.k8s.io/v1", "kind": "Event"}) is EVENT
    assert kind_of({"apiVersion": "v1", "kind": "Event"}) is resources.CORE_EVENT
    assert kind_for("restate.dev/v1", "RestateCluster") is RESTATE_CLUSTER
    with pytest.raises(LookupError):
        kind_of({"apiVersion": "apps/v1beta1", "kind": "StatefulSet"})
    with pytest.raises(LookupError):
        kind_of({})
