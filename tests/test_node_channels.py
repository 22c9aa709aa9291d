"""The health reads' channel pool: one channel per address, reused; dropped when nothing
holds its address, when idle, when full, when its node was unreachable; all closed at stop.

Fake channels for the pool's bookkeeping; the bench's stand-in node (a real gRPC server on
a unix socket) for the reads through it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import grpc.aio
import pytest

from bench.health import HealthStandIn
from restate_op.effects import Forget, ReadClusterHealth
from restate_op.executor import Executor
from restate_op.kube.events import EventRecorder
from restate_op.memory import Memory
from restate_op.node_channels import NodeChannels
from restate_op.restate_health_reader import read_health
from tests.kube.fakeapi import fake_client, json_response


class FakeChannel:
    def __init__(self, target: str) -> None:
        self.target = target
        self.closed = False

    async def close(self) -> None:
        self.closed = True


class Opened:
    """The pool's ``connect``: fake channels, all kept for the test to look at."""

    def __init__(self) -> None:
        self.channels: list[FakeChannel] = []

    def __call__(self, target: str) -> grpc.aio.Channel:
        channel = FakeChannel(target)
        self.channels.append(channel)
        return cast(grpc.aio.Channel, channel)

    def open(self) -> list[str]:
        return [c.target for c in self.channels if not c.closed]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pool(
    idle_seconds: float = 300.0, max_channels: int = 100
) -> tuple[NodeChannels, Opened, Clock]:
    opened, clock = Opened(), Clock()
    channels = NodeChannels(idle_seconds, max_channels, clock=clock, connect=opened)
    return channels, opened, clock


async def lease(channels: NodeChannels, *targets: str) -> dict[str, Any]:
    async with channels.lease(targets) as got:
        return dict(got)


async def test_a_channel_is_reused_across_leases_and_opened_once_per_address() -> None:
    channels, opened, _ = pool()
    first = await lease(channels, "a:5122", "b:5122", "a:5122")
    second = await lease(channels, "b:5122", "a:5122")
    assert first == second
    assert [c.target for c in opened.channels] == ["a:5122", "b:5122"]
    assert opened.open() == ["a:5122", "b:5122"]


async def test_an_address_nobody_holds_any_more_loses_its_channel() -> None:
    channels, opened, _ = pool()
    await channels.hold(("health", "one"), ["a", "shared"])
    await channels.hold(("health", "two"), ["shared"])
    await lease(channels, "a", "shared")
    await channels.release(("health", "one"))
    assert opened.open() == ["shared"]  # still held by "two"
    await channels.hold(("health", "two"), ["shared", "c"])
    await lease(channels, "shared", "c")
    await channels.hold(("health", "two"), ["shared"])  # c scaled away
    assert opened.open() == ["shared"]
    await channels.release(("health", "two"))
    await channels.release(("some", "other key"))  # never held: nothing happens
    assert opened.open() == [] and len(channels) == 0


async def test_an_idle_channel_goes_at_a_lease_soon_after_its_idle_time() -> None:
    channels, opened, clock = pool(idle_seconds=300)
    await lease(channels, "a")
    await lease(channels, "b")
    clock.now += 299
    await lease(channels, "b")  # a's idle time not reached
    clock.now += 1
    await lease(channels, "b")  # reached, but the pool looked 1 s ago (every 30 s at most)
    assert opened.open() == ["a", "b"]
    clock.now += 29
    await lease(channels, "b")
    assert opened.open() == ["b"]
    assert "a" not in channels
    await lease(channels, "a")  # opened again when asked again
    assert opened.open() == ["b", "a"]


async def test_a_full_pool_lends_a_channel_for_one_read_and_keeps_the_ones_it_has() -> None:
    channels, opened, _ = pool(max_channels=2)
    await lease(channels, "a", "b")
    async with channels.lease(["c", "a"]) as got:
        assert opened.open() == ["a", "b", "c"]
        assert got["a"] is opened.channels[0]
    assert opened.open() == ["a", "b"] and "c" not in channels
    await lease(channels, "c")
    assert [c.target for c in opened.channels] == ["a", "b", "c", "c"]


async def test_no_pool_at_all_is_a_channel_per_read() -> None:
    channels, opened, _ = pool(max_channels=0)
    await lease(channels, "a")
    await lease(channels, "a")
    assert [c.target for c in opened.channels] == ["a", "a"] and opened.open() == []


async def test_a_channel_in_use_is_closed_only_when_given_back() -> None:
    channels, opened, _ = pool()
    async with channels.lease(["a"]) as got:
        await channels.discard("a")
        assert not cast(FakeChannel, got["a"]).closed
        assert await lease(channels, "a") != dict(got)  # a new one for the next read
    assert opened.open() == ["a"] and opened.channels[0].closed


async def test_close_closes_every_channel() -> None:
    channels, opened, _ = pool()
    await lease(channels, "a", "b")
    await channels.close()
    assert opened.open() == [] and len(channels) == 0


# -- reads through the pool, against the bench's stand-in node ------------------------------


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[HealthStandIn]:
    node = HealthStandIn(tmp_path / "nodes", ["rc"]).start()
    yield node
    node.stop()


class Counting(Opened):
    """Real channels, counted."""

    def __call__(self, target: str) -> grpc.aio.Channel:
        super().__call__(target)
        return grpc.aio.insecure_channel(target)


async def test_reads_share_one_channel_and_an_unreachable_node_loses_its_own(
    standin: HealthStandIn,
) -> None:
    node = standin.address("rc")
    absent = standin.address("absent")
    opened = Counting()
    channels = NodeChannels(connect=opened)
    try:
        for _ in range(3):
            health = await read_health({"restate-0": node}, 0.0, None, channels)
            assert health.ok and health.metadata_leader == 1
        assert [c.target for c in opened.channels] == [node]
        health = await read_health({"restate-0": node, "restate-1": absent}, 0.0, None, channels)
        assert health.ok and health.pods[1].error and "UNAVAILABLE" in health.pods[1].error
        assert node in channels and absent not in channels
        assert standin.counts()["GetIdent"] == 4
    finally:
        await channels.close()


async def test_a_glance_asks_one_node_and_anything_unexpected_reads_in_full(
    standin: HealthStandIn,
) -> None:
    targets = {"restate-0": standin.address("rc")}
    channels = NodeChannels()
    full = await read_health(targets, 1.0, None, channels)

    def asked_since(before: dict[str, int]) -> dict[str, int]:
        now = standin.counts()
        return {m: n - before.get(m, 0) for m, n in now.items() if n - before.get(m, 0)}

    before = standin.counts()
    light = await read_health(targets, 2.0, full, channels, full=False)
    assert asked_since(before) == {"GetClusterState": 1}
    # Pods, configuration and members are the last read's; the nodes are the glance's.
    assert light.says_the_same(full) and light.read_at == 2.0
    # A node in another generation than its pod said (it restarted): read in full.
    [pod] = full.pods
    assert pod.ident is not None
    restarted = replace(full, pods=(replace(pod, ident=replace(pod.ident, generation=7)),))
    before = standin.counts()
    again = await read_health(targets, 3.0, restarted, channels, False)
    assert set(asked_since(before)) == {
        "GetIdent",
        "GetClusterState",
        "GetClusterConfiguration",
        "Status",
    }
    assert again.says_the_same(full)
    # Nothing whole to go by (no configuration): read in full.
    before = standin.counts()
    await read_health(targets, 4.0, replace(full, configuration=None), channels, False)
    assert "GetIdent" in asked_since(before)
    await channels.close()


async def test_a_read_without_a_pool_closes_what_it_opened(standin: HealthStandIn) -> None:
    health = await read_health({"restate-0": standin.address("rc")}, 0.0)
    assert health.ok


# -- the executor owns the pool ------------------------------------------------------------


async def test_the_executor_reads_through_its_pool_and_forgets_a_clusters_channels(
    standin: HealthStandIn,
) -> None:
    client, _ = fake_client(cast(Any, lambda r: json_response(200, {})))
    recorder = EventRecorder(client, reporting_controller="test", reporting_instance="test-0")
    opened = Counting()
    ex = Executor(client, recorder, Memory(), node_channels=NodeChannels(connect=opened))
    node = standin.address("rc")
    key = ("restatecluster-health", "rc")
    read = ReadClusterHealth(key, (("restate-0", node),))
    first, second = await ex.run([read]), await ex.run([read])
    assert first.error is None and second.error is None
    # A new answer is judged at once; the same again waits for the next read.
    assert (first.requeue_after, second.requeue_after) == (0.0, None)
    assert ex.memory.get(key).ok
    assert [c.target for c in opened.channels] == [node] and node in ex.node_channels
    await ex.run([Forget(key)])
    assert node not in ex.node_channels
    await ex.run([read])
    await ex.close()
    assert len(ex.node_channels) == 0
