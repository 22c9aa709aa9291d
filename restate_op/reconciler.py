"""One reconcile of one RestateCluster: observe, plan, decide, act, report.

Level-triggered and stateless: everything comes from the informer caches and the cluster's
own ``status``; a crash at any point is repaired by the next reconcile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from restate_op import FIELD_MANAGER
from restate_op.actions import Actions, ChildConflict, Outcome
from restate_op.api.models import RestateCluster, RestateClusterStatus
from restate_op.coalesce import StatusCoalescer
from restate_op.decide import decide, reachable
from restate_op.faults import fault_point
from restate_op.kube.client import KubeClient
from restate_op.kube.errors import KubeError, is_transient, with_retries
from restate_op.kube.events import EventRecorder
from restate_op.machine import IllegalTransition, Lifecycle, Phase, load_definition
from restate_op.metrics import METRICS
from restate_op.observe import ChildKey, Observation
from restate_op.plan import Plan, make_plan
from restate_op.settings import Capabilities, OperatorSettings
from restate_op.status import Figures, Verdict, build_status, status_changed
from restate_op.unreadable import (
    INVALID_SPEC,
    lenient_figures,
    previous_status,
    unreadable_verdict,
)

log = logging.getLogger(__name__)


class ClusterView:
    """Read access to what the informers hold, as the reconciler needs it."""

    def cluster(self, name: str) -> Mapping[str, Any] | None:
        raise NotImplementedError

    def namespace(self, name: str) -> Mapping[str, Any] | None:
        raise NotImplementedError

    def children(self, namespace: str) -> Mapping[ChildKey, Mapping[str, Any]]:
        raise NotImplementedError

    def pvcs(self, namespace: str) -> tuple[Mapping[str, Any], ...]:
        raise NotImplementedError

    def storage_classes(self) -> Mapping[str, Mapping[str, Any]]:
        raise NotImplementedError


@dataclass(frozen=True)
class Result:
    """What the runtime should do next with this cluster's key."""

    requeue_after: float | None = None
    failed: bool = False


class Reconciler:
    def __init__(
        self,
        client: KubeClient,
        recorder: EventRecorder,
        view: ClusterView,
        settings: OperatorSettings,
        capabilities: Callable[[], Capabilities],
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.view = view
        self.settings = settings
        self.capabilities = capabilities
        self.actions = Actions(client, recorder)
        self.definition = load_definition()
        self.coalescer = StatusCoalescer(settings.status_coalesce_seconds)

    def observe(self, name: str) -> Observation | None:
        raw = self.view.cluster(name)
        if raw is None or raw.get("metadata", {}).get("deletionTimestamp"):
            self.coalescer.forget(name)
            return None  # deleted: ownerReferences let the garbage collector reap the rest
        cluster = RestateCluster.model_validate(raw)
        held = self.coalescer.held(name, cluster.metadata.uid)
        if held is not None:
            # The status this operator decided but has not written yet is the latest word.
            cluster = cluster.model_copy(update={"status": held})
        return Observation(
            cluster=cluster,
            raw=raw,
            namespace=self.view.namespace(name),
            children=self.view.children(name),
            pvcs=self.view.pvcs(name),
            storage_classes=self.view.storage_classes(),
            settings=self.settings,
            capabilities=self.capabilities(),
        )

    async def reconcile(self, name: str) -> Result:
        started = time.monotonic()
        try:
            try:
                obs = self.observe(name)
            except ValidationError as exc:
                log.error(
                    "RestateCluster does not match the model: %s", exc, extra={"cluster": name}
                )
                return await self._report_unreadable(name, exc)
            if obs is None:
                return Result()
            return await self._reconcile(obs)
        finally:
            METRICS.reconcile_duration.observe(time.monotonic() - started)

    async def _reconcile(self, obs: Observation) -> Result:
        cluster = obs.cluster
        plan = make_plan(obs)
        verdict = decide(obs, plan)
        current: Phase = (
            obs.cluster.status.phase
            if obs.cluster.status and obs.cluster.status.phase
            else self.definition.initial
        )
        outcome = Outcome()

        async def run_actions(state: Phase) -> None:
            await self.actions.run(state, obs, plan, outcome)

        lifecycle = Lifecycle(current, run_actions, self.definition)
        target = reachable(current, verdict.phase)
        if target != verdict.phase:
            verdict = Verdict(target, verdict.reason, verdict.message)
        error: BaseException | None = None
        try:
            step = await lifecycle.advance(target)
            transition = step.transition
        except IllegalTransition:
            raise  # a bug in decide(): surfaced loudly by the runtime
        except Exception as exc:
            error = exc
            transition = self.definition.transition_to(current, "Degraded")
            verdict = _error_verdict(exc)
        if outcome.messages and verdict.phase != "Degraded":
            verdict = Verdict(
                verdict.phase, verdict.reason, f"{verdict.message}; {'; '.join(outcome.messages)}"
            )

        figures = _figures(obs, plan, outcome)
        status = build_status(
            self.definition, verdict, figures, cluster.metadata.generation, cluster.status
        )
        try:
            hold_for = await self._write_status(obs, status)
        except KubeError as exc:
            log.warning("status write failed: %s", exc, extra={"cluster": cluster.name})
            METRICS.reconcile_errors.labels(error=_error_label(exc)).inc()
            return Result(failed=True)
        if transition is not None and verdict.phase != current:
            await self.recorder.emit(
                dict(obs.raw),
                "Warning" if verdict.phase == "Degraded" else "Normal",
                transition.event if error is None else "ReconcileFailed",
                f"{current}To{verdict.phase}",
                verdict.message,
            )
        METRICS.reconciles.labels(result="error" if error else "ok").inc()
        if error is not None:
            METRICS.reconcile_errors.labels(error=_error_label(error)).inc()
            log.warning("reconcile failed: %s", error, extra={"cluster": cluster.name})
            return Result(failed=True)
        return Result(requeue_after=_sooner(outcome.requeue_after, hold_for))

    async def _report_unreadable(self, name: str, exc: ValidationError) -> Result:
        """Degraded with the fields to fix; nothing to retry until the spec changes."""
        self.coalescer.forget(name)  # a held Provisioning status no longer says where it stands
        raw = self.view.cluster(name)
        if raw is None:
            return Result()
        previous = previous_status(raw)
        verdict = unreadable_verdict(exc)
        generation = raw.get("metadata", {}).get("generation", 0)
        status = build_status(self.definition, verdict, lenient_figures(raw), generation, previous)
        if not status_changed(raw.get("status"), status):
            return Result()
        fault_point(f"before-status-write-{status.phase}")
        try:
            await with_retries(
                self.client.apply,
                {
                    "apiVersion": "restate.dev/v1",
                    "kind": "RestateCluster",
                    "metadata": {"name": name},
                    "status": status.to_kube(),
                },
                FIELD_MANAGER,
                subresource="status",
            )
        except KubeError as exc_write:
            log.warning("status write failed: %s", exc_write, extra={"cluster": name})
            return Result(failed=True)
        fault_point(f"after-status-write-{status.phase}")
        if previous is None or previous.phase != "Degraded":
            await self.recorder.emit(
                dict(raw), "Warning", INVALID_SPEC, "ToDegraded", verdict.message
            )
        return Result()

    async def _write_status(self, obs: Observation, status: RestateClusterStatus) -> float | None:
        """Server-side apply of the status subresource, only when it would change.

        Returns how long a progress-only status is held back (see :mod:`restate_op.coalesce`).
        """
        name = obs.cluster.name
        live = obs.raw.get("status")
        if not status_changed(live, status):
            self.coalescer.forget(name)
            return None
        hold_for = self.coalescer.hold(
            name,
            obs.cluster.metadata.uid,
            status,
            live_phase=(live or {}).get("phase"),
            live_provisioned=bool((live or {}).get("provisioned")),
        )
        if hold_for is not None:
            return hold_for
        fault_point(f"before-status-write-{status.phase}")
        await with_retries(
            self.client.apply,
            {
                "apiVersion": "restate.dev/v1",
                "kind": "RestateCluster",
                "metadata": {"name": name},
                "status": status.to_kube(),
            },
            FIELD_MANAGER,
            subresource="status",
        )
        self.coalescer.forget(name)
        fault_point(f"after-status-write-{status.phase}")
        return None


def _sooner(a: float | None, b: float | None) -> float | None:
    """The earlier of two optional delays."""
    if a is None or b is None:
        return a if b is None else b
    return min(a, b)


def _error_verdict(exc: BaseException) -> Verdict:
    if isinstance(exc, ChildConflict):
        return Verdict("Degraded", "ChildConflict", str(exc))
    if isinstance(exc, KubeError) and not is_transient(exc):
        return Verdict(
            "Degraded",
            "ApplyRejected",
            f"The API server rejected a child object: {exc}; check the spec field it names",
        )
    return Verdict(
        "Degraded", "ApiError", f"Kubernetes API errors persisted after retries: {exc}; retrying"
    )


def _error_label(exc: BaseException) -> str:
    if isinstance(exc, ChildConflict):
        return "KubePermanent"
    if isinstance(exc, KubeError):
        return "KubeTransient" if is_transient(exc) else "KubePermanent"
    return "Internal"


def _figures(obs: Observation, plan: Plan, outcome: Outcome) -> Figures:
    status = obs.cluster.status
    previous_provisioned = status.provisioned if status else None
    rollout = plan.rollout
    return Figures(
        desired_replicas=obs.cluster.spec.compute.desired_replicas,
        ready_replicas=rollout.ready if rollout else 0,
        requested_bytes=obs.cluster.spec.storage.storage_request_bytes,
        current_bytes=plan.volumes.current_bytes if plan.volumes else None,
        provisioned=outcome.provisioned or previous_provisioned,
    )
