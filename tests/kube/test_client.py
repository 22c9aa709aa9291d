"""What KubeClient puts on the wire, and how it reads the answers (through real kr8s)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from restate_op.kube.client import KubeClient, selector_string
from restate_op.kube.errors import AlreadyExists, ApiUnreachable, Conflict, Gone, KubeError
from restate_op.kube.resources import (
    LEASE,
    POD,
    RESTATE_CLUSTER,
    STATEFUL_SET,
)
from tests.kube.fakeapi import fake_client, json_response, status

STS = {
    "apiVersion": "apps/v1",
    "kind": "StatefulSet",
    "metadata": {"name": "restate", "namespace": "demo"},
    "spec": {"replicas": 1},
}


def requests_total(verb: str, kind: str) -> float:
    value = REGISTRY.get_sample_value(
        "restate_operator_api_requests_total", {"verb": verb, "kind": kind}
    )
    return value or 0.0


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


async def test_get_found_and_not_found_and_counted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/restate"):
            return json_response(200, STS)
        return status(404, "NotFound")

    client, rec = fake_client(handler)
    before = requests_total("get", "StatefulSet")
    assert await client.get(STATEFUL_SET, "restate", "demo") == STS
    assert await client.get(STATEFUL_SET, "other", "demo") is None
    assert requests_total("get", "StatefulSet") == before + 2
    assert rec.last.url.path == "/apis/apps/v1/namespaces/demo/statefulsets/other"
    assert rec.last.headers["user-agent"] == "test-agent/1"


async def test_apply_is_server_side_apply() -> None:
    client, rec = fake_client(lambda request: json_response(200, STS))
    before = requests_total("apply", "StatefulSet")
    result = await client.apply(STS, "restate-operator")
    assert result == STS
    request = rec.last
    assert request.method == "PATCH"
    assert request.url.path == "/apis/apps/v1/namespaces/demo/statefulsets/restate"
    assert request.headers["content-type"] == "application/apply-patch+yaml"
    assert dict(request.url.params) == {"fieldManager": "restate-operator", "force": "true"}
    assert body_of(request) == STS
    assert requests_total("apply", "StatefulSet") == before + 1


async def test_apply_status_and_no_force() -> None:
    client, rec = fake_client(lambda request: json_response(200, {}))
    manifest = {
        "apiVersion": "restate.dev/v1",
        "kind": "RestateCluster",
        "metadata": {"name": "demo"},
        "status": {"phase": "Ready"},
    }
    await client.apply_status(manifest, "restate-operator")
    assert rec.last.url.path == "/apis/restate.dev/v1/restateclusters/demo/status"
    await client.apply(manifest, "mgr", force=False)
    assert dict(rec.last.url.params) == {"fieldManager": "mgr"}
    with pytest.raises(ValueError):
        await client.apply({"apiVersion": "apps/v1", "kind": "StatefulSet"}, "mgr")


async def test_apply_conflict_is_typed() -> None:
    client, _ = fake_client(lambda request: status(409, "Conflict", "field manager conflict"))
    with pytest.raises(Conflict) as caught:
        await client.apply(STS, "mgr", force=False)
    assert caught.value.transient
    assert "field manager conflict" in str(caught.value)


async def test_patch_merge() -> None:
    client, rec = fake_client(lambda request: json_response(200, {}))
    await client.patch_merge(RESTATE_CLUSTER, "demo", None, {"metadata": {"labels": {"a": None}}})
    assert rec.last.method == "PATCH"
    assert rec.last.url.path == "/apis/restate.dev/v1/restateclusters/demo"
    assert rec.last.headers["content-type"] == "application/merge-patch+json"
    assert body_of(rec.last) == {"metadata": {"labels": {"a": None}}}


async def test_create_and_replace() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return status(409, "AlreadyExists")
        return json_response(200, body_of(request))

    client, rec = fake_client(handler)
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "l", "namespace": "op", "resourceVersion": "5"},
    }
    with pytest.raises(AlreadyExists):
        await client.create(lease)
    assert rec.last.url.path == "/apis/coordination.k8s.io/v1/namespaces/op/leases"
    before = requests_total("update", "Lease")
    assert await client.replace(lease) == lease
    assert rec.last.method == "PUT"
    assert rec.last.url.path == "/apis/coordination.k8s.io/v1/namespaces/op/leases/l"
    assert requests_total("update", "Lease") == before + 1
    assert LEASE.kind == "Lease"


async def test_delete_options_and_404() -> None:
    answers = [json_response(200, {"kind": "Status", "status": "Success"}), status(404, "NotFound")]
    client, rec = fake_client(lambda request: answers.pop(0))
    deleted = await client.delete(
        STATEFUL_SET,
        "restate",
        "demo",
        propagation_policy="Orphan",
        uid_precondition="uid-1",
        grace_period_seconds=0,
    )
    assert deleted is True
    assert rec.last.method == "DELETE"
    assert body_of(rec.last) == {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "propagationPolicy": "Orphan",
        "gracePeriodSeconds": 0,
        "preconditions": {"uid": "uid-1"},
    }
    assert await client.delete(POD, "gone", "demo") is False


async def test_delete_precondition_mismatch_is_conflict() -> None:
    client, _ = fake_client(
        lambda request: status(409, "Conflict", "Precondition failed: UID in precondition")
    )
    with pytest.raises(Conflict):
        await client.delete(STATEFUL_SET, "restate", "demo", uid_precondition="stale")


async def test_list_follows_pages_and_keeps_first_resource_version() -> None:
    pages = {
        None: {
            "metadata": {"resourceVersion": "100", "continue": "t1"},
            "items": [{"metadata": {"name": "a"}}],
        },
        "t1": {"metadata": {"resourceVersion": "100"}, "items": [{"metadata": {"name": "b"}}]},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return json_response(200, pages[request.url.params.get("continue")])

    client, rec = fake_client(handler)
    items, version = await client.list(POD, "demo", {"app": "restate"}, page_size=1)
    assert version == "100"
    assert [i["metadata"]["name"] for i in items] == ["a", "b"]
    assert all(i["apiVersion"] == "v1" and i["kind"] == "Pod" for i in items)
    assert rec.last.url.params["labelSelector"] == "app=restate"
    assert rec.last.url.params["limit"] == "1"
    assert rec.requests[0].url.path == "/api/v1/namespaces/demo/pods"


async def test_list_expired_continue_is_gone() -> None:
    client, _ = fake_client(lambda request: status(410, "Expired", "continue token expired"))
    with pytest.raises(Gone):
        await client.list(POD)


def watch_stream(*events: dict[str, Any]) -> httpx.Response:
    lines = "".join(json.dumps(e) + "\n" for e in events)
    return httpx.Response(200, content=lines.encode())


async def test_watch_streams_events_with_params() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "resourceVersion": "7"}}
    client, rec = fake_client(
        lambda request: watch_stream(
            {"type": "ADDED", "object": pod},
            {"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "9"}}},
            {"type": "DELETED", "object": pod},
        )
    )
    before = requests_total("watch", "Pod")
    events = [e async for e in client.watch(POD, "demo", "a=b", "5", timeout_seconds=60)]
    assert [t for t, _ in events] == ["ADDED", "BOOKMARK", "DELETED"]
    params = dict(rec.last.url.params)
    assert params == {
        "watch": "true",
        "timeoutSeconds": "60",
        "allowWatchBookmarks": "true",
        "resourceVersion": "5",
        "labelSelector": "a=b",
    }
    assert requests_total("watch", "Pod") == before + 1


async def test_watch_error_event_410_raises_gone() -> None:
    client, _ = fake_client(
        lambda request: watch_stream(
            {
                "type": "ERROR",
                "object": {
                    "kind": "Status",
                    "code": 410,
                    "reason": "Expired",
                    "message": "too old resource version: 1 (50)",
                },
            },
        )
    )
    with pytest.raises(Gone):
        async for _ in client.watch(POD, resource_version="1"):
            pass


async def test_watch_http_410_raises_gone() -> None:
    client, _ = fake_client(lambda request: status(410, "Expired"))
    with pytest.raises(Gone):
        async for _ in client.watch(POD, resource_version="1"):
            pass


async def test_connection_errors_are_typed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client, _ = fake_client(handler)
    with pytest.raises(ApiUnreachable) as caught:
        await client.get(POD, "p", "demo")
    assert caught.value.transient
    assert caught.value.status is None


async def test_timeouts_are_typed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client, _ = fake_client(handler)
    with pytest.raises(ApiUnreachable):
        await client.get(POD, "p", "demo")


async def test_server_errors_and_retry_after() -> None:
    client, _ = fake_client(
        lambda request: json_response(
            429,
            {"kind": "Status", "code": 429, "reason": "TooManyRequests", "message": "slow down"},
            {"Retry-After": "2"},
        )
    )
    with pytest.raises(KubeError) as caught:
        await client.get(POD, "p", "demo")
    assert caught.value.status == 429
    assert caught.value.retry_after == 2.0
    assert caught.value.transient

    client, _ = fake_client(lambda request: httpx.Response(503, content=b"unavailable"))
    with pytest.raises(KubeError) as caught:
        await client.get(POD, "p", "demo")
    assert caught.value.status == 503
    assert caught.value.transient


async def test_discovery() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path.rstrip("/")
        if path == "/api":
            return json_response(200, {"versions": ["v1"]})
        if path == "/apis":
            return json_response(
                200, {"groups": [{"name": "apps", "versions": [{"groupVersion": "apps/v1"}]}]}
            )
        if path == "/apis/apps/v1":
            return json_response(
                200, {"resources": [{"name": "statefulsets"}, {"name": "statefulsets/status"}]}
            )
        if path == "/api/v1":
            return json_response(200, {"resources": [{"name": "pods"}]})
        return status(404, "NotFound")

    client, rec = fake_client(handler)
    assert await client.api_groups() == {"v1", "apps/v1"}
    seen = len(rec.requests)
    assert await client.named_groups() == {"apps/v1"}
    assert [r.url.path.rstrip("/") for r in rec.requests[seen:]] == ["/apis"]
    assert await client.has_api("apps/v1", "statefulsets")
    assert not await client.has_api("apps/v1", "deployments")
    assert await client.has_api("v1", "pods")
    assert not await client.has_api("restate.dev/v1", "restateclusters")
    assert await client.has_kind(STATEFUL_SET)
    assert not await client.has_kind(RESTATE_CLUSTER)
    assert rec.last.url.path == "/apis/restate.dev/v1"


def test_selector_string() -> None:
    assert selector_string(None) is None
    assert selector_string("") is None
    assert selector_string("a=b") == "a=b"
    assert selector_string({"b": "2", "a": "1"}) == "a=1,b=2"


async def test_close() -> None:
    client, _ = fake_client(lambda request: json_response(200, {}))
    await client.close()
    await client.close()
    assert isinstance(client, KubeClient)
