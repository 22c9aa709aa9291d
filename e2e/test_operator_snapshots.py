"""A snapshot request end to end through the operator, on the fast tier: ``kubectl annotate``
on a Ready RestateCluster with ``spec.snapshots`` -> the operator asks the node port for
every partition -> ``status.snapshots``. kwok runs no Restate, so the pod's node port is a
stand-in gRPC server on a unix socket (``--node-address-template``) answering as one joined
node leading every partition, and ``CreatePartitionSnapshot`` as Restate does. (The real
restate-server is in ``e2e/test_restate_snapshots.py``.)"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from bench.health import (
    cluster_state_answer,
    configuration_answer,
    ident_answer,
    metadata_status_answer,
)
from e2e.operator_fixtures import HasKubeconfig, cluster_manifest, wait_phase
from e2e.operator_process import Kubectl, OperatorProcess, wait_for
from restate_op import protowire as wire
from restate_op.snapshots import DESTINATION_ENV, SNAPSHOT_ANNOTATION

NAME = "snap-e2e"
PARTITIONS = 4
pytestmark = pytest.mark.e2e


class Node:
    """``restate-0``'s node port: healthy, and a snapshot per partition (``snap_<p>_<n>``)."""

    def __init__(self, socket: Path) -> None:
        self.asked: list[int] = []
        self._lock = threading.Lock()
        answers = {
            ("restate.node_ctl_svc.NodeCtlSvc", "GetIdent"): ident_answer(),
            ("restate.cluster_ctrl.ClusterCtrlSvc", "GetClusterState"): cluster_state_answer(
                PARTITIONS
            ),
            (
                "restate.cluster_ctrl.ClusterCtrlSvc",
                "GetClusterConfiguration",
            ): configuration_answer(PARTITIONS),
            ("restate.metadata_server_svc.MetadataServerSvc", "Status"): metadata_status_answer(),
        }
        by_service: dict[str, dict[str, grpc.RpcMethodHandler]] = {}
        for (service, method), answer in answers.items():
            by_service.setdefault(service, {})[method] = grpc.unary_unary_rpc_method_handler(
                self._fixed(answer)
            )
        by_service["restate.cluster_ctrl.ClusterCtrlSvc"]["CreatePartitionSnapshot"] = (
            grpc.unary_unary_rpc_method_handler(self._snapshot)
        )
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self.server.add_generic_rpc_handlers(
            tuple(grpc.method_handlers_generic_handler(s, h) for s, h in by_service.items())
        )
        socket.parent.mkdir(parents=True, exist_ok=True)
        self.server.add_insecure_port(f"unix://{socket}")

    @staticmethod
    def _fixed(answer: bytes) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        return lambda _request, _context: answer

    def _snapshot(self, request: bytes, _context: grpc.ServicerContext) -> bytes:
        partition = wire.integer(wire.fields(request), 1)
        with self._lock:
            self.asked.append(partition)
            n = self.asked.count(partition)
        return (
            wire.encode_field(1, f"snap_{partition}_{n}".encode())
            + wire.encode_field(2, partition)
            + wire.encode_field(3, 10 * n + partition)
        )


@pytest.fixture(scope="module")
def node_and_operator(
    kube: HasKubeconfig, restate_crd: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Node, OperatorProcess]]:
    sockets = tmp_path_factory.mktemp("nodes")
    node = Node(sockets / f"{NAME}-restate-0.sock")
    node.server.start()
    proc = OperatorProcess(
        kube.kubeconfig,
        tmp_path_factory.mktemp("operator"),
        node_address_template=f"unix://{sockets}/{{namespace}}-{{pod}}.sock",
    ).start()
    try:
        proc.wait_ready()
        yield node, proc
    finally:
        code = proc.stop()
        node.server.stop(grace=None)
        print(f"operator exited with {code}; log: {proc.log_path}")


def _snapshots(kubectl: Kubectl, token: str) -> dict[str, Any] | None:
    obj = kubectl.get("restatecluster", NAME) or {}
    section = (obj.get("status") or {}).get("snapshots") or {}
    return dict(section) if section.get("request") == token else None


def test_an_annotation_takes_a_snapshot_of_every_partition(
    kubectl: Kubectl, node_and_operator: tuple[Node, OperatorProcess]
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
        assert not node.asked, "no request, no snapshot"

        kubectl.run("annotate", "restatecluster", NAME, f"{SNAPSHOT_ANNOTATION}=first")
        first = wait_for(lambda: _snapshots(kubectl, "first"), 60, what="status.snapshots first")
        assert first["partitions"] == [
            {"partition": p, "snapshotId": f"snap_{p}_1", "minAppliedLsn": 10 + p}
            for p in range(PARTITIONS)
        ]
        assert first.get("takenAt") and "error" not in first
        assert sorted(node.asked) == list(range(PARTITIONS)), "each partition once per token"

        kubectl.run(
            "annotate", "restatecluster", NAME, f"{SNAPSHOT_ANNOTATION}=second", "--overwrite"
        )
        second = wait_for(lambda: _snapshots(kubectl, "second"), 60, what="status.snapshots 2")
        assert [p["snapshotId"] for p in second["partitions"]] == [
            f"snap_{p}_2" for p in range(PARTITIONS)
        ]
        assert sorted(node.asked) == sorted(2 * list(range(PARTITIONS)))
        assert (kubectl.get("restatecluster", NAME) or {})["status"]["phase"] == "Ready"
    finally:
        kubectl.run("delete", "restatecluster", NAME, "--wait=false", check=False)
        wait_for(lambda: kubectl.get("namespace", NAME) is None, 120, what="namespace deleted")
