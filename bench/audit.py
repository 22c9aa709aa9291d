"""Counting the operator's requests from the API server's audit log.

Each request has one ``auditID``; with the bench policy the log holds a ``ResponseStarted``
event (long-running requests only) and a ``ResponseComplete`` event per request. A request
is counted once, at its ``requestReceivedTimestamp``, whichever of its events is seen.
"""

from __future__ import annotations

import collections
import copy
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.controlplane import OPERATOR_USER


@dataclass(frozen=True)
class AuditedRequest:
    """One request of the operator, as the API server saw it."""

    received: float  # Unix time
    verb: str  # the API server's verb: get, list, watch, create, update, patch, delete
    resource: str  # e.g. "statefulsets", "restateclusters/status", "(discovery)"
    namespace: str
    name: str
    code: int  # HTTP status; 0 while a watch is still open
    #: The object's resourceVersion in the response, when the policy logs response bodies
    #: (a write answered with the version the object already had changed nothing).
    resource_version: str = ""
    #: :func:`content_digest` of the response's object (same policy condition).
    response_digest: str = ""


#: Bookkeeping that changes on every write, whatever it wrote: ignored by
#: :func:`content_digest`. The operator's own ``restate.dev/desired-hash`` is one: it hashes
#: the manifest sent, so a manifest sent in another form moves it.
BOOKKEEPING_ANNOTATIONS = (
    "restate.dev/desired-hash",
    "kubectl.kubernetes.io/last-applied-configuration",
)


def content_digest(obj: dict[str, Any]) -> str:
    """A digest of an object without its bookkeeping (``managedFields``, ``resourceVersion``,
    :data:`BOOKKEEPING_ANNOTATIONS`): equal digests before and after a write mean the write
    changed nothing anyone reads, only who owns which field."""
    o = copy.deepcopy(obj)
    meta = o.get("metadata") or {}
    for key in ("managedFields", "resourceVersion"):
        meta.pop(key, None)
    annotations = meta.get("annotations") or {}
    for key in BOOKKEEPING_ANNOTATIONS:
        annotations.pop(key, None)
    return hashlib.sha256(json.dumps(o, sort_keys=True).encode()).hexdigest()[:16]


def _unix(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def _request(event: dict[str, Any]) -> AuditedRequest:
    ref = event.get("objectRef") or {}
    response = event.get("responseObject") or {}
    body = response if "metadata" in response else {}
    resource = str(ref.get("resource") or "(discovery)")
    if ref.get("subresource"):
        resource += "/" + str(ref["subresource"])
    return AuditedRequest(
        received=_unix(str(event.get("requestReceivedTimestamp"))),
        verb=str(event.get("verb")),
        resource=resource,
        namespace=str(ref.get("namespace") or ""),
        name=str(ref.get("name") or ""),
        code=int((event.get("responseStatus") or {}).get("code") or 0),
        resource_version=str((body.get("metadata") or {}).get("resourceVersion") or ""),
        response_digest=content_digest(body) if body else "",
    )


class AuditLog:
    """Follows one audit log file and keeps every request of the operator's user."""

    def __init__(self, path: Path, user: str = OPERATOR_USER) -> None:
        self.path = path
        self.user = user
        self._offset = 0
        self._partial = b""
        self._requests: dict[str, AuditedRequest] = {}

    def refresh(self) -> None:
        """Read what the API server appended since the last call."""
        if not self.path.exists():
            return
        with self.path.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        self._offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if not line.strip():
                continue
            event = json.loads(line)
            if (event.get("user") or {}).get("username") != self.user:
                continue
            audit_id = str(event.get("auditID"))
            request = _request(event)
            if audit_id not in self._requests or request.code:
                self._requests[audit_id] = request

    def requests(self, start: float = 0.0, end: float = float("inf")) -> list[AuditedRequest]:
        """Requests received in ``[start, end)`` (Unix times), in order."""
        self.refresh()
        return sorted(
            (r for r in self._requests.values() if start <= r.received < end),
            key=lambda r: r.received,
        )

    def by_verb(self, start: float = 0.0, end: float = float("inf")) -> dict[str, int]:
        """Request counts by verb in ``[start, end)``."""
        return dict(sorted(collections.Counter(r.verb for r in self.requests(start, end)).items()))

    def by_verb_resource(
        self, start: float = 0.0, end: float = float("inf")
    ) -> dict[str, dict[str, int]]:
        """Request counts by verb, then resource, in ``[start, end)``."""
        counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for r in self.requests(start, end):
            counts[r.verb][r.resource] += 1
        return {verb: dict(sorted(c.items())) for verb, c in sorted(counts.items())}


def cluster_of(request: AuditedRequest) -> str | None:
    """Which RestateCluster a request was made for (children live in its namespace; the
    status is the cluster's own; Events about it live in ``default``, named after it)."""
    if request.resource.startswith("restateclusters") and request.name:
        return request.name
    if request.resource == "events" and request.namespace == "default":
        return request.name.split(".", 1)[0] or None
    if request.resource == "namespaces" and request.name:
        return request.name
    if request.namespace and request.namespace not in ("default", "restate-operator"):
        return request.namespace
    return None


def per_cluster(requests: list[AuditedRequest]) -> dict[str, int]:
    """Requests attributed to each RestateCluster (watches and the Lease excluded; the
    informers' lists span all namespaces and so belong to no cluster)."""
    counts: collections.Counter[str] = collections.Counter()
    for r in requests:
        if r.verb == "watch":
            continue
        cluster = cluster_of(r)
        if cluster is not None:
            counts[cluster] += 1
    return dict(counts)
