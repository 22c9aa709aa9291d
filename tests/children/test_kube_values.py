"""Annotations, labels, quantities and the StorageClass: refused where the spec names them."""

from __future__ import annotations

from typing import Any

import pytest

from restate_op.children.kube_values import check_kube_values, check_storage_class, key_problem
from tests.children.helpers import make_cluster


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("team", True),
        ("example.com/team", True),
        ("a.b-c_d", True),
        ("not a key!", False),
        ("Example.com/team", False),
        ("example.com/", False),
        ("-leading", False),
        ("x" * 64, False),
        ("/name", True),
    ],
)
def test_keys(key: str, ok: bool) -> None:
    assert (key_problem(key) is None) is ok


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (
            {"security": {"serviceAnnotations": {"not a key!": "x"}}},
            "spec.security.serviceAnnotations",
        ),
        (
            {"security": {"serviceAccountAnnotations": {"Bad/x": "y"}}},
            "spec.security.serviceAccountAnnotations",
        ),
        ({"compute": {"annotations": {"a b": "c"}}}, "spec.compute.annotations"),
        ({"compute": {"labels": {"tier": "not a value"}}}, "spec.compute.labels[tier]"),
        (
            {"compute": {"resources": {"requests": {"cpu": "lots"}}}},
            "spec.compute.resources.requests.cpu",
        ),
        (
            {"compute": {"resources": {"limits": {"memory": "1 Gi"}}}},
            "spec.compute.resources.limits.memory",
        ),
    ],
)
def test_values_children_could_not_carry_name_the_spec_field(
    spec: dict[str, Any], field: str
) -> None:
    problems = check_kube_values(make_cluster(spec))
    assert [p.field for p in problems] == [field]
    assert problems[0].message.startswith(field)


def test_good_values_pass() -> None:
    spec = {
        "compute": {
            "annotations": {"example.com/note": "anything at all, even spaces"},
            "labels": {"tier": "db", "example.com/empty": ""},
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": 2}},
        },
        "security": {
            "serviceAnnotations": {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}
        },
    }
    assert check_kube_values(make_cluster(spec)) == []


def test_a_missing_storage_class_is_reported_until_a_volume_is_bound() -> None:
    cluster = make_cluster({"storage": {"storageClassName": "gold"}})
    problems = check_storage_class(cluster, {"standard": {}}, ())
    assert [(p.reason, p.field) for p in problems] == [
        ("StorageClassNotFound", "spec.storage.storageClassName")
    ]
    assert check_storage_class(cluster, {"gold": {}}, ()) == []
    bound = ({"status": {"phase": "Bound"}},)
    assert check_storage_class(cluster, {}, bound) == [], "a running cluster stays manageable"
    assert check_storage_class(make_cluster(), {}, ()) == [], "the default class is not named"
