"""A TLS-terminating proxy in front of the API server that can answer some requests itself.

Throttling (429 with ``Retry-After``) and conflicts (409) cannot be provoked on demand from a
real API server, so the operator under test talks to this proxy instead: it presents its own
CA-signed certificate, and forwards every request it does not intercept to the real API
server with the client certificate of the kubeconfig it was given (the operator's token is
dropped). Every request is recorded with its time and what happened to it.

One request per connection: the proxy asks the API server to close after the response, which
tells the client not to reuse the connection either. Watches stream through unchanged until
either side closes. The proxy runs its own event loop in a thread, so it serves the operator
(another process) and synchronous test code alike.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from e2e.pki import CertificateAuthority


@dataclass(frozen=True)
class Request:
    """A request as the proxy saw it."""

    at: float
    method: str
    path: str
    query: str
    injected: int | None

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes a later request a retry of this one: method, path and label selector
        (two informers may list one path with different selectors)."""
        selector = urllib.parse.parse_qs(self.query).get("labelSelector", [""])[0]
        return self.method, self.path, selector


@dataclass(frozen=True)
class Reply:
    """A response the proxy sends instead of forwarding."""

    status: int
    reason: str
    message: str
    retry_after: float | None = None

    def encode(self) -> bytes:
        body = json.dumps(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": self.message,
                "reason": self.reason,
                "code": self.status,
            }
        ).encode()
        head = [
            f"HTTP/1.1 {self.status} {self.reason}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
        if self.retry_after is not None:
            head.append(f"Retry-After: {self.retry_after:g}")
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body


#: Decides, per request, whether to answer it (method, path, query) -> Reply or None.
Interceptor = Callable[[str, str, str], Reply | None]


def too_many_requests(seconds: float) -> Reply:
    return Reply(429, "TooManyRequests", "injected by the test proxy: slow down", seconds)


def conflict() -> Reply:
    return Reply(409, "Conflict", "injected by the test proxy: the object has been modified")


def _b64_file(directory: Path, name: str, data: str) -> Path:
    path = directory / name
    path.write_bytes(base64.b64decode(data))
    path.chmod(0o600)
    return path


class ApiProxy:
    """Start with ``with ApiProxy(kubeconfig, workdir) as proxy``; give the operator
    ``proxy.kubeconfig``; set ``proxy.interceptor`` to answer requests; read
    ``proxy.requests``."""

    def __init__(self, upstream_kubeconfig: Path, workdir: Path, token: str = "proxy") -> None:
        config = yaml.safe_load(upstream_kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        user = config["users"][0]["user"]
        upstream = urllib.parse.urlsplit(cluster["server"])
        assert upstream.hostname and upstream.port
        self._upstream = (upstream.hostname, upstream.port)
        workdir.mkdir(parents=True, exist_ok=True)
        creds = Path(tempfile.mkdtemp(dir=workdir))
        self._client_ctx = ssl.create_default_context(
            cafile=str(_b64_file(creds, "ca.crt", cluster["certificate-authority-data"]))
        )
        self._client_ctx.load_cert_chain(
            str(_b64_file(creds, "client.crt", user["client-certificate-data"])),
            str(_b64_file(creds, "client.key", user["client-key-data"])),
        )
        ca = CertificateAuthority(workdir / "proxy-pki", common_name="restate-op-test-proxy")
        serving = ca.issue("proxy", common_name="proxy", ip_addresses=("127.0.0.1",), server=True)
        self._server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_ctx.load_cert_chain(str(serving.cert), str(serving.key))
        self._ca_pem = ca.pair.cert_pem()
        self._token = token
        self.kubeconfig = workdir / "proxy.kubeconfig"
        self.port = 0
        self.interceptor: Interceptor = lambda _m, _p, _q: None
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def __enter__(self) -> ApiProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._server_ctx), self._loop
        ).result(10)
        self.port = int(self._server.sockets[0].getsockname()[1])
        self.kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "proxy",
                    "clusters": [
                        {
                            "name": "proxy",
                            "cluster": {
                                "server": f"https://127.0.0.1:{self.port}",
                                "certificate-authority-data": base64.b64encode(
                                    self._ca_pem
                                ).decode(),
                            },
                        }
                    ],
                    "users": [{"name": "proxy", "user": {"token": self._token}}],
                    "contexts": [
                        {"name": "proxy", "context": {"cluster": "proxy", "user": "proxy"}}
                    ],
                }
            )
        )
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._server.wait_closed(), 2)
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def since(self, start: float) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.at >= start]

    # -- internals ---------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *header_lines = head.rstrip("\r\n").split("\r\n")
            length = 0
            for line in header_lines:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length) if length else b""
            method, target, _ = request_line.split(" ", 2)
            parsed = urllib.parse.urlsplit(target)
            reply = self.interceptor(method, parsed.path, parsed.query)
            with self._lock:
                self.requests.append(
                    Request(
                        time.monotonic(),
                        method,
                        parsed.path,
                        parsed.query,
                        reply.status if reply else None,
                    )
                )
            if reply is not None:
                writer.write(reply.encode())
                await writer.drain()
                return
            headers = [
                h
                for h in header_lines
                if h.split(":", 1)[0].strip().lower()
                not in ("connection", "authorization", "keep-alive")
            ]
            headers.append("Connection: close")
            upstream_reader, upstream_writer = await asyncio.open_connection(
                *self._upstream, ssl=self._client_ctx
            )
            upstream_writer.write(
                ("\r\n".join([request_line, *headers]) + "\r\n\r\n").encode() + body
            )
            await upstream_writer.drain()
            pump = asyncio.ensure_future(_pump(upstream_reader, writer))
            # A client that goes away (a cancelled watch) ends the upstream stream too.
            gone = asyncio.ensure_future(reader.read())
            await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
            for task in (pump, gone):
                task.cancel()
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            for w in (upstream_writer, writer):
                if w is not None:
                    w.close()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()


def request_log(requests: list[Request]) -> str:
    return "\n".join(
        f"{r.at:.2f} {r.method} {r.path}?{r.query} -> {r.injected or 'fwd'}" for r in requests
    )
