"""What the benchmark sees: watches on RestateClusters, StatefulSets and PVCs, time-stamped.

The probe runs in the benchmark process with admin credentials (which the audit policy does
not log) and records, per cluster, the first moment each *mark* was seen by a watch:

- ``sent`` / ``created``: the create request was sent / answered (set by :meth:`create`);
- ``phase:<Phase>``: ``status.phase`` first seen with that value;
- ``ready@<generation>``: phase ``Ready`` with ``status.observedGeneration`` equal to that
  ``metadata.generation``, i.e. Ready for the spec as of that generation;
- ``sts``: the StatefulSet ``restate`` exists (the operator applies it last of all children,
  so this is the moment every child has been applied); ``sts-ready``: its ``readyReplicas``
  equals its ``spec.replicas`` for its current generation (all pods Ready);
  ``sts:<uid>`` / ``sts-ready:<uid>``: the same for one particular StatefulSet object;
- ``pvc:<name>:<bytes>``: claim ``<name>`` first reported a capacity of ``<bytes>``.

Times are Unix times (``time.time()``), comparable with the audit log's timestamps.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from e2e.polling import TimedOut, apoll
from restate_op.kube import resources
from restate_op.kube.client import KubeClient
from restate_op.kube.informer import EventType, Informer, strip_managed_fields
from restate_op.quantity import InvalidQuantity, quantity_bytes

MANAGED_SELECTOR = "app.kubernetes.io/managed-by=restate-operator"
PVC_SELECTOR = "app.kubernetes.io/name=restate"

Marks = dict[str, float]


class Probe:
    """Watches and marks; ``await probe.until(predicate)`` waits on what it sees."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.marks: dict[str, Marks] = {}
        #: How many clusters have each label (so waiting on 1000 clusters stays O(1)).
        self.tally: collections.Counter[str] = collections.Counter()
        self._tick = asyncio.Event()
        self.clusters = Informer(client, resources.RESTATE_CLUSTER, transform=strip_managed_fields)
        self.statefulsets = Informer(
            client,
            resources.STATEFUL_SET,
            label_selector=MANAGED_SELECTOR,
            transform=strip_managed_fields,
        )
        self.pvcs = Informer(
            client,
            resources.PERSISTENT_VOLUME_CLAIM,
            label_selector=PVC_SELECTOR,
            transform=strip_managed_fields,
        )
        self.clusters.add_handler(self._on_cluster)
        self.statefulsets.add_handler(self._on_statefulset)
        self.pvcs.add_handler(self._on_pvc)
        self._informers: tuple[Informer, ...] = (self.clusters, self.statefulsets, self.pvcs)

    @classmethod
    async def connect(cls, kubeconfig: Path, *, watch_pvcs: bool = True) -> Probe:
        """Start watching (PVCs only with ``watch_pvcs``: no ``pvc:`` marks without)."""
        client = await KubeClient.connect(str(kubeconfig), user_agent="restate-op-bench")
        probe = cls(client)
        if not watch_pvcs:
            probe._informers = (probe.clusters, probe.statefulsets)
        for informer in probe._informers:
            informer.start()
        await asyncio.gather(*(i.wait_synced() for i in probe._informers))
        return probe

    async def close(self) -> None:
        for informer in self._informers:
            await informer.stop()
        await self.client.close()

    # -- marks -----------------------------------------------------------------------------

    def mark(self, cluster: str, label: str, when: float | None = None) -> None:
        """Record ``label`` for ``cluster`` unless it was recorded before."""
        marks = self.marks.setdefault(cluster, {})
        if label not in marks:
            marks[label] = time.time() if when is None else when
            self.tally[label] += 1
            self._notify()

    def seen(self, cluster: str, label: str) -> float | None:
        return self.marks.get(cluster, {}).get(label)

    def _notify(self) -> None:
        self._tick.set()
        self._tick = asyncio.Event()

    def _on_cluster(self, event: EventType, obj: dict[str, Any]) -> None:
        if event == "DELETED":
            return
        name = obj["metadata"]["name"]
        status = obj.get("status") or {}
        phase = status.get("phase")
        if not phase:
            return
        self.mark(name, f"phase:{phase}")
        generation = obj["metadata"].get("generation")
        if phase == "Ready" and status.get("observedGeneration") == generation:
            self.mark(name, f"ready@{generation}")

    def _on_statefulset(self, event: EventType, obj: dict[str, Any]) -> None:
        if event == "DELETED" or obj["metadata"]["name"] != "restate":
            return
        cluster = obj["metadata"]["namespace"]
        uid = obj["metadata"].get("uid", "")
        self.mark(cluster, "sts")
        self.mark(cluster, f"sts:{uid}")
        status = obj.get("status") or {}
        desired = (obj.get("spec") or {}).get("replicas", 1)
        if (
            status.get("observedGeneration", 0) >= obj["metadata"].get("generation", 0)
            and int(status.get("readyReplicas") or 0) >= desired
        ):
            self.mark(cluster, "sts-ready")
            self.mark(cluster, f"sts-ready:{uid}")

    def _on_pvc(self, event: EventType, obj: dict[str, Any]) -> None:
        if event == "DELETED":
            return
        capacity = ((obj.get("status") or {}).get("capacity") or {}).get("storage")
        if capacity is None:
            return
        try:
            size = quantity_bytes(capacity)
        except InvalidQuantity:
            return
        self.mark(obj["metadata"]["namespace"], f"pvc:{obj['metadata']['name']}:{size}")

    # -- acting and waiting ------------------------------------------------------------------

    async def create(self, manifest: dict[str, Any]) -> None:
        """Create a RestateCluster, marking when the request was sent and answered."""
        name = manifest["metadata"]["name"]
        self.mark(name, "sent")
        await self.client.create(manifest, kind=resources.RESTATE_CLUSTER)
        self.mark(name, "created")

    async def create_all(self, manifests: Iterable[dict[str, Any]], parallel: int = 32) -> None:
        """Create many RestateClusters as fast as the API server takes them."""
        gate = asyncio.Semaphore(parallel)

        async def one(manifest: dict[str, Any]) -> None:
            async with gate:
                await self.create(manifest)

        await asyncio.gather(*(one(m) for m in manifests))

    async def until(self, predicate: Callable[[], bool], within: float) -> bool:
        """Wait until ``predicate()`` holds (re-checked on every new mark); ``False`` on
        time-out."""

        async def check() -> bool:
            return predicate()

        async def next_mark(seconds: float) -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._tick.wait(), seconds)

        try:
            return await apoll(
                check, within=within, what="the predicate", interval=1.0, sleep=next_mark
            )
        except TimedOut:
            return False

    def count(self, names: Iterable[str], label: str) -> int:
        return sum(1 for n in names if self.seen(n, label) is not None)
