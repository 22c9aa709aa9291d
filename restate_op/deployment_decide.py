"""The pure reconcile of one RestateDeployment: ``decide`` before the effects, ``conclude``
after.

``decide(observation, now)`` lists the versions (the spec's and every ReplicaSet the
RestateDeployment controls), judges each one's phase (``restate_op.deployment_verdicts``),
finds its way there through the version machine (``states/restatedeployment.yaml``) and
runs the planners of the state it moves to (``restate_op.deployment_effects``). Around the
versions it adds what belongs to the RestateDeployment as a whole: its finalizer, and a
fresh read of Restate's view when the last one is missing or getting old. ``conclude``
turns Restate's answers to the registrations into rejections (with backoff), the status
(conditions and the per-version list) and one Event per version transition.

Neither does I/O; both are tested state in, state out (``tests/test_deployment_decide.py``).
``register.cloud`` registers with a Restate Cloud environment (``restate_op.cloud_identity``:
its admin URL, bearer token and tunnel URLs come with the observation).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, cast

from restate_op import deployment_knative as knative
from restate_op.api.deployment import (
    KnativeStatus,
    RestateDeploymentStatus,
    VersionPhase,
    VersionStatus,
)
from restate_op.api.deployment_crd import API_VERSION, FINALIZER, KIND
from restate_op.api.models import Condition
from restate_op.cloud_identity import escapes, user_inproc_variables
from restate_op.controller import Conclusion, Decision, sooner
from restate_op.deployment_children import finalizer_manifest
from restate_op.deployment_effects import PLANNERS, VersionPlan
from restate_op.deployment_identity import (
    template_json,
    version_hash,
    versioned_name,
)
from restate_op.deployment_observe import (
    DEPLOYMENT_ID_ANNOTATION,
    ENDPOINT_ANNOTATION,
    POD_TEMPLATE_ANNOTATION,
    TEMPLATE_HASH_LABEL,
    DeploymentObservation,
    Rejection,
    parse_time,
    rfc3339,
)
from restate_op.deployment_verdicts import (
    Context,
    Facts,
    VersionVerdict,
    ViewState,
    declared,
    judge,
)
from restate_op.effects import (
    Apply,
    Delete,
    DeregisterDeployment,
    Effect,
    Emit,
    Forget,
    Outcome,
    QueryRestate,
    RegisterDeployment,
    Remember,
    RemoveFinalizer,
    WriteStatus,
)
from restate_op.machine import DEPLOYMENT_STATES_FILE, Transition, load_machine
from restate_op.outcomes import ReconcileError, internal_error

log = logging.getLogger(__name__)

CONTROLLER = "restatedeployment"

MACHINE = load_machine(DEPLOYMENT_STATES_FILE)
MACHINE.check_effects(PLANNERS)
MACHINE.check_reasons(declared())

#: How often Restate's view is read while something moves (a version draining, registering,
#: a deletion waiting) -- upstream polls every 10 s (PR #112) -- and while all is quiet.
BUSY_REFRESH_SECONDS = 10.0
IDLE_REFRESH_SECONDS = 300.0
CLUSTER_WAIT_SECONDS = 30.0
#: The resolution of metadata.deletionTimestamp.
DELETION_STAMP_SECONDS = 1.0
#: A rejected registration is retried after 30 s, 60 s, 120 s ... at most an hour apart.
REJECTION_BACKOFF_SECONDS = 30.0
REJECTION_BACKOFF_MAX_SECONDS = 3600.0


@dataclass(frozen=True)
class VersionDecision:
    """One version's outcome of ``decide``: where it is, why, and what it is."""

    name: str
    hash: str
    current: bool
    previous: VersionPhase | None
    phase: VersionPhase
    reason: str
    message: str
    path: tuple[Transition, ...]
    deployment_id: str | None
    replicas: int
    ready_replicas: int
    pinned: int
    remove_at: float | None
    rejection: Rejection | None
    routing: bool


@dataclass(frozen=True)
class DeploymentDecision(Decision):
    """A RestateDeployment's decision: the current version's phase, and every version's."""

    versions: tuple[VersionDecision, ...] = ()
    collision_count: int | None = None
    view: ViewState = "missing"
    #: The name the stable Service points at (None: no version serves yet).
    routing: str | None = None
    #: Every registration is gone: the finalizer is released.
    released: bool = False
    #: Deciding itself failed (a bug): reported and counted as such.
    error: ReconcileError | None = None


def view_key(admin: str) -> tuple[str, str]:
    """Where the executor keeps Restate's view: one per admin API, shared by every RSD."""
    return ("restate-view", admin)


def rejections_key(namespace: str, name: str) -> tuple[str, str]:
    """Where one RestateDeployment's refused registrations are held: a mapping of version
    name to ``Rejection``, one entry per RestateDeployment, so that deleting it (the
    controller's ``forget``) drops them all, and a version that goes takes its own along."""
    return (CONTROLLER, f"rejections/{namespace}/{name}")


def held_rejections(versions: list[VersionDecision]) -> dict[str, Rejection]:
    """What is worth remembering: the refusal of the version the spec describes (only it
    can be Rejected; an older version's refusal is moot, one that is gone is forgotten)."""
    return {v.name: v.rejection for v in versions if v.current and v.rejection is not None}


def backoff(attempts: int) -> float:
    growth: float = 2.0 ** max(attempts - 1, 0)
    return min(REJECTION_BACKOFF_SECONDS * growth, REJECTION_BACKOFF_MAX_SECONDS)


def _unsupported(obs: DeploymentObservation) -> str | None:
    if obs.knative and not obs.knative_served:
        return (
            "deploymentMode knative, but Knative Serving (serving.knative.dev/v1 "
            "configurations) is not installed"
        )
    return None


def _invalid(obs: DeploymentObservation) -> str | None:
    """What upstream calls InvalidRestateConfig: a spec that cannot be registered as is."""
    restate = obs.rsd.spec.restate
    if obs.knative:
        if restate.tunnel_mode == "in-process":
            return "tunnelMode: in-process is not supported in Knative mode"
        invalid = knative.invalid_config(obs.rsd)
        if invalid is not None:
            return invalid
    if restate.tunnel_mode is not None and restate.register.cloud is None:
        return "spec.restate.tunnelMode is only meaningful with spec.restate.register.cloud"
    if restate.register.cloud is not None and escapes(restate.service_path):
        return (
            f"spec.restate.servicePath {restate.service_path!r} leaves the tunnel's base path "
            f"('..' is not allowed)"
        )
    if obs.in_process:
        already = user_inproc_variables(obs.rsd.spec.template.spec)
        if already:
            return (
                f"tunnelMode in-process sets the RESTATE_INPROC_* variables itself; the pod "
                f"template already sets {', '.join(already)}: remove them"
            )
    return None


def _created(rs: Mapping[str, Any]) -> str:
    return str(rs.get("metadata", {}).get("creationTimestamp") or "")


def _view_state(
    obs: DeploymentObservation, admin: str | None, facts: list[Facts], now: float
) -> ViewState:
    """How far Restate's view can be trusted. Nothing is registered, retired or
    deregistered on a view older than ``BUSY_REFRESH_SECONDS``: an invocation may have been
    pinned since (a deletion after a quiet hour must not deregister on an hour-old view)."""
    view = obs.restate
    if view is None or admin is None or view.admin_url != admin:
        return "missing"
    if not view.ok:
        return "failed"
    if now - view.read_at > BUSY_REFRESH_SECONDS:
        return "stale"
    deleted_at = parse_time(obs.rsd.metadata.deletion_timestamp)
    # A deletion decides on an answer read after it began. The stamp has whole seconds (the
    # deletion began up to 1 s after it), so an answer read within that second is not enough:
    # an invocation pinned just before the delete would be missed.
    if deleted_at is not None and view.read_at < deleted_at + DELETION_STAMP_SECONDS:
        return "stale"
    expected = [f for f in facts if f.deployment_id and f.recorded_phase in ("Latest", "Draining")]
    # While deleting, knowing none of them is no reason to register again: nothing is left
    # to wait for (say, an operator deregistered them all and crashed before the release).
    if expected and not obs.deleting and not any(view.by_uri(f.uri) for f in facts):
        return "forgotten"
    return "ok"


def _view_note(obs: DeploymentObservation, state: ViewState, now: float) -> str:
    if state == "missing":
        return "Restate's admin API has not been read yet"
    if state == "stale" and obs.restate is not None:
        return f"Restate's view is {now - obs.restate.read_at:.0f} s old; reading it again"
    if state == "failed" and obs.restate is not None:
        return f"Restate's admin API did not answer: {obs.restate.error}"
    return ""


def _facts(obs: DeploymentObservation, collision_count: int | None) -> list[Facts]:
    """The current version first, then every older one, newest first."""
    rsd = obs.rsd
    status = rsd.status
    if obs.knative:
        current_hash = knative.tag(rsd, collision_count)
    else:
        current_hash = version_hash(rsd.spec, collision_count)
    current_name = versioned_name(rsd.name, current_hash)
    view = obs.restate if obs.restate is not None and obs.restate.ok else None

    def fact(name: str, hash_: str, current: bool, rs: Mapping[str, Any] | None) -> Facts:
        annotations = (rs or {}).get("metadata", {}).get("annotations") or {}
        if obs.knative:
            # The Route's URL (servicePath is not appended, as upstream), once Knative set it.
            computed = knative.route_url(obs.routes.get(name)) or ""
        else:
            computed = obs.endpoint(name)
        # An old version keeps the URI it was registered under (servicePath may have moved).
        uri = computed if current else annotations.get(ENDPOINT_ANNOTATION, computed)
        known = view.by_uri(uri) if view is not None else None
        recorded = status.version(name) if status is not None else None
        annotated = annotations.get(DEPLOYMENT_ID_ANNOTATION)
        deployment_id = (
            (known.id if known else None)
            or annotated
            or (recorded.deployment_id if recorded else None)
        )
        return Facts(
            name=name,
            hash=hash_,
            current=current,
            replica_set=rs,
            uri=uri,
            known=known,
            recorded=recorded,
            deployment_id=deployment_id,
            rejection=obs.rejections.get(name),
        )

    facts = [fact(current_name, current_hash, True, obs.replica_set(current_name))]
    older = sorted(
        (rs for rs in obs.version_objects if rs["metadata"]["name"] != current_name),
        key=_created,
        reverse=True,
    )
    for rs in older:
        labels = rs["metadata"].get("labels") or {}
        name = rs["metadata"]["name"]
        facts.append(fact(name, labels.get(TEMPLATE_HASH_LABEL, name), False, rs))
    return facts


def _collision(obs: DeploymentObservation) -> bool:
    """The current version's name is taken by a ReplicaSet of another template."""
    status = obs.rsd.status
    count = status.collision_count if status else None
    if obs.knative:
        if obs.rsd.spec.knative is not None and obs.rsd.spec.knative.tag:
            return False  # a chosen tag is updated in place: never a collision
        name = knative.version_name(obs.rsd, count)
    else:
        name = versioned_name(obs.rsd.name, version_hash(obs.rsd.spec, count))
    rs = obs.replica_set(name)
    if rs is None:
        return False
    stored = (rs["metadata"].get("annotations") or {}).get(POD_TEMPLATE_ANNOTATION)
    return stored is not None and stored != template_json(obs.rsd.spec.template)


def _rank(effect: Effect) -> int:
    """The finalizer first (before anything it would have to clean up), then the objects
    (pods last among them), Restate, deletions, and the read of Restate's view last, so it
    sees what this reconcile registered and removed."""
    match effect:
        case Apply() if effect.kind == KIND:
            return 0
        case Apply():
            return 2 if effect.kind == "Pod" else 1
        case RegisterDeployment():
            return 3
        case DeregisterDeployment():
            return 4
        case Delete():
            return 5
        case RemoveFinalizer():
            return 6
        case QueryRestate():
            return 8
    return 7


def decide(obs: DeploymentObservation, now: float) -> DeploymentDecision:
    """Everything one reconcile of this RestateDeployment will do, decided without I/O.

    Never raises: a bug becomes an ``InternalError`` decision that does nothing (the
    traceback goes to the log), never a silent retry loop.
    """
    try:
        return _decide(obs, now)
    except Exception as exc:
        log.exception("operator bug while deciding a RestateDeployment")
        error = internal_error(exc)
        return DeploymentDecision(
            phase="Starting", reason=error.reason, message=error.message, error=error
        )


def _decide(obs: DeploymentObservation, now: float) -> DeploymentDecision:
    rsd = obs.rsd
    status = rsd.status
    collision_count = status.collision_count if status else None
    unsupported = _unsupported(obs)
    if unsupported is not None:
        return DeploymentDecision(phase="Starting", reason="NotSupported", message=unsupported)
    invalid = _invalid(obs)
    if invalid is not None:
        return DeploymentDecision(phase="Starting", reason="InvalidRestateConfig", message=invalid)
    if obs.deleting and obs.cloud is not None and not obs.cloud.found:
        return DeploymentDecision(
            phase="Retired",
            reason="Deleting",
            message=f"RestateCloudEnvironment {obs.cloud.name} is gone: released",
            effects=_release(obs),
            released=True,
        )
    if obs.deleting and rsd.spec.restate.register.cluster is not None and obs.cluster is None:
        # The Restate it registered with is gone, and every registration with it.
        return DeploymentDecision(
            phase="Retired",
            reason="Deleting",
            message=f"RestateCluster {rsd.spec.restate.register.cluster} is gone: released",
            effects=_release(obs),
            released=True,
        )
    if _collision(obs):
        bumped = (collision_count or 0) + 1
        return DeploymentDecision(
            phase="Starting",
            reason="HashCollision",
            message=f"A ReplicaSet of another template has this version's name; "
            f"collisionCount is now {bumped}",
            collision_count=bumped,
            requeue_after=0.0,
        )

    admin = obs.admin
    facts = _facts(obs, collision_count)
    state = _view_state(obs, admin, facts, now)
    ctx = Context(obs, now, state, _view_note(obs, state, now))
    verdicts = [judge(ctx, f) for f in facts]
    routing = _routing(facts, verdicts)

    plans: list[VersionPlan] = []
    paths: dict[str, tuple[Transition, ...]] = {}
    retired = 0
    for f, verdict in zip(facts, verdicts, strict=True):
        current = f.recorded_phase or MACHINE.initial
        path = paths[f.name] = MACHINE.path(current, verdict.phase)
        phase = path[0].dest if path else current
        index = None
        if phase == "Retired":
            index, retired = retired, retired + 1
        plans.append(VersionPlan(f, verdict, phase, routing == f.name, admin, history_index=index))

    effects: list[Effect] = []
    if not obs.deleting and FINALIZER not in (rsd.metadata.finalizers or []):
        effects.append(Apply(finalizer_manifest(rsd)))
    for plan in plans:
        for name in MACHINE.state(plan.phase).effects:
            effects.extend(PLANNERS[name](ctx, plan))

    released = False
    gone = all(p.phase == "Retired" and p.facts.known is None for p in plans)
    if obs.deleting and state == "ok" and gone:
        effects.extend(_release(obs))
        released = True

    busy = obs.deleting or any(p.phase in ("Starting", "Registering", "Draining") for p in plans)
    talked = any(isinstance(e, RegisterDeployment | DeregisterDeployment) for e in effects)
    talked = talked or any(p.verdict.confirm for p in plans)
    requeue = _requeue(ctx, plans, busy)
    if admin is not None and not released:
        refresh = BUSY_REFRESH_SECONDS if busy else IDLE_REFRESH_SECONDS
        view = obs.restate if state != "missing" else None
        age = now - view.read_at if view is not None else None
        if talked or age is None or age >= refresh or state in ("stale", "failed"):
            seen = None if talked else (view.read_at if view is not None else 0.0)
            effects.append(QueryRestate(admin, view_key(admin), obs.token, seen))
            again = talked or state in ("missing", "stale")
            requeue = sooner(requeue, 0.0 if again else refresh)
        else:
            requeue = sooner(requeue, refresh - age)
    effects.sort(key=_rank)

    head = plans[0]
    decisions = tuple(_version_decision(p, paths[p.facts.name]) for p in plans)
    return DeploymentDecision(
        phase=head.phase,
        reason=head.verdict.reason,
        message=_summary(plans),
        path=decisions[0].path,
        effects=tuple(effects),
        requeue_after=requeue,
        versions=decisions,
        collision_count=collision_count,
        view=state,
        routing=routing,
        released=released,
    )


def _release(obs: DeploymentObservation) -> tuple[Effect, ...]:
    rsd = obs.rsd
    if FINALIZER not in (rsd.metadata.finalizers or []):
        return ()
    return (
        RemoveFinalizer(API_VERSION, KIND, rsd.namespace, rsd.name, rsd.metadata.uid, FINALIZER),
    )


def _routing(facts: list[Facts], verdicts: list[VersionVerdict]) -> str | None:
    """The version Restate sends new invocations to: the current one once it is Latest,
    else the newest older one Restate still names the latest of some service."""
    if verdicts[0].phase == "Latest":
        return facts[0].name
    for f in facts[1:]:
        if f.known is not None and f.known.latest_for:
            return f.name
    for f in facts:
        if f.recorded_phase == "Latest" and f.replica_set is not None:
            return f.name  # no answer from Restate: where it pointed before
    return None


def _requeue(ctx: Context, plans: list[VersionPlan], busy: bool) -> float | None:
    requeue: float | None = None
    for p in plans:
        v = p.verdict
        if v.remove_at is not None and p.phase == "Draining":
            requeue = sooner(requeue, max(v.remove_at - ctx.now, 0.0))
        if p.phase == "Rejected" and p.facts.rejection is not None:
            requeue = sooner(requeue, max(p.facts.rejection.retry_at - ctx.now, 0.0))
        if v.reason in ("ClusterNotReady", "ClusterNotFound", "CloudEnvironmentNotReady"):
            requeue = sooner(requeue, CLUSTER_WAIT_SECONDS)
    return requeue


def _version_decision(plan: VersionPlan, path: tuple[Transition, ...]) -> VersionDecision:
    f = plan.facts
    phase = cast(VersionPhase, plan.phase)
    return VersionDecision(
        name=f.name,
        hash=f.hash,
        current=f.current,
        previous=f.recorded_phase,
        phase=phase,
        reason=plan.verdict.reason,
        message=plan.verdict.message,
        path=path,
        deployment_id=f.deployment_id,
        replicas=f.replicas("replicas"),
        ready_replicas=f.replicas("readyReplicas"),
        pinned=f.pinned,
        remove_at=plan.verdict.remove_at if phase == "Draining" else None,
        rejection=f.rejection,
        routing=plan.routing,
    )


def _summary(plans: list[VersionPlan]) -> str:
    head = plans[0]
    message = f"{head.facts.name}: {head.verdict.message}"
    draining = [p.facts.name for p in plans[1:] if p.phase == "Draining"]
    if draining:
        message += f"; draining {', '.join(draining)}"
    return message


# -- after the effects ---------------------------------------------------------------------


def conclude(
    obs: DeploymentObservation, decision: Decision, outcome: Outcome, now: float
) -> Conclusion:
    """Rejections remembered, the status written when it changed, one Event per transition."""
    assert isinstance(decision, DeploymentDecision)
    rsd = obs.rsd
    effects: list[Effect] = []
    versions = list(decision.versions)
    decided = {v.name: v.phase for v in versions}
    requeue = sooner(decision.requeue_after, outcome.requeue_after)
    for result in outcome.registrations:
        index = next((i for i, v in enumerate(versions) if v.name == result.version), None)
        if index is None:
            continue
        v = versions[index]
        if result.accepted:
            versions[index] = replace(
                v, rejection=None, deployment_id=result.deployment_id or v.deployment_id
            )
            continue
        attempts = (v.rejection.attempts if v.rejection else 0) + 1
        rejection = Rejection(
            generation=rsd.metadata.generation,
            attempts=attempts,
            retry_at=now + backoff(attempts),
            status=result.status,
            code=result.code,
            message=result.message,
        )
        code = f"{result.status} {result.code}" if result.code else f"{result.status}"
        transition = MACHINE.transition(v.phase, "Rejected")
        versions[index] = replace(
            v,
            phase="Rejected",
            reason="RegistrationRejected",
            message=f"Restate refused the registration ({code}): {result.message}; retrying "
            f"at {rfc3339(rejection.retry_at)} (attempt {attempts}), or at once when the "
            f"spec changes",
            path=(transition,) if transition is not None else (),
            rejection=rejection,
        )
        requeue = sooner(requeue, backoff(attempts))

    held = held_rejections(versions)
    if held != dict(obs.rejections):
        key = rejections_key(rsd.namespace, rsd.name)
        effects.append(Remember(key, held) if held else Forget(key))
    status = build_status(obs, decision, versions, now)
    error = decision.error or outcome.error
    if error is not None:
        status = with_error(status, error, obs, now)
    live = obs.raw.get("status")
    if (dict(live) if isinstance(live, Mapping) else {}) != status.to_kube() and not (
        decision.released
    ):
        head = versions[0].phase if versions else decision.phase
        effects.append(
            WriteStatus(API_VERSION, KIND, rsd.namespace, rsd.name, status.to_kube(), head)
        )
    for v in versions:
        # The step decide took, then (a refused registration) the one Restate's answer made.
        steps = [(v.previous, decided[v.name]), (decided[v.name], v.phase)]
        for source, dest in steps:
            if dest == source:
                continue
            # Each state is entered by one trigger, so its Event reason names the state.
            event = next(t.event for t in MACHINE.transitions if t.dest == dest)
            warn = dest == "Rejected" or (dest == "Starting" and source is not None)
            effects.append(
                Emit(
                    obs.raw,
                    "Warning" if warn else "Normal",
                    event,
                    f"{source or 'New'}To{dest}",
                    f"{v.name}: {v.message}",
                )
            )
    return Conclusion(
        effects=tuple(effects), requeue_after=requeue, error=decision.error or outcome.error
    )


def _condition(
    ctype: str, value: bool, reason: str, message: str, obs: DeploymentObservation, now: float
) -> Condition:
    status = "True" if value else "False"
    before = (
        next((c for c in (obs.rsd.status.conditions or []) if c.type == ctype), None)
        if obs.rsd.status
        else None
    )
    moved = before is None or before.status != status
    return Condition(
        type=ctype,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=rfc3339(now)
        if moved or before is None
        else before.last_transition_time,
        observed_generation=obs.rsd.metadata.generation,
    )


def build_status(
    obs: DeploymentObservation,
    decision: DeploymentDecision,
    versions: list[VersionDecision],
    now: float,
) -> RestateDeploymentStatus:
    """The status: upstream's figures of the current version, three conditions, the versions."""
    rsd = obs.rsd
    previous = rsd.status
    desired = rsd.spec.desired_replicas
    if not versions:
        # Nothing judged (not supported, a collision): say why, keep the rest as it was.
        base = previous.model_copy() if previous else RestateDeploymentStatus()
        base.observed_generation = rsd.metadata.generation
        base.collision_count = decision.collision_count
        base.message = decision.message
        base.conditions = [
            _condition("Ready", False, decision.reason, decision.message, obs, now),
            _condition(
                "Progressing",
                decision.reason == "HashCollision",
                decision.reason,
                decision.message,
                obs,
                now,
            ),
            _condition("Available", _available(previous), "Unchanged", "", obs, now),
        ]
        return base
    head = versions[0]
    conditions_of = dict(MACHINE.state(head.phase).conditions)
    rs = obs.replica_set(head.name)
    rs_status = (rs or {}).get("status") or {}
    knative_status = None
    if obs.knative:
        rs_status, desired, knative_status = _knative_figures(obs, head.name, rs)
    available = int(rs_status.get("availableReplicas") or 0)
    ready_reason, ready_message = head.reason, head.message
    if head.phase == "Latest" and available < desired and not obs.knative:
        # Restate routes to it, but not every pod serves yet (a scale-up, a crash).
        conditions_of = {"Ready": "False", "Progressing": "True"}
        ready_reason = "ReplicaSetPodNotAvailable"
        ready_message = f"{head.name}: {available}/{desired} pods available"
    serving = next((v for v in versions if v.routing), None)
    serving_ok = serving is not None and (serving.ready_replicas > 0 or serving.phase == "Latest")
    selector = dict((((rs or {}).get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
    selector.setdefault(TEMPLATE_HASH_LABEL, head.hash)
    return RestateDeploymentStatus(
        observed_generation=rsd.metadata.generation,
        conditions=[
            _condition(
                "Ready", conditions_of["Ready"] == "True", ready_reason, ready_message, obs, now
            ),
            _condition(
                "Progressing",
                conditions_of["Progressing"] == "True",
                ready_reason if conditions_of["Progressing"] == "True" else "Complete",
                ready_message if conditions_of["Progressing"] == "True" else "",
                obs,
                now,
            ),
            _condition(
                "Available",
                serving_ok,
                "VersionServing" if serving_ok else "NoVersionServing",
                f"Restate routes new invocations to {serving.name}"
                if serving_ok and serving is not None
                else "No version is the latest in Restate yet",
                obs,
                now,
            ),
        ],
        deployment_id=head.deployment_id,
        latest_version=decision.routing,
        replicas=int(rs_status.get("replicas") or 0),
        desired_replicas=desired,
        ready_replicas=int(rs_status.get("readyReplicas") or 0),
        available_replicas=available,
        unavailable_replicas=max(desired - available, 0),
        collision_count=decision.collision_count,
        label_selector=None
        if obs.knative
        else ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
        knative=knative_status,
        versions=[_version_status(v) for v in versions],
        message=decision.message if head.phase != "Rejected" else f"{head.name}: {head.message}",
    )


def with_error(
    status: RestateDeploymentStatus, error: ReconcileError, obs: DeploymentObservation, now: float
) -> RestateDeploymentStatus:
    """A failed reconcile (a refused write, an API outage, a bug) is what Ready says, with
    the error's text: the versions' phases alone would hide why nothing moves."""
    ready = _condition("Ready", False, error.reason, error.message, obs, now)
    conditions = [ready if c.type == "Ready" else c for c in status.conditions or []]
    return status.model_copy(update={"conditions": conditions, "message": error.message})


def _knative_figures(
    obs: DeploymentObservation, name: str, config: Mapping[str, Any] | None
) -> tuple[dict[str, int], int, KnativeStatus]:
    """Upstream's Knative figures: the latest Revision's actual and desired replicas (else
    the Configuration's initial-scale, else 1); its names and the Route's URL."""
    revision_name = knative.latest_revision(config)
    revision = obs.revisions.get(revision_name or "") or {}
    rev_status = revision.get("status") or {}
    actual = int(rev_status.get("actualReplicas") or 0)
    annotations = ((config or {}).get("metadata") or {}).get("annotations") or {}
    initial = annotations.get("autoscaling.knative.dev/initial-scale")
    desired = int(rev_status.get("desiredReplicas") or (initial if initial else 1))
    route = obs.routes.get(name)
    figures = {"replicas": actual, "readyReplicas": actual, "availableReplicas": actual}
    return (
        figures,
        desired,
        KnativeStatus(
            configuration_name=name if config is not None else None,
            route_name=name if route is not None else None,
            url=knative.route_url(route),
            latest_revision=revision_name,
        ),
    )


def _available(previous: RestateDeploymentStatus | None) -> bool:
    if previous is None:
        return False
    found = next((c for c in previous.conditions or [] if c.type == "Available"), None)
    return found is not None and found.status == "True"


def _version_status(v: VersionDecision) -> VersionStatus:
    r = v.rejection
    return VersionStatus(
        name=v.name,
        hash=v.hash,
        phase=v.phase,
        reason=v.reason,
        message=v.message,
        deployment_id=v.deployment_id,
        replicas=v.replicas,
        ready_replicas=v.ready_replicas,
        pinned_invocations=v.pinned,
        remove_at=rfc3339(v.remove_at) if v.remove_at is not None else None,
        rejections=r.attempts if r is not None else None,
        retry_at=rfc3339(r.retry_at) if r is not None else None,
    )
