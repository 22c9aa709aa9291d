"""The controller runtime: informers feed a work queue, workers reconcile, one leader writes.

Data runs one way: a watch event becomes a queue key (the cluster name); a worker reconciles
it from the informer caches; results requeue it with a delay or a rate-limited backoff.
Standby replicas keep warm caches but never reconcile until they hold the Lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Mapping
from typing import Any

from restate_op.api.crd import CRD_NAME
from restate_op.http import HealthServer
from restate_op.kube import resources
from restate_op.kube.client import KubeClient
from restate_op.kube.compact import compact
from restate_op.kube.events import EventRecorder
from restate_op.kube.informer import Informer
from restate_op.kube.lease import LeaderElector
from restate_op.kube.workqueue import WorkQueue
from restate_op.logs import current_cluster
from restate_op.machine import PHASES
from restate_op.metrics import METRICS
from restate_op.observe import ChildKey
from restate_op.reconciler import ClusterView, Reconciler
from restate_op.settings import Capabilities, OperatorSettings

log = logging.getLogger(__name__)

MANAGED_SELECTOR = "app.kubernetes.io/managed-by=restate-operator"
PVC_SELECTOR = "app.kubernetes.io/name=restate"
CHILD_KINDS = (
    resources.SERVICE_ACCOUNT,
    resources.SERVICE,
    resources.CONFIG_MAP,
    resources.STATEFUL_SET,
    resources.POD_DISRUPTION_BUDGET,
    resources.NETWORK_POLICY,
    resources.JOB,
)
CRD_POLL_SECONDS = 10.0
DISCOVERY_SECONDS = 60.0


def _strip(obj: dict[str, Any]) -> dict[str, Any]:
    """Drop what the operator never reads and share repeated strings, to keep 1000 clusters'
    caches small."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
        annotations = metadata.get("annotations")
        if annotations:
            annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    compacted: dict[str, Any] = compact(obj)
    return compacted


class InformerView(ClusterView):
    """The reconciler's read access, served from the informer caches."""

    def __init__(
        self,
        clusters: Informer,
        namespaces: Informer,
        children: list[Informer],
        pvcs: Informer,
        storage_classes: Informer,
    ) -> None:
        self._clusters = clusters
        self._namespaces = namespaces
        self._children = children
        self._pvcs = pvcs
        self._storage_classes = storage_classes

    def cluster(self, name: str) -> Mapping[str, Any] | None:
        return self._clusters.get(None, name)

    def namespace(self, name: str) -> Mapping[str, Any] | None:
        return self._namespaces.get(None, name)

    def children(self, namespace: str) -> Mapping[ChildKey, Mapping[str, Any]]:
        found: dict[ChildKey, Mapping[str, Any]] = {}
        for informer in self._children:
            for obj in informer.list(namespace):
                found[(obj["kind"], obj["metadata"]["name"])] = obj
        return found

    def pvcs(self, namespace: str) -> tuple[Mapping[str, Any], ...]:
        return tuple(self._pvcs.list(namespace))

    def storage_classes(self) -> Mapping[str, Mapping[str, Any]]:
        return {sc["metadata"]["name"]: sc for sc in self._storage_classes.list(None)}


class Operator:
    """The whole operator process: caches, leader election, workers, HTTP."""

    def __init__(
        self, client: KubeClient, settings: OperatorSettings, identity: str | None = None
    ) -> None:
        self.client = client
        self.settings = settings
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}"
        self.queue: WorkQueue[str] = WorkQueue()
        self.capabilities = Capabilities()
        self.crds_ready = False
        self.is_leader = False
        self._stopping = asyncio.Event()
        self._informers: list[Informer] = []
        self._workers: list[asyncio.Task[None]] = []
        self._background: list[asyncio.Task[None]] = []
        # Events about a cluster-scoped RestateCluster may only live in `default` (the API
        # server's rule); `kubectl describe rsc` finds them there.
        self.recorder = EventRecorder(
            client, reporting_controller="restate-operator", reporting_instance=self.identity
        )
        # host None: every interface, IPv4 and IPv6 (upstream binds [::]).
        self.http = HealthServer(None, settings.http_port, self._readiness)

    # -- readiness ---------------------------------------------------------------------

    def _readiness(self) -> tuple[bool, dict[str, object]]:
        pending = [] if self.crds_ready else [CRD_NAME]
        if (
            self.settings.aws_pod_identity_association_cluster
            and not self.capabilities.pod_identity_association
        ):
            pending.append("podidentityassociations.eks.services.k8s.aws")
        synced = all(i.synced for i in self._informers) if self._informers else False
        ready = not pending and synced
        return ready, {"leader": self.is_leader, "pendingCRDs": pending, "cachesSynced": synced}

    # -- start-up ------------------------------------------------------------------------

    async def _discover(self) -> Capabilities:
        # One request says which API groups are served at all; only an optional group that
        # is served is asked for its resources. Re-discovery every DISCOVERY_SECONDS thus
        # costs one GET on a cluster without these APIs, not one per API.
        served = await self.client.named_groups()

        async def has(group_version: str, plural: str) -> bool:
            return group_version in served and await self.client.has_api(group_version, plural)

        return Capabilities(
            pod_identity_association=await has(
                "eks.services.k8s.aws/v1alpha1", "podidentityassociations"
            ),
            security_group_policy=await has(
                "vpcresources.k8s.aws/v1beta1", "securitygrouppolicies"
            ),
            secret_provider_class=await has(
                "secrets-store.csi.x-k8s.io/v1", "secretproviderclasses"
            ),
        )

    async def _wait_for_crds(self) -> None:
        """Wait (rather than crash-loop) until our CRD, and ACK's when needed, are served."""
        announced = False
        while not self._stopping.is_set():
            self.crds_ready = await self.client.has_api("restate.dev/v1", "restateclusters")
            self.capabilities = await self._discover()
            METRICS.crd_missing.labels(crd=CRD_NAME).set(0 if self.crds_ready else 1)
            needs_pia = bool(self.settings.aws_pod_identity_association_cluster)
            METRICS.crd_missing.labels(crd="podidentityassociations.eks.services.k8s.aws").set(
                1 if needs_pia and not self.capabilities.pod_identity_association else 0
            )
            if self.crds_ready and (not needs_pia or self.capabilities.pod_identity_association):
                if announced:
                    log.info("required CRDs are available")
                return
            if not announced:
                log.warning(
                    "waiting for CRDs: %s%s",
                    "" if self.crds_ready else CRD_NAME,
                    " podidentityassociations.eks.services.k8s.aws (started with "
                    "--aws-pod-identity-association-cluster; install the ACK EKS controller)"
                    if needs_pia and not self.capabilities.pod_identity_association
                    else "",
                )
                announced = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), CRD_POLL_SECONDS)

    def _enqueue_cluster(self, _event: str, obj: Mapping[str, Any]) -> None:
        self.queue.add(obj["metadata"]["name"])

    def _enqueue_owner_namespace(self, _event: str, obj: Mapping[str, Any]) -> None:
        namespace = obj["metadata"].get("namespace")
        if namespace and self._clusters.get(None, namespace) is not None:
            self.queue.add(namespace)

    def _enqueue_all_clusters(self, _event: str, _obj: Mapping[str, Any]) -> None:
        for cluster in self._clusters.list(None):
            self.queue.add(cluster["metadata"]["name"])

    def _enqueue_namespace(self, _event: str, obj: Mapping[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if self._clusters.get(None, name) is not None:
            self.queue.add(name)

    def _child_kinds(self) -> list[resources.Kind]:
        kinds = list(CHILD_KINDS)
        # Only with --aws-pod-identity-association-cluster are PodIdentityAssociations the
        # operator's (and only then does the chart grant access to them).
        if (
            self.capabilities.pod_identity_association
            and self.settings.aws_pod_identity_association_cluster
        ):
            kinds.append(resources.POD_IDENTITY_ASSOCIATION)
        if self.capabilities.security_group_policy:
            kinds.append(resources.SECURITY_GROUP_POLICY)
        if self.capabilities.secret_provider_class:
            kinds.append(resources.SECRET_PROVIDER_CLASS)
        return kinds

    def _child_informer(self, kind: resources.Kind) -> Informer:
        informer = Informer(self.client, kind, label_selector=MANAGED_SELECTOR, transform=_strip)
        informer.add_handler(self._enqueue_owner_namespace)
        return informer

    async def _rediscover(self) -> None:
        """Notice optional CRDs installed after start-up (say the CSI driver) and watch them."""
        while True:
            await asyncio.sleep(DISCOVERY_SECONDS)
            try:
                found = await self._discover()
            except Exception:
                log.warning("API discovery failed; retrying", exc_info=True)
                continue
            if found == self.capabilities:
                continue
            log.info("optional APIs changed: %s", found)
            self.capabilities = found
            watched = {i.kind for i in self._children}
            for kind in self._child_kinds():
                if kind not in watched:
                    informer = self._child_informer(kind)
                    informer.start()
                    await informer.wait_synced()
                    self._children.append(informer)
                    self._informers.append(informer)
            for obj in self._clusters.list(None):
                self.queue.add(obj["metadata"]["name"])

    def _build_informers(self) -> InformerView:
        c = self.client
        self._clusters = Informer(c, resources.RESTATE_CLUSTER, transform=_strip)
        self._clusters.add_handler(self._enqueue_cluster)
        namespaces = Informer(c, resources.NAMESPACE, transform=_strip)
        namespaces.add_handler(self._enqueue_namespace)
        children = [self._child_informer(kind) for kind in self._child_kinds()]
        self._children = children
        pvcs = Informer(
            c, resources.PERSISTENT_VOLUME_CLAIM, label_selector=PVC_SELECTOR, transform=_strip
        )
        pvcs.add_handler(self._enqueue_owner_namespace)
        storage_classes = Informer(c, resources.STORAGE_CLASS, transform=_strip)
        # A class created or made expandable may unblock any cluster waiting for it.
        storage_classes.add_handler(self._enqueue_all_clusters)
        self._informers = [self._clusters, namespaces, *children, pvcs, storage_classes]
        return InformerView(self._clusters, namespaces, children, pvcs, storage_classes)

    # -- running -------------------------------------------------------------------------

    async def _worker(self, reconciler: Reconciler) -> None:
        while True:
            key = await self.queue.get()
            if key is None:
                return
            token = current_cluster.set(key)
            try:
                result = await reconciler.reconcile(key)
                if result.failed:
                    self.queue.add_rate_limited(key)
                else:
                    self.queue.forget(key)
                    if result.requeue_after is not None:
                        self.queue.add_after(key, result.requeue_after)
            except Exception:
                log.exception("reconcile crashed")
                METRICS.reconcile_errors.labels(error="Internal").inc()
                self.queue.add_rate_limited(key)
            finally:
                current_cluster.reset(token)
                self.queue.done(key)
                METRICS.queue_depth.set(len(self.queue))

    async def _count_phases(self) -> None:
        """Keep the clusters-per-phase gauge current (from the cache: no API request)."""
        while True:
            counts: dict[str, int] = dict.fromkeys(PHASES, 0)
            for obj in self._clusters.list(None):
                phase = (obj.get("status") or {}).get("phase") or "Pending"
                counts[phase] = counts.get(phase, 0) + 1
            for phase, count in counts.items():
                METRICS.clusters.labels(phase=phase).set(count)
            METRICS.queue_depth.set(len(self.queue))
            await asyncio.sleep(5)

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            for obj in self._clusters.list(None):
                self.queue.add(obj["metadata"]["name"])

    async def _lead(self, view: InformerView) -> None:
        """Runs while this process is the leader."""
        self.is_leader = True
        METRICS.leader.set(1)
        log.info("became leader", extra={"identity": self.identity})
        reconciler = Reconciler(
            self.client, self.recorder, view, self.settings, lambda: self.capabilities
        )
        for obj in self._clusters.list(None):
            self.queue.add(obj["metadata"]["name"])
        self._workers = [
            asyncio.create_task(self._worker(reconciler)) for _ in range(self.settings.concurrency)
        ]
        self._background = [
            asyncio.create_task(self._resync()),
            asyncio.create_task(self._rediscover()),
            asyncio.create_task(self._count_phases()),
        ]
        try:
            await self._stopping.wait()
        except asyncio.CancelledError:
            # The Lease is lost: no write may follow, so every worker is stopped (and waited
            # for) before the elector campaigns again. A graceful stop drains them instead.
            # Cancelled until they are done: the transitions library swallows a cancellation
            # that arrives inside a transition, so one cancel may not end a reconcile.
            tasks = [*self._workers, *self._background]
            while pending := [task for task in tasks if not task.done()]:
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending, timeout=0.1)
            raise

    async def _until_stopped(self, work: Awaitable[Any]) -> bool:
        """Await ``work`` unless SIGTERM comes first (then cancel it and return False)."""
        task = asyncio.ensure_future(work)
        stop = asyncio.create_task(self._stopping.wait())
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not task.done():
            task.cancel()
            return False
        task.result()
        return True

    def _lost_lead(self) -> None:
        """Back to standby. Exiting instead would turn every API server outage longer than
        the renew deadline into a crash loop of all replicas."""
        if self.is_leader and not self._stopping.is_set():
            log.error("lost the leader Lease; workers stopped, standing by to campaign again")
        self.is_leader = False
        METRICS.leader.set(0)

    async def run(self) -> None:
        await self.http.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        try:
            await self._wait_for_crds()
            if self._stopping.is_set():
                return
            view = self._build_informers()
            for informer in self._informers:
                informer.start()
            if not await self._until_stopped(
                asyncio.gather(*(i.wait_synced() for i in self._informers))
            ):
                return
            log.info("caches synced", extra={"clusters": len(self._clusters.list(None))})
            if self.settings.leader_elect:
                elector = LeaderElector(
                    self.client,
                    self.settings.operator_namespace,
                    self.settings.lease_name,
                    self.identity,
                    lease_duration=self.settings.lease_duration_seconds,
                    renew_deadline=self.settings.lease_duration_seconds * 2 / 3,
                    retry_period=self.settings.lease_renew_seconds,
                )
                lead = asyncio.create_task(elector.run(lambda: self._lead(view), self._lost_lead))
                await self._stopping.wait()
                await self._drain()
                lead.cancel()
                await elector.release()
            else:
                lead = asyncio.create_task(self._lead(view))
                await self._stopping.wait()
                await self._drain()
                lead.cancel()
        finally:
            for informer in self._informers:
                await informer.stop()
            await self.http.stop()

    async def _drain(self) -> None:
        """Graceful shutdown: let reconciles in flight finish, take no new keys."""
        self.queue.shutdown()
        for task in self._background:
            task.cancel()
        if self._workers:
            # Stay well inside the pod's termination grace period (30 s by default).
            await asyncio.wait(self._workers, timeout=20)
            for task in self._workers:
                task.cancel()

    def stop(self) -> None:
        log.info("stopping")
        self._stopping.set()
