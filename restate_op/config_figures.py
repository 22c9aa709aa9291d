"""The retention a RestateCluster's nodes run with, as gauge figures (issue 14 #5).

Replication and partitions are Restate's own answer (``restate_health.health_figures``):
they are fixed when the cluster is provisioned, so the spec may say otherwise (drift).
Retention is read by every node at start-up, so what the spec sets (a ``RESTATE_*``
variable over the file, else Restate's default) is what the nodes run with once they
rolled. Durations are Restate's: ``"1d"``, ``"12h 30m"``, ``"90s"`` or ISO 8601
(``"P1DT12H"``); one that does not parse has no figure.
"""

from __future__ import annotations

import re
from typing import Final

from restate_op.api.models import RestateCluster
from restate_op.children.restate_config import spec_value

#: figure -> (the configuration key, Restate 1.7.12's default).
RETENTION: Final = {
    "journal_retention_seconds": ("default-journal-retention", "1d"),
    "idempotency_retention_seconds": ("default-idempotency-retention", "1d"),
    "workflow_completion_retention_seconds": ("default-workflow-completion-retention", "1d"),
}
CONFIG_FIGURES: Final = tuple(RETENTION)

_UNITS: Final = {
    **dict.fromkeys(("ns", "nsec", "nanos"), 1e-9),
    **dict.fromkeys(("us", "usec", "micros"), 1e-6),
    **dict.fromkeys(("ms", "msec", "millis"), 1e-3),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "week", "weeks"), 7 * 86400),
}
_PART = re.compile(r"\s*(\d+)\s*([a-zA-Z]+)\s*")
_ISO = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def duration_seconds(text: str) -> int | None:
    """Whole seconds of a Restate duration; None when it does not parse."""
    text = text.strip()
    iso = _ISO.match(text.upper())
    if iso is not None and text.upper() != "P" and not text.upper().endswith("T"):
        d, h, m, s = (float(iso.group(g) or 0) for g in "dhms")
        return int(d * 86400 + h * 3600 + m * 60 + s)
    total, at = 0.0, 0
    for part in _PART.finditer(text):
        if part.start() != at or part.group(2) not in _UNITS:
            return None
        total += int(part.group(1)) * _UNITS[part.group(2)]
        at = part.end()
    return int(total) if at == len(text) and text else None


def config_figures(cluster: RestateCluster) -> dict[str, int | None]:
    """Each retention figure of the cluster's nodes, in seconds (None: does not parse)."""
    figures: dict[str, int | None] = {}
    for figure, (key, default) in RETENTION.items():
        found = spec_value(cluster, key)
        # A variable from a Secret or ConfigMap wins over the file, unseen here: no figure.
        value = default if found is None else found.value
        figures[figure] = duration_seconds(value) if isinstance(value, str) else None
    return figures
