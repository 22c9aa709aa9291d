"""A tiny synchronous Kubernetes REST client on the standard library.

The control plane's own bootstrap (health probes, fake nodes, storage classes) and the fake
storage controller must not depend on the client library under test, and must keep working
from a plain thread or a separate process without an event loop. Plain `http.client` with a
client certificate is all they need.
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JSON = dict[str, Any]


class KubeHTTPError(Exception):
    """A non-2xx answer from the API server, keeping the status code and the Status body."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        """Record the request and the answer so that callers can branch on `status`."""
        super().__init__(f"{method} {path}: HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Credentials:
    """Where the API server is and the PEM files that authenticate to it."""

    server: str
    ca_file: Path
    cert_file: Path
    key_file: Path


class KubeHTTP:
    """Keeps one HTTPS connection to the API server and reconnects after any failure.

    Not thread-safe: give each thread or process its own instance.
    """

    def __init__(self, creds: Credentials, timeout: float = 10.0) -> None:
        """Prepare the TLS context; the connection is opened lazily on the first request."""
        parsed = urllib.parse.urlsplit(creds.server)
        if parsed.hostname is None or parsed.port is None:
            raise ValueError(f"server URL needs a host and a port: {creds.server}")
        self._host = parsed.hostname
        self._port = parsed.port
        self._timeout = timeout
        self._ctx = ssl.create_default_context(cafile=str(creds.ca_file))
        self._ctx.load_cert_chain(str(creds.cert_file), str(creds.key_file))
        self._conn: http.client.HTTPSConnection | None = None

    def close(self) -> None:
        """Drop the connection (a later request reopens it)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(
        self,
        method: str,
        path: str,
        body: JSON | None = None,
        *,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
    ) -> JSON:
        """Send one request and return the decoded JSON answer (empty dict when there is none).

        Raises KubeHTTPError for HTTP errors and OSError/HTTPException when the server is not
        reachable; the connection is reset in both cases so the next call starts clean.
        """
        url = path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = content_type
        try:
            if self._conn is None:
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, context=self._ctx, timeout=self._timeout
                )
            self._conn.request(method, url, body=payload, headers=headers)
            response = self._conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if response.status >= 300:
            raise KubeHTTPError(method, url, response.status, data.decode(errors="replace"))
        if not data:
            return {}
        decoded: JSON = json.loads(data)
        return decoded

    def get(self, path: str, params: dict[str, str] | None = None) -> JSON:
        """GET a resource or a list."""
        return self.request("GET", path, params=params)

    def create(self, path: str, obj: JSON, *, exist_ok: bool = True) -> JSON | None:
        """POST an object to a collection; returns None when it already existed and exist_ok."""
        try:
            return self.request("POST", path, obj)
        except KubeHTTPError as err:
            if exist_ok and err.status == 409:
                return None
            raise

    def merge_patch(self, path: str, patch: JSON) -> JSON:
        """Apply a JSON merge patch (RFC 7386), the simplest patch that works on every kind."""
        return self.request("PATCH", path, patch, content_type="application/merge-patch+json")

    def delete(self, path: str, *, missing_ok: bool = True) -> None:
        """DELETE an object; a 404 counts as success when missing_ok."""
        try:
            self.request("DELETE", path)
        except KubeHTTPError as err:
            if not (missing_ok and err.status == 404):
                raise
