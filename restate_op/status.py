"""The status a reconcile reports: phase, conditions, figures and one human sentence.

Pure: built from the verdict and the observation. ``lastTransitionTime`` moves only when a
condition's status changes, and an unchanged status is not written at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from restate_op.api.lifecycle import Phase
from restate_op.api.models import (
    Condition,
    RestateClusterStatus,
    RestateHealthStatus,
    SnapshotsStatus,
    StorageStatus,
)
from restate_op.machine import Machine
from restate_op.quantity import format_bytes

CONDITION_TYPES = ("Ready", "Progressing", "Degraded")


@dataclass(frozen=True)
class Verdict:
    """Where the cluster stands: the phase the machine moves to, and why."""

    phase: Phase
    reason: str
    message: str


@dataclass(frozen=True)
class Figures:
    """Observed numbers reported in status."""

    desired_replicas: int
    ready_replicas: int
    requested_bytes: int
    current_bytes: int | None
    provisioned: bool | None
    restate: RestateHealthStatus | None = None
    snapshots: SnapshotsStatus | None = None


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_conditions(
    definition: Machine,
    verdict: Verdict,
    figures: Figures,
    generation: int,
    previous: list[Condition] | None,
    now: str,
) -> list[Condition]:
    """The Ready/Progressing/Degraded conditions of ``verdict.phase``, per ``states/``."""
    serving = figures.desired_replicas > 0 and figures.ready_replicas >= figures.desired_replicas
    old = {c.type: c for c in previous or []}
    conditions = []
    for ctype in CONDITION_TYPES:
        value = definition.state(verdict.phase).conditions[ctype]
        status = ("True" if serving else "False") if value == "Serving" else value
        reason, message = _reason_for(ctype, status, verdict)
        before = old.get(ctype)
        moved = before is None or before.status != status
        conditions.append(
            Condition(
                type=ctype,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=now
                if moved or before is None
                else before.last_transition_time,
                observed_generation=generation,
            )
        )
    return conditions


def _reason_for(ctype: str, status: str, verdict: Verdict) -> tuple[str, str]:
    if ctype == "Degraded":
        return (verdict.reason, verdict.message) if status == "True" else ("AsExpected", "")
    if ctype == "Ready" and status == "True" and verdict.phase == "Ready":
        return "Ready", verdict.message
    if ctype == "Progressing" and status == "False" and verdict.phase != "Degraded":
        return "Converged", ""
    return verdict.reason, verdict.message


def build_status(
    definition: Machine,
    verdict: Verdict,
    figures: Figures,
    generation: int,
    previous: RestateClusterStatus | None,
    now: str | None = None,
) -> RestateClusterStatus:
    now = now or now_rfc3339()
    current = figures.current_bytes
    return RestateClusterStatus(
        phase=verdict.phase,
        observed_generation=generation,
        conditions=build_conditions(
            definition, verdict, figures, generation, previous.conditions if previous else None, now
        ),
        replicas=figures.desired_replicas,
        ready_replicas=figures.ready_replicas,
        replica_summary=f"{figures.ready_replicas}/{figures.desired_replicas}",
        storage=StorageStatus(
            requested_bytes=figures.requested_bytes,
            current_bytes=current,
            capacity=format_bytes(current) if current is not None else None,
        ),
        provisioned=figures.provisioned,
        restate=figures.restate,
        snapshots=figures.snapshots,
        message=verdict.message,
    )


def status_changed(previous: dict[str, Any] | None, desired: RestateClusterStatus) -> bool:
    """Whether writing ``desired`` would change the live status (time stamps preserved)."""
    return (previous or {}) != desired.to_kube()
