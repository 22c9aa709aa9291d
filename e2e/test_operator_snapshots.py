"""A snapshot request end to end through the operator, on the fast tier: ``kubectl annotate``
on a Ready RestateCluster with ``spec.snapshots`` -> the operator asks the node port for
every partition -> ``status.snapshots``. kwok runs no Restate, so the pod's node port is a
stand-in gRPC server on a unix socket (``--node-address-template``, ``e2e/node_standin.py``)
answering as one joined node leading every partition, and ``CreatePartitionSnapshot`` as
Restate does. (The real restate-server is in ``e2e/test_restate_snapshots.py``.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from e2e.node_standin import RestateStandIn, operator_over_standins
from e2e.operator_fixtures import HasKubeconfig, cluster_manifest, wait_phase
from e2e.operator_process import Kubectl, OperatorProcess, wait_for
from restate_op.snapshots import DESTINATION_ENV, SNAPSHOT_ANNOTATION

NAME = "snap-e2e"
PARTITIONS = 4
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def node_and_operator(
    kube: HasKubeconfig, restate_crd: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RestateStandIn, OperatorProcess]]:
    with operator_over_standins(kube.kubeconfig, tmp_path_factory, NAME, 1, PARTITIONS) as both:
        yield both


def _snapshots(kubectl: Kubectl, token: str) -> dict[str, Any] | None:
    obj = kubectl.get("restatecluster", NAME) or {}
    section = (obj.get("status") or {}).get("snapshots") or {}
    return dict(section) if section.get("request") == token else None


def test_an_annotation_takes_a_snapshot_of_every_partition(
    kubectl: Kubectl, node_and_operator: tuple[RestateStandIn, OperatorProcess]
) -> None:
    node, _ = node_and_operator
    manifest = cluster_manifest(NAME, snapshots={"destination": "s3://backups/snap-e2e"})
    kubectl.apply(manifest)
    try:
        wait_phase(kubectl, NAME, "Ready", timeout=120)
        sts = kubectl.get("statefulset", "restate", NAME) or {}
        [container] = [
            c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "restate"
        ]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env[DESTINATION_ENV] == "s3://backups/snap-e2e"
        assert not node.snapshots, "no request, no snapshot"

        kubectl.run("annotate", "restatecluster", NAME, f"{SNAPSHOT_ANNOTATION}=first")
        first = wait_for(lambda: _snapshots(kubectl, "first"), 60, what="status.snapshots first")
        assert first["partitions"] == [
            {"partition": p, "snapshotId": f"snap_{p}_1", "minAppliedLsn": 10 + p}
            for p in range(PARTITIONS)
        ]
        assert first.get("takenAt") and "error" not in first
        assert sorted(node.snapshots) == list(range(PARTITIONS)), "each partition once per token"

        kubectl.run(
            "annotate", "restatecluster", NAME, f"{SNAPSHOT_ANNOTATION}=second", "--overwrite"
        )
        second = wait_for(lambda: _snapshots(kubectl, "second"), 60, what="status.snapshots 2")
        assert [p["snapshotId"] for p in second["partitions"]] == [
            f"snap_{p}_2" for p in range(PARTITIONS)
        ]
        assert sorted(node.snapshots) == sorted(2 * list(range(PARTITIONS)))
        assert (kubectl.get("restatecluster", NAME) or {})["status"]["phase"] == "Ready"
    finally:
        kubectl.run("delete", "restatecluster", NAME, "--wait=false", check=False)
        wait_for(lambda: kubectl.get("namespace", NAME) is None, 120, what="namespace deleted")
