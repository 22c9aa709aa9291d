"""Leader election on a ``coordination.k8s.io/v1`` Lease, so the chart can run two replicas.

The algorithm is client-go's ``leaderelection``:

- A candidate takes the Lease when it is free (no holder) or expired, by writing itself as
  holder with a ``PUT`` that carries the ``resourceVersion`` it read. Two candidates that
  read the same version cannot both win: the second write gets ``409 Conflict``.
- The leader renews (``renewTime``) every ``retry_period``. If it cannot renew for
  ``renew_deadline`` it steps down, which happens before ``lease_duration`` has passed and
  anyone else may take over, so two leaders never act at once.
- A renewal is one request: the leader writes over the Lease exactly as it last wrote it,
  without reading it first (client-go's fast path). The ``resourceVersion`` makes that write
  fail with ``409 Conflict`` if anyone else wrote since; only then does it read the Lease and
  decide as a candidate would.
- On shutdown the leader releases the Lease (no holder, 1 s duration) so a standby takes
  over within one ``retry_period`` instead of waiting for the lease to expire.

Expiry is judged two ways, either suffices: by the record (``renewTime`` +
``leaseDurationSeconds`` before our wall clock), and, robust to clock skew between
machines, by how long the record has stayed unchanged in our own monotonic time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from restate_op.kube.client import KubeClient, Obj
from restate_op.kube.errors import Conflict
from restate_op.kube.resources import LEASE
from restate_op.kube.times import micro_time, parse_time, utcnow

logger = logging.getLogger(__name__)


def lease_expired(spec: dict[str, Any], now: datetime) -> bool:
    """Whether a Lease ``spec`` is free or past ``renewTime + leaseDurationSeconds``.

    A record without a holder is free. A held record without a parsable ``renewTime`` (or
    ``acquireTime``) is treated as expired: nobody is keeping it alive.
    """
    if not spec.get("holderIdentity"):
        return True
    renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
    duration = spec.get("leaseDurationSeconds")
    if renewed is None or not isinstance(duration, int | float):
        return True
    return renewed + timedelta(seconds=float(duration)) < now


class LeaderElector:
    """Campaign for, hold and release one Lease.

    Example:
        >>> elector = LeaderElector(client, "restate-operator", "restate-operator-leader",
        ...                         identity=pod_name)
        >>> await elector.run(start_controllers, stop_controllers)
    """

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """Configure the election; raises ``ValueError`` if the timings cannot be safe.

        ``lease_duration > renew_deadline > retry_period`` is required: the leader must
        give up (``renew_deadline``) before a standby may take over (``lease_duration``),
        and must get more than one renewal attempt in before giving up.
        """
        if not identity:
            raise ValueError("identity must not be empty")
        if not lease_duration > renew_deadline > retry_period > 0:
            raise ValueError(
                "need lease_duration > renew_deadline > retry_period > 0, got "
                f"{lease_duration}, {renew_deadline}, {retry_period}"
            )
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._clock = clock
        self._is_leader = False
        self._stopping = False
        self._wake = asyncio.Event()
        self._observed: tuple[str, str] | None = None
        self._observed_at = 0.0
        self._last_renew = 0.0
        #: The Lease as we last wrote it while holding it: what the next renewal writes over.
        self._held: Obj | None = None
        self.observed_holder: str = ""

    @property
    def is_leader(self) -> bool:
        """Whether we hold the Lease and have renewed it within ``renew_deadline``."""
        return self._is_leader and time.monotonic() - self._last_renew < self.renew_deadline

    # -- one round -------------------------------------------------------------------

    def _observe(self, spec: dict[str, Any]) -> None:
        record = (str(spec.get("holderIdentity") or ""), str(spec.get("renewTime") or ""))
        self.observed_holder = record[0]
        if record != self._observed:
            self._observed = record
            self._observed_at = time.monotonic()

    def _expired(self, spec: dict[str, Any]) -> bool:
        if lease_expired(spec, self._clock()):
            return True
        return time.monotonic() - self._observed_at > self.lease_duration

    async def try_acquire_or_renew(self) -> bool:
        """One attempt to become or stay the holder; ``True`` when we hold the Lease now.

        A lost race (409) or a valid lease held by someone else returns ``False``; other
        API errors propagate.
        """
        started = time.monotonic()
        now = micro_time(self._clock())
        duration = max(1, math.ceil(self.lease_duration))
        if self._held is not None and not self._stopping:
            held, self._held = self._held, None
            renewed = {**(held.get("spec") or {}), "renewTime": now}
            renewed["leaseDurationSeconds"] = duration
            try:
                updated = await self.client.replace({**held, "spec": renewed})
            except Conflict:
                pass  # written by someone else since: read it and decide as a candidate
            else:
                return self._won(updated, started)
        lease = await self.client.get(LEASE, self.name, self.namespace)
        if lease is None:
            manifest: Obj = {
                "apiVersion": LEASE.api_version,
                "kind": LEASE.kind,
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {
                    "holderIdentity": self.identity,
                    "leaseDurationSeconds": duration,
                    "acquireTime": now,
                    "renewTime": now,
                    "leaseTransitions": 0,
                },
            }
            if self._stopping:
                return False
            try:
                created = await self.client.create(manifest)
            except Conflict:
                return False
            return self._won(created, started)
        spec: dict[str, Any] = dict(lease.get("spec") or {})
        self._observe(spec)
        holder = str(spec.get("holderIdentity") or "")
        if holder != self.identity and not self._expired(spec):
            return False
        if self._stopping:
            return False
        if holder != self.identity:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec.update(holderIdentity=self.identity, leaseDurationSeconds=duration, renewTime=now)
        try:
            updated = await self.client.replace({**lease, "spec": spec})
        except Conflict:
            return False
        return self._won(updated, started)

    def _won(self, lease: Obj, started: float) -> bool:
        """We hold ``lease`` (as the API server returned it), written at ``started``."""
        self._observe(lease.get("spec") or {})
        self._last_renew = started
        self._held = lease
        return True

    async def release(self) -> bool:
        """Give the Lease up now (if we hold it) and stop campaigning.

        Writes no holder and a 1 s duration so a standby takes over at its next retry.
        Call it after the leader's work has stopped. Best effort: returns ``False`` (and
        logs) if the Lease could not be written; it then expires on its own.
        """
        self._stopping = True
        self._held = None
        self._wake.set()
        if not self._is_leader:
            return False
        self._is_leader = False
        for _ in range(3):  # a renewal in flight may bump the resourceVersion once
            try:
                if await self._write_release():
                    logger.info("released lease %s/%s", self.namespace, self.name)
                    return True
                return False
            except Conflict:
                continue
            except Exception as exc:
                logger.warning("could not release lease %s/%s: %s", self.namespace, self.name, exc)
                return False
        logger.warning("could not release lease %s/%s: conflicts", self.namespace, self.name)
        return False

    async def _write_release(self) -> bool:
        lease = await self.client.get(LEASE, self.name, self.namespace)
        if lease is None:
            return False
        spec: dict[str, Any] = dict(lease.get("spec") or {})
        if spec.get("holderIdentity") != self.identity:
            return False
        now = micro_time(self._clock())
        spec.update(holderIdentity="", leaseDurationSeconds=1, renewTime=now, acquireTime=now)
        await self.client.replace({**lease, "spec": spec})
        return True

    # -- the loop --------------------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake early when :meth:`release` is called."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    async def _attempt(self, budget: float) -> bool:
        try:
            async with asyncio.timeout(max(budget, 0.1)):
                return await self.try_acquire_or_renew()
        except Exception as exc:
            logger.warning("lease %s/%s: attempt failed: %s", self.namespace, self.name, exc)
            return False

    async def _acquire(self) -> bool:
        """Campaign until we hold the Lease (``True``) or are released (``False``)."""
        while not self._stopping:
            if await self._attempt(self.renew_deadline):
                self._is_leader = True
                logger.info("lease %s/%s acquired by %s", self.namespace, self.name, self.identity)
                return True
            await self._sleep(self.retry_period * random.uniform(1.0, 1.2))
        return False

    async def _hold(self, leading: asyncio.Future[None]) -> str:
        """Renew until the work ends (``"done"``), renewal fails (``"lost"``) or
        :meth:`release` is called (``"released"``)."""
        while True:
            wake = asyncio.ensure_future(self._wake.wait())
            waiting: set[asyncio.Future[Any]] = {leading, wake}
            try:
                await asyncio.wait(waiting, timeout=self.retry_period)
            finally:
                wake.cancel()
            if self._stopping:
                return "released"
            if leading.done():
                return "done"
            remaining = self._last_renew + self.renew_deadline - time.monotonic()
            if await self._attempt(remaining):
                continue
            if self.observed_holder not in ("", self.identity):
                logger.warning(
                    "lease %s/%s taken by %s", self.namespace, self.name, self.observed_holder
                )
                return "lost"
            if time.monotonic() - self._last_renew >= self.renew_deadline:
                logger.warning(
                    "lease %s/%s: could not renew within %.0fs; stepping down",
                    self.namespace,
                    self.name,
                    self.renew_deadline,
                )
                return "lost"

    async def run(
        self,
        on_started_leading: Callable[[], Awaitable[None]],
        on_stopped_leading: Callable[[], None],
    ) -> None:
        """Campaign; while leading, run ``on_started_leading()`` and keep the Lease.

        - Losing the Lease cancels the leading work, calls ``on_stopped_leading()`` and goes
          back to campaigning.
        - If the leading work returns (or raises), the Lease is released and ``run``
          returns (or re-raises).
        - :meth:`release` ends ``run`` after stepping down.
        - Cancelling ``run`` cancels the leading work, waits for it to finish, releases the
          Lease, calls ``on_stopped_leading()`` and re-raises.
        """
        leading: asyncio.Future[None] | None = None
        try:
            while await self._acquire():
                leading = asyncio.ensure_future(on_started_leading())
                outcome = await self._hold(leading)
                term, leading = leading, None
                await self._step_down(term, on_stopped_leading, release=outcome != "lost")
                if outcome == "done":
                    term.result()
                    return
        except asyncio.CancelledError:
            if leading is not None:
                await self._step_down(leading, on_stopped_leading, release=True)
            raise

    async def _step_down(
        self,
        leading: asyncio.Future[None],
        on_stopped_leading: Callable[[], None],
        *,
        release: bool,
    ) -> None:
        """End one term: stop the work, release (unless lost), always notify."""
        try:
            await self._cancel(leading)
            if release:
                await self.release()
        finally:
            self._is_leader = False
            try:
                on_stopped_leading()
            except Exception:
                logger.exception("on_stopped_leading failed")

    @staticmethod
    async def _cancel(task: asyncio.Future[None]) -> None:
        if not task.done():
            task.cancel()
        await asyncio.wait({task})
