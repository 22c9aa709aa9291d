"""Leader election logic against an in-memory Lease store with optimistic concurrency."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from restate_op.kube.client import KubeClient, Obj
from restate_op.kube.errors import AlreadyExists, ApiUnreachable, Conflict
from restate_op.kube.lease import LeaderElector, lease_expired
from restate_op.kube.resources import LEASE, Kind
from restate_op.kube.times import micro_time


class FakeLeases:
    """get/create/replace of Leases with resourceVersion compare-and-swap, and an outage
    switch per caller."""

    def __init__(self) -> None:
        self.leases: dict[tuple[str, str], Obj] = {}
        self.rv = 0
        self.reads = 0
        self.writes = 0
        self.down = False

    def client(self, name: str = "", down: dict[str, bool] | None = None) -> KubeClient:
        return cast(KubeClient, _View(self, down if down is not None else {}, name))


class _View:
    def __init__(self, store: FakeLeases, down: dict[str, bool], name: str) -> None:
        self.store = store
        self.down = down
        self.name = name

    def _check(self) -> None:
        if self.store.down or self.down.get(self.name):
            raise ApiUnreachable("connection refused")

    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> Obj | None:
        await asyncio.sleep(0)
        self._check()
        assert kind is LEASE
        self.store.reads += 1
        found = self.store.leases.get((namespace or "", name))
        return copy.deepcopy(found) if found else None

    async def create(self, manifest: Mapping[str, Any], *, kind: Kind | None = None) -> Obj:
        await asyncio.sleep(0)
        self._check()
        meta = manifest["metadata"]
        key = (meta["namespace"], meta["name"])
        if key in self.store.leases:
            raise AlreadyExists("exists", status=409, reason="AlreadyExists")
        return self._store(key, manifest)

    async def replace(self, manifest: Mapping[str, Any], *, kind: Kind | None = None) -> Obj:
        await asyncio.sleep(0)
        self._check()
        meta = manifest["metadata"]
        key = (meta["namespace"], meta["name"])
        current = self.store.leases[key]
        if meta.get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise Conflict("the object has been modified", status=409, reason="Conflict")
        return self._store(key, manifest)

    def _store(self, key: tuple[str, str], manifest: Mapping[str, Any]) -> Obj:
        self.store.rv += 1
        self.store.writes += 1
        obj = copy.deepcopy(dict(manifest))
        obj["metadata"] = {**obj["metadata"], "resourceVersion": str(self.store.rv)}
        self.store.leases[key] = obj
        return copy.deepcopy(obj)


NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def spec(holder: str, renewed: datetime, duration: int = 15) -> dict[str, Any]:
    return {
        "holderIdentity": holder,
        "renewTime": micro_time(renewed),
        "leaseDurationSeconds": duration,
    }


def test_lease_expired() -> None:
    assert lease_expired({}, NOW)
    assert lease_expired({"holderIdentity": ""}, NOW)
    assert not lease_expired(spec("a", NOW - timedelta(seconds=14)), NOW)
    assert lease_expired(spec("a", NOW - timedelta(seconds=16)), NOW)
    assert lease_expired({"holderIdentity": "a", "leaseDurationSeconds": 15}, NOW)
    assert lease_expired(
        {"holderIdentity": "a", "renewTime": "garbage", "leaseDurationSeconds": 15}, NOW
    )


def test_micro_time_format() -> None:
    assert (
        micro_time(datetime(2025, 1, 2, 3, 4, 5, 60, tzinfo=UTC)) == "2025-01-02T03:04:05.000060Z"
    )


def test_timings_must_be_safe() -> None:
    store = FakeLeases()
    with pytest.raises(ValueError):
        LeaderElector(
            store.client(), "ns", "l", "a", lease_duration=10, renew_deadline=10, retry_period=2
        )
    with pytest.raises(ValueError):
        LeaderElector(
            store.client(), "ns", "l", "a", lease_duration=15, renew_deadline=2, retry_period=2
        )
    with pytest.raises(ValueError):
        LeaderElector(
            store.client(), "ns", "l", "", lease_duration=15, renew_deadline=10, retry_period=2
        )


def elector(store: FakeLeases, identity: str, clock: Any = None, **kwargs: Any) -> LeaderElector:
    timings: dict[str, Any] = {"lease_duration": 0.6, "renew_deadline": 0.4, "retry_period": 0.05}
    timings.update(kwargs)
    extra: dict[str, Any] = {"clock": clock} if clock else {}
    return LeaderElector(
        store.client(identity),
        "ns",
        "leader",
        identity,
        **timings,
        **extra,
    )


async def test_create_then_renew_then_the_other_cannot_take_it() -> None:
    store = FakeLeases()
    a, b = elector(store, "a"), elector(store, "b")
    assert await a.try_acquire_or_renew()
    lease = store.leases[("ns", "leader")]
    assert lease["spec"]["holderIdentity"] == "a"
    assert lease["spec"]["leaseTransitions"] == 0
    first_renew = lease["spec"]["renewTime"]
    await asyncio.sleep(0.01)
    assert await a.try_acquire_or_renew()
    assert store.leases[("ns", "leader")]["spec"]["renewTime"] > first_renew
    assert not await b.try_acquire_or_renew()
    assert store.leases[("ns", "leader")]["spec"]["holderIdentity"] == "a"


async def test_the_holder_renews_with_one_write_and_no_read() -> None:
    store = FakeLeases()
    a = elector(store, "a")
    assert await a.try_acquire_or_renew()
    reads, writes = store.reads, store.writes
    for _ in range(3):
        await asyncio.sleep(0.01)
        before = store.leases[("ns", "leader")]["spec"]["renewTime"]
        assert await a.try_acquire_or_renew()
        assert store.leases[("ns", "leader")]["spec"]["renewTime"] > before
    assert (store.reads, store.writes) == (reads, writes + 3)
    assert store.leases[("ns", "leader")]["spec"]["leaseTransitions"] == 0


async def test_a_write_by_someone_else_sends_the_holder_back_to_reading() -> None:
    store = FakeLeases()
    now = [datetime.now(UTC)]
    timings: dict[str, Any] = {"lease_duration": 15, "renew_deadline": 10, "retry_period": 2}
    a = elector(store, "a", clock=lambda: now[0], **timings)
    b = elector(store, "b", clock=lambda: now[0], **timings)
    assert await a.try_acquire_or_renew()
    # Someone else touches the Lease (a label, say) while a still holds it: a's blind write
    # conflicts, a reads the Lease, finds itself the holder and renews.
    store.leases[("ns", "leader")]["metadata"]["labels"] = {"touched": "yes"}
    store.rv += 1
    store.leases[("ns", "leader")]["metadata"]["resourceVersion"] = str(store.rv)
    reads = store.reads
    assert await a.try_acquire_or_renew()
    assert store.reads == reads + 1
    assert store.leases[("ns", "leader")]["metadata"]["labels"] == {"touched": "yes"}
    # a stops renewing; b takes the expired Lease over. a's next blind write must not win it
    # back: it conflicts, and the Lease a then reads is b's and valid.
    now[0] += timedelta(seconds=16)
    assert await b.try_acquire_or_renew()
    assert not await a.try_acquire_or_renew()
    assert store.leases[("ns", "leader")]["spec"]["holderIdentity"] == "b"
    assert store.leases[("ns", "leader")]["spec"]["leaseTransitions"] == 1


async def test_two_candidates_racing_on_a_free_lease_one_wins() -> None:
    for _ in range(20):
        store = FakeLeases()
        candidates = [elector(store, f"c{i}") for i in range(4)]
        results = await asyncio.gather(*(c.try_acquire_or_renew() for c in candidates))
        assert sum(results) == 1
        winner = candidates[results.index(True)].identity
        assert store.leases[("ns", "leader")]["spec"]["holderIdentity"] == winner


async def test_racing_on_an_expired_lease_one_wins() -> None:
    store = FakeLeases()
    stale = elector(store, "old")
    assert await stale.try_acquire_or_renew()
    store.leases[("ns", "leader")]["spec"]["renewTime"] = micro_time(
        datetime.now(UTC) - timedelta(hours=1)
    )
    candidates = [elector(store, f"c{i}") for i in range(4)]
    results = await asyncio.gather(*(c.try_acquire_or_renew() for c in candidates))
    assert sum(results) == 1
    assert store.leases[("ns", "leader")]["spec"]["leaseTransitions"] == 1


async def test_takeover_after_expiry_by_record() -> None:
    store = FakeLeases()
    now = [datetime.now(UTC)]
    a = elector(
        store, "a", clock=lambda: now[0], lease_duration=15, renew_deadline=10, retry_period=2
    )
    b = elector(
        store, "b", clock=lambda: now[0], lease_duration=15, renew_deadline=10, retry_period=2
    )
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    now[0] += timedelta(seconds=16)  # a stopped renewing; by the record the lease expired
    assert await b.try_acquire_or_renew()
    assert store.leases[("ns", "leader")]["spec"]["holderIdentity"] == "b"
    assert store.leases[("ns", "leader")]["spec"]["leaseTransitions"] == 1


async def test_takeover_after_expiry_by_observation_despite_skewed_record() -> None:
    """A holder whose clock runs an hour ahead wrote a renewTime in our future; we still
    take over once the record has not changed for a lease duration of our own time."""
    store = FakeLeases()
    ahead = elector(store, "ahead", clock=lambda: datetime.now(UTC) + timedelta(hours=1))
    b = elector(store, "b")
    assert await ahead.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    await asyncio.sleep(0.3)
    assert not await b.try_acquire_or_renew()
    await asyncio.sleep(0.35)
    assert await b.try_acquire_or_renew()


async def test_release_lets_the_standby_take_over_at_once() -> None:
    store = FakeLeases()
    a, b = (
        elector(store, "a", lease_duration=15, renew_deadline=10, retry_period=2),
        elector(store, "b", lease_duration=15, renew_deadline=10, retry_period=2),
    )
    assert await a.try_acquire_or_renew()
    a._is_leader = True
    assert not await b.try_acquire_or_renew()
    assert await a.release()
    lease = store.leases[("ns", "leader")]
    assert lease["spec"]["holderIdentity"] == ""
    assert lease["spec"]["leaseDurationSeconds"] == 1
    assert not a.is_leader
    assert await b.try_acquire_or_renew()
    # A released elector does not grab the lease back.
    assert not await a.try_acquire_or_renew()


async def test_run_leads_renews_and_steps_down_when_renewal_fails() -> None:
    store = FakeLeases()
    down: dict[str, bool] = {}
    a = LeaderElector(
        store.client("a", down),
        "ns",
        "leader",
        "a",
        lease_duration=0.6,
        renew_deadline=0.3,
        retry_period=0.05,
    )
    started = asyncio.Event()
    stopped: list[str] = []
    cancelled = asyncio.Event()

    async def lead() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    task = asyncio.create_task(a.run(lead, lambda: stopped.append("stopped")))
    await asyncio.wait_for(started.wait(), 1)
    assert a.is_leader
    writes = store.writes
    await asyncio.sleep(0.3)
    assert store.writes >= writes + 3  # renewing every retry_period
    assert a.is_leader
    down["a"] = True  # a is partitioned from the API server
    await asyncio.wait_for(cancelled.wait(), 1)
    assert stopped == ["stopped"]
    assert not a.is_leader
    # Back to campaigning: once reachable again it re-acquires (nobody else took it).
    started.clear()
    down["a"] = False
    await asyncio.wait_for(started.wait(), 2)
    assert a.is_leader
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stopped == ["stopped", "stopped"]
    assert store.leases[("ns", "leader")]["spec"]["holderIdentity"] == ""  # released on cancel


async def test_run_hands_over_between_two_electors() -> None:
    store = FakeLeases()
    a, b = elector(store, "a"), elector(store, "b")
    leading: list[str] = []

    def lead_as(name: str) -> Any:
        async def lead() -> None:
            leading.append(name)
            await asyncio.Event().wait()

        return lead

    task_a = asyncio.create_task(a.run(lead_as("a"), lambda: None))
    await asyncio.sleep(0.1)
    task_b = asyncio.create_task(b.run(lead_as("b"), lambda: None))
    await asyncio.sleep(0.3)
    assert leading == ["a"]
    assert a.is_leader and not b.is_leader
    task_a.cancel()  # graceful stop: releases, b takes over within a retry period
    with pytest.raises(asyncio.CancelledError):
        await task_a
    for _ in range(40):
        if b.is_leader:
            break
        await asyncio.sleep(0.01)
    assert leading == ["a", "b"]
    assert b.is_leader
    task_b.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task_b


async def test_run_returns_when_the_work_ends_and_releases() -> None:
    store = FakeLeases()
    a = elector(store, "a")
    stopped: list[bool] = []

    async def lead() -> None:
        await asyncio.sleep(0.1)

    await asyncio.wait_for(a.run(lead, lambda: stopped.append(True)), 2)
    assert stopped == [True]
    assert store.leases[("ns", "leader")]["spec"]["holderIdentity"] == ""


async def test_run_propagates_a_crash_of_the_work() -> None:
    store = FakeLeases()
    a = elector(store, "a")

    async def lead() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await asyncio.wait_for(a.run(lead, lambda: None), 2)
    assert store.leases[("ns", "leader")]["spec"]["holderIdentity"] == ""


async def test_release_ends_run() -> None:
    store = FakeLeases()
    a = elector(store, "a")
    started = asyncio.Event()
    stopped: list[bool] = []

    async def lead() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(a.run(lead, lambda: stopped.append(True)))
    await asyncio.wait_for(started.wait(), 1)
    assert await a.release()
    await asyncio.wait_for(task, 1)
    assert stopped == [True]
    assert store.leases[("ns", "leader")]["spec"]["holderIdentity"] == ""


async def test_standby_steps_aside_for_a_live_leader() -> None:
    store = FakeLeases()
    a, b = elector(store, "a"), elector(store, "b")

    async def lead_a() -> None:
        await asyncio.Event().wait()

    task_a = asyncio.create_task(a.run(lead_a, lambda: None))
    await asyncio.sleep(0.1)
    b_leading = asyncio.Event()

    async def lead_b() -> None:
        b_leading.set()

    task_b = asyncio.create_task(b.run(lead_b, lambda: None))
    await asyncio.sleep(1.0)  # longer than lease_duration: a keeps renewing
    assert not b_leading.is_set()
    for task in (task_a, task_b):
        task.cancel()
    await asyncio.gather(task_a, task_b, return_exceptions=True)
