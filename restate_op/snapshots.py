"""Partition snapshots on request (issue 14 #6). Pure: what to take, and what status says.

Restate 1.7 writes a partition's snapshot to the repository every node is configured with
(``[worker.snapshots] destination``; the operator sets it from ``spec.snapshots`` through
the ``RESTATE_WORKER__SNAPSHOTS__*`` variables) when ``ClusterCtrlSvc/CreatePartitionSnapshot``
asks it to, one partition per request -- what ``restatectl snapshots create-snapshot`` does.

The trigger is the annotation ``restate.dev/snapshot`` on the RestateCluster: a value that
``status.snapshots.request`` does not hold yet is a request. Level-triggered and idempotent
per value; an operator that stops before writing the status takes the snapshot again (Restate
just makes another). ``restate_op.snapshot_reader`` asks, and only the executor calls it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from restate_op import protowire as wire
from restate_op.api.models import PartitionSnapshot, RestateCluster, SnapshotsStatus

#: The annotation whose new value asks for a snapshot of every partition.
SNAPSHOT_ANNOTATION: Final = "restate.dev/snapshot"
#: Where the executor keeps the answer of the last snapshot request of a cluster.
SNAPSHOT_MEMORY: Final = "restatecluster-snapshots"

#: Restate's variables of ``[worker.snapshots]`` (they win over the configuration file).
DESTINATION_ENV: Final = "RESTATE_WORKER__SNAPSHOTS__DESTINATION"
INTERVAL_ENV: Final = "RESTATE_WORKER__SNAPSHOTS__SNAPSHOT_INTERVAL_NUM_RECORDS"
RETAINED_ENV: Final = "RESTATE_WORKER__SNAPSHOTS__NUM_RETAINED"
DESTINATION_FIELD: Final = "spec.snapshots.destination"

NOT_CONFIGURED: Final = (
    f"{DESTINATION_FIELD} is not set: Restate has no repository to write snapshots to. Set "
    f"{DESTINATION_FIELD} (e.g. s3://bucket/prefix), then annotate the RestateCluster "
    f"with {SNAPSHOT_ANNOTATION} again"
)


@dataclass(frozen=True)
class PartitionResult:
    """What Restate answered for one partition."""

    partition: int
    snapshot_id: str | None = None
    log_id: int | None = None
    #: The snapshot covers the log up to (at least) this position.
    min_applied_lsn: int | None = None
    #: Restate refused or failed: its code and message.
    error: str | None = None


@dataclass(frozen=True)
class SnapshotRun:
    """One handled request: the token, when, and the answer per partition."""

    token: str
    taken_at: float
    partitions: tuple[PartitionResult, ...] = ()
    #: Nothing could be asked (no node answered): why.
    error: str | None = None

    @property
    def failed(self) -> tuple[PartitionResult, ...]:
        return tuple(p for p in self.partitions if p.error is not None)


def requested_token(cluster: RestateCluster) -> str | None:
    """The annotation's value; None (or empty): no request."""
    token = (cluster.metadata.annotations or {}).get(SNAPSHOT_ANNOTATION, "").strip()
    return token or None


def handled_token(cluster: RestateCluster) -> str | None:
    status = cluster.status
    return status.snapshots.request if status is not None and status.snapshots else None


def pending_token(cluster: RestateCluster) -> str | None:
    """The token of a request not handled yet, or None."""
    token = requested_token(cluster)
    return token if token is not None and token != handled_token(cluster) else None


# -- the wire -------------------------------------------------------------------------------


def encode_request(partition: int) -> bytes:
    """``CreatePartitionSnapshotRequest{partition_id}``: no minimum LSN, no log trim (the
    operator never trims a log: Restate's own trimming follows its snapshots)."""
    return wire.encode_field(1, partition)


def parse_response(partition: int, data: bytes) -> PartitionResult:
    """``CreatePartitionSnapshotResponse{1: snapshot_id, 2: log_id, 3: min_applied_lsn}``."""
    msg = wire.fields(data)
    return PartitionResult(
        partition,
        snapshot_id=wire.text(msg, 1) or None,
        log_id=wire.integer(msg, 2),
        min_applied_lsn=wire.integer(msg, 3),
    )


# -- the nodes' configuration ---------------------------------------------------------------


def snapshot_env(cluster: RestateCluster) -> list[tuple[str, str]]:
    """The ``[worker.snapshots]`` variables ``spec.snapshots`` sets (none without it).

    Variables rather than a rewritten configuration file: ``spec.config`` is mounted
    verbatim (its hash names the ConfigMap), and the user's other ``[worker.snapshots]``
    keys there (the object store's region, endpoint, credentials) still apply.
    """
    spec = cluster.spec.snapshots
    if spec is None:
        return []
    env = [(DESTINATION_ENV, spec.destination)]
    if spec.interval_records is not None:
        env.append((INTERVAL_ENV, str(spec.interval_records)))
    if spec.retained is not None:
        env.append((RETAINED_ENV, str(spec.retained)))
    return env


# -- status ---------------------------------------------------------------------------------


def _rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_status(run: SnapshotRun, previous: SnapshotsStatus | None = None) -> SnapshotsStatus:
    """``status.snapshots`` of a handled request: the last snapshot of every partition (a
    partition that failed this time keeps its earlier snapshot's id, with the error)."""
    failed = run.failed
    earlier = {p.partition: p for p in (previous.partitions or [])} if previous else {}
    error = run.error
    if error is None and failed:
        error = (
            f"{len(failed)}/{len(run.partitions)} partitions have no new snapshot "
            f"(first: partition {failed[0].partition}: {failed[0].error})"
        )
    return SnapshotsStatus(
        request=run.token,
        taken_at=_rfc3339(run.taken_at) if len(failed) < len(run.partitions) else None,
        partitions=[_partition_status(p, earlier.get(p.partition)) for p in run.partitions]
        or (previous.partitions if previous else None),
        error=error,
    )


def _partition_status(
    result: PartitionResult, earlier: PartitionSnapshot | None
) -> PartitionSnapshot:
    if result.error is None or earlier is None:
        return PartitionSnapshot(
            partition=result.partition,
            snapshot_id=result.snapshot_id,
            min_applied_lsn=result.min_applied_lsn,
            error=result.error,
        )
    return earlier.model_copy(update={"error": result.error})


def not_configured_status(token: str, previous: SnapshotsStatus | None = None) -> SnapshotsStatus:
    """A request without a repository: answered with the field to set (earlier snapshots
    stay listed)."""
    return SnapshotsStatus(
        request=token,
        partitions=previous.partitions if previous else None,
        error=NOT_CONFIGURED,
    )


def run_note(run: SnapshotRun) -> str:
    """The Event's text of a handled request."""
    if run.error is not None:
        return f"No snapshot taken for request {run.token!r}: {run.error}"
    taken = len(run.partitions) - len(run.failed)
    text = f"Snapshot request {run.token!r}: {taken}/{len(run.partitions)} partitions snapshotted"
    if run.failed:
        first = run.failed[0]
        text += f"; partition {first.partition} failed: {first.error}"
    return text
