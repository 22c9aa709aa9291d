"""The executor: the only code that carries out effects against the API server.

It runs a decision's effects in order and stops at the first that fails, turning the failure
into one of the three kinds of ``restate_op.outcomes``; what later effects would have done is
left for the next reconcile (everything is level-triggered). A task cancellation (say, the
Lease is lost) propagates at once: no library sits between an ``await`` here and the worker,
so no write follows a cancelled one.

Every request goes through ``with_retries`` (bounded, honouring ``Retry-After``). Each effect
kind has its fault points (``restate_op.faults``); their names are the ones the crash tests
select.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import grpc
import grpc.aio
import httpx

from restate_op import FIELD_MANAGER, restate_admin
from restate_op.child_fields import spec_field
from restate_op.deployment_observe import RestateView
from restate_op.effects import (
    Apply,
    Delete,
    DeregisterDeployment,
    Effect,
    Emit,
    Forget,
    OrphanDelete,
    Outcome,
    PatchClaimSize,
    PollClusterHealth,
    Provision,
    ProvisionResult,
    QueryRestate,
    ReadClusterHealth,
    RegisterDeployment,
    Remember,
    RemoveFinalizer,
    RemoveMetadataMember,
    RestartPod,
    SwitchToOnDelete,
    TakeSnapshots,
    WriteStatus,
)
from restate_op.faults import fault_point
from restate_op.health_polls import HealthPolls, Wake
from restate_op.kube import resources
from restate_op.kube.client import KubeClient
from restate_op.kube.errors import Conflict, KubeError, is_transient, with_retries
from restate_op.kube.events import EventRecorder
from restate_op.memory import Memory
from restate_op.metrics import METRICS
from restate_op.node_channels import NodeChannels
from restate_op.outcomes import (
    InvalidInput,
    PermanentError,
    ReconcileError,
    TemporaryError,
    child_conflict,
    internal_error,
)
from restate_op.provisioning import provision_cluster
from restate_op.restate_health import RestateHealth, health_figures
from restate_op.restate_health_reader import read_health, remove_metadata_member
from restate_op.snapshot_reader import take_snapshots
from restate_op.snapshots import PartitionResult, SnapshotRun

log = logging.getLogger(__name__)

Provisioner = Callable[[str], Awaitable[ProvisionResult]]
HealthReader = Callable[
    [Mapping[str, str], float, RestateHealth | None, NodeChannels, bool],
    Awaitable[RestateHealth],
]
SnapshotTaker = Callable[[str, int], Awaitable[tuple[PartitionResult, ...]]]


def classify(exc: BaseException, effect: Effect | None = None) -> ReconcileError:
    """The one translation of an exception raised while carrying out an effect."""
    if isinstance(exc, ReconcileError):
        return exc
    if isinstance(exc, KubeError):
        if exc.invalid and isinstance(effect, Apply):
            return invalid_input(exc, effect)
        if is_transient(exc):
            return TemporaryError(
                f"Kubernetes API errors persisted after retries: {exc}; retrying",
                retry_after=exc.retry_after,
            )
        return PermanentError(
            f"The API server rejected a child object: {exc}; check the spec field it names"
        )
    return internal_error(exc)


def invalid_input(exc: KubeError, effect: Apply) -> InvalidInput:
    """A child refused for what the user wrote: which child, which field, and where in the
    spec that field comes from (``restate_op.child_fields``).

    Only children: they are built from the spec. A status write or a patch the operator
    makes itself that is refused is its own bug, and stays a (retried) ``PermanentError``.
    """
    child = f"{effect.kind} {effect.name}"
    fields = exc.fields
    sources = [f for f in (spec_field(effect.kind, field) for field in fields) if f is not None]
    where = f" (from {', '.join(dict.fromkeys(sources))})" if sources else ""
    named = f" at {', '.join(fields)}" if fields else ""
    return InvalidInput(
        f"The API server refused {child}{named}{where}: {exc.message}; fix the spec field, "
        "it is not retried until the spec changes"
    )


def controlled_by(obj: Mapping[str, Any], uid: str) -> bool:
    """Whether ``obj`` has a controller owner reference to the object with ``uid``."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid and ref.get("controller") for ref in refs)


class Executor:
    def __init__(
        self,
        client: KubeClient,
        recorder: EventRecorder,
        memory: Memory,
        provision: Provisioner = provision_cluster,
        admin: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        read_health: HealthReader = read_health,
        remove_member: Callable[[str, int], Awaitable[None]] = remove_metadata_member,
        node_channels: NodeChannels | None = None,
        take_snapshots: SnapshotTaker = take_snapshots,
    ) -> None:
        self.client = client
        self._take_snapshots = take_snapshots
        self._read_health = read_health
        #: The health reads' gRPC channels, one per node address, kept between reads.
        self.node_channels = node_channels if node_channels is not None else NodeChannels()
        self._remove_member = remove_member
        self.recorder = recorder
        self.memory = memory
        self._provision = provision
        #: Restate's admin APIs (the RestateDeployment effects); made on first use.
        self._admin = admin
        self._clock = clock
        #: One read of Restate's view at a time per Restate (see ``_query_restate``).
        self._view_locks: dict[tuple[str, str], asyncio.Lock] = {}
        #: One read of a cluster's health at a time (a standing poll's and a reconcile's).
        self._health_locks: dict[tuple[str, str], asyncio.Lock] = {}
        #: The Ready clusters' standing health reads (``PollClusterHealth``).
        self.polls = HealthPolls(memory, self._read_cluster_health, clock)

    @property
    def admin(self) -> httpx.AsyncClient:
        if self._admin is None:
            self._admin = restate_admin.new_client()
        return self._admin

    async def close(self) -> None:
        await self.polls.close()
        await self.node_channels.close()
        if self._admin is not None:
            await self._admin.aclose()
            self._admin = None

    async def run(self, effects: Sequence[Effect], wake: Wake | None = None) -> Outcome:
        """Carry out ``effects`` in order; stop at the first failure (see ``Outcome.error``).

        ``wake``: enqueues the reconcile these effects came from, for what stands after it
        (a ``PollClusterHealth`` wakes it when the answer changes).
        """
        outcome = Outcome()
        for index, effect in enumerate(effects):
            try:
                await self._carry_out(effect, outcome, wake)
            except Exception as exc:
                outcome.error = classify(exc, effect)
                if outcome.error.error_class.metric_label == "Internal":
                    log.exception("operator bug while carrying out %s", type(effect).__name__)
                return outcome
            following = effects[index + 1] if index + 1 < len(effects) else None
            if isinstance(effect, Apply) and not isinstance(following, Apply):
                fault_point("after-apply-children")
            if isinstance(effect, PatchClaimSize) and not isinstance(following, PatchClaimSize):
                fault_point("after-patch-pvcs")
        return outcome

    async def _carry_out(self, effect: Effect, outcome: Outcome, wake: Wake | None) -> None:
        match effect:
            case Apply():
                await self._apply(effect, outcome)
            case Delete():
                fault_point(f"before-delete-{effect.kind}/{effect.name}")
                await with_retries(
                    self.client.delete,
                    resources.kind_for(effect.api_version, effect.kind),
                    effect.name,
                    effect.namespace,
                    propagation_policy="Background",
                )
                log.info("deleted stale %s/%s", effect.kind, effect.name)
            case PatchClaimSize():
                fault_point(f"before-patch-pvc-{effect.name}")
                await with_retries(
                    self.client.apply,
                    {
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "metadata": {"name": effect.name, "namespace": effect.namespace},
                        "spec": {"resources": {"requests": {"storage": str(effect.size_bytes)}}},
                    },
                    FIELD_MANAGER,
                )
            case OrphanDelete():
                await with_retries(
                    self.client.delete,
                    resources.STATEFUL_SET,
                    effect.name,
                    effect.namespace,
                    propagation_policy="Orphan",
                    uid_precondition=effect.uid,
                )
                fault_point("after-orphan-delete")
            case Provision():
                await self._provision_cluster(effect, outcome)
            case Emit():
                await self.recorder.emit(
                    dict(effect.regarding), effect.type, effect.reason, effect.action, effect.note
                )
            case WriteStatus():
                fault_point(f"before-status-write-{effect.phase}")
                meta: dict[str, Any] = {"name": effect.name}
                if effect.namespace is not None:
                    meta["namespace"] = effect.namespace
                await with_retries(
                    self.client.apply_status,
                    {
                        "apiVersion": effect.api_version,
                        "kind": effect.kind,
                        "metadata": meta,
                        "status": dict(effect.status),
                    },
                    FIELD_MANAGER,
                )
                fault_point(f"after-status-write-{effect.phase}")
            case Remember():
                self.memory.put(effect.key, effect.value)
            case Forget():
                if isinstance(self.memory.get(effect.key), RestateHealth):
                    # A cluster gone: its gauges go with it (bounded by the live clusters).
                    METRICS.forget_cluster(effect.key[1])
                self.memory.drop(effect.key)
                # A cluster's health key: its pods' channels go; its poll key: the poll
                # stops (no-ops for other keys).
                await self.node_channels.release(effect.key)
                self.polls.stop(effect.key)
                self._health_locks.pop(effect.key, None)
            case RegisterDeployment():
                fault_point(f"before-register-{effect.version}")
                result = await restate_admin.register(self.admin, effect)
                outcome.registrations.append(result)
                if result.accepted:
                    log.info("registered %s as %s", effect.uri, result.deployment_id)
                else:
                    log.warning(
                        "Restate refused %s (%s %s): %s",
                        effect.uri,
                        result.status,
                        result.code,
                        result.message,
                    )
            case DeregisterDeployment():
                fault_point(f"before-deregister-{effect.version}")
                await restate_admin.deregister(self.admin, effect)
                log.info("deregistered %s (%s)", effect.deployment_id, effect.version)
            case QueryRestate():
                await self._query_restate(effect)
            case RemoveFinalizer():
                await self._remove_finalizer(effect)
            case RemoveMetadataMember():
                fault_point(f"before-remove-metadata-member-N{effect.node_id}")
                try:
                    await self._remove_member(effect.leader, effect.node_id)
                except grpc.aio.AioRpcError as exc:
                    raise TemporaryError(
                        f"Restate did not remove node N{effect.node_id} from the metadata "
                        f"cluster: {exc.code().name}: {exc.details()}; retrying"
                    ) from exc
                finally:
                    self.memory.drop(effect.health_key)
                log.info("removed node N%s from the metadata cluster", effect.node_id)
            case SwitchToOnDelete():
                await with_retries(
                    self.client.patch_merge,
                    resources.STATEFUL_SET,
                    effect.name,
                    effect.namespace,
                    {"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": None}}},
                )
                log.info("StatefulSet %s/%s now rolls OnDelete", effect.namespace, effect.name)
            case RestartPod():
                fault_point(f"before-restart-pod-{effect.name}")
                try:
                    await with_retries(
                        self.client.delete,
                        resources.POD,
                        effect.name,
                        effect.namespace,
                        uid_precondition=effect.uid,
                    )
                except Conflict:
                    log.info("pod %s was re-created before its restart", effect.name)
                finally:
                    self.memory.drop(effect.health_key)
                log.info("restarted pod %s/%s (rolling update)", effect.namespace, effect.name)
            case ReadClusterHealth():
                if await self._read_cluster_health(effect.key, dict(effect.targets)):
                    outcome.requeue(0.0)  # judged again at once with what is new
            case PollClusterHealth():
                self.polls.set(effect, wake)
            case TakeSnapshots():
                fault_point(f"before-take-snapshots-{effect.token}")
                results = await self._take_snapshots(effect.target, effect.partitions)
                run = SnapshotRun(effect.token, self._clock(), results)
                self.memory.put(effect.key, run)
                fault_point(f"after-take-snapshots-{effect.token}")
                log.info(
                    "snapshot request %r of %s: %d/%d partitions snapshotted",
                    effect.token,
                    effect.key[1],
                    len(results) - len(run.failed),
                    len(results),
                )

    async def _read_cluster_health(
        self, key: tuple[str, str], targets: Mapping[str, str], full: bool = True
    ) -> bool:
        """Read the cluster's health from ``targets`` into memory under ``key`` (``full``:
        see ``read_health``); True when the answer is not what the last read said."""
        async with self._health_locks.setdefault(key, asyncio.Lock()):
            stored = self.memory.get(key)
            known = stored if isinstance(stored, RestateHealth) else None
            # Pods scaled away since the last read: their channels go.
            await self.node_channels.hold(key, targets.values())
            health = await self._read_health(
                targets, self._clock(), known, self.node_channels, full
            )
            if health.error is not None:
                log.info("Restate's health unread (%s): %s", key[1], health.error)
            self.memory.put(key, health)
            if health.says_the_same(known):
                return False  # so are its figures (most Ready reads: nothing more to do)
            METRICS.record_restate(key[1], health_figures(health))
            return True

    async def _query_restate(self, effect: QueryRestate) -> None:
        """Read Restate's view into memory, one read at a time per Restate; a read that
        finds an answer newer than its decision saw (another RestateDeployment's, made
        meanwhile) is skipped when the effect allows it."""
        lock = self._view_locks.setdefault(effect.key, asyncio.Lock())
        async with lock:
            known = self.memory.get(effect.key)
            if (
                effect.unless_read_after is not None
                and isinstance(known, RestateView)
                and known.read_at > effect.unless_read_after
            ):
                return
            view = await restate_admin.read_view(
                self.admin, effect.admin_url, self._clock(), effect.token
            )
            if view.error is not None:
                log.warning("could not read Restate's view: %s", view.error)
            self.memory.put(effect.key, view)

    async def _remove_finalizer(self, effect: RemoveFinalizer) -> None:
        """A JSON patch that removes the entry by index, tested against the uid and the
        entry itself: a namesake or a list changed meanwhile fails the test (422), nothing
        is written, and the next reconcile tries again."""
        kind = resources.kind_for(effect.api_version, effect.kind)
        live = await with_retries(self.client.get, kind, effect.name, effect.namespace)
        if live is None or live.get("metadata", {}).get("uid") != effect.uid:
            return
        finalizers = live["metadata"].get("finalizers") or []
        if effect.finalizer not in finalizers:
            return
        index = finalizers.index(effect.finalizer)
        fault_point("before-remove-finalizer")
        try:
            await with_retries(
                self.client.patch_json,
                kind,
                effect.name,
                effect.namespace,
                [
                    {"op": "test", "path": "/metadata/uid", "value": effect.uid},
                    {
                        "op": "test",
                        "path": f"/metadata/finalizers/{index}",
                        "value": effect.finalizer,
                    },
                    {"op": "remove", "path": f"/metadata/finalizers/{index}"},
                ],
            )
        except KubeError as exc:
            if exc.status == 404:
                return
            if exc.status == 422 or isinstance(exc, Conflict):
                raise TemporaryError(
                    f"{effect.kind} {effect.name} changed while its finalizer was being "
                    f"removed; trying again"
                ) from exc
            raise
        log.info("released finalizer %s of %s/%s", effect.finalizer, effect.kind, effect.name)

    async def _apply(self, effect: Apply, outcome: Outcome) -> None:
        manifest = effect.manifest
        if effect.refuse_foreign_of is not None:
            await self._refuse_foreign(manifest, effect.refuse_foreign_of)
        fault_point(f"before-apply-{effect.kind}/{effect.name}")
        try:
            await with_retries(self.client.apply, manifest, FIELD_MANAGER)
        except KubeError as exc:
            if not (effect.replace_if_immutable and exc.status == 422):
                raise
            # An immutable field changed (a Job's pod template): delete it, and let the next
            # reconcile create it anew.
            await with_retries(
                self.client.delete,
                resources.kind_of(manifest),
                effect.name,
                manifest["metadata"].get("namespace"),
                propagation_policy="Background",
            )
            outcome.requeue(1.0)
            return
        log.info("applied %s/%s", effect.kind, effect.name)

    async def _refuse_foreign(self, manifest: Mapping[str, Any], owner_uid: str) -> None:
        """Never take over an object of the same name that someone else made.

        The caches hold only the operator's own children, so a child they lack may still
        exist (say, in an adopted namespace): applying would silently rewrite it, and fields
        its owner manages would keep the apply from ever converging.
        """
        meta = manifest["metadata"]
        # A list by name, not a get: the operator's role has no get on cached kinds.
        found, _ = await with_retries(
            self.client.list,
            resources.kind_of(manifest),
            meta.get("namespace"),
            field_selector=f"metadata.name={meta['name']}",
        )
        if not found or all(controlled_by(obj, owner_uid) for obj in found):
            return
        owner = next(
            (r["kind"] for r in meta.get("ownerReferences") or [] if r.get("uid") == owner_uid),
            "RestateCluster",
        )
        raise child_conflict(
            f"{manifest['kind']} {meta['name']} already exists in namespace "
            f"{meta.get('namespace')} and is not managed by this {owner}; the operator "
            f"leaves it alone. Delete or rename it so that the operator can create its own."
        )

    async def _provision_cluster(self, effect: Provision, outcome: Outcome) -> None:
        fault_point("before-provision")
        outcome.provision = await self._provision(effect.target)
