"""Drift: a child that someone other than the operator changed or deleted.

A child the operator is about to apply differs from its live copy for one of three reasons:
it was never created, the desired manifest changed (a spec edit, a new operator version), or
someone edited or deleted the live object. Only the last is drift, and the operator says so
with an Event when it puts the child back. Pure: decided from the observation alone.

- A changed child is drift when its ``restate.dev/desired-hash`` annotation still equals the
  hash of the manifest about to be applied: the desire did not change, the object did.
- A missing child is drift when the cluster had converged on the current spec (a state and
  reason marked ``converged`` in ``states/``, ``observedGeneration`` current): it existed
  and is gone. Degraded counts only for reasons reached with every child applied (a rejected
  apply or an API outage on the first reconcile may come before any child exists).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from restate_op.diff import DESIRED_HASH_ANNOTATION, contains
from restate_op.machine import load_machine
from restate_op.observe import Observation


def first_difference(live: Any, desired: Any, path: str = "") -> str | None:
    """The path of the first field of ``desired`` that ``live`` does not hold, if any.

    Example:
        >>> first_difference({"spec": {"replicas": 2}}, {"spec": {"replicas": 1}})
        'spec.replicas'
    """
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return path or "."
        for key, value in desired.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in live:
                return where
            found = first_difference(live[key], value, where)
            if found is not None:
                return found
        return None
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            return path or "."
        for i, (item, wanted) in enumerate(zip(live, desired, strict=True)):
            found = first_difference(item, wanted, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    return None if contains(live, desired) else (path or ".")


def _hash(obj: Mapping[str, Any]) -> str | None:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(DESIRED_HASH_ANNOTATION)
    return str(value) if value is not None else None


def converged(obs: Observation) -> bool:
    """Whether the cluster had every child for its current spec at the last status write."""
    status = obs.cluster.status
    if (
        status is None
        or status.phase is None
        or status.observed_generation != obs.cluster.metadata.generation
    ):
        return False
    # The reason a status records is its Degraded condition's while degraded, else Ready's.
    kind = "Degraded" if status.phase == "Degraded" else "Ready"
    recorded = next((c.reason for c in status.conditions or [] if c.type == kind), None)
    return load_machine().state(status.phase).is_converged(recorded)


def drift(obs: Observation, manifest: Mapping[str, Any]) -> str | None:
    """Why applying ``manifest`` restores a child someone else changed; None if it does not.

    Returns a short phrase for the Event, e.g. ``"deleted"`` or ``"spec.replicas changed"``.
    """
    live = obs.live(manifest)
    if live is None:
        return "deleted" if converged(obs) else None
    wanted = _hash(manifest)
    if wanted is None or _hash(live) != wanted:
        return None
    changed = first_difference(live, manifest)
    return f"{changed} changed" if changed is not None else None
