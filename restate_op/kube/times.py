"""Kubernetes timestamps: ``Time`` (seconds) and ``MicroTime`` (six fractional digits)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (the clock the lease and events use)."""
    return datetime.now(UTC)


def micro_time(when: datetime | None = None) -> str:
    """Format as a ``MicroTime``, e.g. ``2024-05-01T12:00:00.123456Z``.

    Events' ``eventTime`` and Leases' ``renewTime`` are MicroTime fields; the API server
    rejects other precisions there.
    """
    when = (when or utcnow()).astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: object) -> datetime | None:
    """Parse a ``Time`` or ``MicroTime`` string into an aware datetime; ``None`` if invalid."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
