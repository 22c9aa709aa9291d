"""The pure reconcile of one RestateCloudEnvironment: ``decide`` before the effects,
``conclude`` after.

``decide`` judges the phase (``verdict``: the first rule with something to say wins) from
the RCE, its Secret and the tunnel Deployment as the caches hold them, moves there through
``states/restatecloudenvironment.yaml`` and runs the planners of that state. ``conclude``
writes the status (upstream has none: phase, ``Ready`` and ``Degraded``, the tunnel's pod
counts) when it changed, and an Event per transition. Both are tested state in, state out
(``tests/test_cloud_decide.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from restate_op.api.cloud import (
    RestateCloudEnvironment,
    RestateCloudEnvironmentStatus,
    spec_problems,
)
from restate_op.api.cloud_crd import API_VERSION, FINALIZER, KIND
from restate_op.api.models import Condition
from restate_op.cloud_children import tunnel_deployment, tunnel_pdb, tunnel_service
from restate_op.cloud_identity import bearer_token
from restate_op.controller import Conclusion, Decision
from restate_op.deployment_observe import rfc3339
from restate_op.diff import up_to_date
from restate_op.effects import Apply, Delete, Effect, Emit, Outcome, RemoveFinalizer, WriteStatus
from restate_op.machine import CLOUD_STATES_FILE, load_machine
from restate_op.outcomes import ReconcileError, TemporaryError, internal_error
from restate_op.settings import OperatorSettings

log = logging.getLogger(__name__)

CONTROLLER = "restatecloudenvironment"


@dataclass(frozen=True)
class CloudObservation:
    """One RestateCloudEnvironment and what of it the operator can see."""

    rce: RestateCloudEnvironment
    raw: Mapping[str, Any]
    #: The Secret ``spec.authentication.secret`` names (operator namespace); None: absent.
    secret: Mapping[str, Any] | None = None
    #: The tunnel's Deployment, Service and PDB it controls; None: absent.
    deployment: Mapping[str, Any] | None = None
    service: Mapping[str, Any] | None = None
    pdb: Mapping[str, Any] | None = None
    settings: OperatorSettings = field(default_factory=OperatorSettings)

    @property
    def deleting(self) -> bool:
        return self.rce.metadata.deletion_timestamp is not None


@dataclass(frozen=True)
class Verdict:
    phase: str
    reason: str
    message: str


Rule = Callable[[CloudObservation], Verdict | None]


def invalid(obs: CloudObservation) -> Verdict | None:
    problems = spec_problems(obs.rce.spec)
    if not problems:
        return None
    return Verdict("Degraded", "InvalidSpec", "; ".join(problems))


def secret(obs: CloudObservation) -> Verdict | None:
    ref = obs.rce.spec.authentication.secret
    _, problem = bearer_token(obs.secret, ref.name, ref.key, obs.settings.operator_namespace)
    if problem is None:
        return None
    reason = "SecretNotFound" if obs.secret is None else "SecretKeyNotFound"
    fix = (
        f"; create it with the admin API token (kubectl -n {obs.settings.operator_namespace} "
        f"create secret generic {ref.name} --from-literal={ref.key}=...)"
    )
    return Verdict("Degraded", reason, problem + fix)


def _counts(deployment: Mapping[str, Any]) -> dict[str, int]:
    status = deployment.get("status") or {}
    return {
        k: int(status.get(k) or 0)
        for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
    }


def rollout(obs: CloudObservation) -> Verdict:
    """From the Deployment's own status, as ``kubectl rollout status`` reads it."""
    deployment = obs.deployment
    name = obs.rce.tunnel_name
    namespace = obs.settings.operator_namespace
    if deployment is None:
        return Verdict("Provisioning", "TunnelCreating", f"Creating Deployment {namespace}/{name}")
    status = deployment.get("status") or {}
    for c in status.get("conditions") or []:
        if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
            return Verdict(
                "Degraded",
                "TunnelNotProgressing",
                f"Deployment {namespace}/{name} does not progress: {c.get('message', '')}",
            )
    desired = obs.rce.spec.tunnel_spec.desired_replicas
    n = _counts(deployment)
    generation = int((deployment.get("metadata") or {}).get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    done = (
        observed >= generation
        and n["updatedReplicas"] >= desired
        and n["availableReplicas"] >= desired
        and n["replicas"] <= desired
    )
    progress = f"{n['availableReplicas']}/{desired} tunnel pods available"
    if not done:
        return Verdict("Provisioning", "TunnelRollingOut", f"Rolling out: {progress}")
    return Verdict("Ready", "TunnelReady", f"Tunnel {name}: {progress}")


RULES: tuple[tuple[Rule, tuple[tuple[str, str], ...]], ...] = (
    (invalid, (("Degraded", "InvalidSpec"),)),
    (secret, (("Degraded", "SecretNotFound"), ("Degraded", "SecretKeyNotFound"))),
)
ROLLOUT_RETURNS = (
    ("Provisioning", "TunnelCreating"),
    ("Provisioning", "TunnelRollingOut"),
    ("Degraded", "TunnelNotProgressing"),
    ("Ready", "TunnelReady"),
)


def verdict(obs: CloudObservation) -> Verdict:
    for rule, _returns in RULES:
        found = rule(obs)
        if found is not None:
            return found
    return rollout(obs)


def declared() -> set[tuple[str, str]]:
    return {pair for _rule, returns in RULES for pair in returns} | set(ROLLOUT_RETURNS)


# -- what each state does -----------------------------------------------------------------


def apply_tunnel(obs: CloudObservation) -> tuple[Effect, ...]:
    """The tunnel Deployment and Service, for any valid spec. A missing Secret does not hold
    them back: the pods start the moment it appears, with no reconcile in between."""
    if spec_problems(obs.rce.spec) or obs.deleting:
        return ()
    uid = obs.rce.metadata.uid
    effects: list[Effect] = []
    for live, desired in (
        (obs.deployment, tunnel_deployment(obs.rce, obs.settings)),
        (obs.service, tunnel_service(obs.rce, obs.settings)),
    ):
        if not up_to_date(live, desired):
            effects.append(Apply(desired, refuse_foreign_of=None if live else uid))
    return tuple(effects)


def budget_tunnel(obs: CloudObservation) -> tuple[Effect, ...]:
    """The PodDisruptionBudget while there is more than one tunnel pod; removed otherwise."""
    if spec_problems(obs.rce.spec) or obs.deleting:
        return ()
    desired = tunnel_pdb(obs.rce, obs.settings)
    if desired is None:
        if obs.pdb is None:
            return ()
        namespace = obs.settings.operator_namespace
        return (Delete("policy/v1", "PodDisruptionBudget", namespace, obs.rce.tunnel_name),)
    if up_to_date(obs.pdb, desired):
        return ()
    return (Apply(desired, refuse_foreign_of=None if obs.pdb else obs.rce.metadata.uid),)


PLANNERS: Mapping[str, Callable[[CloudObservation], tuple[Effect, ...]]] = {
    "apply_tunnel": apply_tunnel,
    "budget_tunnel": budget_tunnel,
}

MACHINE = load_machine(CLOUD_STATES_FILE)
MACHINE.check_effects(PLANNERS)
MACHINE.check_reasons(declared())


@dataclass(frozen=True)
class CloudDecision(Decision):
    error: ReconcileError | None = None


def decide(obs: CloudObservation, now: float) -> CloudDecision:
    """Never raises: a bug is an ``InternalError`` decision that does nothing."""
    try:
        return _decide(obs)
    except Exception as exc:
        log.exception("operator bug while deciding a RestateCloudEnvironment")
        error = internal_error(exc)
        return CloudDecision(
            phase="Degraded", reason=error.reason, message=error.message, error=error
        )


def _recorded(obs: CloudObservation) -> str:
    status = obs.rce.status
    return (status.phase if status is not None else None) or MACHINE.initial


def _decide(obs: CloudObservation) -> CloudDecision:
    if obs.deleting:
        # Its children go by garbage collection; upstream's finalizer (restate-op needs none)
        # is released so that an RCE upstream finalized can be deleted.
        effects: tuple[Effect, ...] = ()
        if FINALIZER in (obs.rce.metadata.finalizers or []):
            m = obs.rce.metadata
            effects = (RemoveFinalizer(API_VERSION, KIND, None, m.name, m.uid, FINALIZER),)
        return CloudDecision(
            phase=_recorded(obs), reason="Deleting", message="Deleting", effects=effects
        )
    found = verdict(obs)
    path = MACHINE.path(_recorded(obs), found.phase)
    phase = path[0].dest if path else _recorded(obs)
    effects = tuple(e for name in MACHINE.state(phase).effects for e in PLANNERS[name](obs))
    return CloudDecision(
        phase=phase, reason=found.reason, message=found.message, path=path, effects=effects
    )


# -- after the effects ---------------------------------------------------------------------


def _condition(
    obs: CloudObservation, ctype: str, value: bool, reason: str, message: str, now: float
) -> Condition:
    status = "True" if value else "False"
    before = (
        next((c for c in (obs.rce.status.conditions or []) if c.type == ctype), None)
        if obs.rce.status
        else None
    )
    kept = before is not None and before.status == status
    return Condition(
        type=ctype,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=before.last_transition_time if kept and before else rfc3339(now),
        observed_generation=obs.rce.metadata.generation,
    )


def build_status(
    obs: CloudObservation, phase: str, reason: str, message: str, now: float
) -> RestateCloudEnvironmentStatus:
    conditions = MACHINE.state(phase).conditions
    ready = conditions.get("Ready") == "True"
    degraded = conditions.get("Degraded") == "True"
    n = _counts(obs.deployment) if obs.deployment is not None else {}
    return RestateCloudEnvironmentStatus(
        phase=phase,
        observed_generation=obs.rce.metadata.generation,
        conditions=[
            _condition(obs, "Ready", ready, reason, message, now),
            _condition(
                obs,
                "Degraded",
                degraded,
                reason if degraded else "AsExpected",
                message if degraded else "",
                now,
            ),
        ],
        tunnel=obs.rce.tunnel_name,
        replicas=n.get("replicas", 0),
        ready_replicas=n.get("readyReplicas", 0),
        available_replicas=n.get("availableReplicas", 0),
        message=message,
    )


def conclude(obs: CloudObservation, decision: Decision, outcome: Outcome, now: float) -> Conclusion:
    """The status written when it changed, one Event per transition. An effect the API
    server refused (a foreign object of the tunnel's name, a 403) is Degraded with its
    message; a temporary failure keeps the phase. Either way the error is returned: the
    runtime logs it, counts it and retries as its class says (as for RestateClusters), so
    a refusal fixed outside the RCE (an RBAC grant, the foreign object removed) heals
    without an edit of the RCE."""
    assert isinstance(decision, CloudDecision)
    if obs.deleting:
        return Conclusion(error=decision.error or outcome.error)
    phase, reason, message = decision.phase, decision.reason, decision.message
    error = decision.error or outcome.error
    if error is not None and not isinstance(error, TemporaryError):
        phase, reason, message = "Degraded", error.reason, error.message
    status = build_status(obs, phase, reason, message, now).to_kube()
    effects: list[Effect] = []
    live = obs.raw.get("status")
    if (dict(live) if isinstance(live, Mapping) else {}) != status:
        effects.append(WriteStatus(API_VERSION, KIND, None, obs.rce.name, status, phase))
    before = _recorded(obs)
    if phase != before:
        event = next(t.event for t in MACHINE.transitions if t.dest == phase)
        effects.append(
            Emit(
                obs.raw,
                "Warning" if phase == "Degraded" else "Normal",
                event,
                f"{before}To{phase}",
                message,
            )
        )
    return Conclusion(effects=tuple(effects), error=error)
