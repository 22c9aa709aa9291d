"""The RestateDeployment benchmark's pure helpers: how admin requests are named, how a write
that changed nothing (or only bookkeeping) is told, and the report section. The scenario
itself runs only under ``python -m bench --only rsd``: a benchmark prints figures."""

from __future__ import annotations

from typing import Any

from bench import report
from bench.audit import AuditedRequest, content_digest
from bench.deployments import DeploymentProbe, _wasted_writes, admin_label, manifest, version_of
from e2e.restate_admin_standin import Request
from restate_op.restate_admin import LATEST_SQL, PINNED_SQL


def rs(labels: dict[str, str], annotations: dict[str, str], rv: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "greeter-1",
            "namespace": "rsd-0000",
            "resourceVersion": rv,
            "labels": labels,
            "annotations": annotations,
            "managedFields": [{"manager": rv}],
        },
        "spec": {"replicas": 1},
    }


def test_admin_requests_are_named_by_query_and_force() -> None:
    def label(method: str, path: str, body: Any = None) -> str:
        return admin_label(Request(method, path, {}, body))

    assert label("POST", "/query", {"query": LATEST_SQL}) == "POST /query (latest)"
    assert label("POST", "/query", {"query": PINNED_SQL}) == "POST /query (pinned)"
    assert label("POST", "/deployments", {"uri": "u", "force": True}) == "POST /deployments (force)"
    assert label("POST", "/deployments", {"uri": "u", "force": False}) == "POST /deployments"
    assert label("DELETE", "/deployments/dp_0001") == "DELETE /deployments/{id}"
    assert label("GET", "/deployments") == "GET /deployments"


def test_content_digest_ignores_bookkeeping_only() -> None:
    base = rs({"a": "1"}, {"restate.dev/desired-hash": "x"}, "10")
    assert content_digest(base) == content_digest(
        rs({"a": "1"}, {"restate.dev/desired-hash": "y"}, "11")
    )
    assert content_digest(base) != content_digest(
        rs({"a": "2"}, {"restate.dev/desired-hash": "x"}, "10")
    )


def write(rv: str, digest: str, at: float) -> AuditedRequest:
    return AuditedRequest(at, "patch", "replicasets", "rsd-0000", "greeter-1", 200, rv, digest)


def test_writes_that_changed_nothing_or_only_bookkeeping_are_listed() -> None:
    probe = DeploymentProbe.__new__(DeploymentProbe)
    probe.history = {}
    before = rs({"a": "1"}, {}, "10")
    probe.history[("replicasets", "rsd-0000", "greeter-1")] = [(1.0, "10", content_digest(before))]
    same = write("10", content_digest(before), 2.0)
    managed_fields_only = write("11", content_digest(rs({"a": "1"}, {}, "11")), 2.0)
    changed = write("12", content_digest(rs({"a": "2"}, {}, "12")), 2.0)
    # A state seen only after the write was received is not evidence of anything.
    too_early = write("10", content_digest(before), 0.5)
    found = _wasted_writes(probe, [same, managed_fields_only, changed, too_early])
    assert found == {
        "unchanged": ["patch replicasets rsd-0000/greeter-1 → 200"],
        "bookkeeping_only": ["patch replicasets rsd-0000/greeter-1 → 200"],
    }


def test_the_manifest_registers_by_url_and_never_drains() -> None:
    raw = manifest("rsd-0000", "http://127.0.0.1:1234", "example/greeter:v1")
    assert raw["spec"]["restate"] == {
        "register": {"url": "http://127.0.0.1:1234"},
        "drainDelaySeconds": 0,
    }
    other = manifest("rsd-0000", "http://127.0.0.1:1234", "example/greeter:v2")
    assert version_of(raw) != version_of(other)
    assert version_of(raw).startswith("greeter-")


def test_report_section_lists_rounds_and_wasted_writes() -> None:
    timing = {"n": 2, "p50": 0.5, "p95": 0.9, "max": 0.9}
    rsd = {
        "deployments": 2,
        "at_once": False,
        "rounds": [
            {
                "round": "v1 → v2",
                "to_registering_s": timing,
                "to_latest_s": timing,
                "to_old_retired_s": timing,
                "kube_requests_per_change": 24.0,
                "admin_requests_per_change": 11.0,
                "kube_requests_per_change_by_verb_resource": {"patch": {"replicasets": 6.0}},
                "admin_requests_per_change_by_method_path": {"GET /deployments": 3.0},
                "wasted_writes": {"bookkeeping_only": ["patch replicasets a/b → 200"]},
            }
        ],
        "idle": {"window_s": 60.0, "kube_requests_per_minute_of_the_rsds": 0.0},
    }
    text = "\n".join(report.deployments_markdown(rsd))
    assert "| v1 → v2 | 0.5 / 0.9 / 0.9 | 0.5 / 0.9 / 0.9 | 0.5 / 0.9 / 0.9 | 24 | 11 |" in text
    assert "v1 → v2: bookkeeping_only: patch replicasets a/b → 200" in text
    assert "patch replicasets 6" in text
