"""A RestateDeployment the API server accepted but the operator's model cannot read.

As for RestateClusters (``restate_op.unreadable``): objects stored before a stricter CRD was
installed are never re-validated, and a CRD can lag the model. Such an object is neither
acted on half-understood nor silently skipped: it gets a status whose Ready condition names
every offending field and what to fix, and a Warning Event, and nothing else is touched (no
finalizer, no version, no request to Restate) until the spec is fixed. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from restate_op.api.deployment import RestateDeploymentStatus
from restate_op.api.deployment_crd import API_VERSION, KIND
from restate_op.api.models import Condition
from restate_op.controller import Conclusion, Decision
from restate_op.deployment_observe import rfc3339
from restate_op.effects import Effect, Emit, WriteStatus
from restate_op.unreadable import INVALID_SPEC, unreadable_verdict


@dataclass(frozen=True)
class UnreadableDeployment:
    """What is observed of a RestateDeployment the model refuses: the object and why."""

    raw: Mapping[str, Any]
    error: ValidationError

    @property
    def meta(self) -> Mapping[str, Any]:
        meta: Mapping[str, Any] = self.raw.get("metadata") or {}
        return meta


def decide_unreadable(obs: UnreadableDeployment) -> Decision:
    """Nothing to do but say so: which fields, and that they need fixing."""
    verdict = unreadable_verdict(obs.error)
    message = verdict.message
    if obs.meta.get("deletionTimestamp"):
        # Its versions' registrations cannot be found without the spec: no ghost is left.
        message += "; the deletion waits for it (its versions are deregistered first)"
    return Decision(phase="Starting", reason=verdict.reason, message=message)


def _previous(raw: Mapping[str, Any]) -> RestateDeploymentStatus:
    try:
        return RestateDeploymentStatus.model_validate(raw.get("status") or {})
    except ValidationError:
        return RestateDeploymentStatus()


def _false(
    previous: RestateDeploymentStatus, ctype: str, message: str, generation: int | None, now: float
) -> Condition:
    before = next((c for c in previous.conditions or [] if c.type == ctype), None)
    kept = before is not None and before.status == "False" and before.last_transition_time
    return Condition(
        type=ctype,
        status="False",
        reason=INVALID_SPEC,
        message=message,
        last_transition_time=before.last_transition_time
        if kept and before is not None
        else rfc3339(now),
        observed_generation=generation,
    )


def unreadable_status(obs: UnreadableDeployment, message: str, now: float) -> dict[str, Any]:
    """The previous status (what it could still read) with Ready and Progressing False,
    saying what to fix; Available kept as it was (versions already running keep serving)."""
    previous = _previous(obs.raw)
    found = obs.meta.get("generation")
    generation = found if isinstance(found, int) else None
    conditions = [
        _false(previous, "Ready", message, generation, now),
        _false(previous, "Progressing", message, generation, now),
    ]
    available = [c for c in previous.conditions or [] if c.type == "Available"]
    status = previous.model_copy(
        update={
            "conditions": [*conditions, *available],
            "message": message,
            "observed_generation": generation,
        }
    )
    return status.to_kube()


def conclude_unreadable(obs: UnreadableDeployment, decision: Decision, now: float) -> Conclusion:
    """The status, written (and announced by a Warning Event) only when it changes."""
    status = unreadable_status(obs, decision.message, now)
    live = obs.raw.get("status")
    effects: list[Effect] = []
    if (dict(live) if isinstance(live, Mapping) else {}) != status:
        meta = obs.meta
        effects.append(
            WriteStatus(
                API_VERSION, KIND, meta.get("namespace"), meta.get("name", ""), status, "Starting"
            )
        )
        effects.append(Emit(obs.raw, "Warning", INVALID_SPEC, "Validate", decision.message))
    return Conclusion(effects=tuple(effects))
