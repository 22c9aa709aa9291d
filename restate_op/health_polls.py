"""Standing health reads of Ready clusters, on the executor's own clock (``PollClusterHealth``).

One task per polled cluster sleeps until the cluster's next read is due, reads, and wakes the
cluster's reconcile only when the answer differs from the last one: a Ready cluster whose
Restate says the same thing costs one read per interval and no reconcile. The decision stays
the only judge (a changed answer is judged by a reconcile, never here); this module only
times reads.

Every poll reads on its interval's grid (the interval's multiples of the clock: every 30 s
at :00 and :30), so the polls of all Ready clusters fall due together and run as one burst
(at most ``READS_AT_ONCE`` in flight). On these machines the CPU of a read is mostly the
wake-ups around it (the event loop's, gRPC's poller's), not the call: a unary call spread
out costs about 1 ms of CPU, about 0.4 ms in a burst (``bench/results/health-latest.md``).
Each cluster still gets one call per interval; no node is asked
more often, and a node that stops answering shows within one interval as before.

The standing requests live in ``Memory`` (the observation sees them and emits nothing while
its wish stands); stopping a poll drops it there too, so a reconcile after a lost Lease or
a restart finds none standing and asks again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
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
#: Reads in flight at once across all clusters: a burst of 1000 clusters goes in waves.
READS_AT_ONCE = 64


def next_read(after: float, every: float) -> float:
    """The first point of the ``every`` grid (its multiples of the clock) at or after
    ``after``. A poll passes its last read's time plus ``every`` / 2: the next grid point
    is then between half an interval and one interval away."""
    return math.ceil(after / every) * every


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
        self._slots = asyncio.Semaphore(READS_AT_ONCE)

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
        every = poll.every
        known = self._memory.get(poll.health)
        # Read at once unless a read is fresh; then on the grid, never sooner than half an
        # interval after the last read nor later than one.
        last = known.read_at if isinstance(known, RestateHealth) else None
        due = self._clock() if last is None else next_read(last + every / 2, every)
        polls = 0
        while True:
            await asyncio.sleep(max(0.0, due - self._clock()))
            polls += 1
            try:
                async with self._slots:
                    changed = await self._read(poll.health, targets, polls % FULL_READ_EVERY == 0)
            except Exception:
                # Never the poll's end: the next interval reads again.
                log.exception("operator bug while polling %s's health", poll.key[1])
                changed = False
            if changed and wake is not None:
                wake()
            # The next point of the grid, however late this read ended (none is made up).
            due = next_read(max(due, self._clock()) + every / 2, every)
