"""The way back: a RestateCluster restate-op managed is still one upstream's operator reads.

restate-op never writes a RestateCluster's spec or metadata (RBAC: read, plus the status
subresource), so the spec stays the user's, field for field. Its status must pass upstream
v2.9's CRD schema, written here from /work/shared/spec/upstream-reference.md (A1 status,
B2 ``provisioned``): whatever upstream's structural schema does not know is pruned, and what
survives must be the ``Ready`` condition upstream reads (type, status, reason, message,
lastTransitionTime) and ``provisioned``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest

from restate_op.effects import WriteStatus
from restate_op.rbac import PERMISSIONS
from tests.test_reconcile import no_coalescing, run
from tests.test_verdicts import cluster, converged

#: Upstream v2.9's ``status`` schema (kube-rs: structural, no preserve-unknown-fields).
UPSTREAM_STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "nullable": True,
    "properties": {
        "conditions": {
            "type": "array",
            "nullable": True,
            "items": {
                "type": "object",
                "required": ["status", "type"],
                "properties": {
                    "lastTransitionTime": {"type": "string", "format": "date-time"},
                    "message": {"type": "string"},
                    "reason": {"type": "string"},
                    "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                    "type": {"type": "string"},
                },
            },
        },
        "provisioned": {"type": "boolean", "nullable": True},
    },
}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
TYPES: dict[str, type[Any]] = {"object": Mapping, "array": list, "string": str, "boolean": bool}


def validate_and_prune(value: Any, schema: Mapping[str, Any], path: str = "status") -> Any:
    """What the API server does with a structural schema: reject a wrong type, enum, format
    or missing required field; drop unknown fields. Returns the pruned value."""
    if value is None:
        assert schema.get("nullable"), f"{path}: null"
        return None
    assert isinstance(value, TYPES[schema["type"]]), f"{path}: not {schema['type']}"
    if schema["type"] == "object":
        for key in schema.get("required", ()):
            assert key in value, f"{path}.{key} required"
        props = schema.get("properties", {})
        return {
            k: validate_and_prune(v, props[k], f"{path}.{k}")
            for k, v in value.items()
            if k in props
        }
    if schema["type"] == "array":
        return [validate_and_prune(v, schema["items"], f"{path}[]") for v in value]
    if "enum" in schema:
        assert value in schema["enum"], f"{path}: {value!r}"
    if schema.get("format") == "date-time":
        assert RFC3339.match(value), f"{path}: {value!r}"
    return value


def statuses_written(raw: dict[str, Any]) -> list[Mapping[str, Any]]:
    _decision, conclusion = run(no_coalescing(converged(raw)))
    return [e.status for e in conclusion.effects if isinstance(e, WriteStatus)]


@pytest.mark.parametrize(
    "raw",
    [
        cluster("Pending"),
        cluster("Pending", replicas=3, auto_provision=True),
        cluster("Provisioning", replicas=3, auto_provision=True, provisioned=True),
    ],
    ids=["one-node", "three-nodes", "provisioned"],
)
def test_upstreams_schema_accepts_restate_ops_status_and_keeps_ready(raw: dict[str, Any]) -> None:
    written = statuses_written(raw)
    assert written, "no status written"
    for status in written:
        pruned = validate_and_prune(status, UPSTREAM_STATUS_SCHEMA)
        ready = [c for c in pruned["conditions"] if c["type"] == "Ready"]
        assert len(ready) == 1
        assert set(ready[0]) == {"type", "status", "reason", "message", "lastTransitionTime"}
        original = next(c for c in status["conditions"] if c["type"] == "Ready")
        assert all(ready[0][k] == original[k] for k in ready[0])
        if "provisioned" in status:
            assert pruned["provisioned"] == status["provisioned"]


def test_restate_op_never_writes_a_restatecluster_itself() -> None:
    """Only its status: the spec, labels, annotations and finalizers stay as upstream's."""
    verbs = {p.resource: set(p.verbs) for p in PERMISSIONS if p.group == "restate.dev"}
    assert verbs["restateclusters"] <= {"get", "list", "watch"}
    assert verbs["restateclusters/status"] == {"patch"}
