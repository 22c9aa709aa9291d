"""The informer's list+watch loop against a scripted in-memory API (no cluster)."""

from __future__ import annotations

import asyncio
import copy
import itertools
import time
from collections.abc import AsyncGenerator
from typing import Any, cast

import pytest

from restate_op.kube.client import KubeClient, Obj
from restate_op.kube.errors import ApiUnreachable, Gone
from restate_op.kube.informer import EventType, Informer, strip_managed_fields
from restate_op.kube.resources import CONFIG_MAP, Kind

END = object()


class FakeSource:
    """Objects with resourceVersions, an event history that can be compacted, live watches
    that can be ended, and injectable failures."""

    def __init__(self) -> None:
        self.rv = 10
        self.objects: dict[tuple[str, str], Obj] = {}
        self.history: list[tuple[int, str, Obj]] = []
        self.compacted = 0
        self.watchers: list[asyncio.Queue[Any]] = []
        self.calls: list[tuple[str, float, str | None]] = []
        self.down = False
        self.watch_ends_at_once = False

    def put(
        self, name: str, data: str = "", namespace: str = "ns", event: str | None = None
    ) -> Obj:
        self.rv += 1
        key = (namespace, name)
        obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "resourceVersion": str(self.rv),
                "managedFields": [{"manager": "x"}],
            },
            "data": {"v": data},
        }
        etype = event or ("MODIFIED" if key in self.objects else "ADDED")
        self.objects[key] = obj
        self._emit(etype, obj)
        return obj

    def remove(self, name: str, namespace: str = "ns") -> None:
        self.rv += 1
        obj = self.objects.pop((namespace, name))
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._emit("DELETED", obj)

    def _emit(self, etype: str, obj: Obj) -> None:
        self.history.append((self.rv, etype, copy.deepcopy(obj)))
        for queue in self.watchers:
            queue.put_nowait((etype, copy.deepcopy(obj)))

    def bookmark(self) -> None:
        self.rv += 1
        for queue in self.watchers:
            queue.put_nowait(
                ("BOOKMARK", {"kind": "ConfigMap", "metadata": {"resourceVersion": str(self.rv)}})
            )

    def compact(self) -> None:
        self.compacted = self.rv

    def end_watches(self) -> None:
        for queue in self.watchers:
            queue.put_nowait(END)

    def count(self, verb: str) -> int:
        return sum(1 for v, _, _ in self.calls if v == verb)

    async def list(
        self, kind: Kind, namespace: str | None = None, label_selector: Any = None
    ) -> tuple[list[Obj], str]:
        self.calls.append(("list", time.monotonic(), None))
        await asyncio.sleep(0)
        if self.down:
            raise ApiUnreachable("connection refused")
        return [copy.deepcopy(o) for o in self.objects.values()], str(self.rv)

    async def watch(
        self,
        kind: Kind,
        namespace: str | None = None,
        label_selector: Any = None,
        resource_version: str | None = None,
        timeout_seconds: int = 300,
    ) -> AsyncGenerator[tuple[str, Obj], None]:
        self.calls.append(("watch", time.monotonic(), resource_version))
        await asyncio.sleep(0)
        if self.down:
            raise ApiUnreachable("connection refused")
        since = int(resource_version or 0)
        if since < self.compacted:
            raise Gone("too old resource version", status=410, reason="Expired")
        if self.watch_ends_at_once:
            return
        queue: asyncio.Queue[Any] = asyncio.Queue()
        for rv, etype, obj in self.history:
            if rv > since:
                queue.put_nowait((etype, copy.deepcopy(obj)))
        self.watchers.append(queue)
        try:
            while (item := await queue.get()) is not END:
                yield item
        finally:
            self.watchers.remove(queue)


class Recorded:
    def __init__(self) -> None:
        self.events: list[tuple[EventType, str, str]] = []

    def __call__(self, event: EventType, obj: Obj) -> None:
        self.events.append((event, obj["metadata"]["name"], obj.get("data", {}).get("v", "")))

    def take(self) -> list[tuple[EventType, str, str]]:
        events, self.events = self.events, []
        return events


async def settle(condition: Any, within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.005)


def make(source: FakeSource, **kwargs: Any) -> tuple[Informer, Recorded]:
    options: dict[str, Any] = {"min_interval": 0.01, "backoff_initial": 0.01, "backoff_max": 0.05}
    options.update(kwargs)
    informer = Informer(cast(KubeClient, source), CONFIG_MAP, **options)
    recorded = Recorded()
    informer.add_handler(recorded)
    return informer, recorded


async def test_list_then_watch_events() -> None:
    source = FakeSource()
    source.put("a", "1")
    source.put("b", "1")
    informer, seen = make(source, transform=strip_managed_fields)
    informer.start()
    await asyncio.wait_for(informer.wait_synced(), 1)
    assert sorted(seen.take()) == [("ADDED", "a", "1"), ("ADDED", "b", "1")]
    assert informer.resource_version == str(source.rv)
    assert "managedFields" not in informer.get("ns", "a")["metadata"]  # type: ignore[index]
    await settle(lambda: source.watchers)
    assert source.calls[-1] == ("watch", source.calls[-1][1], str(source.rv))

    source.put("c", "1")
    source.put("a", "2")
    source.remove("b")
    await settle(lambda: len(seen.events) == 3)
    assert seen.take() == [("ADDED", "c", "1"), ("MODIFIED", "a", "2"), ("DELETED", "b", "1")]
    assert informer.get("ns", "b") is None
    assert informer.get("ns", "a")["data"] == {"v": "2"}  # type: ignore[index]
    assert sorted(o["metadata"]["name"] for o in informer.list("ns")) == ["a", "c"]
    assert informer.list("other") == []
    assert len(informer) == 2
    assert informer.resource_version == str(source.rv)
    await informer.stop()
    assert not informer.running


async def test_bookmarks_move_the_resource_version_silently() -> None:
    source = FakeSource()
    informer, seen = make(source)
    informer.start()
    await informer.wait_synced()
    await settle(lambda: source.watchers)
    source.bookmark()
    await settle(lambda: informer.resource_version == str(source.rv))
    assert seen.take() == []
    await informer.stop()


async def test_rewatch_from_last_version_when_the_stream_ends() -> None:
    source = FakeSource()
    source.put("a")
    informer, seen = make(source)
    informer.start()
    await informer.wait_synced()
    await settle(lambda: source.watchers)
    source.put("a", "2")
    await settle(lambda: len(seen.events) == 2)
    last = str(source.rv)
    source.end_watches()
    await settle(lambda: source.count("watch") == 2 and source.watchers)
    assert source.calls[-1][2] == last
    assert source.count("list") == 1  # no re-list for a normal end
    source.put("b")
    await settle(lambda: informer.get("ns", "b") is not None)
    await informer.stop()


async def test_gone_relists_and_synthesises_the_difference() -> None:
    source = FakeSource()
    source.put("keep")
    source.put("change", "1")
    source.put("vanish")
    informer, seen = make(source)
    informer.start()
    await informer.wait_synced()
    await settle(lambda: source.watchers)
    seen.take()
    # While the informer is not watching, things change and history is compacted.
    source.watch_ends_at_once = True
    source.end_watches()
    await settle(lambda: source.count("watch") >= 2)
    source.put("change", "2")
    source.remove("vanish")
    source.put("new")
    source.compact()
    source.watch_ends_at_once = False
    await settle(lambda: source.count("list") == 2 and source.watchers)
    assert sorted(seen.take()) == [
        ("ADDED", "new", ""),
        ("DELETED", "vanish", ""),
        ("MODIFIED", "change", "2"),
    ]
    assert informer.resource_version == str(source.rv)
    assert sorted(o["metadata"]["name"] for o in informer.list()) == ["change", "keep", "new"]
    assert sorted(o["metadata"]["name"] for o in informer.list("ns")) == ["change", "keep", "new"]
    await informer.stop()


async def test_outage_relists_with_bounded_request_rate() -> None:
    source = FakeSource()
    source.put("a")
    informer, seen = make(source, min_interval=0.05, backoff_initial=0.02, backoff_max=0.1)
    informer.start()
    await informer.wait_synced()
    await settle(lambda: source.watchers)
    source.down = True
    source.end_watches()
    started = time.monotonic()
    calls_before = len(source.calls)
    await asyncio.sleep(0.6)
    during = len(source.calls) - calls_before
    assert 2 <= during <= 0.6 / 0.05 + 1
    assert isinstance(informer.last_error, ApiUnreachable)
    # Requests never closer together than min_interval.
    times = [t for _, t, _ in source.calls if t >= started]
    assert all(b - a >= 0.045 for a, b in itertools.pairwise(times))
    assert informer.get("ns", "a") is not None  # the cache survives the outage
    source.down = False
    source.put("b")
    await settle(lambda: informer.get("ns", "b") is not None)
    assert informer.last_error is None
    assert ("ADDED", "b", "") in seen.take()
    await informer.stop()


async def test_watch_that_ends_at_once_is_not_a_tight_loop() -> None:
    source = FakeSource()
    source.watch_ends_at_once = True
    informer, _ = make(source, min_interval=0.05)
    informer.start()
    await asyncio.sleep(0.5)
    assert source.count("watch") <= 0.5 / 0.05 + 1
    await informer.stop()


async def test_default_pacing_is_one_request_per_second() -> None:
    source = FakeSource()
    source.down = True
    informer = Informer(cast(KubeClient, source), CONFIG_MAP)
    informer.start()
    await asyncio.sleep(1.5)
    await informer.stop()
    assert source.count("list") <= 2
    assert not informer.synced


async def test_handler_errors_do_not_stop_the_informer() -> None:
    source = FakeSource()
    source.put("a")
    informer, seen = make(source)

    def broken(event: EventType, obj: Obj) -> None:
        raise RuntimeError("bug")

    informer.handlers.insert(0, broken)
    informer.start()
    await informer.wait_synced()
    await settle(lambda: source.watchers)
    source.put("b")
    await settle(lambda: informer.get("ns", "b") is not None)
    assert [e[:2] for e in seen.take()] == [("ADDED", "a"), ("ADDED", "b")]
    await informer.stop()


async def test_add_handler_replays_the_cache() -> None:
    source = FakeSource()
    source.put("a")
    informer, _ = make(source)
    informer.start()
    await informer.wait_synced()
    late = Recorded()
    informer.add_handler(late)
    assert late.take() == [("ADDED", "a", "")]
    await informer.stop()


async def test_namespace_index_follows_events() -> None:
    source = FakeSource()
    source.put("a", namespace="one")
    informer, _ = make(source)
    informer.start()
    await informer.wait_synced()
    await settle(lambda: source.watchers)
    source.put("b", namespace="two")
    source.put("c", namespace="two")
    source.remove("a", namespace="one")
    await settle(lambda: informer.get("one", "a") is None)
    assert informer.list("one") == []
    assert sorted(o["metadata"]["name"] for o in informer.list("two")) == ["b", "c"]
    source.put("b", "2", namespace="two")
    await settle(lambda: informer.get("two", "b")["data"]["v"] == "2")  # type: ignore[index]
    assert {o["data"]["v"] for o in informer.list("two")} == {"2", ""}
    await informer.stop()


async def test_cluster_scoped_keys() -> None:
    source = FakeSource()
    source.put("x", namespace="")
    informer, _ = make(source)
    informer.start()
    await informer.wait_synced()
    assert informer.get(None, "x") is not None
    assert informer.get("", "x") is not None
    assert list(informer.keys()) == [("", "x")]
    await informer.stop()


@pytest.mark.parametrize("stop_twice", [False, True])
async def test_stop_is_idempotent(stop_twice: bool) -> None:
    source = FakeSource()
    informer, _ = make(source)
    informer.start()
    informer.start()  # no second task
    await informer.wait_synced()
    await informer.stop()
    if stop_twice:
        await informer.stop()
    assert not informer.running
