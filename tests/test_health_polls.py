"""The executor's standing health polls: a Ready cluster read on the executor's clock, its
reconcile woken only by a changed answer; replaced, stopped, forgotten, closed. Real asyncio
timers at short intervals; fake reads (the gRPC read itself is tests/test_node_channels.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

import pytest

from restate_op import health_polls
from restate_op.effects import Forget, PollClusterHealth
from restate_op.executor import Executor
from restate_op.health_polls import HealthPolls
from restate_op.kube.events import EventRecorder
from restate_op.memory import Memory
from restate_op.restate_health import RestateHealth
from tests.kube.fakeapi import fake_client, json_response

POLL = ("restatecluster-health-poll", "rc")
HEALTH = ("restatecluster-health", "rc")
TARGETS = (("restate-0", "node-0:5122"),)
EVERY = 0.05


class Reads:
    """A fake read: records its calls, answers "changed" as scripted (then "the same")."""

    def __init__(self, *changed: bool, fail_first: bool = False) -> None:
        self.calls: list[tuple[tuple[str, str], dict[str, str]]] = []
        self.times: list[float] = []
        self.in_flight = self.most_in_flight = 0
        self.takes = 0.0
        self.full: list[bool] = []
        self.script = list(changed)
        self.fail_first = fail_first

    async def __call__(self, key: tuple[str, str], targets: Mapping[str, str], full: bool) -> bool:
        self.calls.append((key, dict(targets)))
        self.times.append(asyncio.get_running_loop().time())
        self.full.append(full)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(self.takes)
        self.in_flight -= 1
        if self.fail_first and len(self.calls) == 1:
            raise RuntimeError("a bug in a read")
        return self.script.pop(0) if self.script else False


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def _poll(every: float | None = EVERY, targets: tuple[tuple[str, str], ...] = TARGETS) -> Any:
    return PollClusterHealth(POLL, HEALTH, targets, every)


async def test_a_standing_poll_reads_every_interval_and_wakes_only_on_a_change() -> None:
    memory, reads, wakes = Memory(), Reads(False, True, False), Wakes()
    polls = HealthPolls(memory, reads)
    polls.set(_poll(), wakes)
    assert memory.get(POLL) == _poll()  # the observation sees it standing
    await asyncio.sleep(EVERY * 4.5)
    await polls.close()
    assert len(reads.calls) >= 4
    assert reads.calls[0] == (HEALTH, {"restate-0": "node-0:5122"})
    assert wakes.count == 1  # the second read said something new, the others did not


async def test_every_nth_poll_is_a_full_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health_polls, "FULL_READ_EVERY", 3)
    reads = Reads()
    polls = HealthPolls(Memory(), reads)
    polls.set(_poll(), None)
    await asyncio.sleep(EVERY * 6.5)
    await polls.close()
    assert reads.full[:6] == [False, False, True, False, False, True]


def test_the_next_read_is_the_first_point_of_the_grid_at_or_after() -> None:
    assert health_polls.next_read(61.0, 30.0) == 90.0
    assert health_polls.next_read(90.0, 30.0) == 90.0
    assert health_polls.next_read(0.1, 30.0) == 30.0


async def test_reads_fall_on_the_interval_grid_half_an_interval_after_a_fresh_one() -> None:
    memory, reads = Memory(), Reads()
    clock = asyncio.get_running_loop().time
    read_at = clock()
    memory.put(HEALTH, RestateHealth(read_at=read_at))
    polls = HealthPolls(memory, reads, clock)
    every = 0.2
    polls.set(_poll(every=every), None)
    await asyncio.sleep(every * 0.45)
    assert reads.calls == []  # read just now by a reconcile: not due yet
    await asyncio.sleep(every * 3)
    await polls.close()
    assert len(reads.calls) >= 2
    assert reads.times[0] >= read_at + every / 2
    for at in reads.times:  # each on the grid (the event loop wakes a little late)
        assert 0 <= at - health_polls.next_read(at - every / 4, every) < every / 4
    gaps = [b - a for a, b in zip(reads.times, reads.times[1:], strict=False)]
    assert all(abs(gap - every) < every / 4 for gap in gaps)


async def test_clusters_due_together_read_together_a_bounded_number_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(health_polls, "READS_AT_ONCE", 2)
    reads = Reads()
    reads.takes = 0.05
    polls = HealthPolls(Memory(), reads, asyncio.get_running_loop().time)
    for name in "abcde":
        key = ("restatecluster-health-poll", name)
        polls.set(PollClusterHealth(key, ("h", name), TARGETS, 10.0), None)
    await asyncio.sleep(0.4)  # no read is fresh: each reads at once, two at a time
    await polls.close()
    assert (len(reads.calls), reads.most_in_flight) == (5, 2)


async def test_a_replaced_poll_reads_the_new_targets_and_a_stopped_one_nothing() -> None:
    memory, reads = Memory(), Reads()
    polls = HealthPolls(memory, reads)
    polls.set(_poll(), None)
    moved = (("restate-0", "node-0:5122"), ("restate-1", "node-1:5122"))
    polls.set(_poll(targets=moved), None)
    assert len(polls) == 1
    await asyncio.sleep(EVERY * 1.5)
    assert {tuple(t) for _, t in reads.calls} == {("restate-0", "restate-1")}
    polls.set(_poll(every=None), None)  # stop
    assert (len(polls), memory.get(POLL)) == (0, None)
    seen = len(reads.calls)
    await asyncio.sleep(EVERY * 3)
    assert len(reads.calls) == seen


async def test_a_read_that_raises_does_not_end_the_poll() -> None:
    reads, wakes = Reads(False, True, fail_first=True), Wakes()
    polls = HealthPolls(Memory(), reads)
    polls.set(_poll(), wakes)
    await asyncio.sleep(EVERY * 3.5)
    await polls.close()
    assert len(reads.calls) >= 3
    assert wakes.count == 1


async def test_close_stops_every_poll_and_forgets_them() -> None:
    memory, reads = Memory(), Reads()
    polls = HealthPolls(memory, reads)
    other = PollClusterHealth(("restatecluster-health-poll", "b"), ("h", "b"), TARGETS, EVERY)
    polls.set(_poll(), None)
    polls.set(other, None)
    await polls.close()
    assert (len(polls), memory.get(POLL), memory.get(other.key)) == (0, None, None)
    seen = len(reads.calls)
    await asyncio.sleep(EVERY * 2)
    assert len(reads.calls) == seen


async def test_the_executor_stands_a_poll_with_the_reconciles_wake_and_forgets_it() -> None:
    client, _ = fake_client(cast(Any, lambda r: json_response(200, {})))
    recorder = EventRecorder(client, reporting_controller="test", reporting_instance="test-0")
    answers = iter(["first", "first", "second"])

    async def read_health(
        targets: Mapping[str, str],
        now: float,
        known: RestateHealth | None,
        channels: Any,
        full: bool,
    ) -> RestateHealth:
        return RestateHealth(now, error=next(answers, "second"))

    ex = Executor(client, recorder, Memory(), read_health=read_health)
    wakes = Wakes()
    outcome = await ex.run([_poll()], wakes)
    assert outcome.error is None and outcome.requeue_after is None
    await asyncio.sleep(EVERY * 4.5)
    # Reads: "first" (new: wake), "first" (same), "second" (new: wake), then the same.
    assert wakes.count == 2
    assert ex.memory.get(HEALTH).error == "second"
    await ex.run([Forget(POLL)])
    assert (len(ex.polls), ex.memory.get(POLL)) == (0, None)
    await ex.close()
