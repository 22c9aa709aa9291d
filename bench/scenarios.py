"""The benchmark scenarios. Each starts its own control plane (so one scenario's leftovers,
say 1000 namespaces being deleted, never load the next) and returns plain JSON-able figures.

Definitions (also in docs/benchmarks.md):

- *create → children applied*: from sending the create request of a RestateCluster to the
  probe's watch seeing its StatefulSet, which the operator applies last of all children.
- *pods Ready → status Ready*: from the watch seeing the StatefulSet report
  ``readyReplicas == spec.replicas`` to the watch seeing the RestateCluster's
  ``status.phase == Ready`` for the current generation.
- *requests per new cluster*: the operator's requests that concern one cluster (applies,
  status writes, Events, reads), i.e. everything but watches and the background Lease and
  API discovery requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import procstat
from bench.audit import AuditLog, cluster_of, per_cluster
from bench.controlplane import BenchControlPlane
from bench.operator import (
    BACKGROUND_KINDS,
    BenchOperator,
    Counts,
    by_verb,
    by_verb_kind,
    delta,
    total,
    writes,
)
from bench.probe import Probe
from bench.stats import summary
from e2e.operator_fixtures import cluster_manifest
from e2e.polling import TimedOut, apoll
from restate_op.kube import resources

Log = Callable[[str], None]
#: How the operator's verbs appear in the audit log (server-side apply is a PATCH).
AUDIT_VERB = {"apply": "patch"}
#: Watches are the informers' streams. Lists count: the informers list only at start-up (and
#: after a 410), so a list during a measurement is one made for a cluster.
CLUSTER_VERBS_EXCLUDED = ("watch",)


@dataclass
class Rig:
    """One control plane with the CRD, RBAC, the probe and the audit log reader."""

    cp: BenchControlPlane
    operator_kubeconfig: Path
    probe: Probe
    audit: AuditLog
    workdir: Path
    log: Log
    operators: list[BenchOperator] = field(default_factory=list)

    async def start_operator(
        self, name: str, args: Sequence[str] = (), node_address_template: str | None = None
    ) -> BenchOperator:
        op = BenchOperator(
            self.operator_kubeconfig, self.workdir, name, args, node_address_template
        )
        self.operators.append(op)
        await asyncio.to_thread(op.start)
        return op

    async def stop_operator(self, op: BenchOperator) -> None:
        await asyncio.to_thread(op.stop)

    def pids(self, op: BenchOperator) -> dict[str, int]:
        return {**self.cp.pids(), "operator": op.pid, "bench": os.getpid()}


@contextlib.asynccontextmanager
async def rig(
    workdir: Path, label: str, log: Log, keep: bool, *, watch_pvcs: bool = False
) -> AsyncIterator[Rig]:
    """A fresh control plane for one scenario; torn down (and deleted unless ``keep``).

    ``watch_pvcs`` for the scenarios that time volume growth: a watch the others do not
    need would only load the CPUs they measure.
    """
    directory = workdir / label
    cp = BenchControlPlane(work_dir=directory, keep_work_dir=True)
    log(f"[{label}] starting control plane in {directory}")
    await asyncio.to_thread(cp.start)
    probe: Probe | None = None
    r: Rig | None = None
    try:
        kubeconfig = await asyncio.to_thread(cp.install_operator_prerequisites)
        probe = await Probe.connect(cp.kubeconfig, watch_pvcs=watch_pvcs)
        await _warm_up(probe)
        r = Rig(cp, kubeconfig, probe, AuditLog(cp.audit_log), directory, log)
        yield r
    finally:
        if r is not None:
            for op in r.operators:
                await asyncio.to_thread(op.stop)
        if probe is not None:
            await probe.close()
        await asyncio.to_thread(cp.stop)
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)


# -- helpers ---------------------------------------------------------------------------------


async def _warm_up(probe: Probe) -> None:
    """Create and delete one RestateCluster before any operator runs.

    The first write of a just-installed CRD's resource takes the API server about two
    seconds (it sets up that resource's storage); measured, that would be charged to
    whichever cluster happens to come first.
    """
    manifest = cluster_manifest("bench-warm-up")
    await probe.client.create(manifest, kind=resources.RESTATE_CLUSTER)
    await probe.until(lambda: probe.clusters.get(None, "bench-warm-up") is not None, within=60)
    await probe.client.delete(resources.RESTATE_CLUSTER, "bench-warm-up")
    await probe.until(lambda: probe.clusters.get(None, "bench-warm-up") is None, within=60)


async def reading(op: BenchOperator) -> Counts:
    return await asyncio.to_thread(op.requests)


async def settle(op: BenchOperator, quiet: float = 3.0, limit: float = 120.0) -> float:
    """Wait until the operator has sent no cluster request for ``quiet`` seconds and its
    queue is empty; returns the seconds waited."""
    started = time.monotonic()
    last = -1
    since = time.monotonic()

    async def quiet_for() -> bool:
        nonlocal last, since
        current = total(await reading(op), exclude_kinds=BACKGROUND_KINDS)
        depth = await asyncio.to_thread(op.queue_depth)
        if current != last or depth:
            last, since = current, time.monotonic()
            return False
        return time.monotonic() - since >= quiet

    with contextlib.suppress(TimedOut):
        await apoll(quiet_for, within=limit, what="a quiet operator", interval=0.5)
    return round(time.monotonic() - started, 1)


def cluster_requests(counts: Counts) -> int:
    """Requests about clusters: everything but watches and background kinds."""
    return int(
        sum(
            v
            for (verb, kind), v in counts.items()
            if verb not in CLUSTER_VERBS_EXCLUDED and kind not in BACKGROUND_KINDS
        )
    )


def as_audit_verbs(counts: Counts) -> dict[str, int]:
    """The operator's own counter, with verbs renamed as the audit log names them."""
    mapped: dict[str, int] = {}
    for (verb, _kind), value in counts.items():
        v = AUDIT_VERB.get(verb, verb)
        mapped[v] = mapped.get(v, 0) + int(value)
    return dict(sorted(mapped.items()))


def _cpu(
    before: dict[str, procstat.ProcSample], after: dict[str, procstat.ProcSample]
) -> dict[str, float]:
    return procstat.cpu_delta(before, after)


def _mib(n: int) -> float:
    return round(n / 1024**2, 1)


def _names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i:04d}" for i in range(n)]


def _ready_times(probe: Probe, names: Sequence[str], generation: int = 1) -> list[float]:
    found = [probe.seen(n, f"ready@{generation}") for n in names]
    return [t for t in found if t is not None]


def _gap(probe: Probe, names: Sequence[str], start: str, end: str) -> list[float]:
    gaps = []
    for n in names:
        a, b = probe.seen(n, start), probe.seen(n, end)
        if a is not None and b is not None:
            gaps.append(b - a)
    return gaps


# -- converge: one cluster after another --------------------------------------------------------


async def converge(r: Rig, op: BenchOperator, n: int) -> dict[str, Any]:
    """Create ``n`` clusters one after another, each once the previous one is Ready."""
    names = _names("conv", n)
    req0 = await reading(op)
    t0 = time.time()
    failed: list[str] = []
    for i, name in enumerate(names):
        await r.probe.create(cluster_manifest(name))
        ok = await r.probe.until(
            lambda name=name: r.probe.seen(name, "ready@1") is not None,  # type: ignore[misc]
            within=120,
        )
        if not ok:
            failed.append(name)
        if (i + 1) % 10 == 0:
            r.log(f"[converge] {i + 1}/{n} Ready")
    await settle(op)
    t1 = time.time()
    counts = delta(await reading(op), req0)
    audited = r.audit.requests(t0, t1)
    attributed = per_cluster(audited)
    children = _children_applied(audited)
    return {
        "clusters": n,
        "not_ready": failed,
        "create_to_children_applied_s": summary(_gap(r.probe, names, "sent", "sts")),
        "children_applied_to_pods_ready_s": summary(_gap(r.probe, names, "sts", "sts-ready")),
        "pods_ready_to_status_ready_s": summary(_gap(r.probe, names, "sts-ready", "ready@1")),
        "create_to_status_ready_s": summary(_gap(r.probe, names, "sent", "ready@1")),
        "requests_per_cluster": round(cluster_requests(counts) / n, 2),
        "requests_per_cluster_by_verb_kind": {
            verb: {kind: round(v / n, 2) for kind, v in kinds.items()}
            for verb, kinds in by_verb_kind(
                {k: v for k, v in counts.items() if k[1] not in BACKGROUND_KINDS}
            ).items()
            if verb not in CLUSTER_VERBS_EXCLUDED
        },
        "audit_requests_per_cluster": summary([float(v) for v in attributed.values()]),
        "children_per_cluster": summary([float(v) for v in children.values()]),
        "operator_requests_by_verb": by_verb(counts),
        "audit_requests_by_verb": r.audit.by_verb(t0, t1),
    }


def _children_applied(audited: Sequence[Any]) -> dict[str, int]:
    """Distinct child objects the operator server-side applied, per cluster."""
    objects: dict[str, set[tuple[str, str, str]]] = {}
    for req in audited:
        if req.verb != "patch" or req.resource.startswith("restateclusters"):
            continue
        if req.resource == "events":
            continue
        cluster = cluster_of(req)
        if cluster is not None:
            objects.setdefault(cluster, set()).add((req.resource, req.namespace, req.name))
    return {c: len(o) for c, o in objects.items()}


# -- expansion -------------------------------------------------------------------------------


async def expansion(r: Rig, op: BenchOperator, reps: int) -> dict[str, Any]:
    """Raise the storage of a Ready 3-replica cluster; time each step to Ready again."""
    new_bytes = 4 * 1024**3
    results: list[dict[str, Any]] = []
    for i in range(reps):
        name = f"exp-{i:02d}"
        manifest = cluster_manifest(name, cluster={"autoProvision": False})
        manifest["spec"]["compute"]["replicas"] = 3
        await r.probe.create(manifest)
        if not await r.probe.until(
            lambda name=name: r.probe.seen(name, "ready@1") is not None,  # type: ignore[misc]
            within=120,
        ):
            results.append({"cluster": name, "error": "never Ready before expansion"})
            continue
        await settle(op, quiet=2.0)
        req0 = await reading(op)
        t_patch = time.time()
        await r.probe.client.patch_merge(
            resources.RESTATE_CLUSTER,
            name,
            None,
            {"spec": {"storage": {"storageRequestBytes": new_bytes}}},
        )
        ok = await r.probe.until(
            lambda name=name: r.probe.seen(name, "ready@2") is not None,  # type: ignore[misc]
            within=180,
        )
        await settle(op, quiet=2.0)
        counts = delta(await reading(op), req0)
        marks = r.probe.marks.get(name, {})
        pvc_marks = [t for label, t in marks.items() if label.endswith(f":{new_bytes}")]
        new_sts = [t for label, t in marks.items() if label.startswith("sts:") and t > t_patch]
        entry: dict[str, Any] = {
            "cluster": name,
            "ready": ok,
            "to_expanding_s": _since(marks.get("phase:Expanding"), t_patch),
            "to_statefulset_recreated_s": _since(min(new_sts) if new_sts else None, t_patch),
            "to_all_pvcs_grown_s": _since(max(pvc_marks) if len(pvc_marks) == 3 else None, t_patch),
            "to_status_ready_s": _since(marks.get("ready@2"), t_patch),
            "operator_requests": by_verb_kind(
                {k: v for k, v in counts.items() if k[1] not in BACKGROUND_KINDS}
            ),
        }
        results.append(entry)
        r.log(f"[expansion] {name}: Ready with 4Gi after {entry['to_status_ready_s']} s")
    times = [e["to_status_ready_s"] for e in results if e.get("to_status_ready_s") is not None]
    return {
        "replicas": 3,
        "from_bytes": 2 * 1024**3,
        "to_bytes": new_bytes,
        "to_status_ready_s": summary(times),
        "runs": results,
    }


def _since(t: float | None, start: float) -> float | None:
    return None if t is None else round(t - start, 3)


# -- a burst: N clusters at once -------------------------------------------------------------


async def burst(r: Rig, op: BenchOperator, prefix: str, n: int, within: float) -> dict[str, Any]:
    """Create ``n`` clusters at once and wait for all of them to be Ready."""
    names = _names(prefix, n)
    pids = r.pids(op)
    before = procstat.sample_all(pids)
    req0 = await reading(op)
    reconciles0 = await asyncio.to_thread(op.reconciles)
    t0 = time.time()
    create = asyncio.create_task(r.probe.create_all(cluster_manifest(x) for x in names))

    def progress() -> bool:
        # Each scenario has a control plane of its own: every cluster in it is one of ours.
        return r.probe.tally["ready@1"] >= n

    ok = await r.probe.until(progress, within)
    await create
    t_all_ready = time.time()
    settled = await settle(op)
    t1 = time.time()
    after = procstat.sample_all(pids)
    counts = delta(await reading(op), req0)
    ready = _ready_times(r.probe, names)
    sent = [t for t in (r.probe.seen(x, "sent") for x in names) if t is not None]
    created = [t for t in (r.probe.seen(x, "created") for x in names) if t is not None]
    audited = r.audit.requests(t0, t1)
    errors = await asyncio.to_thread(op.reconcile_errors)
    reconciles = await asyncio.to_thread(op.reconciles) - reconciles0
    return {
        "clusters": n,
        "all_ready": ok,
        "ready": len(ready),
        "all_ready_s": round(max(ready) - min(sent), 2) if ok else None,
        "timed_out_after_s": None if ok else round(t_all_ready - t0, 1),
        "creates_took_s": round(max(created) - min(sent), 2) if created else None,
        "create_to_ready_s": summary(_gap(r.probe, names, "sent", "ready@1")),
        "create_to_children_applied_s": summary(_gap(r.probe, names, "sent", "sts")),
        "children_applied_to_pods_ready_s": summary(_gap(r.probe, names, "sts", "sts-ready")),
        "pods_ready_to_status_ready_s": summary(_gap(r.probe, names, "sts-ready", "ready@1")),
        "settle_s": settled,
        "cpu_seconds": _cpu(before, after),
        "operator_rss_mib": _mib(after["operator"].rss_bytes),
        "operator_peak_rss_mib": _mib(after["operator"].peak_rss_bytes),
        "operator_requests_by_verb": by_verb(counts),
        "operator_requests_by_verb_kind": by_verb_kind(counts),
        "operator_requests_as_audit_verbs": as_audit_verbs(counts),
        "audit_requests_by_verb": r.audit.by_verb(t0, t1),
        "audit_requests_total": len(audited),
        "requests_per_cluster": round(cluster_requests(counts) / n, 2),
        "reconcile_errors": errors,
        "reconciles_per_cluster": round(reconciles / n, 2),
    }


async def idle(r: Rig, op: BenchOperator, seconds: float) -> dict[str, Any]:
    """What a converged operator costs when nothing changes."""
    pids = r.pids(op)
    before = procstat.sample_all(pids)
    req0 = await reading(op)
    t0 = time.time()
    await asyncio.sleep(seconds)
    t1 = time.time()
    after = procstat.sample_all(pids)
    counts = delta(await reading(op), req0)
    minutes = (t1 - t0) / 60
    cpu = _cpu(before, after)
    audit_verbs = r.audit.by_verb(t0, t1)
    return {
        "window_s": round(t1 - t0, 1),
        "requests_per_minute": round(total(counts) / minutes, 1),
        "requests_per_minute_excluding_watch": round(
            sum(v for (verb, _), v in counts.items() if verb != "watch") / minutes, 1
        ),
        "requests_by_verb_kind": by_verb_kind(counts),
        "audit_requests_per_minute": round(sum(audit_verbs.values()) / minutes, 1),
        "audit_requests_by_verb_resource": r.audit.by_verb_resource(t0, t1),
        "operator_cpu_percent": round(100 * cpu.get("operator", 0.0) / (t1 - t0), 2),
        "cpu_percent": {k: round(100 * v / (t1 - t0), 2) for k, v in cpu.items()},
        "operator_rss_mib": _mib(after["operator"].rss_bytes),
    }


async def resync(r: Rig, n: int, period: float) -> dict[str, Any]:
    """Restart the operator over ``n`` converged clusters, then let one periodic resync run;
    count the writes of each (the target is zero)."""
    t0 = time.time()
    op = await r.start_operator(f"operator-resync-{n}", ["--resync", str(period)])
    started = time.time()
    waited = await asyncio.to_thread(op.wait_reconciles, n, 300)
    t1 = time.time()
    restart = await reading(op)
    rec1 = await asyncio.to_thread(op.reconciles)
    await asyncio.to_thread(op.wait_reconciles, rec1 + n, period + 300)
    t2 = time.time()
    periodic = delta(await reading(op), restart)
    proc = op.proc()
    await r.stop_operator(op)
    audit_restart = r.audit.requests(t0, t1)
    audit_periodic = r.audit.requests(t1, t2)

    def audit_writes(reqs: Sequence[Any]) -> int:
        return sum(
            1
            for q in reqs
            if q.verb in ("create", "update", "patch", "delete") and q.resource != "leases"
        )

    return {
        "clusters": n,
        "restart_to_ready_s": round(started - t0, 2),
        "first_pass_s": round(waited, 2),
        "restart_writes": writes(restart, exclude_kinds=("Lease",)),
        "restart_requests_by_verb_kind": by_verb_kind(restart),
        "restart_audit_writes": audit_writes(audit_restart),
        "periodic_resync_s": period,
        "periodic_writes": writes(periodic, exclude_kinds=("Lease",)),
        "periodic_requests_by_verb_kind": by_verb_kind(periodic),
        "periodic_audit_writes": audit_writes(audit_periodic),
        "operator_peak_rss_mib": _mib(proc.peak_rss_bytes),
    }
