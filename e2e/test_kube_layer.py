"""restate_op.kube against a real API server: apply, delete preconditions, list+watch,
410 Gone, bookmarks, the informer, leader election, Events and discovery."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from e2e.harness import KubeCluster, eventually
from restate_op.kube.client import KubeClient, LabelSelector, Obj, WatchEventType
from restate_op.kube.errors import AlreadyExists, Conflict, Gone, KubeError
from restate_op.kube.events import EventRecorder
from restate_op.kube.informer import EventType, Informer, strip_managed_fields
from restate_op.kube.lease import LeaderElector
from restate_op.kube.resources import (
    CONFIG_MAP,
    CORE_EVENT,
    CUSTOM_RESOURCE_DEFINITION,
    EVENT,
    LEASE,
    NAMESPACE,
    STATEFUL_SET,
    Kind,
)

MANAGER = "restate-operator-e2e"


@pytest.fixture
async def client(kube: KubeCluster) -> KubeClient:
    return await KubeClient.connect(str(kube.kubeconfig), user_agent="restate-op-e2e")


def config_map(namespace: str, name: str, **data: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": {"e2e": "kube-layer"}},
        "data": dict(data),
    }


def requests_total(verb: str, kind: str) -> float:
    value = REGISTRY.get_sample_value(
        "restate_operator_api_requests_total", {"verb": verb, "kind": kind}
    )
    return value or 0.0


def widget_crd(group: str) -> Obj:
    """A cluster-scoped custom kind with a status subresource, like RestateCluster."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Cluster",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


async def install_widgets(client: KubeClient, group: str) -> Kind:
    """Install the Widget CRD and wait until Widgets can be written."""
    kind = Kind(f"{group}/v1", "Widget", "widgets", namespaced=False)
    await client.apply(widget_crd(group), MANAGER)

    async def writable() -> bool:
        await client.list(kind)
        return True

    await eventually(writable, within=30, what=f"the Widget CRD of {group} to be served")
    return kind


def widget(kind: Kind, name: str, **spec: Any) -> Obj:
    return {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": {"name": name, "labels": {"e2e": "kube-layer"}},
        "spec": dict(spec),
    }


@pytest.fixture
async def widgets(client: KubeClient, name_prefix: str) -> AsyncIterator[Kind]:
    """A fresh cluster-scoped custom kind. Its watch cache starts now, so a watch from an
    old resourceVersion really gets 410 Gone from the API server."""
    group = f"{name_prefix}.e2e.restate.dev"
    kind = await install_widgets(client, group)
    try:
        yield kind
    finally:
        await client.delete(CUSTOM_RESOURCE_DEFINITION, f"widgets.{group}")


# -- apply, create, delete ------------------------------------------------------------------


async def test_server_side_apply_is_idempotent(client: KubeClient, namespace: str) -> None:
    before = requests_total("apply", "ConfigMap")
    first = await client.apply(config_map(namespace, "cm", a="1"), MANAGER)
    again = await client.apply(config_map(namespace, "cm", a="1"), MANAGER)
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    changed = await client.apply(config_map(namespace, "cm", a="2"), MANAGER)
    assert changed["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    assert changed["data"] == {"a": "2"}
    managers = {f["manager"] for f in changed["metadata"]["managedFields"]}
    assert MANAGER in managers
    assert requests_total("apply", "ConfigMap") == before + 3

    # Fields this manager stops sending are removed; another manager's fields are kept.
    await client.patch_merge(CONFIG_MAP, "cm", namespace, {"data": {"other": "x"}})
    pruned = await client.apply(config_map(namespace, "cm", b="3"), MANAGER)
    assert pruned["data"] == {"b": "3", "other": "x"}

    fetched = await client.get(CONFIG_MAP, "cm", namespace)
    assert fetched is not None
    assert fetched["metadata"]["uid"] == first["metadata"]["uid"]
    assert await client.get(CONFIG_MAP, "missing", namespace) is None


async def test_apply_conflict_without_force(client: KubeClient, namespace: str) -> None:
    await client.apply(config_map(namespace, "owned", a="1"), "someone-else")
    with pytest.raises(Conflict) as caught:
        await client.apply(config_map(namespace, "owned", a="2"), MANAGER, force=False)
    assert caught.value.transient
    taken = await client.apply(config_map(namespace, "owned", a="2"), MANAGER, force=True)
    assert taken["data"] == {"a": "2"}


async def test_create_and_permanent_errors(client: KubeClient, namespace: str) -> None:
    created = await client.create(config_map(namespace, "made", a="1"))
    assert created["metadata"]["name"] == "made"
    with pytest.raises(AlreadyExists):
        await client.create(config_map(namespace, "made", a="1"))
    with pytest.raises(KubeError) as invalid:
        await client.apply(config_map(namespace, "Not_A_Valid_Name"), MANAGER)
    assert invalid.value.status == 422
    assert not invalid.value.transient
    with pytest.raises(KubeError) as missing_ns:
        await client.apply(config_map(f"{namespace}-nope", "cm"), MANAGER)
    assert missing_ns.value.status == 404


async def test_delete_with_uid_precondition(client: KubeClient, namespace: str) -> None:
    created = await client.apply(config_map(namespace, "victim"), MANAGER)
    with pytest.raises(Conflict):
        await client.delete(
            CONFIG_MAP, "victim", namespace, uid_precondition="00000000-0000-0000-0000-000000000000"
        )
    assert await client.get(CONFIG_MAP, "victim", namespace) is not None
    deleted = await client.delete(
        CONFIG_MAP,
        "victim",
        namespace,
        uid_precondition=created["metadata"]["uid"],
        grace_period_seconds=0,
    )
    assert deleted
    assert await client.get(CONFIG_MAP, "victim", namespace) is None
    assert not await client.delete(CONFIG_MAP, "victim", namespace)


async def test_orphan_delete_keeps_the_pods(client: KubeClient, namespace: str) -> None:
    """The Expanding state's move: delete a StatefulSet, orphaning its pods."""
    sts: Obj = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{"name": "c", "image": "example.invalid/none:1"}],
                    "automountServiceAccountToken": False,
                },
            },
        },
    }
    created = await client.apply(sts, MANAGER)

    async def pod() -> Obj | None:
        return await client.get(Kind("v1", "Pod", "pods", True), "web-0", namespace)

    await eventually(pod, within=60, what="pod web-0")
    assert await client.delete(
        STATEFUL_SET,
        "web",
        namespace,
        propagation_policy="Orphan",
        uid_precondition=created["metadata"]["uid"],
    )

    async def orphaned() -> bool:
        found = await pod()
        return found is not None and not found["metadata"].get("ownerReferences")

    await eventually(orphaned, within=30, what="pod web-0 orphaned")


# -- list and watch ---------------------------------------------------------------------------


async def collect(
    stream: AsyncGenerator[tuple[WatchEventType, Obj], None],
    until: Any,
    within: float,
) -> list[tuple[WatchEventType, Obj]]:
    events: list[tuple[WatchEventType, Obj]] = []
    async with contextlib.aclosing(stream):
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                async for event in stream:
                    events.append(event)
                    if until(events):
                        break
    return events


async def test_list_then_watch_from_its_version(client: KubeClient, namespace: str) -> None:
    await client.apply(config_map(namespace, "a", v="1"), MANAGER)
    await client.apply(config_map(namespace, "b", v="1"), MANAGER)
    items, version = await client.list(CONFIG_MAP, namespace, {"e2e": "kube-layer"}, page_size=1)
    assert sorted(i["metadata"]["name"] for i in items) == ["a", "b"]
    assert all(i["kind"] == "ConfigMap" for i in items)
    assert version

    stream = client.watch(CONFIG_MAP, namespace, "e2e=kube-layer", version, timeout_seconds=30)

    async def change() -> None:
        await asyncio.sleep(0.3)
        await client.apply(config_map(namespace, "c", v="1"), MANAGER)
        await client.apply(config_map(namespace, "a", v="2"), MANAGER)
        await client.delete(CONFIG_MAP, "b", namespace)

    changer = asyncio.create_task(change())
    events = await collect(
        stream, lambda seen: len([e for e in seen if e[0] != "BOOKMARK"]) >= 3, within=20
    )
    await changer
    changes = [(t, o["metadata"]["name"]) for t, o in events if t != "BOOKMARK"]
    assert changes == [("ADDED", "c"), ("MODIFIED", "a"), ("DELETED", "b")]


async def test_expired_resource_version_is_gone(client: KubeClient, widgets: Kind) -> None:
    await client.apply(widget(widgets, "x", v="1"), MANAGER, kind=widgets)
    with pytest.raises(Gone) as caught:
        await collect(client.watch(widgets, resource_version="1"), bool, within=10)
    assert caught.value.status == 410
    assert not caught.value.transient


async def test_watch_ends_at_its_timeout_with_a_bookmark(
    client: KubeClient, namespace: str
) -> None:
    """Changes elsewhere move the resourceVersion; bookmarks carry it to a quiet watch."""
    _, version = await client.list(CONFIG_MAP, namespace)

    async def change_elsewhere() -> None:
        await asyncio.sleep(0.5)
        await client.apply(config_map("default", f"{namespace}-tick", t="1"), MANAGER)

    ticker = asyncio.create_task(change_elsewhere())
    start = time.monotonic()
    try:
        events = await collect(
            client.watch(CONFIG_MAP, namespace, resource_version=version, timeout_seconds=4),
            lambda seen: False,
            within=30,
        )
    finally:
        await ticker
        await client.delete(CONFIG_MAP, f"{namespace}-tick", "default")
    elapsed = time.monotonic() - start
    assert 3 <= elapsed < 15, elapsed  # the server closed the stream, not our timeout
    assert events, "expected a bookmark"
    assert {t for t, _ in events} == {"BOOKMARK"}
    assert int(events[-1][1]["metadata"]["resourceVersion"]) > int(version)


# -- informer -----------------------------------------------------------------------------------


class StaleOnDemand(KubeClient):
    """A real client whose next watch can be made to start from an ancient resourceVersion,
    as if the informer had been disconnected while etcd compacted its history."""

    def __init__(self, inner: KubeClient) -> None:
        super().__init__(inner._api, user_agent=inner._user_agent)
        self.paused = asyncio.Event()
        self.paused.set()
        self.go_stale = False

    async def watch(
        self,
        kind: Kind,
        namespace: str | None = None,
        label_selector: LabelSelector | None = None,
        resource_version: str | None = None,
        timeout_seconds: int = 300,
        *,
        allow_bookmarks: bool = True,
    ) -> AsyncGenerator[tuple[WatchEventType, Obj], None]:
        await self.paused.wait()
        if self.go_stale:
            self.go_stale = False
            resource_version = "1"
        async for event in super().watch(
            kind,
            namespace,
            label_selector,
            resource_version,
            timeout_seconds,
            allow_bookmarks=allow_bookmarks,
        ):
            yield event


@contextlib.asynccontextmanager
async def running(informer: Informer) -> AsyncIterator[Informer]:
    informer.start()
    try:
        await asyncio.wait_for(informer.wait_synced(), 30)
        yield informer
    finally:
        await informer.stop()


async def test_informer_follows_changes_and_relists_on_gone(
    client: KubeClient, widgets: Kind
) -> None:
    async def put(name: str, v: str) -> None:
        await client.apply(widget(widgets, name, v=v), MANAGER, kind=widgets)

    await put("keep", "1")
    await put("change", "1")
    await put("vanish", "1")
    stale = StaleOnDemand(client)
    informer = Informer(
        stale,
        widgets,
        label_selector={"e2e": "kube-layer"},
        transform=strip_managed_fields,
        watch_timeout=2,
        min_interval=0.2,
    )
    seen: list[tuple[EventType, str, str]] = []
    informer.add_handler(lambda e, o: seen.append((e, o["metadata"]["name"], o["spec"]["v"])))
    async with running(informer):
        assert sorted(seen) == [
            ("ADDED", "change", "1"),
            ("ADDED", "keep", "1"),
            ("ADDED", "vanish", "1"),
        ]
        keep = informer.get(None, "keep")
        assert keep is not None and "managedFields" not in keep["metadata"]
        seen.clear()

        # Live changes arrive as watch events.
        await put("live", "1")

        async def has_live() -> bool:
            return ("ADDED", "live", "1") in seen

        await eventually(has_live, within=10, what="ADDED live")
        seen.clear()

        # Disconnect the informer (its watch ends within 3 s), change things behind its back,
        # then let it reconnect from an expired resourceVersion: the real server answers
        # 410 Gone and the informer re-lists, synthesising what it missed.
        stale.paused.clear()
        await asyncio.sleep(4)
        lists_before = requests_total("list", "Widget")
        await put("change", "2")
        await client.delete(widgets, "vanish")
        await put("new", "1")
        assert informer.get(None, "vanish") is not None  # not seen yet
        stale.go_stale = True
        stale.paused.set()

        async def relisted() -> bool:
            return informer.get(None, "new") is not None

        await eventually(relisted, within=15, what="re-list after 410")
        assert requests_total("list", "Widget") == lists_before + 1
        assert sorted(seen) == [
            ("ADDED", "new", "1"),
            ("DELETED", "vanish", "1"),
            ("MODIFIED", "change", "2"),
        ]
        assert informer.get(None, "vanish") is None
        assert sorted(o["metadata"]["name"] for o in informer.list()) == [
            "change",
            "keep",
            "live",
            "new",
        ]

        # And it keeps watching afterwards.
        seen.clear()
        await client.delete(widgets, "keep")

        async def deleted() -> bool:
            return ("DELETED", "keep", "1") in seen

        await eventually(deleted, within=10, what="DELETED keep")


async def test_informer_of_cluster_scoped_kind(client: KubeClient, namespace: str) -> None:
    informer = Informer(client, NAMESPACE, label_selector={"e2e.restate.dev/test": "true"})
    async with running(informer):
        assert informer.get(None, namespace) is not None


# -- leader election ------------------------------------------------------------------------------


async def test_lease_acquire_renew_takeover_release(client: KubeClient, namespace: str) -> None:
    timings: dict[str, Any] = {"lease_duration": 3, "renew_deadline": 2, "retry_period": 0.3}
    a = LeaderElector(client, namespace, "leader", "a", **timings)
    b = LeaderElector(client, namespace, "leader", "b", **timings)
    before = requests_total("update", "Lease")

    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    lease = await client.get(LEASE, "leader", namespace)
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == "a"
    assert lease["spec"]["leaseDurationSeconds"] == 3
    renewed = lease["spec"]["renewTime"]
    assert await a.try_acquire_or_renew()
    lease = await client.get(LEASE, "leader", namespace)
    assert lease is not None and lease["spec"]["renewTime"] > renewed
    assert requests_total("update", "Lease") >= before + 1

    # a stops renewing (crashed): b takes over once the lease expires.
    start = time.monotonic()

    async def b_takes_over() -> bool:
        return await b.try_acquire_or_renew()

    await eventually(b_takes_over, within=15, what="b to take over", interval=0.3)
    assert time.monotonic() - start >= 2.0
    lease = await client.get(LEASE, "leader", namespace)
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == "b"
    assert lease["spec"]["leaseTransitions"] == 1


async def test_two_running_electors_hand_over_on_release(
    client: KubeClient, namespace: str
) -> None:
    timings: dict[str, Any] = {"lease_duration": 4, "renew_deadline": 3, "retry_period": 0.3}
    a = LeaderElector(client, namespace, "handover", "a", **timings)
    b = LeaderElector(client, namespace, "handover", "b", **timings)
    leading: list[str] = []
    stopped: list[str] = []

    def work(name: str) -> Any:
        async def lead() -> None:
            leading.append(name)
            await asyncio.Event().wait()

        return lead

    task_a = asyncio.create_task(a.run(work("a"), lambda: stopped.append("a")))

    async def a_leads() -> bool:
        return a.is_leader

    await eventually(a_leads, within=10, what="a to lead")
    task_b = asyncio.create_task(b.run(work("b"), lambda: stopped.append("b")))
    await asyncio.sleep(5)  # longer than the lease: a keeps renewing, b stays standby
    assert leading == ["a"]
    assert not b.is_leader

    released_at = time.monotonic()
    task_a.cancel()  # graceful shutdown: release
    with contextlib.suppress(asyncio.CancelledError):
        await task_a
    assert stopped == ["a"]

    async def b_leads() -> bool:
        return b.is_leader

    await eventually(b_leads, within=10, what="b to lead", interval=0.05)
    assert time.monotonic() - released_at < 2.0  # no wait for expiry
    assert leading == ["a", "b"]
    task_b.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task_b
    lease = await client.get(LEASE, "handover", namespace)
    assert lease is not None and lease["spec"].get("holderIdentity", "") == ""


# -- events ------------------------------------------------------------------------------------


async def test_events_are_visible_with_series(
    client: KubeClient, kube: KubeCluster, namespace: str, widgets: Kind
) -> None:
    recorder = EventRecorder(client, reporting_instance="e2e-0")
    cm = await client.apply(config_map(namespace, "subject"), MANAGER)
    cluster_scoped = await client.apply(widget(widgets, "subject", v="1"), MANAGER, kind=widgets)

    await recorder.emit(cm, "Normal", "Configured", "Apply", "configured the map")
    for _ in range(3):
        await recorder.emit(cluster_scoped, "Warning", "StillBroken", "Reconcile", "it is sad")

    # The namespaced object's event lives next to it; the core/v1 view is derived.
    core, _ = await client.list(CORE_EVENT, namespace, field_selector="involvedObject.name=subject")
    assert [e["reason"] for e in core] == ["Configured"]
    assert core[0]["involvedObject"]["uid"] == cm["metadata"]["uid"]
    assert core[0]["involvedObject"]["kind"] == "ConfigMap"

    # The cluster-scoped object's event lives in `default`, one Event with a series.
    core, _ = await client.list(CORE_EVENT, "default", field_selector="involvedObject.kind=Widget")
    assert [e["reason"] for e in core] == ["StillBroken"]
    assert core[0]["involvedObject"]["uid"] == cluster_scoped["metadata"]["uid"]
    assert "namespace" not in core[0]["involvedObject"]
    event = await client.get(EVENT, core[0]["metadata"]["name"], "default")
    assert event is not None
    assert event["series"]["count"] == 3
    assert event["regarding"]["name"] == "subject"
    assert event["reportingController"] == "restate-operator"
    assert event["reportingInstance"] == "e2e-0"

    # kubectl describe finds both.
    if kube.kubectl_bin is not None:
        described = await kube.kubectl("describe", "configmap", "subject", "-n", namespace)
        assert "Configured" in described.stdout
        described = await kube.kubectl("describe", f"widgets.{widgets.group}", "subject")
        assert "StillBroken" in described.stdout
        assert "it is sad" in described.stdout

    # Failures never reach the caller.
    await recorder.emit(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "nope"}},
        "Normal",
        "R",
        "A",
        "dropped",
    )


# -- discovery and custom resources ----------------------------------------------------------------


async def test_discovery_and_an_optional_crd(client: KubeClient, name_prefix: str) -> None:
    assert {"v1", "apps/v1", "coordination.k8s.io/v1"} <= await client.api_groups()
    assert await client.has_kind(LEASE)
    assert await client.has_kind(EVENT)
    assert not await client.has_api("eks.services.k8s.aws/v1alpha1", "podidentityassociations")

    group = f"{name_prefix}.e2e.restate.dev"
    kind = Kind(f"{group}/v1", "Widget", "widgets", namespaced=False)
    assert not await client.has_kind(kind)
    await install_widgets(client, group)
    try:
        # Discovery follows a new CRD a moment after it is served (seen under load in CI):
        # the operator's discovery loop polls too.
        await eventually(lambda: client.has_kind(kind), within=30, what="Widget in discovery")

        async def listed() -> bool:
            return f"{group}/v1" in await client.api_groups()

        await eventually(listed, within=30, what=f"{group}/v1 among the API groups")
        manifest = widget(kind, "w", size=1)
        await client.apply(manifest, MANAGER, kind=kind)
        status = await client.apply_status(
            {**manifest, "status": {"phase": "Ready"}}, MANAGER, kind=kind
        )
        assert status["status"] == {"phase": "Ready"}
        assert status["spec"] == {"size": 1}
        again = await client.apply_status(
            {**manifest, "status": {"phase": "Ready"}}, MANAGER, kind=kind
        )
        assert again["metadata"]["resourceVersion"] == status["metadata"]["resourceVersion"]
    finally:
        await client.delete(CUSTOM_RESOURCE_DEFINITION, f"widgets.{group}")
