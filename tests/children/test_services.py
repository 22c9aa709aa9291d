"""ServiceAccount and Services."""

from __future__ import annotations

from restate_op.children.service_account import desired_service_account
from restate_op.children.services import desired_cluster_service, desired_service
from tests.children.helpers import empty_fields, make_cluster

SELECTOR = {"app.kubernetes.io/name": "restate", "app.kubernetes.io/instance": "restate-test"}


def test_service_account_carries_user_annotations() -> None:
    cluster = make_cluster(
        {"security": {"serviceAccountAnnotations": {"eks.amazonaws.com/role-arn": "arn"}}}
    )
    sa = desired_service_account(cluster)
    assert sa["kind"] == "ServiceAccount"
    assert sa["metadata"]["name"] == "restate"
    assert sa["metadata"]["namespace"] == "restate-test"
    assert sa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": "arn"}
    assert "automountServiceAccountToken" not in sa


def test_service_account_without_annotations() -> None:
    sa = desired_service_account(make_cluster())
    assert "annotations" not in sa["metadata"]
    assert empty_fields(sa) == []


def test_service_is_cluster_ip_with_three_h2c_ports() -> None:
    svc = desired_service(make_cluster())
    assert svc["metadata"]["name"] == "restate"
    assert svc["spec"]["type"] == "ClusterIP"
    assert "clusterIP" not in svc["spec"]
    assert svc["spec"]["selector"] == SELECTOR
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    assert {n: p["port"] for n, p in ports.items()} == {
        "ingress": 8080,
        "admin": 9070,
        "node": 5122,
    }
    for port in ports.values():
        assert port["targetPort"] == port["port"]
        assert port["protocol"] == "TCP"
        assert port["appProtocol"] == "kubernetes.io/h2c"


def test_service_annotations_are_applied() -> None:
    cluster = make_cluster({"security": {"serviceAnnotations": {"a": "1"}}})
    assert desired_service(cluster)["metadata"]["annotations"] == {"a": "1"}
    assert "annotations" not in desired_cluster_service(cluster)["metadata"]


def test_cluster_service_is_headless_and_publishes_unready_pods() -> None:
    svc = desired_cluster_service(make_cluster())
    assert svc["metadata"]["name"] == "restate-cluster"
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["publishNotReadyAddresses"] is True
    assert svc["spec"]["selector"] == SELECTOR
    assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("node", 5122)]
