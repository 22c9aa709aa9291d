"""One gRPC channel per Restate node address, reused by the health reads.

A channel costs far more to open than a call on it: a connection, an HTTP/2 handshake,
grpc core's resolver and subchannel objects (and, for a pod's DNS name, a lookup). The
health reads ask every pod of every cluster every 30 s, so the executor keeps one channel
per address open between reads, here. grpc reconnects a channel by itself (and resolves
the name again), so a pod restarted on a new IP needs nothing from us; a call that finds
its node unreachable still drops the channel, so the next read starts afresh instead of
waiting out grpc's reconnect backoff.

A kept channel costs memory, about 30 KiB with its connection (grpc core's transport):
``max_channels`` bounds them (``--restate-health-channels``). A full pool opens a channel
for the one read and closes it after, as with no pool (0), rather than evicting another:
reads come round every cluster in turn, so an evicted channel would be the next one needed.

A channel goes when nothing holds its address any more (a cluster deleted, a pod scaled
away: :meth:`NodeChannels.hold`, :meth:`NodeChannels.release`), when unused for
``idle_seconds``, and all of them on :meth:`NodeChannels.close`. A channel in use by a read
is closed only once that read gives it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass

import grpc.aio

#: Long enough to outlast any read interval (30 s while Ready), short enough that the
#: addresses of a deleted cluster do not linger.
IDLE_SECONDS = 300.0
#: The default of ``--restate-health-channels``: ~30 MiB at most.
MAX_CHANNELS = 1024

Connect = Callable[[str], grpc.aio.Channel]


@dataclass(eq=False)
class _Entry:
    channel: grpc.aio.Channel
    last_used: float
    users: int = 0
    evicted: bool = False


class NodeChannels:
    """Channels by address (``host:port`` or ``unix://path``), lent to one read at a time
    or to several at once (a channel carries concurrent calls)."""

    def __init__(
        self,
        idle_seconds: float = IDLE_SECONDS,
        max_channels: int = MAX_CHANNELS,
        clock: Callable[[], float] = time.monotonic,
        connect: Connect = grpc.aio.insecure_channel,
    ) -> None:
        self._idle_seconds = idle_seconds
        self._max_channels = max_channels
        self._clock = clock
        self._connect = connect
        self._entries: dict[str, _Entry] = {}
        self._held: dict[Hashable, frozenset[str]] = {}
        self._swept = clock()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, target: object) -> bool:
        return target in self._entries

    @contextlib.asynccontextmanager
    async def lease(self, targets: Iterable[str]) -> AsyncIterator[Mapping[str, grpc.aio.Channel]]:
        """A channel for each of ``targets``, opened if none is; given back on exit."""
        await self._sweep()
        taken: dict[str, _Entry] = {}
        try:
            for target in dict.fromkeys(targets):
                taken[target] = self._take(target)
            yield {target: entry.channel for target, entry in taken.items()}
        finally:
            now = self._clock()
            closing = []
            for entry in taken.values():
                entry.users -= 1
                entry.last_used = now
                if entry.evicted and entry.users == 0:
                    closing.append(entry.channel.close())
            await asyncio.gather(*closing)

    async def discard(self, target: str) -> None:
        """Drop ``target``'s channel (say, its node was unreachable): the next lease opens a
        new one; a read still using this one keeps it until it is done."""
        entry = self._entries.pop(target, None)
        if entry is not None:
            await self._retire(entry)

    async def hold(self, owner: Hashable, targets: Iterable[str]) -> None:
        """Record that ``owner`` (a cluster's health key) reads ``targets``; a target it
        read before and no owner reads now loses its channel."""
        before = self._held.get(owner, frozenset())
        now = frozenset(targets)
        if now:
            self._held[owner] = now
        else:
            self._held.pop(owner, None)
        for target in before - now:
            if not any(target in held for held in self._held.values()):
                await self.discard(target)

    async def release(self, owner: Hashable) -> None:
        """``owner`` reads nothing any more (its cluster is gone)."""
        await self.hold(owner, ())

    async def close(self) -> None:
        """Close every channel, in use or not (the operator stops)."""
        entries, self._entries = list(self._entries.values()), {}
        self._held.clear()
        for entry in entries:
            entry.evicted = True
        await asyncio.gather(*(entry.channel.close() for entry in entries))

    def _take(self, target: str) -> _Entry:
        entry = self._entries.get(target)
        if entry is None:
            entry = _Entry(self._connect(target), self._clock())
            if len(self._entries) < self._max_channels:
                self._entries[target] = entry
            else:
                entry.evicted = True  # full: this read's own, closed when given back
        entry.users += 1
        entry.last_used = self._clock()
        return entry

    async def _sweep(self) -> None:
        """Drop the channels unused for ``idle_seconds`` (looked for at most every tenth of
        it, so a read costs no walk over every channel)."""
        now = self._clock()
        if now - self._swept < self._idle_seconds / 10:
            return
        self._swept = now
        idle = [
            t
            for t, e in self._entries.items()
            if e.users == 0 and now - e.last_used >= self._idle_seconds
        ]
        for target in idle:
            await self.discard(target)

    async def _retire(self, entry: _Entry) -> None:
        entry.evicted = True
        if entry.users == 0:
            await entry.channel.close()
