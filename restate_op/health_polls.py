"""Standing health reads of Ready clusters, on the executor's own clock (``PollClusterHealth``).

One task per polled cluster sleeps until the cluster's next read is due, reads, and wakes the
cluster's reconcile only when the answer differs from the last one: a Ready cluster whose
Restate says the same thing costs one read per interval and no reconcile. The decision stays
the only judge (a changed answer is judged by a reconcile, never here); this module only
times reads.

The standing requests live in ``Memory`` (the observation sees them and emits nothing while
its wish stands); stopping a poll drops it there too, so a reconcile after a lost Lease or
a restart finds none standing and asks again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from restate_op.effects import PollClusterHealth
from restate_op.memory import Memory
from restate_op.restate_health import RestateHealth

log = logging.getLogger(__name__)

#: Read the cluster's health into memory under the key, from these (pod, node address)
#: targets, in full or not (``restate_op.restate_health_reader.read_health``); True when
#: the answer differs from the one it replaced.
HealthRead = Callable[[tuple[str, str], Mapping[str, str], bool], Awaitable[bool]]

#: Every this many polls a read is a full one (every pod, the configuration for drift, the
#: metadata members); the others glance (``read_health``): every 5 minutes at 30 s.
FULL_READ_EVERY = 10
Wake = Callable[[], None]


class HealthPolls:
    """The executor's standing health reads, one task per cluster."""

    def __init__(
        self,
        memory: Memory,
        read: HealthRead,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._memory = memory
        self._read = read
        self._clock = clock
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def set(self, poll: PollClusterHealth, wake: Wake | None) -> None:
        """Stand ``poll`` (replacing the cluster's previous one), or stop it (``every`` None)."""
        self.stop(poll.key)
        if poll.every is None:
            return
        self._memory.put(poll.key, poll)
        self._tasks[poll.key] = asyncio.create_task(
            self._poll(poll, wake), name=f"health-poll-{poll.key[1]}"
        )

    def stop(self, key: tuple[str, str]) -> None:
        """Stop the poll under ``key`` if one stands (a no-op for any other key)."""
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()
        if isinstance(self._memory.get(key), PollClusterHealth):
            self._memory.drop(key)

    async def close(self) -> None:
        """Stop every poll and wait for them (a lost Lease, a shutdown)."""
        tasks = list(self._tasks.values())
        for key in list(self._tasks):
            self.stop(key)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _poll(self, poll: PollClusterHealth, wake: Wake | None) -> None:
        assert poll.every is not None
        targets = dict(poll.targets)
        known = self._memory.get(poll.health)
        due = known.read_at + poll.every if isinstance(known, RestateHealth) else self._clock()
        polls = 0
        while True:
            await asyncio.sleep(max(0.0, due - self._clock()))
            started = self._clock()
            polls += 1
            try:
                changed = await self._read(poll.health, targets, polls % FULL_READ_EVERY == 0)
            except Exception:
                # Never the poll's end: the next interval reads again.
                log.exception("operator bug while polling %s's health", poll.key[1])
                changed = False
            if changed and wake is not None:
                wake()
            due = started + poll.every
