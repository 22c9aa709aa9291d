"""The executor on a fake API: what each effect sends, how failures are classified, and that
a cancellation during any effect stops every later write."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, cast

import httpx
import pytest

from restate_op.effects import (
    Apply,
    Delete,
    Effect,
    Emit,
    Forget,
    OrphanDelete,
    PatchClaimSize,
    Provision,
    ProvisionResult,
    Remember,
    WriteStatus,
)
from restate_op.executor import Executor
from restate_op.kube.client import KubeClient
from restate_op.kube.events import EventRecorder
from restate_op.memory import Memory
from restate_op.outcomes import InternalError, InvalidInput, PermanentError, TemporaryError
from tests.kube.fakeapi import Recorder, fake_client, json_response, status

SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "restate", "namespace": "rc"},
    "spec": {"ports": [{"name": "admin", "port": 9070}]},
}
CONFIG_MAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "restate-config-1", "namespace": "rc"},
}
JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "restate-pia-canary", "namespace": "rc"},
}
RAW = {"apiVersion": "restate.dev/v1", "kind": "RestateCluster", "metadata": {"name": "rc"}}
STATUS = WriteStatus("restate.dev/v1", "RestateCluster", None, "rc", {"phase": "Ready"}, "Ready")

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


class Provisions:
    def __init__(self, result: ProvisionResult) -> None:
        self.result = result
        self.targets: list[str] = []

    async def __call__(self, target: str) -> ProvisionResult:
        self.targets.append(target)
        return self.result


def executor(
    handler: Handler, provision: Provisions | None = None
) -> tuple[Executor, Recorder, Memory]:
    client, rec = fake_client(cast(Any, handler))
    recorder = EventRecorder(client, reporting_controller="test", reporting_instance="test-0")
    memory = Memory()
    provisions = provision or Provisions(ProvisionResult(True, False, "ok"))
    return Executor(client, recorder, memory, provision=provisions), rec, memory


def ok(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content) if request.content else {}
    return json_response(200, body or {"kind": "Status", "status": "Success"})


def calls(rec: Recorder) -> list[tuple[str, str]]:
    return [(r.method, r.url.path) for r in rec.requests]


async def test_apply_is_a_server_side_apply_with_the_field_manager() -> None:
    ex, rec, _ = executor(ok)
    outcome = await ex.run([Apply(SERVICE)])
    assert outcome.error is None
    [request] = rec.requests
    assert request.method == "PATCH"
    assert request.url.path == "/api/v1/namespaces/rc/services/restate"
    assert request.headers["content-type"] == "application/apply-patch+yaml"
    assert request.url.params["fieldManager"] == "restate-operator"


async def test_each_effect_sends_its_request() -> None:
    ex, rec, memory = executor(ok)
    effects: list[Effect] = [
        Delete("v1", "ConfigMap", "rc", "restate-config-0"),
        PatchClaimSize("rc", "storage-restate-0", 4096),
        OrphanDelete("rc", "restate", "uid-1"),
        STATUS,
        Remember(("restatecluster", "rc"), "held"),
    ]
    outcome = await ex.run(effects)
    assert outcome.error is None
    assert calls(rec) == [
        ("DELETE", "/api/v1/namespaces/rc/configmaps/restate-config-0"),
        ("PATCH", "/api/v1/namespaces/rc/persistentvolumeclaims/storage-restate-0"),
        ("DELETE", "/apis/apps/v1/namespaces/rc/statefulsets/restate"),
        ("PATCH", "/apis/restate.dev/v1/restateclusters/rc/status"),
    ]
    orphan = json.loads(rec.requests[2].content)
    assert orphan["propagationPolicy"] == "Orphan"
    assert orphan["preconditions"] == {"uid": "uid-1"}
    assert json.loads(rec.requests[1].content)["spec"]["resources"]["requests"] == {
        "storage": "4096"
    }
    assert memory.get(("restatecluster", "rc")) == "held"
    await ex.run([Forget(("restatecluster", "rc"))])
    assert memory.get(("restatecluster", "rc")) is None


async def test_the_first_failure_stops_the_rest_and_is_classified() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/configmaps/restate-config-1"):
            return status(422, "Invalid", "spec.data: Too long")
        return ok(request)

    ex, rec, _ = executor(handler)
    outcome = await ex.run([Apply(SERVICE), Apply(CONFIG_MAP), STATUS])
    assert isinstance(outcome.error, PermanentError)
    assert outcome.error.reason == "ApplyRejected" and "Too long" in outcome.error.message
    assert [p for _, p in calls(rec)] == [
        "/api/v1/namespaces/rc/services/restate",
        "/api/v1/namespaces/rc/configmaps/restate-config-1",
    ], "no status write after a failed apply"


async def test_transient_errors_are_retried_then_reported_as_temporary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_sleep(_seconds: float) -> None:
        return None

    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    ex, rec, _ = executor(lambda _r: status(503, "ServiceUnavailable"))
    outcome = await ex.run([Apply(SERVICE)])
    assert isinstance(outcome.error, TemporaryError)
    assert outcome.error.reason == "ApiError"
    assert len(rec.requests) == 5, "bounded retries inside the request"


async def test_a_bug_is_an_internal_error() -> None:
    ex, rec, _ = executor(ok)
    broken = Apply({"kind": "Service", "metadata": {}})  # no apiVersion, no name
    outcome = await ex.run([broken, Apply(SERVICE)])
    assert isinstance(outcome.error, InternalError)
    assert outcome.error.error_class.metric_label == "Internal"
    assert rec.requests == []


async def test_a_foreign_object_of_the_same_name_is_a_child_conflict() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            foreign = {**SERVICE, "metadata": {**SERVICE["metadata"], "uid": "x"}}  # type: ignore[dict-item]
            return json_response(200, {"metadata": {"resourceVersion": "1"}, "items": [foreign]})
        return ok(request)

    ex, rec, _ = executor(handler)
    outcome = await ex.run([Apply(SERVICE, refuse_foreign_of="cluster-uid")])
    assert isinstance(outcome.error, PermanentError) and outcome.error.reason == "ChildConflict"
    assert [r.method for r in rec.requests] == ["GET"], "the foreign object is left alone"
    assert rec.requests[0].url.params["fieldSelector"] == "metadata.name=restate"


async def test_an_own_object_of_the_same_name_is_applied() -> None:
    own = {
        **SERVICE,
        "metadata": {
            **SERVICE["metadata"],  # type: ignore[dict-item]
            "ownerReferences": [{"uid": "cluster-uid", "controller": True}],
        },
    }

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return json_response(200, {"metadata": {"resourceVersion": "1"}, "items": [own]})
        return ok(request)

    ex, rec, _ = executor(handler)
    outcome = await ex.run([Apply(SERVICE, refuse_foreign_of="cluster-uid")])
    assert outcome.error is None and [r.method for r in rec.requests] == ["GET", "PATCH"]


async def test_an_immutable_job_is_replaced() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH" and "/jobs/" in request.url.path:
            return status(422, "Invalid", "spec.template: field is immutable")
        return ok(request)

    ex, rec, _ = executor(handler)
    outcome = await ex.run([Apply(JOB, replace_if_immutable=True), STATUS])
    assert outcome.error is None and outcome.requeue_after == 1.0
    assert calls(rec)[:2] == [
        ("PATCH", "/apis/batch/v1/namespaces/rc/jobs/restate-pia-canary"),
        ("DELETE", "/apis/batch/v1/namespaces/rc/jobs/restate-pia-canary"),
    ]


async def test_provision_calls_the_node_and_reports_its_answer() -> None:
    provisions = Provisions(ProvisionResult(True, False, "Provisioned the Restate cluster"))
    ex, rec, _ = executor(ok, provisions)
    effect = Provision("rc", "restate-0.restate-cluster.rc.svc.cluster.local:5122")
    done = await ex.run([effect])
    assert done.provision == provisions.result
    assert provisions.targets == [effect.target]
    assert rec.requests == [], "the pod is read from the cache, not the API"


async def test_emit_sends_an_event() -> None:
    ex, rec, _ = executor(ok)
    await ex.run([Emit(RAW, "Normal", "Ready", "ProvisioningToReady", "ready")])
    [request] = rec.requests
    assert request.method == "POST" and request.url.path.endswith("/events")
    assert json.loads(request.content)["reason"] == "Ready"


@pytest.mark.parametrize("slow", [0, 1, 2])
async def test_a_cancellation_during_any_effect_stops_every_later_write(slow: int) -> None:
    """The Lease is lost while an effect is in flight: nothing after it may reach the API."""
    effects: list[Effect] = [Apply(SERVICE), Apply(CONFIG_MAP), STATUS]
    slow_path = ["/services/restate", "/configmaps/restate-config-1", "/status"][slow]
    entered = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(slow_path):
            entered.set()
            await asyncio.sleep(30)
        return ok(request)

    ex, rec, _ = executor(handler)
    task = asyncio.create_task(ex.run([*effects, Emit(RAW, "Normal", "Ready", "a", "b")]))
    await asyncio.wait_for(entered.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.05)
    assert len(rec.requests) == slow + 1, "no request after the cancelled one"
    assert not any(r.url.path.endswith("/events") for r in rec.requests)


def test_client_type_is_the_real_one() -> None:
    client, _ = fake_client(ok)
    assert isinstance(client, KubeClient)


# -- a child refused for what the user wrote -------------------------------------------------

STATEFULSET = {
    "apiVersion": "apps/v1",
    "kind": "StatefulSet",
    "metadata": {"name": "restate", "namespace": "rc"},
}
TYPED_PATCH = (
    "failed to create typed patch object (rc/restate; apps/v1, Kind=StatefulSet): "
    ".spec.template.spec.affinity.nodeAffinty: field not declared in schema"
)


async def test_a_child_that_does_not_fit_its_schema_is_invalid_input_not_an_outage() -> None:
    """The 500 of a server-side apply whose body has an unknown field: the request's fault,
    so one request (no retries inside it) and no backoff loop; the message names the
    child's field and the spec field it comes from."""
    ex, rec, _ = executor(lambda _r: status(500, "InternalError", TYPED_PATCH))
    outcome = await ex.run([Apply(STATEFULSET), STATUS])
    assert isinstance(outcome.error, InvalidInput) and not outcome.error.retried
    assert outcome.error.reason == "ApplyRejected"
    assert outcome.error.error_class.metric_label == "KubePermanent"
    message = outcome.error.message
    assert "StatefulSet restate at spec.template.spec.affinity.nodeAffinty" in message
    assert "(from spec.compute.affinity.nodeAffinty)" in message
    assert "persisted after retries" not in message
    assert len(rec.requests) == 1, "not retried"


async def test_a_422_names_the_fields_of_its_causes() -> None:
    def invalid(_request: httpx.Request) -> httpx.Response:
        return json_response(
            422,
            {
                "kind": "Status",
                "status": "Failure",
                "reason": "Invalid",
                "code": 422,
                "message": 'StatefulSet.apps "restate" is invalid: ...',
                "details": {
                    "kind": "StatefulSet",
                    "name": "restate",
                    "causes": [
                        {
                            "reason": "FieldValueNotSupported",
                            "field": "spec.template.spec.tolerations[0].operator",
                        },
                        {"reason": "FieldValueInvalid", "field": "spec.template.spec.volumes[3]"},
                    ],
                },
            },
        )

    ex, rec, _ = executor(invalid)
    outcome = await ex.run([Apply(STATEFULSET)])
    assert isinstance(outcome.error, InvalidInput)
    assert (
        "at spec.template.spec.tolerations[0].operator, spec.template.spec.volumes[3] "
        "(from spec.compute.tolerations[0].operator, spec.compute.extraVolumes)"
    ) in outcome.error.message
    assert len(rec.requests) == 1


async def test_other_server_errors_stay_temporary(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_sleep(_seconds: float) -> None:
        return None

    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    ex, rec, _ = executor(lambda _r: status(500, "InternalError", "etcdserver: leader changed"))
    outcome = await ex.run([Apply(STATEFULSET)])
    assert isinstance(outcome.error, TemporaryError)
    assert len(rec.requests) == 5


async def test_a_refused_status_write_is_the_operators_bug_and_stays_retried() -> None:
    """Only children are built from the spec; a 422 on anything else is not the user's."""
    ex, _, _ = executor(lambda _r: status(422, "Invalid", "status.phase: Unsupported value"))
    outcome = await ex.run([STATUS])
    assert isinstance(outcome.error, PermanentError)
    assert not isinstance(outcome.error, InvalidInput) and outcome.error.retried
