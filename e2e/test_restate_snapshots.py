"""The operator's snapshot taker (restate_op.snapshot_reader) against real restate-server
nodes in a loopback-only namespace: three nodes configured with the variables the operator
renders from ``spec.snapshots`` write a snapshot of every partition to a repository on this
machine, listed afterwards; without a repository Restate refuses each partition.

Restate 1.7.12 writes snapshots to ``s3://`` only (``file://`` stops the server at start-up:
"Unsupported protocol"), so the repository is ``e2e.s3_standin``, an S3 stand-in on a
loopback address of the same namespace that keeps every object as a file.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from e2e.polling import poll
from e2e.restate_netns import (
    QUIET_LOG_ENV,
    SMALL_MEMORY_ENV,
    LoopbackNetns,
    RestateBinaries,
    RestateNode,
    restatectl,
    start_cluster,
)
from e2e.s3_standin import S3Server
from restate_op.api.models import RestateCluster
from restate_op.restate_health import RestateHealth, problems
from restate_op.restate_health_reader import read_health
from restate_op.snapshot_reader import take_snapshots
from restate_op.snapshots import PartitionResult, snapshot_env

PARTITIONS = 4
PODS = ("restate-0", "restate-1", "restate-2")
BUCKET, PREFIX = "snapshots", "e2e"
BASE_ENV = {**SMALL_MEMORY_ENV, **QUIET_LOG_ENV, "RESTATE_DEFAULT_NUM_PARTITIONS": str(PARTITIONS)}


def _object_store_env(endpoint: str) -> dict[str, str]:
    """How the stand-in is reached: what a user sets for an S3-compatible store (MinIO and
    the like) in spec.compute.env or as [worker.snapshots] aws-* keys in spec.config."""
    return {
        "RESTATE_WORKER__SNAPSHOTS__AWS_ENDPOINT_URL": endpoint,
        "RESTATE_WORKER__SNAPSHOTS__AWS_ALLOW_HTTP": "true",
        "RESTATE_WORKER__SNAPSHOTS__AWS_REGION": "local",
        "RESTATE_WORKER__SNAPSHOTS__AWS_ACCESS_KEY_ID": "e2e",
        "RESTATE_WORKER__SNAPSHOTS__AWS_SECRET_ACCESS_KEY": "e2e",
        # Nothing to look up on an instance-metadata endpoint (there is no network anyway).
        "AWS_REGION": "local",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def _spec_env() -> dict[str, str]:
    """The variables the operator puts on every node for this spec.snapshots."""
    cluster = RestateCluster.model_validate(
        {
            "metadata": {"name": "e2e"},
            "spec": {
                "compute": {"image": "restatedev/restate:1.7.12"},
                "storage": {"storageRequestBytes": 1},
                "snapshots": {"destination": f"s3://{BUCKET}/{PREFIX}", "retained": 2},
            },
        }
    )
    return dict(snapshot_env(cluster))


async def _provisioned_cluster(
    netns: LoopbackNetns, binaries: RestateBinaries, work: Path, size: int, env: dict[str, str]
) -> list[RestateNode]:
    nodes = await asyncio.to_thread(
        start_cluster, netns, binaries, work, size=size, cluster_name="e2e-snap", extra_env=env
    )
    provision: subprocess.CompletedProcess[str] = await asyncio.to_thread(
        restatectl,
        netns,
        binaries,
        nodes[0].node_url,
        "provision",
        "--replication",
        str(min(size, 2)),
        "--yes",
    )
    assert provision.returncode == 0, provision.stdout + provision.stderr
    for node in nodes:
        await asyncio.to_thread(node.wait_healthy, 90)
    return nodes


def _healthy(netns: LoopbackNetns, targets: dict[str, str]) -> RestateHealth | None:
    health = netns.call(lambda: asyncio.run(read_health(targets, 0.0)))
    assert isinstance(health, RestateHealth)
    return health if health.ok and not problems(health, tuple(targets)) else None


def _take(netns: LoopbackNetns, target: str, partitions: int) -> tuple[PartitionResult, ...]:
    results = netns.call(lambda: asyncio.run(take_snapshots(target, partitions)))
    assert isinstance(results, tuple)
    return results


async def test_a_snapshot_of_every_partition_is_taken_and_listed(
    netns: LoopbackNetns, restate_binaries: RestateBinaries, tmp_path: Path
) -> None:
    s3 = S3Server(tmp_path / "s3", "127.0.0.20")
    netns.call(s3.make_socket)
    s3.start()
    try:
        env = {**BASE_ENV, **_spec_env(), **_object_store_env(s3.url)}
        nodes = await _provisioned_cluster(netns, restate_binaries, tmp_path, 3, env)
        targets = {pod: f"{node.host}:5122" for pod, node in zip(PODS, nodes, strict=True)}
        health = await asyncio.to_thread(
            poll, lambda: _healthy(netns, targets), within=90, what="a healthy cluster"
        )
        assert health is not None and health.configuration is not None
        partitions = health.configuration.partitions
        assert partitions == PARTITIONS

        # Asked through the last node: its cluster controller has each leader export.
        results = await asyncio.to_thread(_take, netns, targets["restate-2"], partitions)
        assert [r.partition for r in results] == list(range(PARTITIONS))
        assert all(r.error is None for r in results), [r.error for r in results]
        assert all(r.snapshot_id and r.snapshot_id.startswith("snap_") for r in results)
        assert all(r.log_id == r.partition for r in results), results

        listed = s3.store.files(BUCKET)
        for r in results:
            latest = json.loads(
                s3.store.path(BUCKET, f"{PREFIX}/{r.partition}/latest.json").read_text()
            )
            assert latest["snapshot_id"] == r.snapshot_id
            assert latest["min_applied_lsn"] == r.min_applied_lsn
            folder = f"{PREFIX}/{r.partition}/{latest['path']}/"
            assert folder.endswith(f"-{r.snapshot_id}/")
            files = [f for f in listed if f.startswith(folder)]
            assert f"{folder}metadata.json" in files and any(f.endswith(".sst") for f in files)

        # Another request, through another node: a snapshot per partition again, never older
        # (a partition that applied nothing since may answer with the snapshot it has).
        again = await asyncio.to_thread(_take, netns, targets["restate-0"], partitions)
        assert all(r.error is None and r.snapshot_id for r in again), again
        for first, second in zip(results, again, strict=True):
            assert (second.min_applied_lsn or 0) >= (first.min_applied_lsn or 0)
    finally:
        s3.stop()


async def test_without_a_repository_restate_refuses_every_partition(
    netns: LoopbackNetns, restate_binaries: RestateBinaries, tmp_path: Path
) -> None:
    nodes = await _provisioned_cluster(netns, restate_binaries, tmp_path, 1, dict(BASE_ENV))
    target = {"restate-0": f"{nodes[0].host}:5122"}
    await asyncio.to_thread(poll, lambda: _healthy(netns, target), within=90, what="healthy")
    results = await asyncio.to_thread(_take, netns, target["restate-0"], PARTITIONS)
    assert all(r.snapshot_id is None for r in results)
    assert all(
        r.error is not None and "Snapshot repository is not configured" in r.error for r in results
    ), results
