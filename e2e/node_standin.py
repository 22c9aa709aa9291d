"""Restate's node ports for the pods of one cluster on the fast tier, where kwok runs no Restate.

One gRPC server per pod on a unix socket ``<directory>/<namespace>-restate-<i>.sock`` (the
operator reaches it through ``--node-address-template``, see :func:`node_address_template`):
``restate-<i>`` answers as node ``N<i+1>``. They share one cluster: every node alive, N1
leading every partition, every node a metadata-server member with N1 the leader.
``MetadataServerSvc/RemoveNode`` takes a member out (on the leader only, as Restate), and
``CreatePartitionSnapshot`` answers ``snap_<partition>_<n>`` for the n-th snapshot of a
partition. Answers are built by ``bench.health`` (the health benchmark's stand-in).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from bench.health import (
    PARTITIONS,
    cluster_state_answer,
    configuration_answer,
    ident_answer,
    metadata_status_answer,
)
from e2e.operator_process import OperatorProcess
from restate_op import protowire as wire

NODE_CTL = "restate.node_ctl_svc.NodeCtlSvc"
CLUSTER_CTRL = "restate.cluster_ctrl.ClusterCtrlSvc"
METADATA = "restate.metadata_server_svc.MetadataServerSvc"

Handler = Callable[[bytes, grpc.ServicerContext], bytes]


def node_address_template(directory: Path) -> str:
    """The operator's ``--node-address-template`` for stand-ins in ``directory``."""
    return f"unix://{directory}/{{namespace}}-{{pod}}.sock"


class RestateStandIn:
    """The node ports of ``replicas`` pods of the cluster in ``namespace`` (see the module)."""

    def __init__(
        self, directory: Path, namespace: str, replicas: int, partitions: int = PARTITIONS
    ) -> None:
        self.partitions = partitions
        self.nodes = tuple(range(1, replicas + 1))
        #: The metadata cluster's members and leader (node ids), as ``Status`` answers.
        self.members = set(self.nodes)
        self.leader = 1
        #: Every ``RemoveNode`` request's node id, in order (refused ones too).
        self.removals: list[int] = []
        #: Every partition ``CreatePartitionSnapshot`` was asked for, in order.
        self.snapshots: list[int] = []
        #: Calls answered, by method (every node).
        self.calls: Counter[str] = Counter()
        #: Nodes that do not answer (``pause``): dead to the cluster controller too.
        self.paused: set[int] = set()
        self._sockets = {
            node: directory / f"{namespace}-restate-{node - 1}.sock" for node in self.nodes
        }
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)
        self._servers = {node: self._server(node, self._sockets[node]) for node in self.nodes}

    def _server(self, node: int, socket: Path) -> grpc.Server:
        methods: dict[str, dict[str, Handler]] = {
            NODE_CTL: {"GetIdent": lambda _r, _c: self._ident(node)},
            CLUSTER_CTRL: {
                "GetClusterState": lambda _r, _c: self._cluster_state(),
                "GetClusterConfiguration": lambda _r, _c: configuration_answer(self.partitions),
                "CreatePartitionSnapshot": self._snapshot,
            },
            METADATA: {
                "Status": lambda _r, _c: self._status(),
                "RemoveNode": lambda request, context: self._remove(node, request, context),
            },
        }
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        server.add_generic_rpc_handlers(
            tuple(
                grpc.method_handlers_generic_handler(
                    service,
                    {m: grpc.unary_unary_rpc_method_handler(h) for m, h in handlers.items()},
                )
                for service, handlers in methods.items()
            )
        )
        server.add_insecure_port(f"unix://{socket}")
        return server

    def _ident(self, node: int) -> bytes:
        with self._lock:
            self.calls["GetIdent"] += 1
            return ident_answer(node, member=node in self.members)

    def _cluster_state(self) -> bytes:
        with self._lock:
            self.calls["GetClusterState"] += 1
            alive = [n for n in self.nodes if n not in self.paused]
        return cluster_state_answer(self.partitions, alive)

    def _status(self) -> bytes:
        with self._lock:
            return metadata_status_answer(self.members, self.leader)

    def _remove(self, node: int, request: bytes, context: grpc.ServicerContext) -> bytes:
        """Restate's leader takes the member out; a follower refuses, as Restate does. A node
        that is no member is refused too (the operator must never ask twice)."""
        removed = wire.integer(wire.fields(request), 1)
        with self._lock:
            self.removals.append(removed)
            if node != self.leader:
                context.abort(
                    grpc.StatusCode.INTERNAL,
                    "needs to be processed by the metadata cluster leader",
                )
            if removed not in self.members:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"N{removed} is no member")
            self.members.discard(removed)
        return b""

    def _snapshot(self, request: bytes, _context: grpc.ServicerContext) -> bytes:
        partition = wire.integer(wire.fields(request), 1)
        with self._lock:
            self.snapshots.append(partition)
            n = self.snapshots.count(partition)
        return (
            wire.encode_field(1, f"snap_{partition}_{n}".encode())
            + wire.encode_field(2, partition)
            + wire.encode_field(3, 10 * n + partition)
        )

    def remove_member(self, node: int) -> None:
        """Take ``node`` out of the metadata cluster behind the operator's back (as a
        ``RemoveNode`` it sent but never saw answered)."""
        with self._lock:
            self.members.discard(node)

    def pause(self, node: int) -> None:
        """Node ``node`` stops answering (its socket goes), as a frozen or crashed node;
        the others' cluster state no longer lists it alive."""
        with self._lock:
            self.paused.add(node)
        self._servers[node].stop(grace=None)

    def resume(self, node: int) -> None:
        """Node ``node`` answers again."""
        with self._lock:
            self.paused.discard(node)
        self._servers[node] = self._server(node, self._sockets[node])
        self._servers[node].start()

    def start(self) -> RestateStandIn:
        for server in self._servers.values():
            server.start()
        return self

    def stop(self) -> None:
        for server in self._servers.values():
            server.stop(grace=None)


@contextmanager
def serving(
    directory: Path, namespace: str, replicas: int, partitions: int = PARTITIONS
) -> Iterator[RestateStandIn]:
    """A started :class:`RestateStandIn` for the duration of a ``with`` block."""
    standin = RestateStandIn(directory, namespace, replicas, partitions).start()
    try:
        yield standin
    finally:
        standin.stop()


@contextmanager
def operator_over_standins(
    kubeconfig: Path,
    tmp_path_factory: pytest.TempPathFactory,
    namespace: str,
    replicas: int,
    partitions: int = PARTITIONS,
    args: Sequence[str] = (),
) -> Iterator[tuple[RestateStandIn, OperatorProcess]]:
    """Stand-ins for the ``replicas`` pods of the cluster in ``namespace`` and a ready
    operator (``args`` added) that reaches them, for the duration of a ``with`` block."""
    sockets = tmp_path_factory.mktemp("nodes")
    with serving(sockets, namespace, replicas, partitions) as standin:
        proc = OperatorProcess(
            kubeconfig,
            tmp_path_factory.mktemp("operator"),
            args=args,
            node_address_template=node_address_template(sockets),
        ).start()
        try:
            proc.wait_ready()
            yield standin, proc
        finally:
            code = proc.stop()
            print(f"operator exited with {code}; log: {proc.log_path}")
