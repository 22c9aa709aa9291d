"""A version's identity and URLs: which fields make a new version, and paths kept."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from restate_op.api.deployment import RegisterTarget, RestateDeployment
from restate_op.deployment_identity import (
    admin_request_url,
    admin_url,
    endpoint_uri,
    fnv1a64,
    safe_encode,
    same_uri,
    target_port,
    template_json,
    version_hash,
)

UPSTREAM = Path(__file__).parent / "fixtures" / "restatedeployment-upstream.yaml"


def spec(**changes: Any) -> Any:
    raw: dict[str, Any] = yaml.safe_load(UPSTREAM.read_text())
    for path, value in changes.items():
        node = raw["spec"]
        *parents, leaf = path.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return RestateDeployment.model_validate(raw).spec


def test_fnv1a64_matches_the_reference_vectors() -> None:
    assert fnv1a64(b"") == 0xCBF29CE484222325
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a64(b"foobar") == 0x85944171F73967E8
    # Feeding in two writes is one hash over the concatenation (Rust's Hasher::write).
    assert fnv1a64(b"bar", fnv1a64(b"foo")) == fnv1a64(b"foobar")


def test_digits_are_encoded_most_significant_first_without_vowels() -> None:
    assert safe_encode(0) == "4"
    assert safe_encode(1234567890) == "56789bcdf4"


def test_the_template_is_serialised_compact_and_sorted_as_upstream_does() -> None:
    text = template_json(spec().template)
    assert text.startswith('{"metadata":{"labels":{"app":"my-service"}},"spec":{"containers":')
    bare = spec()
    bare.template.metadata = None
    assert template_json(bare.template).startswith('{"metadata":null,"spec":')


def test_the_hash_is_stable() -> None:
    assert version_hash(spec()) == version_hash(spec())
    assert len(version_hash(spec())) <= 10
    assert set(version_hash(spec())) <= set("456789bcdf")


@pytest.mark.parametrize(
    "change",
    [
        {"template__spec": {"containers": [{"name": "x", "image": "other"}]}},
        {"template__metadata": {"labels": {"app": "renamed"}}},
        {"restate__register": {"cluster": "another"}},
        {"restate__servicePath": "/v2"},
        {"restate__useHttp11": True},
    ],
)
def test_what_changes_the_pods_or_the_endpoint_is_a_new_version(change: dict[str, Any]) -> None:
    assert version_hash(spec(**change)) != version_hash(spec())


@pytest.mark.parametrize(
    "change",
    [
        {"replicas": 5},
        {"minReadySeconds": 10},
        {"revisionHistoryLimit": 2},
        {"restate__drainDelaySeconds": 5},
        {"restate__useHttp11": False},
        {"selector": {"matchLabels": {"app": "my-service"}, "matchExpressions": []}},
    ],
)
def test_what_does_not_change_them_keeps_the_version(change: dict[str, Any]) -> None:
    assert version_hash(spec(**change)) == version_hash(spec())


def test_the_admin_target_is_not_part_of_the_identity() -> None:
    a = spec(restate__register={"url": "http://a:9070"})
    b = spec(restate__register={"url": "http://b:9070/x"})
    assert version_hash(a) == version_hash(b)


def test_the_collision_count_changes_the_hash() -> None:
    assert version_hash(spec(), 1) != version_hash(spec())
    assert version_hash(spec(), 1) != version_hash(spec(), 2)


def test_endpoint_uris() -> None:
    assert (
        endpoint_uri("s-1", "ns", "cluster.local", None) == "http://s-1.ns.svc.cluster.local:9080/"
    )
    assert endpoint_uri("s-1", "ns", "c.dns", "greeter") == "http://s-1.ns.svc.c.dns:9080/greeter"
    assert same_uri("http://a:9080/", "http://a:9080")


@pytest.mark.parametrize(
    ("register", "expected"),
    [
        ({"cluster": "prod"}, "http://restate.prod.svc.cluster.local:9070"),
        (
            {"service": {"name": "adm", "namespace": "r", "port": 19070, "path": "/p/q/"}},
            "http://adm.r.svc.cluster.local:19070/p/q",
        ),
        ({"service": {"name": "adm", "namespace": "r"}}, "http://adm.r.svc.cluster.local:9070"),
        ({"url": "https://x.example/tenant/"}, "https://x.example/tenant"),
        ({"cloud": "env"}, None),
    ],
)
def test_admin_urls_keep_their_paths(register: dict[str, Any], expected: str | None) -> None:
    assert admin_url(RegisterTarget.model_validate(register), "cluster.local") == expected


def test_admin_requests_append_to_the_base_path() -> None:
    """Upstream's Url::join("/deployments") drops "/tenant"; appending keeps it."""
    base = "https://x.example/tenant"
    assert admin_request_url(base, "deployments") == "https://x.example/tenant/deployments"
    assert admin_request_url(base + "/", "/deployments", "dp_1") == (
        "https://x.example/tenant/deployments/dp_1"
    )


@pytest.mark.parametrize(
    ("ports", "expected"),
    [
        ([[{"containerPort": 8000}, {"containerPort": 9081, "name": "restate"}]], 9081),
        ([[{"containerPort": 8000}], [{"containerPort": 7000}]], 8000),
        ([[]], 9080),
    ],
)
def test_target_port(ports: list[list[dict[str, Any]]], expected: int) -> None:
    pod_spec = {"containers": [{"name": f"c{i}", "ports": p} for i, p in enumerate(ports)]}
    assert target_port(copy.deepcopy(pod_spec)) == expected
