"""Hold back status writes that only report progress, so a quick rollout costs one write.

A new cluster on a fast cluster goes Provisioning → Ready in well under a second; writing
"Provisioning", then "Waiting for pods: 0/3", "1/3", "2/3", then "Ready" costs the API server
five writes that nobody reads. A status of a state marked ``coalesce: entry`` in ``states/``
(Provisioning), or of one marked ``coalesce: progress`` (Expanding) that the live status
already records, is written only once it has been due for ``window`` seconds (so a slow
rollout is reported after ``window`` and then at most once per ``window``). Everything else
is written at once: Ready, Degraded, Pending, the start of an expansion, and a change to
``provisioned``.

A held status stands in for the live one in the next reconcile, so the machine does not take,
and announce with an Event, the same transition twice. It lives in the operator's memory only
(``restate_op.executor.Memory``): after a restart the operator starts from the live status,
which is what a level-triggered reconcile does anyway (at worst the transition's Event is
sent again). Pure: the decision to hold is a function of the statuses, the held entry's age
and the time.
"""

from __future__ import annotations

from dataclasses import dataclass

from restate_op.api.models import RestateClusterStatus
from restate_op.machine import Machine


@dataclass(frozen=True)
class Held:
    """A status decided but not written yet, for the cluster with ``uid``."""

    uid: str
    status: RestateClusterStatus
    #: When the first status still unwritten became due (epoch seconds).
    since: float


def hold_for(
    machine: Machine,
    desired: RestateClusterStatus,
    *,
    live_phase: str | None,
    live_provisioned: bool,
    held_since: float | None,
    now: float,
    window: float,
) -> float | None:
    """Seconds to hold ``desired`` back, or None to write it now.

    ``desired`` differs from the live status, whose phase and ``provisioned`` are given;
    ``held_since`` is when a status held for this very cluster became due, if one is held.
    """
    if window <= 0 or desired.phase is None:
        return None
    coalesce = machine.state(desired.phase).coalesce
    if coalesce == "never" or (coalesce == "progress" and desired.phase != live_phase):
        return None
    # That the cluster was provisioned is recorded at once: it must survive a restart.
    if live_provisioned != bool(desired.provisioned):
        return None
    since = held_since if held_since is not None else now
    remaining = since + window - now
    return remaining if remaining > 0 else None
