"""A kr8s ``Api`` whose HTTP goes to an in-process handler instead of a server.

The real ``kr8s.Api.call_api`` runs (URL building, error wrapping, the 401 re-auth loop); only
the httpx transport is replaced, so the tests exercise exactly what the operator sends and
how kr8s's errors reach our translation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import httpx
from kr8s._api import Api

from restate_op.kube.client import KubeClient

Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class Recorder:
    """Records requests and answers them with the scripted handler."""

    handler: Handler
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def fake_api(handler: Handler) -> tuple[Any, Recorder]:
    recorder = Recorder(handler)
    api = object.__new__(Api)
    api._session = httpx.AsyncClient(
        base_url="https://k8s.test", transport=httpx.MockTransport(recorder)
    )
    api.auth = SimpleNamespace(tls_server_name=None)  # type: ignore[assignment]

    async def _create_session() -> None:
        return None

    api._create_session = _create_session  # type: ignore[method-assign]
    return api, recorder


def fake_client(handler: Handler) -> tuple[KubeClient, Recorder]:
    api, recorder = fake_api(handler)
    return KubeClient(api, user_agent="test-agent/1"), recorder


def json_response(code: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(code, content=json.dumps(body).encode(), headers=headers)


def status(code: int, reason: str, message: str = "failed") -> httpx.Response:
    return json_response(
        code,
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        },
    )
