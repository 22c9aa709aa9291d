"""The runtime around the pure reconcile: keys, requeues, watch mappings, the whole loop."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Mapping
from typing import Any, cast

import httpx
import pytest

from restate_op.api.models import RestateClusterStatus
from restate_op.cluster_controller import MANAGED_SELECTOR, PVC_SELECTOR, RestateClusterController
from restate_op.coalesce import Held
from restate_op.controller import Result
from restate_op.executor import Executor
from restate_op.kube import resources
from restate_op.kube.client import KubeClient
from restate_op.kube.events import EventRecorder
from restate_op.kube.resources import Kind
from restate_op.memory import Memory
from restate_op.observe import Observation, Unreadable
from restate_op.runtime import Operator, Reconcile
from restate_op.settings import Capabilities, OperatorSettings
from tests.kube.fakeapi import fake_client, json_response
from tests.test_verdicts import UID, cluster


class DictCaches:
    """Informer caches as a dict: (kind, selector) -> objects."""

    def __init__(self) -> None:
        self.objects: dict[tuple[Kind, str | None], list[Mapping[str, Any]]] = {}

    def add(self, kind: Kind, obj: Mapping[str, Any], selector: str | None = None) -> None:
        self.objects.setdefault((kind, selector), []).append(obj)

    def get(self, kind: Kind, namespace: str | None, name: str) -> Mapping[str, Any] | None:
        for (k, _), objs in self.objects.items():
            for obj in objs:
                meta = obj["metadata"]
                if k == kind and meta["name"] == name and meta.get("namespace") == namespace:
                    return obj
        return None

    def list(
        self, kind: Kind, namespace: str | None = None, label_selector: str | None = None
    ) -> list[Mapping[str, Any]]:
        return [
            o
            for o in self.objects.get((kind, label_selector), [])
            if namespace is None or o["metadata"].get("namespace") == namespace
        ]


def controller(caches: DictCaches, memory: Memory | None = None) -> RestateClusterController:
    return RestateClusterController(
        caches, memory or Memory(), OperatorSettings(status_coalesce_seconds=0), Capabilities
    )


# -- observe --------------------------------------------------------------------------------


def test_observe_reads_the_caches_and_the_held_status() -> None:
    caches = DictCaches()
    caches.add(resources.RESTATE_CLUSTER, cluster("Pending"))
    caches.add(
        resources.SERVICE,
        {"kind": "Service", "metadata": {"name": "restate", "namespace": "rc"}},
        MANAGED_SELECTOR,
    )
    caches.add(
        resources.PERSISTENT_VOLUME_CLAIM,
        {"metadata": {"name": "storage-restate-0", "namespace": "rc"}},
        PVC_SELECTOR,
    )
    memory = Memory()
    held = cast(Any, copy.deepcopy(cluster("Provisioning")))["status"]
    status = RestateClusterStatus.model_validate(held)
    memory.put(("restatecluster", "rc"), Held(UID, status, since=5.0))
    obs = controller(caches, memory).observe("rc")
    assert isinstance(obs, Observation)
    assert obs.recorded_status is not None and obs.recorded_status.phase == "Provisioning"
    assert obs.live_status is not None and obs.live_status["phase"] == "Pending"
    assert obs.held_since == 5.0
    assert set(obs.children) == {("Service", "restate")}
    assert len(obs.pvcs) == 1


def test_a_status_held_for_an_older_namesake_is_ignored() -> None:
    caches = DictCaches()
    caches.add(resources.RESTATE_CLUSTER, cluster("Pending"))
    memory = Memory()
    memory.put(
        ("restatecluster", "rc"),
        Held("another-uid", RestateClusterStatus(phase="Provisioning"), since=5.0),
    )
    obs = controller(caches, memory).observe("rc")
    assert isinstance(obs, Observation)
    assert obs.recorded_status is not None and obs.recorded_status.phase == "Pending"
    assert obs.held_since is None


def test_a_deleted_or_terminating_cluster_is_not_observed() -> None:
    caches = DictCaches()
    assert controller(caches).observe("rc") is None
    terminating = cluster("Ready")
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    caches.add(resources.RESTATE_CLUSTER, terminating)
    assert controller(caches).observe("rc") is None


def test_a_spec_the_model_cannot_read_is_observed_as_unreadable() -> None:
    caches = DictCaches()
    raw = cluster("Ready")
    raw["spec"]["compute"]["replicas"] = "three"
    caches.add(resources.RESTATE_CLUSTER, raw)
    assert isinstance(controller(caches).observe("rc"), Unreadable)


# -- watch mappings -------------------------------------------------------------------------


def _keys(watch_kind: Kind, obj: Mapping[str, Any], caches: DictCaches) -> list[str]:
    c = controller(caches)
    [watch] = [w for w in c.watches() if w.kind == watch_kind]
    return list(watch.keys(obj, caches))


def test_storage_class_events_enqueue_every_cluster() -> None:
    caches = DictCaches()
    for name in ("a", "b"):
        raw = cluster()
        raw["metadata"]["name"] = name
        caches.add(resources.RESTATE_CLUSTER, raw)
    assert _keys(resources.STORAGE_CLASS, {"metadata": {"name": "standard"}}, caches) == [
        "a",
        "b",
    ]


def test_child_events_map_to_the_cluster_of_their_namespace_only_if_it_exists() -> None:
    caches = DictCaches()
    caches.add(resources.RESTATE_CLUSTER, cluster())
    child = {"metadata": {"name": "restate", "namespace": "rc"}}
    stray = {"metadata": {"name": "restate", "namespace": "elsewhere"}}
    assert _keys(resources.STATEFUL_SET, child, caches) == ["rc"]
    assert _keys(resources.STATEFUL_SET, stray, caches) == []
    assert _keys(resources.NAMESPACE, {"metadata": {"name": "rc"}}, caches) == ["rc"]
    assert _keys(resources.NAMESPACE, {"metadata": {"name": "kube-system"}}, caches) == []


# -- handle: what follows a reconcile -------------------------------------------------------


def _operator() -> Operator:
    return Operator(cast(KubeClient, object()), OperatorSettings(), identity="test")


class Stub:
    def __init__(self, result: Result | Exception) -> None:
        self.result = result

    async def __call__(self, _key: str) -> Result:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


async def test_a_failed_reconcile_is_requeued_with_backoff() -> None:
    op = _operator()
    op._reconcilers["restatecluster"] = cast(Any, Stub(Result(failed=True)))
    await op.handle(("restatecluster", "rc"))
    await op.handle(("restatecluster", "rc"))
    assert op.queue.num_requeues(("restatecluster", "rc")) == 2
    assert op.queue.waiting == 1 and len(op.queue) == 0


async def test_a_retry_after_is_honoured() -> None:
    op = _operator()
    op._reconcilers["restatecluster"] = cast(Any, Stub(Result(failed=True, retry_after=30)))
    await op.handle(("restatecluster", "rc"))
    deadline, handle = op.queue._waiting[("restatecluster", "rc")]
    assert deadline - asyncio.get_running_loop().time() > 29
    handle.cancel()


async def test_a_successful_reconcile_resets_the_backoff_and_requeues_when_asked() -> None:
    op = _operator()
    key = ("restatecluster", "rc")
    op._reconcilers["restatecluster"] = cast(Any, Stub(Result(failed=True)))
    await op.handle(key)
    op._reconcilers["restatecluster"] = cast(Any, Stub(Result(requeue_after=0)))
    await op.handle(key)
    assert op.queue.num_requeues(key) == 0
    assert len(op.queue) == 1, "requeue_after 0 queues at once"


def test_a_standing_poll_wakes_its_controllers_key_only_while_leading() -> None:
    op = _operator()
    wake = op._reconcilers["restatecluster"].wake
    assert wake is not None
    wake("rc")
    assert len(op.queue) == 0  # a standby (or a lost Lease) reconciles nothing
    op.is_leader = True
    wake("rc")
    assert len(op.queue) == 1


async def test_a_crashing_reconcile_is_counted_and_retried() -> None:
    op = _operator()
    op._reconcilers["restatecluster"] = cast(Any, Stub(RuntimeError("bug")))
    result = await op.handle(("restatecluster", "rc"))
    assert result.failed and op.queue.num_requeues(("restatecluster", "rc")) == 1


# -- the whole loop -------------------------------------------------------------------------


async def test_a_cancelled_reconcile_writes_no_status_and_no_event() -> None:
    """Cancelled inside the decision's effects: the conclusion's writes never go out."""
    entered = asyncio.Event()
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "PATCH" and "/statefulsets/" in request.url.path:
            entered.set()
            await asyncio.sleep(30)
        body = json.loads(request.content) if request.content else {}
        return json_response(200, body)

    client, _ = fake_client(cast(Any, handler))
    caches = DictCaches()
    caches.add(resources.RESTATE_CLUSTER, cluster())
    memory = Memory()
    recorder = EventRecorder(client, reporting_controller="t", reporting_instance="t-0")
    loop = Reconcile(controller(caches, memory), Executor(client, recorder, memory))
    task = asyncio.create_task(loop("rc"))
    await asyncio.wait_for(entered.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.05)
    assert seen[-1].url.path.endswith("/statefulsets/restate")
    assert not any(r.url.path.endswith("/status") for r in seen)
    assert not any(r.url.path.endswith("/events") for r in seen)


async def test_a_new_cluster_reconciles_to_children_status_and_event() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        body = json.loads(request.content) if request.content else {}
        return json_response(200, body)

    client, _ = fake_client(handler)
    caches = DictCaches()
    caches.add(resources.RESTATE_CLUSTER, cluster())
    memory = Memory()
    recorder = EventRecorder(client, reporting_controller="t", reporting_instance="t-0")
    result = await Reconcile(controller(caches, memory), Executor(client, recorder, memory))("rc")
    assert result == Result(requeue_after=None)
    paths = [r.url.path for r in requests]
    assert paths[0] == "/api/v1/namespaces/rc"
    assert paths[-2] == "/apis/restate.dev/v1/restateclusters/rc/status"
    assert paths[-1].endswith("/events")
    status = json.loads(requests[-2].content)["status"]
    assert status["phase"] == "Provisioning"


async def test_a_child_refused_for_the_users_input_is_degraded_and_not_retried() -> None:
    """No backoff loop: the key waits for the next change of the cluster (or the resync)."""
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.method == "PATCH" and request.url.path.endswith("/statefulsets/restate"):
            return json_response(
                500,
                {
                    "kind": "Status",
                    "status": "Failure",
                    "reason": "InternalError",
                    "code": 500,
                    "message": "failed to create typed patch object (rc/restate; apps/v1, "
                    "Kind=StatefulSet): .spec.template.spec.affinity.nodeAffinty: field not "
                    "declared in schema",
                },
            )
        body = json.loads(request.content) if request.content else {}
        return json_response(200, body)

    client, _ = fake_client(handler)
    caches = DictCaches()
    caches.add(resources.RESTATE_CLUSTER, cluster())
    memory = Memory()
    recorder = EventRecorder(client, reporting_controller="t", reporting_instance="t-0")
    result = await Reconcile(controller(caches, memory), Executor(client, recorder, memory))("rc")
    assert result == Result(), "not failed: no backoff requeue"
    assert sum(r.url.path.endswith("/statefulsets/restate") for r in requests) == 1
    (write,) = [r for r in requests if r.url.path.endswith("/status")]
    status = json.loads(write.content)["status"]
    assert status["phase"] == "Degraded"
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "ApplyRejected"
    assert "spec.compute.affinity.nodeAffinty" in degraded["message"]
