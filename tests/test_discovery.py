"""API discovery of the optional integrations costs one request when they are absent."""

from __future__ import annotations

import httpx

from restate_op.discovery import Discovery
from restate_op.settings import Capabilities
from tests.kube.fakeapi import fake_client, json_response, status


def _groups(*group_versions: str) -> httpx.Response:
    return json_response(
        200,
        {
            "groups": [
                {"name": gv.split("/")[0], "versions": [{"groupVersion": gv}]}
                for gv in group_versions
            ]
        },
    )


async def test_discovery_asks_only_served_groups_for_their_resources() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path.rstrip("/")
        if path == "/apis":
            return _groups("apps/v1", "secrets-store.csi.x-k8s.io/v1")
        if path == "/apis/secrets-store.csi.x-k8s.io/v1":
            return json_response(200, {"resources": [{"name": "secretproviderclasses"}]})
        return status(404, "NotFound")

    client, rec = fake_client(handler)
    found = await Discovery(client).capabilities()
    assert found == Capabilities(secret_provider_class=True)
    assert [r.url.path.rstrip("/") for r in rec.requests] == [
        "/apis",
        "/apis/secrets-store.csi.x-k8s.io/v1",
    ]


async def test_discovery_without_optional_groups_is_one_request() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.rstrip("/") == "/apis":
            return _groups("apps/v1", "restate.dev/v1")
        return status(404, "NotFound")

    client, rec = fake_client(handler)
    assert await Discovery(client).capabilities() == Capabilities()
    assert len(rec.requests) == 1
