"""A rate-limited work queue with client-go semantics, for asyncio.

Watch events arrive far faster than reconciles finish, and many events concern the same
RestateCluster. The queue turns that stream into *keys to reconcile*:

- a key waiting in the queue is held once, however often it is added (de-duplication);
- a key is handed to one worker at a time; if it is added while a worker holds it, it is
  marked dirty and queued again when that worker calls :meth:`WorkQueue.done`;
- failed keys come back after a per-key exponential backoff (:meth:`add_rate_limited`),
  reset by :meth:`forget` once a reconcile succeeds.

All methods except :meth:`get` are synchronous so informer callbacks can enqueue directly.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class ExponentialBackoff(Generic[K]):
    """Per-key exponential delay: ``base * 2**failures``, capped at ``cap`` seconds."""

    def __init__(self, base: float = 0.5, cap: float = 300.0) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[K, int] = {}

    def when(self, key: K) -> float:
        """Record one more failure of ``key`` and return how long it should wait."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        if failures >= 64:  # 2**64 * base is past any cap; avoid float overflow
            return self.cap
        return float(min(self.base * 2**failures, self.cap))

    def forget(self, key: K) -> None:
        """Reset ``key``'s failure count."""
        self._failures.pop(key, None)

    def failures(self, key: K) -> int:
        """How many times ``key`` failed since it was last forgotten."""
        return self._failures.get(key, 0)


class WorkQueue(Generic[K]):
    """De-duplicating, per-key exclusive, delay- and rate-limit-capable work queue.

    Example:
        >>> queue: WorkQueue[str] = WorkQueue()
        >>> queue.add("demo")
        >>> key = await queue.get()  # None once the queue is shut down
        >>> try:
        ...     await reconcile(key)
        ...     queue.forget(key)
        ... except Exception:
        ...     queue.add_rate_limited(key)
        ... finally:
        ...     queue.done(key)
    """

    def __init__(self, rate_limiter: ExponentialBackoff[K] | None = None) -> None:
        self._queue: collections.deque[K] = collections.deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._waiting: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._getters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._shutting_down = False
        self.rate_limiter: ExponentialBackoff[K] = rate_limiter or ExponentialBackoff()

    def __len__(self) -> int:
        """Keys ready to be handed out (the queue depth gauge)."""
        return len(self._queue)

    @property
    def processing(self) -> int:
        """Keys currently held by workers."""
        return len(self._processing)

    @property
    def waiting(self) -> int:
        """Keys scheduled for later by :meth:`add_after` / :meth:`add_rate_limited`."""
        return len(self._waiting)

    @property
    def shutting_down(self) -> bool:
        """Whether :meth:`shutdown` was called."""
        return self._shutting_down

    def add(self, key: K) -> None:
        """Queue ``key`` unless it is already queued; defer it if a worker holds it."""
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return
        self._queue.append(key)
        self._wakeup_getter()

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` after ``delay`` seconds.

        If ``key`` is already scheduled, the earlier of the two deadlines wins, so a key is
        never scheduled twice. Needs a running event loop.
        """
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        scheduled = self._waiting.get(key)
        if scheduled is not None:
            if scheduled[0] <= deadline:
                return
            scheduled[1].cancel()
        handle = loop.call_at(deadline, self._fire, key)
        self._waiting[key] = (deadline, handle)

    def _fire(self, key: K) -> None:
        self._waiting.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: K, at_least: float = 0.0) -> None:
        """Queue ``key`` after its backoff (0.5 s, 1 s, 2 s, ... up to 5 min by default).

        ``at_least``: never sooner than this (a server's ``Retry-After``).
        """
        self.add_after(key, max(self.rate_limiter.when(key), at_least))

    def forget(self, key: K) -> None:
        """Reset ``key``'s backoff (call after a successful reconcile)."""
        self.rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        """How many rate-limited re-queues ``key`` had since it was last forgotten."""
        return self.rate_limiter.failures(key)

    async def get(self) -> K | None:
        """Wait for a key and hand it out; the caller must call :meth:`done` with it.

        Returns ``None`` once the queue is shut down, even if keys are still queued: on
        shutdown only the reconciles in flight finish; the rest is re-derived from the
        cluster's state on the next start.
        """
        while not self._queue and not self._shutting_down:
            getter = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                if getter in self._getters:
                    self._getters.remove(getter)
                if self._queue and not getter.cancelled():
                    # We were woken for a key but cancelled: pass the wakeup on.
                    self._wakeup_getter()
                raise
        if self._shutting_down:
            return None
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: K) -> None:
        """Release ``key``; if it was added meanwhile, queue it again."""
        self._processing.discard(key)
        if key in self._dirty and not self._shutting_down:
            self._queue.append(key)
            self._wakeup_getter()

    def shutdown(self) -> None:
        """Stop handing out keys: pending and future :meth:`get` calls return ``None``."""
        self._shutting_down = True
        for _, handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)

    def _wakeup_getter(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return
