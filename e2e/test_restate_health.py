"""The operator's reader of Restate's own health (restate_op.restate_health) against real
restate-server nodes in a loopback-only namespace: three nodes provisioned with replication
2, every partition led, every node a metadata member; a node killed shows as not answering
and, once the cluster controller notices, dead; its partitions move to a live leader."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

from e2e.polling import poll
from e2e.restate_netns import (
    QUIET_LOG_ENV,
    SMALL_MEMORY_ENV,
    LoopbackNetns,
    RestateBinaries,
    restatectl,
    start_cluster,
)
from restate_op.restate_health import RestateHealth, problems
from restate_op.restate_health_reader import read_health

EXTRA_ENV = {**SMALL_MEMORY_ENV, **QUIET_LOG_ENV, "RESTATE_DEFAULT_NUM_PARTITIONS": "8"}
PODS = ("restate-0", "restate-1", "restate-2")


def _read(
    netns: LoopbackNetns, targets: dict[str, str], known: RestateHealth | None = None
) -> RestateHealth:
    result = netns.call(lambda: asyncio.run(read_health(targets, 0.0, known)))
    assert isinstance(result, RestateHealth)
    return result


async def test_health_of_three_real_nodes_and_of_one_killed(
    netns: LoopbackNetns, restate_binaries: RestateBinaries, tmp_path: Path
) -> None:
    nodes = await asyncio.to_thread(
        start_cluster,
        netns,
        restate_binaries,
        tmp_path,
        size=3,
        cluster_name="e2e-health",
        extra_env=EXTRA_ENV,
    )
    targets = {pod: f"{node.host}:5122" for pod, node in zip(PODS, nodes, strict=True)}

    before = _read(netns, targets)
    assert before.error is not None, "an unprovisioned cluster has nobody to answer for it"
    assert all(p.ident is not None and p.ident.node_id is None for p in before.pods)

    provision: subprocess.CompletedProcess[str] = await asyncio.to_thread(
        restatectl,
        netns,
        restate_binaries,
        nodes[0].node_url,
        "provision",
        "--replication",
        "2",
        "--yes",
    )
    assert provision.returncode == 0, provision.stdout + provision.stderr
    for node in nodes:
        await asyncio.to_thread(node.wait_healthy, 90)

    def healthy() -> RestateHealth | None:
        health = _read(netns, targets)
        return health if health.ok and not problems(health, PODS) else None

    health = await asyncio.to_thread(poll, healthy, within=90, what="a healthy cluster")
    assert health is not None
    assert health.configuration is not None
    assert health.configuration.partitions == 8
    assert health.configuration.replication is not None and "2" in health.configuration.replication
    assert sorted(health.members) == list(PODS)
    assert health.led == frozenset(range(8))
    ids = {p.pod: p.ident.node_id for p in health.pods if p.ident is not None}
    assert None not in ids.values() and len(set(ids.values())) == 3, ids
    assert {health.pod_of(n.node_id) for n in health.nodes} == set(PODS)

    assert nodes[2].process is not None
    nodes[2].process.stop(sig=signal.SIGKILL)

    def noticed() -> tuple[str, ...] | None:
        found = problems(_read(netns, targets, health), PODS)
        return found if any("restate-2" in p and "dead" in p for p in found) else None

    found = await asyncio.to_thread(poll, noticed, within=60, what="restate-2 dead")
    assert found is not None
    assert any(p.startswith("pod restate-2: the node port") for p in found), found

    def led_again() -> RestateHealth | None:
        again = _read(netns, targets, health)
        return again if again.ok and again.led == frozenset(range(8)) else None

    await asyncio.to_thread(poll, led_again, within=60, what="every partition led again")
