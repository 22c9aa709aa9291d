"""The executor's RestateDeployment effects: Restate's admin API (over a mock transport) and
the finalizer's JSON patch (on the fake API server)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import httpx

from restate_op.deployment_observe import KnownDeployment, RestateView
from restate_op.effects import (
    DeregisterDeployment,
    QueryRestate,
    RegisterDeployment,
    RemoveFinalizer,
)
from restate_op.executor import Executor
from restate_op.kube.events import EventRecorder
from restate_op.memory import Memory
from restate_op.outcomes import PermanentError, TemporaryError
from restate_op.restate_admin import LATEST_SQL, PINNED_SQL
from tests.kube.fakeapi import Recorder, fake_client, json_response, status

ADMIN = "http://admin.test:9070/prefix"
KEY = ("restate-view", ADMIN)


def no_kube(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected Kubernetes request {request.method} {request.url}")


def executor(
    admin: Any, kube: Any = no_kube, clock: float = 1000.0
) -> tuple[Executor, list[httpx.Request], Recorder, Memory]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return cast(httpx.Response, admin(request))

    client, rec = fake_client(cast(Any, kube))
    recorder = EventRecorder(client, reporting_controller="test", reporting_instance="test-0")
    memory = Memory()
    http = httpx.AsyncClient(transport=httpx.MockTransport(record))
    ex = Executor(client, recorder, memory, admin=http, clock=lambda: clock)
    return ex, seen, rec, memory


REGISTER = RegisterDeployment(ADMIN, "http://v1.ns.svc.cluster.local:9080", "app-v1", force=True)


async def test_register_posts_below_the_admin_path_with_explicit_force() -> None:
    ex, seen, _, _ = executor(lambda r: json_response(201, {"id": "dp_1", "services": []}))
    outcome = await ex.run([REGISTER])
    assert outcome.error is None
    [request] = seen
    assert (request.method, str(request.url)) == ("POST", f"{ADMIN}/deployments")
    assert json.loads(request.content) == {
        "uri": "http://v1.ns.svc.cluster.local:9080",
        "use_http_11": False,
        "force": True,
    }
    [result] = outcome.registrations
    assert (result.version, result.accepted, result.deployment_id) == ("app-v1", True, "dp_1")


async def test_a_4xx_is_a_rejection_with_restates_code_and_text() -> None:
    body = {"message": "breaking change for service Greeter", "restate_code": "META0006"}
    ex, _, _, _ = executor(lambda r: json_response(400, body))
    outcome = await ex.run([REGISTER])
    assert outcome.error is None
    [result] = outcome.registrations
    assert not result.accepted
    assert (result.status, result.code) == (400, "META0006")
    assert result.message == "breaking change for service Greeter"


async def test_a_5xx_or_no_answer_is_a_temporary_error() -> None:
    ex, _, _, _ = executor(lambda r: json_response(503, {"message": "unavailable"}))
    outcome = await ex.run([REGISTER])
    assert isinstance(outcome.error, TemporaryError)
    assert "503" in outcome.error.message and "unavailable" in outcome.error.message
    assert outcome.registrations == []

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    ex, _, _, _ = executor(refuse)
    outcome = await ex.run([REGISTER])
    assert isinstance(outcome.error, TemporaryError)
    assert "ConnectError" in outcome.error.message


async def test_deregister_forces_and_a_404_is_done() -> None:
    effect = DeregisterDeployment(ADMIN, "dp_1", "app-v1")
    ex, seen, _, _ = executor(lambda r: json_response(404, {"message": "not found"}))
    assert (await ex.run([effect])).error is None
    [request] = seen
    assert request.method == "DELETE"
    assert str(request.url) == f"{ADMIN}/deployments/dp_1?force=true"
    ex, _, _, _ = executor(lambda r: httpx.Response(202))
    assert (await ex.run([effect])).error is None
    ex, _, _, _ = executor(lambda r: json_response(500, {"message": "boom"}))
    assert isinstance((await ex.run([effect])).error, TemporaryError)
    ex, _, _, _ = executor(lambda r: json_response(409, {"message": "in use"}))
    assert isinstance((await ex.run([effect])).error, PermanentError)


def restate(request: httpx.Request) -> httpx.Response:
    if request.method == "GET" and request.url.path == "/prefix/deployments":
        return json_response(
            200,
            {
                "deployments": [
                    {"id": "dp_1", "uri": "http://v1/", "services": [{"name": "Greeter"}]},
                    {
                        "id": "dp_2",
                        "uri": "http://v2/",
                        "services": [{"name": "Greeter"}, {"name": "Counter"}],
                    },
                    {"id": "dp_3", "arn": "arn:aws:lambda:x", "services": []},
                ]
            },
        )
    assert (request.method, request.url.path) == ("POST", "/prefix/query")
    assert request.headers["accept"] == "application/json"
    query = json.loads(request.content)["query"]
    rows: list[dict[str, Any]]
    if query == LATEST_SQL:
        rows = [
            {"name": "Greeter", "deployment_id": "dp_2"},
            {"name": "Counter", "deployment_id": "dp_2"},
        ]
    else:
        assert query == PINNED_SQL
        rows = [{"deployment_id": "dp_1", "pinned": 2}]
    return json_response(200, {"rows": rows})


async def test_the_query_becomes_the_view_in_memory() -> None:
    ex, seen, _, memory = executor(restate, clock=1234.0)
    assert (await ex.run([QueryRestate(ADMIN, KEY)])).error is None
    assert len(seen) == 3
    view = memory.get(KEY)
    assert view == RestateView(
        admin_url=ADMIN,
        read_at=1234.0,
        deployments=(
            KnownDeployment("dp_1", "http://v1/", ("Greeter",), (), 2),
            KnownDeployment(
                "dp_2", "http://v2/", ("Greeter", "Counter"), ("Counter", "Greeter"), 0
            ),
            KnownDeployment("dp_3", "arn:aws:lambda:x", (), (), 0),
        ),
    )
    assert view.by_uri("http://v1").id == "dp_1"


async def test_a_failed_query_is_a_view_with_an_error_not_a_failure() -> None:
    ex, _, _, memory = executor(lambda r: json_response(500, {"message": "no leader"}))
    outcome = await ex.run([QueryRestate(ADMIN, KEY)])
    assert outcome.error is None
    view = memory.get(KEY)
    assert view.deployments == () and view.error is not None and "no leader" in view.error
    ex, _, _, memory = executor(lambda r: json_response(200, {"unexpected": True}))
    await ex.run([QueryRestate(ADMIN, KEY)])
    assert memory.get(KEY).error is not None


RSD = {
    "apiVersion": "restate.dev/v1beta1",
    "kind": "RestateDeployment",
    "metadata": {
        "name": "app",
        "namespace": "ns",
        "uid": "uid-1",
        "finalizers": ["other.example/keep", "deployments.restate.dev"],
    },
}
RELEASE = RemoveFinalizer(
    "restate.dev/v1beta1", "RestateDeployment", "ns", "app", "uid-1", "deployments.restate.dev"
)


async def test_remove_finalizer_is_a_json_patch_tested_against_the_uid() -> None:
    def kube(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return json_response(200, RSD)
        return json_response(200, RSD)

    ex, _, rec, _ = executor(lambda r: None, kube)
    assert (await ex.run([RELEASE])).error is None
    get, patch = rec.requests
    assert get.url.path == "/apis/restate.dev/v1beta1/namespaces/ns/restatedeployments/app"
    assert patch.method == "PATCH"
    assert patch.headers["content-type"] == "application/json-patch+json"
    assert json.loads(patch.content) == [
        {"op": "test", "path": "/metadata/uid", "value": "uid-1"},
        {"op": "test", "path": "/metadata/finalizers/1", "value": "deployments.restate.dev"},
        {"op": "remove", "path": "/metadata/finalizers/1"},
    ]


async def test_remove_finalizer_skips_a_namesake_and_retries_a_failed_test() -> None:
    other = {**RSD, "metadata": {**RSD["metadata"], "uid": "uid-2"}}  # type: ignore[dict-item]
    ex, _, rec, _ = executor(lambda r: None, lambda r: json_response(200, other))
    assert (await ex.run([RELEASE])).error is None
    assert [r.method for r in rec.requests] == ["GET"]

    def changed(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return json_response(200, RSD)
        return status(422, "Invalid", "the test operation failed")

    ex, _, _, _ = executor(lambda r: None, changed)
    assert isinstance((await ex.run([RELEASE])).error, TemporaryError)

    ex, _, rec, _ = executor(lambda r: None, lambda r: status(404, "NotFound"))
    assert (await ex.run([RELEASE])).error is None


async def test_a_token_is_sent_as_bearer_on_every_admin_request_and_only_then() -> None:
    """Restate Cloud's admin API (register.cloud): register, deregister and the view."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/deployments"):
            return json_response(201, {"id": "dp_1"})
        if request.method == "DELETE":
            return json_response(202, {})
        if request.url.path.endswith("/query"):
            return json_response(200, {"rows": []})
        return json_response(200, {"deployments": []})

    ex, seen, _, memory = executor(answer)
    token = "tok"
    outcome = await ex.run(
        [
            RegisterDeployment(ADMIN, "https://tunnel/x", "app-v1", token=token),
            DeregisterDeployment(ADMIN, "dp_0", "app-v0", token),
            QueryRestate(ADMIN, KEY, token),
        ]
    )
    assert outcome.error is None
    assert len(seen) == 5  # POST, DELETE, GET /deployments, two SQL queries
    assert all(r.headers.get("Authorization") == "Bearer tok" for r in seen)
    assert isinstance(memory.get(KEY), RestateView) and memory.get(KEY).ok
    seen.clear()
    await ex.run([REGISTER])
    assert "Authorization" not in seen[0].headers


def _view_answers(request: httpx.Request) -> httpx.Response:
    if request.method == "GET":
        return json_response(200, {"deployments": []})
    return json_response(200, {"rows": []})


async def test_reads_of_one_restate_falling_due_together_share_one_answer() -> None:
    """Twenty RestateDeployments of one Restate that saw the same old view ask for a fresh
    one at once: one read serves them all (the idle refresh read it nine times)."""
    ex, seen, _, memory = executor(_view_answers)
    memory.put(KEY, RestateView(admin_url=ADMIN, read_at=900.0))
    effects = [QueryRestate(ADMIN, KEY, unless_read_after=900.0) for _ in range(20)]
    await asyncio.gather(*(ex.run([e]) for e in effects))
    assert len(seen) == 3, [f"{r.method} {r.url}" for r in seen]  # one view: three requests
    assert memory.get(KEY).read_at == 1000.0


async def test_a_read_after_a_registration_is_never_skipped() -> None:
    ex, seen, _, memory = executor(_view_answers)
    memory.put(KEY, RestateView(admin_url=ADMIN, read_at=999.0))
    await ex.run([QueryRestate(ADMIN, KEY, unless_read_after=None)])
    assert len(seen) == 3
    seen.clear()
    # An answer older than what the decision saw is read again, too.
    await ex.run([QueryRestate(ADMIN, KEY, unless_read_after=1000.0)])
    assert len(seen) == 3
