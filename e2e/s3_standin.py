"""A stand-in for an S3 object store over a local directory, for Restate's snapshot repository.

restate-server 1.7.12 writes partition snapshots only to ``s3://`` destinations (``file://``
is refused at start-up: "Unsupported protocol"; Restate enables it in its own tests only). So
the snapshot e2e test points the nodes at this server, on a loopback address inside the
test's network namespace, with ``aws-endpoint-url`` and ``aws-allow-http``: every object
Restate writes lands as a file under ``root/<bucket>/<key>``, which the test lists.

It implements the requests Restate's object-store client makes for a snapshot (path-style
only): PUT (with ``If-None-Match: *`` and ``If-Match`` conditions), multipart uploads, GET
(with a byte range), HEAD, DELETE and ListObjectsV2. Signatures are not checked. Every
request is recorded for the test.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"


def _etag(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


@dataclass
class S3StandIn:
    """The store: objects are files under ``root``; uploads in progress are in memory."""

    root: Path
    requests: list[tuple[str, str]] = field(default_factory=list)
    uploads: dict[str, dict[int, bytes]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def path(self, bucket: str, key: str) -> Path:
        target = (self.root / bucket / key).resolve()
        if not target.is_relative_to(self.root.resolve()):
            raise ValueError(f"key escapes the store: {key}")
        return target

    def files(self, bucket: str) -> list[str]:
        """Every object key of ``bucket``, sorted (what the test lists)."""
        base = self.root / bucket
        if not base.exists():
            return []
        return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())


class _Handler(BaseHTTPRequestHandler):
    store: S3StandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    # -- plumbing ----------------------------------------------------------------------

    def _split(self) -> tuple[str, str, dict[str, list[str]]]:
        url = urlsplit(self.path)
        parts = unquote(url.path).lstrip("/").split("/", 1)
        return parts[0], parts[1] if len(parts) > 1 else "", parse_qs(url.query, True)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body or "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _xml(self, status: int, inner: str) -> None:
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n{inner}'.encode()
        self._send(status, body, {"Content-Type": "application/xml"})

    def _error(self, status: int, code: str, message: str) -> None:
        self._xml(status, f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>")

    def _handle(self, action: Callable[[str, str, dict[str, list[str]]], None]) -> None:
        bucket, key, query = self._split()
        with self.store.lock:
            self.store.requests.append((self.command, self.path))
        try:
            action(bucket, key, query)
        except ValueError as exc:
            self._error(400, "InvalidArgument", str(exc))

    # -- verbs -------------------------------------------------------------------------

    def do_PUT(self) -> None:
        self._handle(self._put)

    def do_POST(self) -> None:
        self._handle(self._post)

    def do_GET(self) -> None:
        self._handle(self._get)

    def do_HEAD(self) -> None:
        self._handle(self._get)

    def do_DELETE(self) -> None:
        self._handle(self._delete)

    def _put(self, bucket: str, key: str, query: dict[str, list[str]]) -> None:
        data = self._body()
        store = self.store
        if "uploadId" in query:
            with store.lock:
                parts = store.uploads.get(query["uploadId"][0])
                if parts is None:
                    return self._error(404, "NoSuchUpload", "no such upload")
                parts[int(query["partNumber"][0])] = data
            return self._send(200, headers={"ETag": _etag(data)})
        target = store.path(bucket, key)
        with store.lock:
            existing = target.read_bytes() if target.is_file() else None
            if self.headers.get("If-None-Match") == "*" and existing is not None:
                return self._error(412, "PreconditionFailed", "the object exists")
            wanted = self.headers.get("If-Match")
            if wanted is not None and (existing is None or _etag(existing) != wanted):
                return self._error(412, "PreconditionFailed", "the ETag does not match")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return self._send(200, headers={"ETag": _etag(data)})

    def _post(self, bucket: str, key: str, query: dict[str, list[str]]) -> None:
        store = self.store
        self._body()
        if "uploads" in query:
            upload = uuid.uuid4().hex
            with store.lock:
                store.uploads[upload] = {}
            return self._xml(
                200,
                f'<InitiateMultipartUploadResult xmlns="{S3_XMLNS}"><Bucket>{escape(bucket)}'
                f"</Bucket><Key>{escape(key)}</Key><UploadId>{upload}</UploadId>"
                "</InitiateMultipartUploadResult>",
            )
        if "uploadId" in query:
            with store.lock:
                parts = store.uploads.pop(query["uploadId"][0], None)
                if parts is None:
                    return self._error(404, "NoSuchUpload", "no such upload")
                data = b"".join(parts[n] for n in sorted(parts))
                target = store.path(bucket, key)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            return self._xml(
                200,
                f'<CompleteMultipartUploadResult xmlns="{S3_XMLNS}"><Bucket>{escape(bucket)}'
                f"</Bucket><Key>{escape(key)}</Key><ETag>{escape(_etag(data))}</ETag>"
                "</CompleteMultipartUploadResult>",
            )
        return self._error(501, "NotImplemented", f"POST {self.path}")

    def _get(self, bucket: str, key: str, query: dict[str, list[str]]) -> None:
        if not key:
            return self._list(bucket, query)
        target = self.store.path(bucket, key)
        if not target.is_file():
            return self._error(404, "NoSuchKey", f"no such key: {key}")
        data = target.read_bytes()
        headers = {
            "ETag": _etag(data),
            "Last-Modified": formatdate(target.stat().st_mtime, usegmt=True),
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
        }
        wanted = self.headers.get("Range")
        if wanted and wanted.startswith("bytes="):
            first, _, last = wanted[len("bytes=") :].partition("-")
            start = int(first) if first else max(len(data) - int(last), 0)
            end = int(last) if first and last else len(data) - 1
            part = data[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{start + len(part) - 1}/{len(data)}"
            headers["Content-Length"] = str(len(part))
            return self._send(206, part, headers)
        headers["Content-Length"] = str(len(data))
        return self._send(200, data, headers)

    def _list(self, bucket: str, query: dict[str, list[str]]) -> None:
        prefix = (query.get("prefix") or [""])[0]
        delimiter = (query.get("delimiter") or [""])[0]
        keys, prefixes = [], set()
        for key in self.store.files(bucket):
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix) :]
            if delimiter and delimiter in rest:
                prefixes.add(prefix + rest.split(delimiter, 1)[0] + delimiter)
            else:
                keys.append(key)
        contents = "".join(
            f"<Contents><Key>{escape(k)}</Key><Size>{self.store.path(bucket, k).stat().st_size}"
            f"</Size><ETag>{escape(_etag(self.store.path(bucket, k).read_bytes()))}</ETag>"
            f"<LastModified>2026-01-01T00:00:00.000Z</LastModified></Contents>"
            for k in keys
        )
        common = "".join(
            f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>"
            for p in sorted(prefixes)
        )
        self._xml(
            200,
            f'<ListBucketResult xmlns="{S3_XMLNS}"><Name>{escape(bucket)}</Name>'
            f"<Prefix>{escape(prefix)}</Prefix><KeyCount>{len(keys) + len(prefixes)}</KeyCount>"
            f"<IsTruncated>false</IsTruncated>{contents}{common}</ListBucketResult>",
        )

    def _delete(self, bucket: str, key: str, query: dict[str, list[str]]) -> None:
        if "uploadId" in query:
            with self.store.lock:
                self.store.uploads.pop(query["uploadId"][0], None)
            return self._send(204)
        target = self.store.path(bucket, key)
        with self.store.lock:
            target.unlink(missing_ok=True)
        return self._send(204)


class S3Server:
    """``S3StandIn`` served over HTTP at ``address:port``; ``make_socket`` lets the caller
    create the listening socket inside a network namespace (``LoopbackNetns.call``)."""

    def __init__(self, root: Path, address: str, port: int = 9000) -> None:
        self.store = S3StandIn(root)
        root.mkdir(parents=True, exist_ok=True)
        handler = type("Handler", (_Handler,), {"store": self.store})
        self.address, self.port = address, port
        self._handler = handler
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def make_socket(self) -> None:
        """Bind the listening socket (in the calling thread's network namespace)."""
        self._server = ThreadingHTTPServer((self.address, self.port), self._handler)
        self._server.daemon_threads = True

    def start(self) -> None:
        if self._server is None:
            self.make_socket()
        assert self._server is not None
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
