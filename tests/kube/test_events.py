"""Event construction and series bookkeeping against a fake client."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

import pytest

from restate_op.kube.client import KubeClient, Obj
from restate_op.kube.errors import ApiUnreachable, NotFound
from restate_op.kube.events import NOTE_LIMIT, EventRecorder, object_reference, truncate_bytes
from restate_op.kube.resources import EVENT, Kind

MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")

CLUSTER = {
    "apiVersion": "restate.dev/v1",
    "kind": "RestateCluster",
    "metadata": {"name": "demo", "uid": "uid-1", "resourceVersion": "42", "generation": 3},
    "spec": {},
}
STS = {
    "apiVersion": "apps/v1",
    "kind": "StatefulSet",
    "metadata": {"name": "restate", "namespace": "demo", "uid": "uid-2"},
}


class FakeEvents:
    def __init__(self) -> None:
        self.created: list[Obj] = []
        self.patches: list[tuple[str, str | None, Mapping[str, Any]]] = []
        self.fail_create: Exception | None = None
        self.fail_patch: Exception | None = None

    async def create(self, manifest: Mapping[str, Any], *, kind: Kind | None = None) -> Obj:
        assert kind is EVENT
        if self.fail_create:
            raise self.fail_create
        self.created.append(dict(manifest))
        return dict(manifest)

    async def patch_merge(
        self,
        kind: Kind,
        name: str,
        namespace: str | None,
        patch: Mapping[str, Any],
        subresource: str | None = None,
    ) -> Obj:
        assert kind is EVENT
        if self.fail_patch:
            raise self.fail_patch
        self.patches.append((name, namespace, patch))
        return {}


def recorder(fake: FakeEvents, **kwargs: Any) -> EventRecorder:
    return EventRecorder(cast(KubeClient, fake), reporting_instance="op-0", **kwargs)


async def test_event_about_a_cluster_scoped_object() -> None:
    fake = FakeEvents()
    await recorder(fake).emit(CLUSTER, "Normal", "Provisioning", "PendingToProvisioning", "go")
    [event] = fake.created
    assert event["apiVersion"] == "events.k8s.io/v1"
    assert event["kind"] == "Event"
    assert event["metadata"]["namespace"] == "default"
    assert event["metadata"]["name"].startswith("demo.")
    assert DNS_SUBDOMAIN.match(event["metadata"]["name"])
    assert MICRO_TIME.match(event["eventTime"])
    assert event["regarding"] == {
        "apiVersion": "restate.dev/v1",
        "kind": "RestateCluster",
        "name": "demo",
        "uid": "uid-1",
        "resourceVersion": "42",
    }
    assert event["reportingController"] == "restate-operator"
    assert event["reportingInstance"] == "op-0"
    assert (event["type"], event["reason"], event["action"], event["note"]) == (
        "Normal",
        "Provisioning",
        "PendingToProvisioning",
        "go",
    )
    assert "series" not in event
    for legacy in ("count", "firstTimestamp", "lastTimestamp", "source"):
        assert legacy not in event


async def test_event_about_a_namespaced_object_lives_in_its_namespace() -> None:
    fake = FakeEvents()
    await recorder(fake).emit(STS, "Warning", "Orphaned", "Recreate", "n", related=CLUSTER)
    [event] = fake.created
    assert event["metadata"]["namespace"] == "demo"
    assert event["regarding"]["namespace"] == "demo"
    assert event["related"]["name"] == "demo"


def test_operator_namespace_falls_back_to_default(caplog: pytest.LogCaptureFixture) -> None:
    rec = recorder(FakeEvents(), namespace="restate-operator")
    assert rec.namespace == "default"
    assert "default" in caplog.text
    assert recorder(FakeEvents(), namespace="kube-system").namespace == "kube-system"


async def test_repeats_become_a_series() -> None:
    fake = FakeEvents()
    rec = recorder(fake)
    for _ in range(3):
        await rec.emit(CLUSTER, "Warning", "ApiError", "Reconcile", "API down")
    assert len(fake.created) == 1
    name = fake.created[0]["metadata"]["name"]
    assert [p[0] for p in fake.patches] == [name, name]
    assert [p[2]["series"]["count"] for p in fake.patches] == [2, 3]
    assert all(MICRO_TIME.match(p[2]["series"]["lastObservedTime"]) for p in fake.patches)
    assert fake.patches[0][1] == "default"
    assert rec.series_count(CLUSTER, "Warning", "ApiError", "Reconcile", "API down") == 3


async def test_different_note_reason_or_object_is_a_new_event() -> None:
    fake = FakeEvents()
    rec = recorder(fake)
    await rec.emit(CLUSTER, "Warning", "ApiError", "Reconcile", "one")
    await rec.emit(CLUSTER, "Warning", "ApiError", "Reconcile", "two")
    await rec.emit(CLUSTER, "Warning", "Other", "Reconcile", "one")
    other = {**CLUSTER, "metadata": {**CLUSTER["metadata"], "name": "x", "uid": "uid-9"}}  # type: ignore[dict-item]
    await rec.emit(other, "Warning", "ApiError", "Reconcile", "one")
    assert len(fake.created) == 4
    assert fake.patches == []


async def test_series_window_expires() -> None:
    fake = FakeEvents()
    rec = recorder(fake, series_window=0.0)
    await rec.emit(CLUSTER, "Normal", "R", "A", "n")
    await rec.emit(CLUSTER, "Normal", "R", "A", "n")
    assert len(fake.created) == 2
    assert fake.patches == []


async def test_series_memory_is_bounded() -> None:
    fake = FakeEvents()
    rec = recorder(fake, max_series=3)
    for i in range(10):
        await rec.emit(CLUSTER, "Normal", "R", "A", f"note {i}")
    assert len(rec._series) == 3
    await rec.emit(CLUSTER, "Normal", "R", "A", "note 9")
    assert len(fake.patches) == 1


async def test_series_of_an_expired_event_starts_over() -> None:
    fake = FakeEvents()
    rec = recorder(fake)
    await rec.emit(CLUSTER, "Normal", "R", "A", "n")
    fake.fail_patch = NotFound("gone", status=404)
    await rec.emit(CLUSTER, "Normal", "R", "A", "n")
    assert len(fake.created) == 2
    fake.fail_patch = None
    await rec.emit(CLUSTER, "Normal", "R", "A", "n")
    assert fake.patches[-1][0] == fake.created[1]["metadata"]["name"]
    assert fake.patches[-1][2]["series"]["count"] == 2


async def test_failures_never_raise(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeEvents()
    rec = recorder(fake)
    fake.fail_create = ApiUnreachable("down")
    await rec.emit(CLUSTER, "Normal", "R", "A", "n")
    assert "dropped" in caplog.text
    fake.fail_create = None
    await rec.emit(CLUSTER, "Normal", "R", "A", "n")
    fake.fail_patch = ApiUnreachable("down")
    await rec.emit(CLUSTER, "Normal", "R", "A", "n")  # patch fails: dropped, series forgotten
    fake.fail_patch = None
    await rec.emit(CLUSTER, "Normal", "R", "A", "n")
    assert len(fake.created) == 2
    await rec.emit({"weird": True}, "Normal", "R", "A", "n")  # malformed object: no raise


async def test_limits_are_enforced() -> None:
    fake = FakeEvents()
    long_name = {**CLUSTER, "metadata": {**CLUSTER["metadata"], "name": "n" * 253}}  # type: ignore[dict-item]
    await recorder(fake).emit(long_name, "Normal", "R" * 300, "A" * 300, "é" * 2000)
    [event] = fake.created
    assert len(event["metadata"]["name"]) <= 253
    assert len(event["reason"]) == 128
    assert len(event["action"]) == 128
    assert len(event["note"].encode()) <= NOTE_LIMIT


def test_helpers() -> None:
    assert truncate_bytes("abc", 10) == "abc"
    cut = truncate_bytes("ü" * 10, 9)
    assert len(cut.encode()) <= 9
    assert cut.endswith("...")
    assert object_reference(STS) == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "restate",
        "namespace": "demo",
        "uid": "uid-2",
    }
