"""Hold back status writes that only report progress, so a quick rollout costs one write.

A new cluster on a fast cluster goes Provisioning → Ready in well under a second; writing
"Provisioning", then "Waiting for pods: 0/3", "1/3", "2/3", then "Ready" costs the API server
five writes that nobody reads. A status that says Provisioning, or reports the progress of an
expansion already recorded as Expanding, is written only once it has been due for ``window``
seconds (so a slow rollout is reported after ``window`` and then at most once per ``window``).
Everything else is written at once: Ready, Degraded, Pending, the start of an expansion, and a
change to ``provisioned``.

A held status stands in for the live one in the next reconcile, so the machine does not take,
and announce with an Event, the same transition twice. It lives in memory only: after a
restart the operator starts from the live status, which is what a level-triggered reconcile
does anyway (at worst the transition's Event is sent again).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from restate_op.api.models import RestateClusterStatus

#: Phases whose status may wait: the cluster is on its way and nothing needs attention.
HOLDABLE_PHASES = frozenset({"Provisioning", "Expanding"})
#: Of those, the phases whose *start* may wait too; an expansion is announced at once.
HOLDABLE_ENTRIES = frozenset({"Provisioning"})


@dataclass(frozen=True)
class _Held:
    uid: str
    status: RestateClusterStatus
    #: When the first status still unwritten became due (monotonic seconds).
    since: float


class StatusCoalescer:
    """Per-cluster memory of a status decided but not yet written."""

    def __init__(self, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self._held: dict[str, _Held] = {}

    def held(self, name: str, uid: str) -> RestateClusterStatus | None:
        """The status held back for this cluster (None if none, or for an older namesake)."""
        entry = self._held.get(name)
        return entry.status if entry is not None and entry.uid == uid else None

    def hold(
        self,
        name: str,
        uid: str,
        desired: RestateClusterStatus,
        *,
        live_phase: str | None,
        live_provisioned: bool,
    ) -> float | None:
        """Whether to hold ``desired`` back: seconds until it is due, or None to write it now.

        ``desired`` differs from the live status, whose phase and ``provisioned`` are given.
        """
        if not self._holdable(desired, live_phase, live_provisioned):
            return None
        now = self.clock()
        entry = self._held.get(name)
        since = entry.since if entry is not None and entry.uid == uid else now
        remaining = since + self.window - now
        if remaining <= 0:
            return None
        self._held[name] = _Held(uid, desired, since)
        return remaining

    def forget(self, name: str) -> None:
        """The live status is now the latest (written, unchanged, or the cluster is gone)."""
        self._held.pop(name, None)

    def _holdable(
        self, desired: RestateClusterStatus, live_phase: str | None, live_provisioned: bool
    ) -> bool:
        if self.window <= 0 or desired.phase not in HOLDABLE_PHASES:
            return False
        if desired.phase != live_phase and desired.phase not in HOLDABLE_ENTRIES:
            return False
        # That the cluster was provisioned is recorded at once: it must survive a restart.
        return live_provisioned == bool(desired.provisioned)
