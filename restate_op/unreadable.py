"""A RestateCluster the API server accepted but the operator's model cannot read.

The CRD cannot express every rule of the models (say, "exactly one of secret or
secretProvider"), and objects stored before a stricter CRD was installed are never
re-validated. Such a cluster must still get a status that names the field to fix, instead of
a silent retry loop: this module turns the validation error into that status. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from restate_op.api.models import RestateClusterStatus
from restate_op.status import Figures, Verdict

INVALID_SPEC = "InvalidSpec"


def field_path(loc: Sequence[int | str]) -> str:
    """``("spec", "env", 0, "name")`` -> ``"spec.env[0].name"``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def unreadable_verdict(exc: ValidationError) -> Verdict:
    """Degraded, with every offending field and what is wrong with it."""
    problems = []
    for error in exc.errors():
        where = field_path(error.get("loc", ())) or "spec"
        message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    return Verdict(
        "Degraded",
        INVALID_SPEC,
        "; ".join(problems) + "; fix the field(s) named (the operator cannot read this spec)",
    )


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def lenient_figures(raw: Mapping[str, Any]) -> Figures:
    """The figures status reports, read without the model (any field may be malformed)."""
    spec = raw.get("spec") if isinstance(raw.get("spec"), Mapping) else {}
    assert isinstance(spec, Mapping)
    compute = spec.get("compute") if isinstance(spec.get("compute"), Mapping) else {}
    storage = spec.get("storage") if isinstance(spec.get("storage"), Mapping) else {}
    assert isinstance(compute, Mapping) and isinstance(storage, Mapping)
    status = raw.get("status") if isinstance(raw.get("status"), Mapping) else {}
    assert isinstance(status, Mapping)
    return Figures(
        desired_replicas=_int(compute.get("replicas"), 1),
        ready_replicas=_int(status.get("readyReplicas")),
        requested_bytes=_int(storage.get("storageRequestBytes")),
        current_bytes=(status.get("storage") or {}).get("currentBytes")
        if isinstance(status.get("storage"), Mapping)
        else None,
        provisioned=status.get("provisioned")
        if isinstance(status.get("provisioned"), bool)
        else None,
    )


def previous_status(raw: Mapping[str, Any]) -> RestateClusterStatus | None:
    try:
        return RestateClusterStatus.model_validate(raw.get("status") or {})
    except ValidationError:
        return None
