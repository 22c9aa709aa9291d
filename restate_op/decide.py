"""The pure reconcile of one RestateCluster: ``decide`` before the effects, ``conclude`` after.

``decide(observation, now)`` plans the differences (``restate_op.plan``), judges the phase
(``restate_op.verdicts``), finds the way there through the machine (``states/``) and lists the
effects of the state it moves to (``restate_op.cluster_effects``). ``conclude`` turns what
the effects found (``restate_op.executor.Outcome``) into the status to write or hold, the
transition's Event and when to look again. Neither does I/O; both are tested state in,
state out (``tests/test_reconcile.py``).

The machine is loaded and checked against the code once, at import: a state naming an
effect no planner implements, or a reason no rule returns, stops the operator at start-up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import cast

from restate_op import GROUP, KIND, VERSION
from restate_op.api.lifecycle import Phase, Reason
from restate_op.api.models import RestateClusterStatus, RestateHealthStatus, SnapshotsStatus
from restate_op.children.restate_config import snapshot_destination
from restate_op.cluster_effects import HEALTH_MEMORY, HEALTH_POLL_MEMORY, PLANNERS
from restate_op.coalesce import Held, hold_for
from restate_op.controller import Conclusion, Decision, sooner
from restate_op.effects import (
    Effect,
    Emit,
    Forget,
    Outcome,
    PollClusterHealth,
    ReadClusterHealth,
    Remember,
    WriteStatus,
)
from restate_op.machine import load_machine
from restate_op.observe import Observation, Unreadable
from restate_op.outcomes import ReconcileError, internal_error
from restate_op.plan import Plan, live_replicas, make_plan
from restate_op.pod_health import recheck_after, running_pods
from restate_op.restate_drift import config_drift
from restate_op.restate_health import (
    HEALTH_READ_SLACK,
    HEALTH_REFRESH_CHANGING,
    health_status,
)
from restate_op.snapshots import (
    NOT_CONFIGURED,
    SNAPSHOT_MEMORY,
    not_configured_status,
    pending_token,
    run_note,
    run_status,
)
from restate_op.status import Figures, Verdict, build_status, status_changed
from restate_op.unreadable import (
    INVALID_SPEC,
    lenient_figures,
    previous_status,
    unreadable_verdict,
)
from restate_op.verdicts import RULES, judge

log = logging.getLogger(__name__)

CONTROLLER = "restatecluster"
API_VERSION = f"{GROUP}/{VERSION}"

#: Degraded reasons a reconcile reports for a failure rather than a rule's verdict.
FAILURE_REASONS = (
    Reason.API_ERROR,
    Reason.APPLY_REJECTED,
    Reason.CHILD_CONFLICT,
    Reason.INTERNAL_ERROR,
    Reason.INVALID_SPEC,
)

MACHINE = load_machine()
MACHINE.check_effects(PLANNERS)
MACHINE.check_reasons(
    {pair for rule in RULES for pair in rule.returns}
    | {("Degraded", reason) for reason in FAILURE_REASONS}
)

ClusterObservation = Observation | Unreadable


@dataclass(frozen=True)
class ClusterDecision(Decision):
    """A RestateCluster's decision, with the plan ``conclude`` reports figures from."""

    plan: Plan | None = None
    #: What the state's effects wait for, said in the status message.
    notes: tuple[str, ...] = ()
    #: Deciding itself failed (a bug): reported and counted as such.
    error: ReconcileError | None = None


def memory_key(name: str) -> tuple[str, str]:
    return (CONTROLLER, name)


def health_key(name: str) -> tuple[str, str]:
    """Where the executor keeps the last read of this cluster's Restate health."""
    return (HEALTH_MEMORY, name)


def poll_key(name: str) -> tuple[str, str]:
    """Where the executor keeps this cluster's standing health poll while it stands."""
    return (HEALTH_POLL_MEMORY, name)


def snapshot_key(name: str) -> tuple[str, str]:
    """Where the executor keeps the answer to this cluster's last snapshot request."""
    return (SNAPSHOT_MEMORY, name)


def recorded_phase(obs: Observation) -> str:
    status = obs.recorded_status
    return status.phase if status is not None and status.phase else MACHINE.initial


def decide(obs: ClusterObservation, now: float) -> ClusterDecision:
    """Everything one reconcile of this cluster will do, decided without I/O.

    Never raises: a bug anywhere in planning becomes a Degraded ``InternalError`` decision
    (the traceback goes to the log), never a silent retry loop.
    """
    if isinstance(obs, Unreadable):
        verdict = unreadable_verdict(obs.error)
        return ClusterDecision(phase="Degraded", reason=verdict.reason, message=verdict.message)
    current = recorded_phase(obs)
    try:
        plan = make_plan(obs, now)
        verdict = judge(obs, plan, now)
        path = MACHINE.path(current, verdict.phase)
        phase = path[0].dest if path else current
        effects: list[Effect] = []
        notes: list[str] = []
        # A pod the scheduler cannot place is reported after a grace: look again then.
        requeue = recheck_after(obs.pods, now)
        for name in MACHINE.state(phase).effects:
            planned = PLANNERS[name](obs, plan)
            effects.extend(planned.effects)
            notes.extend(planned.notes)
            requeue = sooner(requeue, planned.requeue_after)
        reads, again = health_reads(obs, phase, now)
        effects.extend(reads)
        requeue = sooner(requeue, again)
    except Exception as exc:
        log.exception("operator bug while deciding")
        error = internal_error(exc)
        return ClusterDecision(
            phase="Degraded",
            reason=error.reason,
            message=error.message,
            path=MACHINE.path(current, "Degraded"),
            error=error,
        )
    return ClusterDecision(
        phase=phase,
        reason=verdict.reason,
        message=verdict.message,
        path=path,
        effects=tuple(effects),
        requeue_after=requeue,
        plan=plan,
        notes=tuple(notes),
    )


def health_reads(
    obs: Observation, phase: str, now: float
) -> tuple[tuple[Effect, ...], float | None]:
    """Read Restate's health on a clock, in whatever state the cluster is, once pods run.

    Not a state's effect: it follows time, not a transition. The first read is made at
    once. While Ready the executor reads on its own clock every ``--restate-health-seconds``
    (a standing ``PollClusterHealth``; 0: never again once read): an answer that says what
    the last one said costs no reconcile, one that says something new wakes the cluster.
    While the cluster changes, every ``HEALTH_REFRESH_CHANGING`` on the reconcile's clock
    (a read due within ``HEALTH_READ_SLACK`` is made now: the last one was timed by the
    executor, a moment after its decision), judged again with the answer at once (a roll
    waits for a read made after its last pod became ready).
    """
    name = obs.cluster.name
    running = running_pods(obs.pods, _asked_replicas(obs))
    targets = tuple((pod, obs.node_address(pod)) for pod in running)
    ready = phase == "Ready"
    interval = obs.settings.restate_health_seconds if ready else HEALTH_REFRESH_CHANGING
    wish = (
        PollClusterHealth(poll_key(name), health_key(name), targets, interval)
        if ready and targets and interval
        else None
    )
    effects: list[Effect] = []
    if wish != obs.health_poll:  # stand it, move it to new pods, or stop it
        effects.append(wish or PollClusterHealth(poll_key(name), health_key(name)))
    health = obs.restate_health
    if not running or (ready and health is not None):
        return tuple(effects), None  # nothing to read, or the poll reads
    age = now - health.read_at if health is not None else None
    if age is not None and age < interval - HEALTH_READ_SLACK:
        return tuple(effects), interval - age
    effects.append(ReadClusterHealth(health_key(name), targets))
    return tuple(effects), None if ready else 0.0


def _asked_replicas(obs: Observation) -> int:
    """How many pods a health read asks: the spec's, and while the cluster shrinks the
    departing ones too. Only a node can say its id, and the scale-down needs the departing
    node's to know whether Restate must release it first: a read made after a restart or
    after the first departure would otherwise let the pod go unasked."""
    desired = obs.cluster.spec.compute.desired_replicas
    return max(desired, live_replicas(obs.statefulset)) if desired > 0 else 0


def conclude(
    obs: ClusterObservation, decision: Decision, outcome: Outcome, now: float
) -> Conclusion:
    """The status, Events and next look that follow from the decision and its outcome."""
    if isinstance(obs, Unreadable):
        return _conclude_unreadable(obs, now)
    assert isinstance(decision, ClusterDecision)
    current = recorded_phase(obs)
    verdict = Verdict(cast(Phase, decision.phase), decision.reason, decision.message)
    transition = decision.path[0] if decision.path else None
    requeue = sooner(decision.requeue_after, outcome.requeue_after)
    before: list[Effect] = []
    notes = list(decision.notes)
    drift = config_drift(obs.cluster, obs.restate_health)
    notes.extend(f"drift: {d}" for d in drift)
    before.extend(_drift_events(obs, drift))
    snapshots, snapshot_events = _snapshots_section(obs)
    before.extend(snapshot_events)
    provisioned = obs.recorded_status.provisioned if obs.recorded_status else None
    if outcome.provision is not None:
        result = outcome.provision
        if result.provisioned:
            provisioned = True
            before.append(Emit(obs.raw, "Normal", "Provisioned", "Provision", result.message))
            requeue = sooner(requeue, 0.0)
        else:
            notes.append(result.message)
            before.append(
                Emit(obs.raw, "Warning", "ProvisioningFailed", "Provision", result.message)
            )
            requeue = sooner(requeue, 5.0)
    error = decision.error or outcome.error
    event_reason = transition.event if transition is not None else ""
    if error is not None:
        verdict = Verdict("Degraded", error.reason, error.message)
        transition = MACHINE.transition(current, "Degraded")
        event_reason = "ReconcileFailed"
    if notes and verdict.phase != "Degraded":
        verdict = replace(verdict, message=f"{verdict.message}; {'; '.join(notes)}")

    status = build_status(
        MACHINE,
        verdict,
        replace(_figures(obs, decision.plan, provisioned, drift), snapshots=snapshots),
        obs.cluster.metadata.generation,
        obs.recorded_status,
        now=rfc3339(now),
    )
    writes, held = _status_effects(obs, status, now)
    after: list[Effect] = []
    if transition is not None and verdict.phase != current:
        after.append(
            Emit(
                obs.raw,
                "Warning" if verdict.phase == "Degraded" else "Normal",
                event_reason,
                f"{current}To{verdict.phase}",
                verdict.message,
            )
        )
    return Conclusion(
        effects=(*before, *writes, *after),
        requeue_after=sooner(requeue, held),
        error=error,
    )


def _drift_events(obs: Observation, drift: tuple[str, ...]) -> tuple[Effect, ...]:
    """A Warning when a difference first shows (the live status does not list it yet)."""
    live = obs.live_status or {}
    known = (live.get("restate") or {}).get("drift") or []
    new = [d for d in drift if d not in known]
    if not new:
        return ()
    return (Emit(obs.raw, "Warning", "ConfigurationDrift", "CompareConfiguration", "; ".join(new)),)


def forget(name: str) -> tuple[Effect, ...]:
    """A cluster that is gone (or going) leaves nothing held in memory."""
    return (
        Forget(memory_key(name)),
        Forget(health_key(name)),
        Forget(poll_key(name)),
        Forget(snapshot_key(name)),
    )


def rfc3339(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write(name: str, status: RestateClusterStatus) -> WriteStatus:
    return WriteStatus(API_VERSION, KIND, None, name, status.to_kube(), str(status.phase))


def _status_effects(
    obs: Observation, status: RestateClusterStatus, now: float
) -> tuple[tuple[Effect, ...], float | None]:
    """Write the status, hold it back (progress only), or nothing when it is unchanged."""
    name, key = obs.cluster.name, memory_key(obs.cluster.name)
    live = obs.live_status
    if not status_changed(dict(live) if live is not None else None, status):
        return (Forget(key),), None
    held = hold_for(
        MACHINE,
        status,
        live_phase=(live or {}).get("phase"),
        live_provisioned=bool((live or {}).get("provisioned")),
        held_since=obs.held_since,
        now=now,
        window=obs.settings.status_coalesce_seconds,
    )
    if held is not None:
        since = obs.held_since if obs.held_since is not None else now
        return (Remember(key, Held(obs.cluster.metadata.uid, status, since)),), held
    return (_write(name, status), Forget(key)), None


def _conclude_unreadable(obs: Unreadable, now: float) -> Conclusion:
    """Degraded with the fields to fix; nothing to retry until the spec changes."""
    raw = obs.raw
    previous = previous_status(raw)
    verdict = unreadable_verdict(obs.error)
    generation = raw.get("metadata", {}).get("generation", 0)
    # The last snapshots stay listed while the spec cannot be read.
    figures = replace(lenient_figures(raw), snapshots=previous.snapshots if previous else None)
    status = build_status(MACHINE, verdict, figures, generation, previous, now=rfc3339(now))
    # A held Provisioning status no longer says where the cluster stands.
    effects: list[Effect] = [Forget(memory_key(obs.name))]
    if status_changed(raw.get("status"), status):
        effects.append(_write(obs.name, status))
        if previous is None or previous.phase != "Degraded":
            effects.append(Emit(raw, "Warning", INVALID_SPEC, "ToDegraded", verdict.message))
    return Conclusion(effects=tuple(effects))


def _snapshots_section(obs: Observation) -> tuple[SnapshotsStatus | None, tuple[Effect, ...]]:
    """``status.snapshots``, and the Event of a request answered now.

    A new ``restate.dev/snapshot`` value is answered once the snapshots were taken (the
    answer is in memory), or at once without a repository (the field to set, a Warning);
    otherwise the recorded section stands, so an operator restart writes nothing.
    """
    recorded = obs.recorded_status.snapshots if obs.recorded_status else None
    token = pending_token(obs.cluster)
    if token is None:
        return recorded, ()
    if snapshot_destination(obs.cluster) is None:
        return not_configured_status(token, recorded), (
            Emit(obs.raw, "Warning", "SnapshotNotConfigured", "TakeSnapshot", NOT_CONFIGURED),
        )
    run = obs.snapshot_run
    if run is None or run.token != token:
        return recorded, ()
    failed = run.error is not None or bool(run.failed)
    event = Emit(
        obs.raw,
        "Warning" if failed else "Normal",
        "SnapshotFailed" if failed else "SnapshotTaken",
        "TakeSnapshot",
        run_note(run),
    )
    return run_status(run, recorded), (event,)


def _restate_section(obs: Observation, drift: tuple[str, ...]) -> RestateHealthStatus | None:
    """``status.restate`` from the last read; before any (a restarted operator) the recorded
    one stands, so a restart writes nothing until Restate says something new."""
    if obs.restate_health is None:
        recorded = obs.recorded_status
        return recorded.restate if recorded is not None else None
    return health_status(obs.restate_health, obs.cluster.spec.compute.desired_replicas, drift)


def _figures(
    obs: Observation, plan: Plan | None, provisioned: bool | None, drift: tuple[str, ...]
) -> Figures:
    if plan is None:
        return lenient_figures(obs.raw)
    rollout = plan.rollout
    return Figures(
        desired_replicas=obs.cluster.spec.compute.desired_replicas,
        ready_replicas=rollout.ready if rollout else 0,
        requested_bytes=obs.cluster.spec.storage.storage_request_bytes,
        current_bytes=plan.volumes.current_bytes if plan.volumes else None,
        provisioned=provisioned,
        restate=_restate_section(obs, drift),
    )
