"""WorkQueue semantics (client-go's): de-dup, per-key exclusivity, delays, backoff, shutdown."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter

import pytest

from restate_op.kube.workqueue import ExponentialBackoff, WorkQueue


async def drain(queue: WorkQueue[str]) -> list[str]:
    """Take every ready key (marking each done) without blocking."""
    keys = []
    while len(queue):
        key = await queue.get()
        assert key is not None
        keys.append(key)
        queue.done(key)
    return keys


async def test_fifo_and_dedup() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for key in ["a", "b", "a", "c", "b", "a"]:
        queue.add(key)
    assert len(queue) == 3
    assert await drain(queue) == ["a", "b", "c"]
    assert len(queue) == 0


async def test_added_while_processing_is_requeued_once_on_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    key = await queue.get()
    assert key == "a"
    assert queue.processing == 1
    queue.add("a")
    queue.add("a")
    # Not handed out again while a worker holds it.
    assert len(queue) == 0
    queue.done("a")
    assert len(queue) == 1
    assert await queue.get() == "a"
    queue.done("a")
    assert len(queue) == 0
    assert queue.processing == 0


async def test_done_without_re_add_does_not_requeue() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    assert await queue.get() == "a"
    queue.done("a")
    assert len(queue) == 0


async def test_get_waits_for_add() -> None:
    queue: WorkQueue[str] = WorkQueue()
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0.01)
    assert not getter.done()
    queue.add("x")
    assert await asyncio.wait_for(getter, 1) == "x"


async def test_add_after_orders_by_deadline() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("late", 0.15)
    queue.add_after("early", 0.05)
    queue.add_after("now", 0)
    assert await drain(queue) == ["now"]
    assert queue.waiting == 2
    assert await asyncio.wait_for(queue.get(), 1) == "early"
    assert await asyncio.wait_for(queue.get(), 1) == "late"
    assert queue.waiting == 0


async def test_add_after_keeps_the_earliest_deadline() -> None:
    queue: WorkQueue[str] = WorkQueue()
    loop = asyncio.get_running_loop()
    start = loop.time()
    queue.add_after("k", 5.0)
    queue.add_after("k", 0.05)
    queue.add_after("k", 10.0)
    assert queue.waiting == 1
    assert await asyncio.wait_for(queue.get(), 1) == "k"
    assert loop.time() - start < 1.0
    queue.done("k")
    await asyncio.sleep(0.1)
    assert len(queue) == 0


async def test_delayed_key_already_queued_is_not_duplicated() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("k")
    queue.add_after("k", 0.02)
    await asyncio.sleep(0.05)
    assert await drain(queue) == ["k"]


def test_backoff_growth_cap_and_forget() -> None:
    backoff: ExponentialBackoff[str] = ExponentialBackoff(base=0.5, cap=300.0)
    delays = [backoff.when("k") for _ in range(12)]
    assert delays[:6] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    assert delays[-1] == 300.0
    assert all(a <= b for a, b in itertools.pairwise(delays))
    assert backoff.when("other") == 0.5  # per key
    assert backoff.failures("k") == 12
    backoff.forget("k")
    assert backoff.failures("k") == 0
    assert backoff.when("k") == 0.5
    for _ in range(2000):  # no float overflow for a key that fails forever
        assert backoff.when("forever") <= 300.0


async def test_add_rate_limited_uses_backoff_and_forget_resets() -> None:
    queue: WorkQueue[str] = WorkQueue(ExponentialBackoff(base=0.02, cap=1.0))
    loop = asyncio.get_running_loop()
    waits = []
    for _ in range(3):
        start = loop.time()
        queue.add_rate_limited("k")
        key = await asyncio.wait_for(queue.get(), 2)
        waits.append(loop.time() - start)
        assert key == "k"
        queue.done("k")
    assert queue.num_requeues("k") == 3
    assert waits[0] >= 0.015
    assert waits[1] >= 0.035
    assert waits[2] >= 0.075
    queue.forget("k")
    assert queue.num_requeues("k") == 0


async def test_shutdown_wakes_getters_and_stops_handing_out() -> None:
    queue: WorkQueue[str] = WorkQueue()
    getters = [asyncio.create_task(queue.get()) for _ in range(3)]
    await asyncio.sleep(0.01)
    queue.add_after("later", 0.05)
    queue.shutdown()
    assert await asyncio.wait_for(asyncio.gather(*getters), 1) == [None, None, None]
    queue.add("x")
    assert len(queue) == 0
    assert await queue.get() is None
    await asyncio.sleep(0.1)
    assert len(queue) == 0  # the delayed key was dropped
    assert queue.shutting_down


async def test_shutdown_drops_queued_keys_but_done_is_safe() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add("b")
    held = await queue.get()
    queue.shutdown()
    assert await queue.get() is None
    assert held is not None
    queue.done(held)
    assert queue.processing == 0


async def test_cancelled_getter_does_not_lose_a_key() -> None:
    queue: WorkQueue[str] = WorkQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0.01)
    queue.add("k")  # wakes `first`...
    first.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await asyncio.wait_for(second, 1) == "k"


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_workers_never_overlap_on_a_key(seed: int) -> None:
    """N workers over M keys, keys re-added at random (also mid-processing): no key is ever
    processed by two workers at once, and every add is followed by a processing of it."""
    rng = random.Random(seed)
    queue: WorkQueue[str] = WorkQueue()
    keys = [f"k{i}" for i in range(7)]
    active: set[str] = set()
    processed: Counter[str] = Counter()
    pending_since_add: set[str] = set()
    overlaps = []

    async def worker() -> None:
        while (key := await queue.get()) is not None:
            if key in active:
                overlaps.append(key)
            active.add(key)
            pending_since_add.discard(key)
            await asyncio.sleep(rng.uniform(0, 0.003))
            if rng.random() < 0.3:
                queue.add(key)  # re-added while held: must come back after done
                pending_since_add.add(key)
            active.discard(key)
            processed[key] += 1
            queue.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(5)]
    for _ in range(400):
        key = rng.choice(keys)
        queue.add(key)
        pending_since_add.add(key)
        if rng.random() < 0.5:
            await asyncio.sleep(rng.uniform(0, 0.002))
    for _ in range(500):
        if not pending_since_add and not len(queue) and not queue.processing:
            break
        await asyncio.sleep(0.01)
    queue.shutdown()
    await asyncio.wait_for(asyncio.gather(*workers), 2)
    assert overlaps == []
    assert pending_since_add == set()
    assert set(processed) == set(keys)
