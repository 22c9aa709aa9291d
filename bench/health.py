"""The ``health`` scenario: what reading Restate's own health costs at N Ready clusters.

kwok runs no Restate, so the nodes' answers come from a stand-in gRPC server in the bench
process, on one unix socket per cluster (``--node-address-template
unix://<dir>/{namespace}.sock``; one pod each), so that the operator keeps a channel per
pod as it would with real nodes. Each node says it joined (node 1, Alive, a metadata
member); the cluster controller sees one alive node leading every partition.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from bench import procstat, scenarios
from bench.operator import BenchOperator, by_verb_kind, delta, total
from e2e.operator_fixtures import cluster_manifest
from restate_op import protowire as wire

F = wire.encode_field
PARTITIONS = 4
REPLICATION = "{node: 1}"
METHODS = {
    "restate.node_ctl_svc.NodeCtlSvc": ("GetIdent",),
    "restate.cluster_ctrl.ClusterCtrlSvc": ("GetClusterState", "GetClusterConfiguration"),
    "restate.metadata_server_svc.MetadataServerSvc": ("Status",),
}


def ident_answer(node_id: int = 1, member: bool = True) -> bytes:
    """A joined node: Alive, ``node_id`` generation 1, metadata server Member (else Standby)."""
    return F(1, 1) + F(2, F(1, node_id) + F(2, 1)) + F(9, 3 if member else 4)


def cluster_state_answer(partitions: int = PARTITIONS, nodes: Sequence[int] = (1,)) -> bytes:
    """Every node of ``nodes`` alive (generation 1), the first leading partitions
    0 .. partitions - 1."""

    def node(node_id: int, leads: range) -> bytes:
        led = b"".join(F(3, F(1, pid) + F(2, F(3, 1))) for pid in leads)
        alive = F(1, F(1, node_id) + F(2, 1)) + led
        return F(4, F(1, node_id) + F(2, F(1, alive)))

    return F(1, b"".join(node(n, range(partitions if i == 0 else 0)) for i, n in enumerate(nodes)))


def metadata_status_answer(members: Iterable[int] = (1,), leader: int | None = 1) -> bytes:
    """The metadata cluster: ``members`` (node ids) and its ``leader`` (None: none)."""
    entries = b"".join(F(2, F(1, m) + F(2, 1)) for m in sorted(members))
    return F(1, 3) + F(2, F(1, F(1, 1)) + entries) + (F(3, leader) if leader is not None else b"")


def configuration_answer(partitions: int = PARTITIONS) -> bytes:
    return F(1, F(1, partitions) + F(2, F(1, REPLICATION.encode())))


def cluster_names(n: int) -> list[str]:
    return [f"health-{i:04d}" for i in range(n)]


class HealthStandIn:
    """A gRPC server answering as a healthy node, counting calls per method, on a socket
    ``<directory>/<namespace>.sock`` for each of ``namespaces``."""

    def __init__(self, directory: Path, namespaces: Sequence[str]) -> None:
        self.directory = directory
        #: Where the operator reaches every pod (``--node-address-template``).
        self.template = f"unix://{directory}/{{namespace}}.sock"
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        answers = {
            "GetIdent": ident_answer(),
            "GetClusterState": cluster_state_answer(),
            "GetClusterConfiguration": configuration_answer(),
            "Status": metadata_status_answer(),
        }
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        for service, methods in METHODS.items():
            handlers = {
                m: grpc.unary_unary_rpc_method_handler(self._answer(m, answers[m])) for m in methods
            }
            self.server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, handlers),)
            )
        directory.mkdir(parents=True, exist_ok=True)
        for namespace in namespaces:
            self.server.add_insecure_port(self.address(namespace))

    def address(self, namespace: str) -> str:
        """The node address of a pod of the cluster in ``namespace``."""
        return self.template.format(namespace=namespace)

    def _answer(self, method: str, answer: bytes) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        def handle(_request: bytes, _context: grpc.ServicerContext) -> bytes:
            with self._lock:
                self.calls[method] += 1
            return answer

        return handle

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.calls)

    def start(self) -> HealthStandIn:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop(grace=None)


def restate_status(obj: dict[str, Any] | None) -> dict[str, Any]:
    """A RestateCluster's ``status.restate`` (empty before Restate's view was read)."""
    status = (obj or {}).get("status") or {}
    return dict(status.get("restate") or {})


def all_led(status: dict[str, Any]) -> bool:
    """Whether a ``status.restate`` says every partition has a leader."""
    led = status.get("partitionsLed", status.get("partitions_led"))
    parts = status.get("partitions")
    return bool(parts) and led == parts


#: The two operators measured on the same clusters, one after the other: health reads off
#: (each cluster read once when the operator starts, none while Ready), then on (the default
#: interval). The first is the baseline the issue's "CPU and RSS unchanged" compares with.
#: Between them, the reads as they were before the operator kept channels (a channel per
#: pod opened and closed by every read), for the channels' share of the cost. Last, reads
#: off again: its difference from the first is the bench's noise, what "unchanged" means.
MODES = (
    ("reads off", ("--restate-health-seconds", "0")),
    ("reads on, a channel per read", ("--restate-health-channels", "0")),
    ("reads on", ()),
    ("reads off, again", ("--restate-health-seconds", "0")),
)


async def scenario(
    r: scenarios.Rig, standin: HealthStandIn, n: int, window: float, within: float
) -> dict[str, Any]:
    """``n`` clusters made Ready and led by a first operator on the stand-in's socket; then
    a fresh operator per mode (``MODES``) over the same clusters, each measured for
    ``window`` seconds once it has read every cluster and settled."""
    setup: BenchOperator = await r.start_operator(
        "operator-health-setup", node_address_template=standin.template
    )
    names = cluster_names(n)
    t0 = time.time()
    create = asyncio.create_task(r.probe.create_all(cluster_manifest(x) for x in names))
    ready = await r.probe.until(lambda: r.probe.tally["ready@1"] >= n, within)
    await create
    t_ready = time.time()

    def led() -> int:
        return sum(1 for x in names if all_led(restate_status(r.probe.clusters.get(None, x))))

    every_led = await r.probe.until(lambda: led() >= n, within)
    t_led = time.time()
    r.log(f"[health] {n} clusters Ready after {t_ready - t0:.1f} s, led after {t_led - t0:.1f} s")
    sample = restate_status(r.probe.clusters.get(None, names[0]))
    await r.stop_operator(setup)
    runs = {}
    for mode, args in MODES:
        runs[mode] = await _measure(r, standin, n, mode, args, window, within)
    return {
        "clusters": n,
        "replicas": 1,
        "partitions": PARTITIONS,
        "all_ready": ready,
        "all_ready_s": round(t_ready - t0, 1) if ready else None,
        "all_led": every_led,
        "all_led_s": round(t_led - t0, 1) if every_led else None,
        "led": led(),
        "status_restate_sample": sample,
        **runs["reads on"],
        "baseline": runs["reads off"],
        "modes": runs,
    }


async def _measure(
    r: scenarios.Rig,
    standin: HealthStandIn,
    n: int,
    mode: str,
    args: tuple[str, ...],
    window: float,
    within: float,
) -> dict[str, Any]:
    """A fresh operator with ``args`` over the ``n`` Ready clusters: its first read of each,
    a settle, then the measured window; stopped after."""
    idents = standin.counts().get("GetIdent", 0)
    op = await r.start_operator(
        f"operator-health-{len(r.operators)}", args, node_address_template=standin.template
    )
    try:
        read_all = await r.probe.until(
            lambda: standin.counts().get("GetIdent", 0) - idents >= n, within
        )
        settled = await scenarios.settle(op)
        if "--restate-health-seconds" not in args:
            # The window opens once every cluster's poll has read once, not before: a first
            # poll waits for the grid point half an interval after the start-up read, and a
            # window opened earlier would hold one round fewer than the steady state.
            states = standin.counts().get("GetClusterState", 0)
            await r.probe.until(
                lambda: standin.counts().get("GetClusterState", 0) - states >= n, within
            )
            await asyncio.sleep(5)  # off the grid: the window holds whole rounds
        pids = r.pids(op)
        before = procstat.sample_all(pids)
        req0 = await scenarios.reading(op)
        reconciles0 = await asyncio.to_thread(op.reconciles)
        calls0 = standin.counts()
        w0 = time.time()
        r.log(f"[health] {mode}: measuring for {window:.0f} s")
        await asyncio.sleep(window)
        w1 = time.time()
        after = procstat.sample_all(pids)
        counts = delta(await scenarios.reading(op), req0)
        reconciles = await asyncio.to_thread(op.reconciles) - reconciles0
        calls1 = standin.counts()
    finally:
        await r.stop_operator(op)
    minutes = (w1 - w0) / 60
    cpu = procstat.cpu_delta(before, after)
    by_method = {m: calls1.get(m, 0) - calls0.get(m, 0) for m in sorted(calls1)}
    grpc_total = sum(by_method.values())
    return {
        "mode": mode,
        "operator_args": list(args),
        "read_every_cluster": read_all,
        "settle_s": settled,
        "window_s": round(w1 - w0, 1),
        "grpc_calls": by_method,
        "grpc_calls_per_cluster_per_minute": round(grpc_total / n / minutes, 2),
        "grpc_calls_per_cluster_per_minute_by_method": {
            m: round(v / n / minutes, 2) for m, v in by_method.items()
        },
        "requests_per_minute": round(total(counts) / minutes, 1),
        # A periodic read rides no reconcile: only a changed answer wakes one.
        "reconciles_per_minute": round(reconciles / minutes, 1),
        "requests_per_minute_excluding_watch": round(
            sum(v for (verb, _), v in counts.items() if verb != "watch") / minutes, 1
        ),
        "requests_by_verb_kind": by_verb_kind(counts),
        "operator_cpu_percent": round(100 * cpu.get("operator", 0.0) / (w1 - w0), 2),
        "cpu_percent": {k: round(100 * v / (w1 - w0), 2) for k, v in cpu.items()},
        "operator_rss_mib": round(after["operator"].rss_bytes / 1024**2, 1),
        "operator_peak_rss_mib": round(after["operator"].peak_rss_bytes / 1024**2, 1),
    }
