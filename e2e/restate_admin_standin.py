"""A stand-in for Restate's admin API on 127.0.0.1, for the RestateDeployment e2e tests.

It implements what the operator calls -- ``POST/GET /deployments``, ``DELETE
/deployments/{id}``, the SQL ``POST /query`` of ``restate_op.restate_admin`` -- over a
small in-memory model: each registered URI is a deployment offering one service, the last
one registered (or re-registered with ``force``) is that service's latest, and the test
sets how many invocations are pinned to each URI. It never calls the endpoints it is told
about (they are cluster DNS names that resolve nowhere here), and it listens on loopback
only. Every request is recorded so that the tests can assert what the operator sent.

As Restate Cloud's admin API (``StandInServer(base_path=..., token=...)``) it serves under a
path prefix (what ``--cloud-admin-url-template`` points at) and answers 401 to any request
without ``Authorization: Bearer <token>``; the test may change the token (a rotation).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from restate_op.restate_admin import LATEST_SQL, PINNED_SQL


def service_of(uri: str) -> str:
    """The one service an endpoint offers: named after its namespace (the host's second
    label), so that RestateDeployments of different tests never share a service."""
    split = urlsplit(uri)
    host = split.hostname or ""
    if "/http/" in split.path:
        # A Restate Cloud tunnel URL: the version's host is the segment after /http/.
        host = split.path.split("/http/", 1)[1].split("/", 1)[0]
    parts = host.split(".")
    return f"Greeter-{parts[1] if len(parts) > 1 else host}"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    authorization: str | None = None
    #: When it arrived (Unix time), so that a benchmark can count the requests of a window.
    at: float = field(default_factory=time.time)


@dataclass
class StandIn:
    """The admin API's state; every attribute may be changed by the test at any time."""

    #: id -> uri
    deployments: dict[str, str] = field(default_factory=dict)
    #: service -> id of its latest deployment
    latest: dict[str, str] = field(default_factory=dict)
    #: uri (as registered) -> non-completed invocations pinned to it
    pinned: dict[str, int] = field(default_factory=dict)
    #: While set, every registration is refused with (status, restate_code, message).
    reject: tuple[int, str, str] | None = None
    requests: list[Request] = field(default_factory=list)
    #: Where it listens (set by ``StandInServer``), with the base path.
    url: str = ""
    #: Only requests under this path are served (Restate Cloud's admin URL has none, the
    #: stand-in's says which environment was addressed).
    base_path: str = ""
    #: While set, a request without ``Authorization: Bearer <token>`` is refused with 401.
    token: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    _next: int = 0

    def id_of(self, uri: str) -> str | None:
        return next(
            (i for i, u in self.deployments.items() if u.rstrip("/") == uri.rstrip("/")), None
        )

    def seen(self, method: str, prefix: str = "") -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: Any,
        authorization: str | None = None,
    ) -> tuple[int, Any]:
        with self.lock:
            if not path.startswith(self.base_path + "/"):
                return 404, {"message": f"no environment at {path}"}
            path = path.removeprefix(self.base_path)
            self.requests.append(Request(method, path, query, body, authorization))
            if self.token is not None and authorization != f"Bearer {self.token}":
                return 401, {"message": "missing or wrong bearer token"}
            if method == "POST" and path == "/deployments":
                return self._register(body)
            if method == "GET" and path == "/deployments":
                return 200, {
                    "deployments": [
                        {"id": i, "uri": u, "services": [{"name": service_of(u), "revision": 1}]}
                        for i, u in self.deployments.items()
                    ]
                }
            found = re.fullmatch(r"/deployments/([^/]+)", path)
            if method == "DELETE" and found:
                ident = found.group(1)
                if ident not in self.deployments:
                    return 404, {"message": f"deployment {ident} not found"}
                del self.deployments[ident]
                self.latest = {s: d for s, d in self.latest.items() if d != ident}
                return 202, None
            if method == "POST" and path == "/query":
                return self._query(body)
            return 404, {"message": f"no route {method} {path}"}

    def _register(self, body: Any) -> tuple[int, Any]:
        if self.reject is not None:
            status, code, message = self.reject
            return status, {"message": message, "restate_code": code}
        uri = body["uri"]
        ident = self.id_of(uri)
        if ident is not None and not body.get("force"):
            return 409, {
                "message": f"deployment with uri {uri} already exists",
                "restate_code": "META0004",
            }
        if ident is None:
            self._next += 1
            ident = f"dp_{self._next:04d}"
            self.deployments[ident] = uri
        self.latest[service_of(uri)] = ident
        return 201, {"id": ident, "services": [{"name": service_of(uri)}]}

    def _query(self, body: Any) -> tuple[int, Any]:
        sql = body.get("query")
        rows: list[dict[str, Any]]
        if sql == LATEST_SQL:
            rows = [{"name": s, "deployment_id": d} for s, d in self.latest.items()]
        elif sql == PINNED_SQL:
            rows = []
            for uri, count in self.pinned.items():
                ident = self.id_of(uri)
                if ident is not None and count > 0:
                    rows.append({"deployment_id": ident, "pinned": count})
        else:
            return 400, {"message": f"unknown query {sql!r}"}
        return 200, {"rows": rows}


class StandInServer:
    """The stand-in served on 127.0.0.1 (an ephemeral port) from a daemon thread."""

    def __init__(self, base_path: str = "", token: str | None = None) -> None:
        self.state = StandIn(base_path=base_path, token=token)
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                status, answer = state.handle(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    body,
                    self.headers.get("Authorization"),
                )
                data = b"" if answer is None else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def do_DELETE(self) -> None:
                self._serve()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        #: Where it listens, without the base path.
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = self.origin + base_path
        state.url = self.url
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StandInServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
