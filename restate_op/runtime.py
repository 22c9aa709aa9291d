"""The runtime that hosts the controllers: shared caches, one work queue, leader election, HTTP.

Data runs one way: a watch event becomes queue keys (controller, object name) through the
mappings each controller registered (``restate_op.controller.Watch``); a worker takes a key
and runs that controller's reconcile (observe, decide, execute, conclude); the result
requeues the key with a delay or a rate-limited backoff. Standby replicas keep warm caches
but never reconcile until they hold the Lease. Adding a controller adds a ``Controller`` to
the list ``Operator`` is built with; nothing here changes.

Four parts, composed by ``Operator``: ``InformerCaches`` (one informer per watched kind and
selector, shared by every controller), ``Discovery`` (optional APIs, waited-for CRDs),
``Workers`` (the reconcile loop per key, resync, gauges) and leadership/shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from restate_op.cloud_controller import RestateCloudEnvironmentController
from restate_op.cluster_controller import RestateClusterController
from restate_op.controller import Controller, RequiredApi, Result, Watch
from restate_op.deployment_controller import RestateDeploymentController
from restate_op.discovery import Discovery, crd_name
from restate_op.executor import Executor
from restate_op.http import HealthServer
from restate_op.kube.client import KubeClient
from restate_op.kube.compact import compact
from restate_op.kube.events import EventRecorder
from restate_op.kube.informer import Informer, strip_managed_fields
from restate_op.kube.lease import LeaderElector
from restate_op.kube.resources import Kind
from restate_op.kube.workqueue import WorkQueue
from restate_op.logs import current_cluster
from restate_op.memory import Memory
from restate_op.metrics import METRICS
from restate_op.node_channels import NodeChannels
from restate_op.outcomes import ReconcileError
from restate_op.settings import Capabilities, OperatorSettings

log = logging.getLogger(__name__)

CRD_POLL_SECONDS = 10.0
GAUGE_SECONDS = 5.0

#: A work-queue key: (controller name, object name).
Key = tuple[str, str]
#: (kind, label selector, namespace): one informer each; namespace None is every namespace.
InformerKey = tuple[Kind, str | None, str | None]


def _transform(obj: dict[str, Any]) -> dict[str, Any]:
    """Drop what the operator never reads and share repeated strings, to keep 1000 clusters'
    caches small."""
    compacted: dict[str, Any] = compact(strip_managed_fields(obj))
    return compacted


class InformerCaches:
    """One informer per (kind, label selector, namespace), whoever watches it; read by every
    controller."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self._informers: dict[InformerKey, Informer] = {}

    @property
    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    @property
    def synced(self) -> bool:
        return bool(self._informers) and all(i.synced for i in self._informers.values())

    def ensure(
        self,
        kind: Kind,
        label_selector: str | None,
        handler: Callable[[str, Any], None],
        namespace: str | None = None,
    ) -> Informer | None:
        """The informer of (kind, selector, namespace), created with ``handler`` if new (then
        returned)."""
        key = (kind, label_selector, namespace)
        if key in self._informers:
            return None
        informer = Informer(
            self.client,
            kind,
            namespace=namespace,
            label_selector=label_selector,
            transform=_transform,
        )
        informer.add_handler(handler)
        self._informers[key] = informer
        return informer

    def get(self, kind: Kind, namespace: str | None, name: str) -> Mapping[str, Any] | None:
        for (k, _selector, _namespace), informer in self._informers.items():
            if k == kind:
                found = informer.get(namespace, name)
                if found is not None:
                    return found
        return None

    def list(
        self, kind: Kind, namespace: str | None = None, label_selector: str | None = None
    ) -> list[Mapping[str, Any]]:
        informer = self._informers.get((kind, label_selector, None))
        if informer is None and namespace is not None:
            informer = self._informers.get((kind, label_selector, namespace))
        return list(informer.list(namespace)) if informer is not None else []


class Operator:
    """The whole operator process: caches, leader election, workers, HTTP."""

    def __init__(
        self,
        client: KubeClient,
        settings: OperatorSettings,
        identity: str | None = None,
        controllers: Callable[[Operator], Sequence[Controller[Any]]] | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}"
        self.queue: WorkQueue[Key] = WorkQueue()
        self.capabilities = Capabilities()
        self.caches = InformerCaches(client)
        self.memory = Memory()
        self.discovery = Discovery(client)
        self.is_leader = False
        self._missing: list[RequiredApi] | None = None
        self._stopping = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._background: list[asyncio.Task[None]] = []
        # Events about a cluster-scoped RestateCluster may only live in `default` (the API
        # server's rule); `kubectl describe rsc` finds them there.
        self.recorder = EventRecorder(
            client, reporting_controller="restate-operator", reporting_instance=self.identity
        )
        self.executor = Executor(
            client,
            self.recorder,
            self.memory,
            node_channels=NodeChannels(max_channels=settings.restate_health_channels),
        )
        make = controllers or default_controllers
        self.controllers: dict[str, Controller[Any]] = {c.name: c for c in make(self)}
        self._reconcilers = {
            name: Reconcile(controller, self.executor, wake=self._waker(name))
            for name, controller in self.controllers.items()
        }
        # host None: every interface, IPv4 and IPv6 (upstream binds [::]).
        self.http = HealthServer(None, settings.http_port, self._readiness)

    # -- readiness ---------------------------------------------------------------------

    def _required(self) -> list[RequiredApi]:
        return [a for c in self.controllers.values() for a in c.required_apis(self.settings)]

    def _readiness(self) -> tuple[bool, dict[str, object]]:
        missing = self._required() if self._missing is None else self._missing
        pending = [crd_name(api) for api in missing]
        synced = self.caches.synced
        ready = not pending and synced
        return ready, {"leader": self.is_leader, "pendingCRDs": pending, "cachesSynced": synced}

    # -- start-up ------------------------------------------------------------------------

    async def _wait_for_crds(self) -> None:
        """Wait (rather than crash-loop) until every controller's required APIs are served."""
        announced = False
        required = self._required()
        while not self._stopping.is_set():
            self._missing = await self.discovery.missing(required)
            self.capabilities = await self.discovery.capabilities()
            for api in required:
                METRICS.crd_missing.labels(crd=crd_name(api)).set(1 if api in self._missing else 0)
            if not self._missing:
                if announced:
                    log.info("required CRDs are available")
                return
            if not announced:
                log.warning("waiting for CRDs: %s", "; ".join(api.why for api in self._missing))
                announced = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), CRD_POLL_SECONDS)

    def _watch(self) -> list[Informer]:
        """Create the informers every enabled watch needs; return the new ones."""
        by_informer: dict[InformerKey, list[tuple[str, Watch]]] = {}
        for controller in self.controllers.values():
            for watch in controller.watches():
                if watch.enabled(self.capabilities, self.settings):
                    key = (watch.kind, watch.label_selector, watch.namespace)
                    by_informer.setdefault(key, []).append((controller.name, watch))
        created = []
        for (kind, selector, namespace), watches in by_informer.items():
            informer = self.caches.ensure(kind, selector, self._enqueuer(watches), namespace)
            if informer is not None:
                created.append(informer)
        return created

    def _enqueuer(self, watches: list[tuple[str, Watch]]) -> Callable[[str, Any], None]:
        def enqueue(_event: str, obj: Mapping[str, Any]) -> None:
            for controller, watch in watches:
                for key in watch.keys(obj, self.caches):
                    self.queue.add((controller, key))

        return enqueue

    def _waker(self, controller: str) -> Callable[[str], None]:
        """Enqueue one of ``controller``'s keys (what a standing poll calls on a change)."""

        def wake(key: str) -> None:
            if self.is_leader:
                self.queue.add((controller, key))

        return wake

    def _enqueue_everything(self) -> None:
        for name, controller in self.controllers.items():
            for obj in self.caches.list(controller.kind):
                self.queue.add((name, object_key(controller.kind, obj)))

    async def _rediscover(self) -> None:
        """Notice optional CRDs installed after start-up (say the CSI driver) and watch them."""
        while True:
            await asyncio.sleep(self.settings.discovery_seconds)
            try:
                found = await self.discovery.capabilities()
            except Exception:
                log.warning("API discovery failed; retrying", exc_info=True)
                continue
            if found == self.capabilities:
                continue
            log.info("optional APIs changed: %s", found)
            self.capabilities = found
            for informer in self._watch():
                informer.start()
                await informer.wait_synced()
            self._enqueue_everything()

    # -- running -------------------------------------------------------------------------

    async def handle(self, key: Key) -> Result:
        """Reconcile one key and schedule what follows (the worker's body)."""
        controller, name = key
        token = current_cluster.set(name)
        try:
            result = await self._reconcilers[controller](name)
        except Exception:
            log.exception("reconcile crashed")
            METRICS.reconcile_errors.labels(error="Internal").inc()
            result = Result(failed=True)
        finally:
            current_cluster.reset(token)
        if result.failed:
            self.queue.add_rate_limited(key, at_least=result.retry_after or 0.0)
        else:
            self.queue.forget(key)
            if result.requeue_after is not None:
                self.queue.add_after(key, result.requeue_after)
        return result

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            if key is None:
                return
            try:
                await self.handle(key)
            finally:
                self.queue.done(key)
                METRICS.queue_depth.set(len(self.queue))

    async def _update_gauges(self) -> None:
        """Keep the per-phase gauges and the queue depth current (from the caches)."""
        while True:
            for controller in self.controllers.values():
                controller.update_gauges()
            METRICS.queue_depth.set(len(self.queue))
            await asyncio.sleep(GAUGE_SECONDS)

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            self._enqueue_everything()

    async def _lead(self) -> None:
        """Runs while this process is the leader."""
        self.is_leader = True
        METRICS.leader.set(1)
        log.info("became leader", extra={"identity": self.identity})
        self._enqueue_everything()
        self._workers = [
            asyncio.create_task(self._worker()) for _ in range(self.settings.concurrency)
        ]
        self._background = [
            asyncio.create_task(self._resync()),
            asyncio.create_task(self._rediscover()),
            asyncio.create_task(self._update_gauges()),
        ]
        try:
            await self._stopping.wait()
        except asyncio.CancelledError:
            # The Lease is lost: no write may follow, so every worker is stopped (and waited
            # for) before the elector campaigns again. A graceful stop drains them instead.
            tasks = [*self._workers, *self._background]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.executor.polls.close()
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
            for informer in self._watch():
                informer.start()
            if not await self._until_stopped(
                asyncio.gather(*(i.wait_synced() for i in self.caches.informers))
            ):
                return
            log.info("caches synced", extra={"objects": len(self.caches.informers)})
            elector = (
                LeaderElector(
                    self.client,
                    self.settings.operator_namespace,
                    self.settings.lease_name,
                    self.identity,
                    lease_duration=self.settings.lease_duration_seconds,
                    renew_deadline=self.settings.lease_duration_seconds * 2 / 3,
                    retry_period=self.settings.lease_renew_seconds,
                )
                if self.settings.leader_elect
                else None
            )
            lead = asyncio.create_task(
                elector.run(self._lead, self._lost_lead) if elector else self._lead()
            )
            await self._stopping.wait()
            await self._drain()
            lead.cancel()
            if elector is not None:
                await elector.release()
        finally:
            for informer in self.caches.informers:
                await informer.stop()
            await self.executor.close()
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


@dataclass
class Reconcile:
    """Drives one controller's keys through observe, decide, execute, conclude."""

    controller: Controller[Any]
    executor: Executor
    clock: Callable[[], float] = time.time
    #: Enqueues a key of this controller again (for what the executor keeps standing).
    wake: Callable[[str], None] | None = None

    async def __call__(self, key: str) -> Result:
        started = time.monotonic()
        try:
            return await self._reconcile(key)
        finally:
            METRICS.reconcile_duration.observe(time.monotonic() - started)

    async def _reconcile(self, key: str) -> Result:
        obs = self.controller.observe(key)
        if obs is None:
            await self.executor.run(self.controller.forget(key))
            return Result()  # gone: ownerReferences let the garbage collector reap the rest
        now = self.clock()
        decision = self.controller.decide(obs, now)
        wake = self.wake
        outcome = await self.executor.run(
            decision.effects, (lambda: wake(key)) if wake is not None else None
        )
        conclusion = self.controller.conclude(obs, decision, outcome, now)
        closing = await self.executor.run(conclusion.effects)
        if closing.error is not None:
            log.warning("status write failed: %s", closing.error.message)
            METRICS.reconcile_errors.labels(error=closing.error.error_class.metric_label).inc()
            return Result(failed=True, retry_after=_retry_after(closing.error))
        error = conclusion.error
        METRICS.reconciles.labels(result="error" if error else "ok").inc()
        if error is not None:
            METRICS.reconcile_errors.labels(error=error.error_class.metric_label).inc()
            log.warning("reconcile failed: %s", error.message)
            if not error.retried:  # the same spec fails the same way: wait for a change
                return Result()
            return Result(failed=True, retry_after=_retry_after(error))
        return Result(requeue_after=conclusion.requeue_after)


def _retry_after(error: ReconcileError) -> float | None:
    return getattr(error, "retry_after", None)


def object_key(kind: Kind, obj: Mapping[str, Any]) -> str:
    """A controller's key for one of its objects: the name, or "namespace/name"."""
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if kind.namespaced else str(meta["name"])


def default_controllers(operator: Operator) -> Sequence[Controller[Any]]:
    """The controllers this operator runs, sharing the operator's caches and memory.

    The RestateDeployment and RestateCloudEnvironment controllers only with
    ``--restate-deployments`` (off by default until the RestateDeployment's real-node proof
    lands); they share the flag because an environment only serves RestateDeployments.
    """
    controllers: list[Controller[Any]] = [
        RestateClusterController(
            operator.caches, operator.memory, operator.settings, lambda: operator.capabilities
        )
    ]
    if operator.settings.restate_deployments:
        controllers.append(
            RestateDeploymentController(
                operator.caches, operator.memory, operator.settings, lambda: operator.capabilities
            )
        )
        controllers.append(RestateCloudEnvironmentController(operator.caches, operator.settings))
    return controllers
