"""Kubernetes Events (``events.k8s.io/v1``) about the objects the operator manages.

Every state-machine transition emits an Event on its RestateCluster, so ``kubectl describe
rsc/<name>`` tells the story. Two rules shape this module:

- An Event must never break a reconcile: :meth:`EventRecorder.emit` logs and drops failures.
- A reconcile loop that keeps hitting the same problem must not create an Event object per
  attempt: a repeat of the same (object, type, reason, action, note) within
  ``series_window`` bumps the first Event's ``series`` instead (client-go's events
  broadcaster does the same).

Where an Event lives: in the namespace of the object it is about; for a cluster-scoped
object (a RestateCluster) in ``default``, because the API server rejects an
``events.k8s.io/v1`` Event without ``regarding.namespace`` anywhere but ``default`` and
``kube-system``. ``kubectl describe`` finds them there: for a cluster-scoped object it
searches Events in all namespaces by ``involvedObject`` (the core/v1 view of ``regarding``).
"""

from __future__ import annotations

import collections
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from restate_op.kube.client import KubeClient, Obj
from restate_op.kube.errors import NotFound
from restate_op.kube.resources import EVENT
from restate_op.kube.times import micro_time, utcnow

logger = logging.getLogger(__name__)

EventKind = Literal["Normal", "Warning"]
#: Namespaces the API server accepts for Events about cluster-scoped objects.
CLUSTER_SCOPED_EVENT_NAMESPACES = frozenset({"default", "kube-system"})
#: API server limits (bytes for the note, characters otherwise).
NOTE_LIMIT = 1024
REASON_LIMIT = 128
ACTION_LIMIT = 128
NAME_LIMIT = 253
SeriesKey = tuple[str, str, str, str, str]


def object_reference(obj: Mapping[str, Any]) -> Obj:
    """An ObjectReference to ``obj``: apiVersion, kind, name, and namespace, uid and
    resourceVersion when the object has them."""
    meta = obj.get("metadata") or {}
    ref: Obj = {
        "apiVersion": str(obj.get("apiVersion", "")),
        "kind": str(obj.get("kind", "")),
        "name": str(meta.get("name", "")),
    }
    for field in ("namespace", "uid", "resourceVersion"):
        if meta.get(field):
            ref[field] = str(meta[field])
    return ref


def truncate_bytes(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` UTF-8 bytes without splitting a character."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[: limit - 3].decode(errors="ignore") + "..."


@dataclass
class _Series:
    name: str
    namespace: str
    count: int
    last_seen: float


class EventRecorder:
    """Create Events, folding quick repeats into a series.

    Example:
        >>> recorder = EventRecorder(client, reporting_instance=pod_name)
        >>> await recorder.emit(cluster, "Normal", "Provisioning", "Reconcile",
        ...                     "children created; waiting for pods")
    """

    def __init__(
        self,
        client: KubeClient,
        reporting_controller: str = "restate-operator",
        reporting_instance: str = "restate-operator",
        namespace: str = "default",
        *,
        series_window: float = 600.0,
        max_series: int = 4096,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """Configure the recorder.

        Args:
            reporting_controller: who emits (a qualified name, e.g. ``restate-operator``).
            reporting_instance: which replica emits (the pod name), at most 128 characters.
            namespace: where Events about cluster-scoped objects go; only ``default`` and
                ``kube-system`` are accepted by the API server, anything else falls back to
                ``default`` with a warning.
            series_window: repeats within this many seconds of the last one join a series.
            max_series: how many series are remembered (oldest forgotten first).
        """
        if namespace not in CLUSTER_SCOPED_EVENT_NAMESPACES:
            logger.warning(
                "Events about cluster-scoped objects cannot live in namespace %r "
                "(the API server accepts only default and kube-system); using default",
                namespace,
            )
            namespace = "default"
        self.client = client
        self.reporting_controller = reporting_controller
        self.reporting_instance = reporting_instance[:128]
        self.namespace = namespace
        self.series_window = series_window
        self.max_series = max_series
        self._clock = clock
        self._series: collections.OrderedDict[SeriesKey, _Series] = collections.OrderedDict()

    def build(
        self,
        regarding: Mapping[str, Any],
        type: EventKind,
        reason: str,
        action: str,
        note: str,
        *,
        related: Mapping[str, Any] | None = None,
    ) -> Obj:
        """The Event manifest for a new (first-of-series) Event."""
        ref = object_reference(regarding)
        namespace = ref.get("namespace") or self.namespace
        base = ref["name"][: NAME_LIMIT - 22].rstrip(".-") or "event"
        event: Obj = {
            "apiVersion": EVENT.api_version,
            "kind": EVENT.kind,
            "metadata": {
                "name": f"{base}.{time.time_ns():x}{secrets.token_hex(2)}",
                "namespace": namespace,
            },
            "eventTime": micro_time(self._clock()),
            "reportingController": self.reporting_controller,
            "reportingInstance": self.reporting_instance,
            "action": action[:ACTION_LIMIT],
            "reason": reason[:REASON_LIMIT],
            "regarding": ref,
            "note": truncate_bytes(note, NOTE_LIMIT),
            "type": type,
        }
        if related is not None:
            event["related"] = object_reference(related)
        return event

    def _key(self, event: Obj) -> SeriesKey:
        ref = event["regarding"]
        who = ref.get("uid") or f"{ref['kind']}/{event['metadata']['namespace']}/{ref['name']}"
        return (who, event["type"], event["reason"], event["action"], event["note"])

    def _forget_stale(self, now: float) -> None:
        while self._series:
            key, entry = next(iter(self._series.items()))
            if now - entry.last_seen <= self.series_window and len(self._series) <= (
                self.max_series
            ):
                return
            del self._series[key]

    async def emit(
        self,
        regarding: Mapping[str, Any],
        type: EventKind,
        reason: str,
        action: str,
        note: str,
        *,
        related: Mapping[str, Any] | None = None,
    ) -> None:
        """Record an Event about ``regarding`` (an object as read from the API server).

        Never raises (except on cancellation): failures are logged and the Event dropped.
        """
        try:
            await self._emit(self.build(regarding, type, reason, action, note, related=related))
        except Exception as exc:
            logger.warning(
                "dropped %s event %s on %s/%s: %s",
                type,
                reason,
                (regarding.get("metadata") or {}).get("namespace", ""),
                (regarding.get("metadata") or {}).get("name", ""),
                exc,
            )

    async def _emit(self, event: Obj) -> None:
        now = time.monotonic()
        self._forget_stale(now)
        key = self._key(event)
        entry = self._series.get(key)
        if entry is not None:
            entry.count += 1
            entry.last_seen = now
            self._series.move_to_end(key)
            patch = {
                "series": {"count": entry.count, "lastObservedTime": micro_time(self._clock())}
            }
            try:
                await self.client.patch_merge(EVENT, entry.name, entry.namespace, patch)
                return
            except NotFound:
                pass  # expired (Events live about an hour): start a new one
            except Exception:
                self._series.pop(key, None)
                raise
            self._series.pop(key, None)
        created = await self.client.create(event, kind=EVENT)
        meta = created.get("metadata") or event["metadata"]
        self._series[key] = _Series(
            name=str(meta["name"]),
            namespace=str(meta["namespace"]),
            count=1,
            last_seen=now,
        )
        self._forget_stale(now)

    def series_count(
        self, regarding: Mapping[str, Any], type: EventKind, reason: str, action: str, note: str
    ) -> int:
        """How many times this Event was emitted in its current series (0 if none)."""
        key = self._key(self.build(regarding, type, reason, action, note))
        entry = self._series.get(key)
        return entry.count if entry else 0
