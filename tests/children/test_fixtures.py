"""The example manifests parse, validate cleanly and build every child."""

from __future__ import annotations

import json
from typing import Any

import pytest

from restate_op.api.models import RestateCluster
from restate_op.children import (
    desired_cluster_service,
    desired_config_map,
    desired_namespace,
    desired_network_policies,
    desired_pdb,
    desired_pia_canary_job,
    desired_pod_identity_association,
    desired_secret_provider_class,
    desired_security_group_policy,
    desired_service,
    desired_service_account,
    desired_statefulset,
)
from restate_op.settings import OperatorSettings
from restate_op.validation import validate
from tests.children.helpers import empty_fields, fixture_manifest, load_fixture

SETTINGS = OperatorSettings(aws_pod_identity_association_cluster="eks-prod")


def all_children(cluster: RestateCluster) -> list[dict[str, Any]]:
    optional = [
        desired_pdb(cluster),
        desired_pod_identity_association(cluster, SETTINGS),
        desired_security_group_policy(cluster),
        desired_secret_provider_class(cluster),
    ]
    return [
        desired_namespace(cluster),
        desired_service_account(cluster),
        desired_service(cluster),
        desired_cluster_service(cluster),
        desired_config_map(cluster),
        desired_statefulset(cluster, SETTINGS),
        desired_pia_canary_job(cluster, SETTINGS),
        *desired_network_policies(cluster, SETTINGS),
        *(c for c in optional if c is not None),
    ]


@pytest.mark.parametrize("name", ["baseline.yaml", "full.yaml"])
def test_fixture_parses_into_the_model(name: str) -> None:
    manifest = fixture_manifest(name)
    cluster = RestateCluster.model_validate(manifest)
    assert cluster.name == manifest["metadata"]["name"]
    # Round trip: nothing the fixture says is lost by the model.
    assert cluster.spec.to_kube() == manifest["spec"]


@pytest.mark.parametrize("name", ["baseline.yaml", "full.yaml"])
def test_fixture_is_valid(name: str) -> None:
    assert validate(load_fixture(name)) == []


@pytest.mark.parametrize("name", ["baseline.yaml", "full.yaml"])
def test_fixture_builds_clean_manifests(name: str) -> None:
    for child in all_children(load_fixture(name)):
        assert empty_fields(child) == [], child["metadata"]["name"]
        assert {"apiVersion", "kind", "metadata"} <= set(child)
        json.dumps(child)  # plain JSON, nothing the API client would have to convert


def test_baseline_builds_the_documented_statefulset() -> None:
    cluster = load_fixture("baseline.yaml")
    sts = desired_statefulset(cluster, OperatorSettings())
    assert sts["metadata"]["namespace"] == "restate-test"
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "restatedev/restate:0.8.0"
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"] == {"requests": {"storage": "2147483648"}}
    assert sts["spec"]["replicas"] == 1
    assert desired_pdb(cluster) is None


def test_full_fixture_exercises_multi_node_features() -> None:
    cluster = load_fixture("full.yaml")
    assert cluster.spec.compute.desired_replicas == 3
    assert cluster.spec.cluster is not None and cluster.spec.cluster.auto_provision
    assert desired_pdb(cluster) is not None
    assert desired_pod_identity_association(cluster, SETTINGS) is not None
    assert desired_security_group_policy(cluster) is not None
