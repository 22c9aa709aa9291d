"""The RestateDeployment (RSD) scenario: what one version change costs and how long it takes.

Fast tier only: kwok pods, the operator as a host process with ``--restate-deployments
true``, and the stand-in admin API of :mod:`e2e.restate_admin_standin` on 127.0.0.1 (it
records every request, with its arrival time; it never calls the endpoints it is given, so
nothing contacts any address but loopback).

``n`` RestateDeployments, each in a namespace of its own (the stand-in names a version's
service after its namespace, so each RSD has its own service), all registered with the one
stand-in (one Restate: the operator's view of it is shared). Rounds:

- *register v1*: each RSD applied for the first time;
- *v1 → v2*: a new pod template; v1 is not pinned (``drainDelaySeconds: 0``), so it retires;
- *v2 → v1* (optional): the rollback, which re-uses v1's ReplicaSet and registers it again.

Per round, per version change: the operator's Kubernetes requests (audit log, by verb and
resource, watches excluded), the admin-API requests (by method and path), and from applying
the template to the new version ``Latest`` in status and to the old one ``Retired``, as
first seen by a watch. The operator's writes are audited with their response bodies, so a
write answered with the resourceVersion the object already had (a write that changed
nothing) is listed with its request line. Then an idle window: what converged RSDs cost.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.audit import AuditedRequest, AuditLog, content_digest
from bench.controlplane import AUDIT_POLICY, OPERATOR_USER, BenchControlPlane
from bench.operator import BenchOperator
from bench.probe import Probe
from bench.scenarios import Log, Rig, settle
from bench.stats import percentile
from e2e.kubehttp import JSON
from e2e.operator_process import REPO
from e2e.restate_admin_standin import Request, StandIn, StandInServer
from restate_op.api.deployment import RestateDeployment
from restate_op.deployment_identity import version_hash, versioned_name
from restate_op.deployment_observe import OWNED_BY_LABEL
from restate_op.kube import resources
from restate_op.kube.client import KubeClient
from restate_op.kube.informer import EventType, Informer, strip_managed_fields
from restate_op.restate_admin import LATEST_SQL, PINNED_SQL

UPSTREAM = REPO / "tests" / "fixtures" / "restatedeployment-upstream.yaml"
NAME = "greeter"
FIELD_MANAGER = "restate-op-bench"
WRITES = ("create", "update", "patch", "delete")
#: What the operator is started with (its own flag; the rest is BenchOperator's defaults).
OPERATOR_ARGS = ("--restate-deployments", "true", "--lease-name", "bench-rsd")

#: The bench policy, with the bodies of the operator's gets and writes: their response's
#: resourceVersion tells a write that changed nothing. Lists and watches stay at Metadata.
DEPLOYMENT_AUDIT_POLICY: JSON = {
    **AUDIT_POLICY,
    "rules": [
        {
            "level": "RequestResponse",
            "users": [OPERATOR_USER],
            "verbs": ["get", *WRITES],
        },
        *AUDIT_POLICY["rules"],
    ],
}


class DeploymentControlPlane(BenchControlPlane):
    """The bench control plane, auditing the operator's writes with their responses."""

    audit_policy = DEPLOYMENT_AUDIT_POLICY


class DeploymentProbe(Probe):
    """Watches RestateDeployments; marks ``<round>|<version>:<phase>`` per ``ns/name``, the
    first moment a version is seen in that phase during that round.

    It also keeps, per object the operator writes (RSDs, the versions' ReplicaSets and
    Services, their pods), every state seen: ``(time, resourceVersion, content digest)``.
    A write whose answer equals a state seen before the write was sent changed nothing
    (same resourceVersion) or only bookkeeping (same :func:`content_digest`).
    """

    def __init__(self, client: KubeClient) -> None:
        super().__init__(client)
        self.round = ""
        self.history: dict[tuple[str, str, str], list[tuple[float, str, str]]] = (
            collections.defaultdict(list)
        )
        self.deployments = Informer(
            client, resources.RESTATE_DEPLOYMENT, transform=strip_managed_fields
        )
        self.deployments.add_handler(self._on_deployment)
        children = [
            Informer(client, resources.REPLICA_SET, label_selector=OWNED_BY_LABEL),
            Informer(client, resources.SERVICE, label_selector=OWNED_BY_LABEL),
            Informer(client, resources.POD, label_selector="pod-template-hash"),
        ]
        for informer in children:
            informer.add_handler(self._recorder(informer.kind.plural))
        self.deployments.add_handler(self._recorder(resources.RESTATE_DEPLOYMENT.plural))
        self._informers = (self.deployments, *children)

    @classmethod
    async def connect_deployments(cls, kubeconfig: Path) -> DeploymentProbe:
        client = await KubeClient.connect(str(kubeconfig), user_agent="restate-op-bench")
        probe = cls(client)
        for informer in probe._informers:
            informer.start()
        await asyncio.gather(*(i.wait_synced() for i in probe._informers))
        return probe

    def _recorder(self, plural: str) -> Callable[[EventType, dict[str, Any]], None]:
        def record(event: EventType, obj: dict[str, Any]) -> None:
            meta = obj.get("metadata") or {}
            key = (plural, str(meta.get("namespace") or ""), str(meta.get("name")))
            self.history[key].append(
                (time.time(), str(meta.get("resourceVersion")), content_digest(obj))
            )

        return record

    def seen_before(self, q: AuditedRequest) -> tuple[bool, bool]:
        """Whether the state a write answered with was seen before it was received: its
        resourceVersion (nothing written), its content digest (only bookkeeping written)."""
        states = [
            (rv, digest)
            for at, rv, digest in self.history.get(
                (q.resource.split("/", 1)[0], q.namespace, q.name), []
            )
            if at < q.received
        ]
        if not states:
            return False, False
        rv, digest = states[-1]
        return rv == q.resource_version, digest == q.response_digest

    def _on_deployment(self, event: EventType, obj: dict[str, Any]) -> None:
        if event == "DELETED":
            return
        key = f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"
        for v in (obj.get("status") or {}).get("versions") or []:
            if v.get("name") and v.get("phase"):
                self.mark(key, f"{self.round}|{v['name']}:{v['phase']}")

    async def apply(self, manifest: dict[str, Any], label: str) -> None:
        """Server-side apply an RSD (as the benchmark, not the operator), marking when sent."""
        key = f"{manifest['metadata']['namespace']}/{manifest['metadata']['name']}"
        self.mark(key, f"{label}|sent")
        await self.client.apply(manifest, FIELD_MANAGER, kind=resources.RESTATE_DEPLOYMENT)


def manifest(namespace: str, admin_url: str, image: str) -> dict[str, Any]:
    """The upstream README's RSD, registered by URL with the stand-in, never drained."""
    raw: dict[str, Any] = yaml.safe_load(UPSTREAM.read_text())
    raw["metadata"] = {"name": NAME, "namespace": namespace}
    raw["spec"]["restate"] = {"register": {"url": admin_url}, "drainDelaySeconds": 0}
    raw["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return raw


def version_of(raw: dict[str, Any]) -> str:
    """The version name the operator gives this template (as the e2e tests compute it)."""
    spec = RestateDeployment.model_validate(raw).spec
    return versioned_name(raw["metadata"]["name"], version_hash(spec))


@dataclass(frozen=True)
class Change:
    """One version change of one RSD: the manifest applied, the version it makes current,
    and the version it replaces (``None`` for a first registration)."""

    namespace: str
    manifest: dict[str, Any]
    new: str
    old: str | None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{NAME}"


@contextlib.asynccontextmanager
async def rig(workdir: Path, log: Log, keep: bool) -> AsyncIterator[tuple[Rig, StandIn]]:
    """A fresh control plane with both CRDs and the deployment RBAC, the RSD probe and the
    stand-in admin API; torn down (and deleted unless ``keep``)."""
    directory = workdir / "rsd"
    cp = DeploymentControlPlane(work_dir=directory, keep_work_dir=True)
    log(f"[rsd] starting control plane in {directory}")
    await asyncio.to_thread(cp.start)
    probe: DeploymentProbe | None = None
    r: Rig | None = None
    try:
        kubeconfig = await asyncio.to_thread(cp.install_operator_prerequisites, deployments=True)
        probe = await DeploymentProbe.connect_deployments(cp.kubeconfig)
        await _warm_up(probe)
        with StandInServer() as server:
            r = Rig(cp, kubeconfig, probe, AuditLog(cp.audit_log), directory, log)
            yield r, server.state
    finally:
        if r is not None:
            for op in r.operators:
                await asyncio.to_thread(op.stop)
        if probe is not None:
            await probe.close()
        await asyncio.to_thread(cp.stop)
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)


async def _warm_up(probe: DeploymentProbe) -> None:
    """Create and delete one RSD before the operator runs: the first write of a new CRD's
    resource pays for setting up its storage, which would be charged to the first RSD."""
    raw = manifest("default", "http://127.0.0.1:9/", "example/warm-up")
    raw["metadata"]["name"] = "bench-warm-up"
    await probe.client.create(raw, kind=resources.RESTATE_DEPLOYMENT)
    await probe.client.delete(resources.RESTATE_DEPLOYMENT, "bench-warm-up", "default")
    await probe.until(lambda: probe.deployments.get("default", "bench-warm-up") is None, 60)


# -- the scenario ---------------------------------------------------------------------------


async def scenario(
    r: Rig,
    op: BenchOperator,
    standin: StandIn,
    n: int,
    *,
    rollback: bool,
    idle_seconds: float,
    at_once: bool,
) -> dict[str, Any]:
    """Register ``n`` RSDs, roll each to a new template (and back with ``rollback``), then
    leave them alone for ``idle_seconds``."""
    assert isinstance(r.probe, DeploymentProbe)
    assert standin.url.startswith("http://127.0.0.1:"), standin.url
    namespaces = [f"rsd-{i:04d}" for i in range(n)]
    for ns in namespaces:
        await r.probe.client.create(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
            kind=resources.NAMESPACE,
        )
    v1 = {ns: manifest(ns, standin.url, "example/greeter:v1") for ns in namespaces}
    v2 = {ns: manifest(ns, standin.url, "example/greeter:v2") for ns in namespaces}
    plan: list[tuple[str, dict[str, dict[str, Any]], dict[str, dict[str, Any]] | None]] = [
        ("register v1", v1, None),
        ("v1 → v2", v2, v1),
    ]
    if rollback:
        plan.append(("v2 → v1 (rollback)", v1, v2))
    rounds = []
    for label, new, old in plan:
        changes = [
            Change(ns, new[ns], version_of(new[ns]), None if old is None else version_of(old[ns]))
            for ns in namespaces
        ]
        r.log(f"[rsd] {label}: {n} RestateDeployments {'at once' if at_once else 'in turn'}")
        entry = await _round(r, op, standin, label, changes, at_once)
        r.log(
            f"[rsd] {label}: Latest p50 {entry['to_latest_s']['p50']} s, "
            f"{entry['kube_requests_per_change']} kube + "
            f"{entry['admin_requests_per_change']} admin requests per change"
        )
        rounds.append(entry)
    r.log(f"[rsd] idle for {idle_seconds:.0f} s")
    return {
        "deployments": n,
        "at_once": at_once,
        "rounds": rounds,
        "idle": await _idle(r, standin, namespaces, idle_seconds),
    }


def _summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """Count, p50, p95 and max in seconds (nearest rank), rounded to milliseconds."""

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 3)

    return {
        "n": len(values),
        "p50": r(percentile(values, 50)),
        "p95": r(percentile(values, 95)),
        "max": r(max(values) if values else None),
    }


async def _round(
    r: Rig, op: BenchOperator, standin: StandIn, label: str, changes: list[Change], at_once: bool
) -> dict[str, Any]:
    probe = r.probe
    assert isinstance(probe, DeploymentProbe)
    probe.round = label
    n = len(changes)
    within = max(120.0, 3.0 * n)

    def done(c: Change) -> bool:
        latest = probe.seen(c.key, f"{label}|{c.new}:Latest") is not None
        retired = c.old is None or probe.seen(c.key, f"{label}|{c.old}:Retired") is not None
        return latest and retired

    t0 = time.time()
    if at_once:
        await asyncio.gather(*(probe.apply(c.manifest, label) for c in changes))
        ok = await probe.until(lambda: all(done(c) for c in changes), within)
    else:
        ok = True
        for c in changes:
            await probe.apply(c.manifest, label)
            ok = await probe.until(lambda c=c: done(c), within) and ok  # type: ignore[misc]
    await settle(op, quiet=3.0)
    await _admin_quiet(standin, quiet=3.0)
    t1 = time.time()

    namespaces = {c.namespace for c in changes}
    audited = [q for q in r.audit.requests(t0, t1) if q.verb != "watch"]
    mine = [q for q in audited if q.namespace in namespaces]
    other = [q for q in audited if q.namespace not in namespaces and q.resource != "leases"]
    per_rsd = collections.Counter(q.namespace for q in mine)
    admin = [q for q in list(standin.requests) if t0 <= q.at < t1]
    first = changes[0]
    first_end = probe.seen(changes[1].key, f"{label}|sent") if n > 1 and not at_once else None
    return {
        "round": label,
        "changes": n,
        "all_done": ok,
        "not_done": [c.key for c in changes if not done(c)],
        "to_registering_s": _summary(_gaps(probe, label, changes, "Registering")),
        "to_latest_s": _summary(_gaps(probe, label, changes, "Latest")),
        "to_old_retired_s": _summary(_gaps(probe, label, changes, "Retired", old=True))
        if first.old
        else None,
        "kube_requests_per_change": round(len(mine) / n, 2),
        "kube_requests_per_change_by_verb_resource": _per(mine, n),
        "kube_requests_per_rsd": {
            "min": min(per_rsd.values(), default=0),
            "max": max(per_rsd.values(), default=0),
        },
        "kube_requests_outside_the_rsd_namespaces": _by_verb_resource(other),
        "admin_requests_per_change": round(len(admin) / n, 2),
        "admin_requests_per_change_by_method_path": {
            k: round(v / n, 2) for k, v in _admin_counts(admin).items()
        },
        "wasted_writes": _wasted_writes(probe, mine),
        "example_kube_requests": [
            _line(q, probe.seen(first.key, f"{label}|sent"))
            for q in mine
            if q.namespace == first.namespace
        ],
        "example_admin_requests": [
            _admin_line(q, probe.seen(first.key, f"{label}|sent"))
            for q in admin
            if first_end is None or q.at < first_end
        ]
        if not at_once
        else [],
        "window_s": round(t1 - t0, 1),
    }


def _gaps(
    probe: Probe, label: str, changes: Iterable[Change], phase: str, *, old: bool = False
) -> list[float]:
    """Seconds from applying each change to its new (``old``: its old) version first seen in
    ``phase`` during the round."""
    found = []
    for c in changes:
        a = probe.seen(c.key, f"{label}|sent")
        b = probe.seen(c.key, f"{label}|{c.old if old else c.new}:{phase}")
        if a is not None and b is not None:
            found.append(b - a)
    return found


async def _admin_quiet(standin: StandIn, quiet: float, limit: float = 60.0) -> None:
    """Until the stand-in got no request for ``quiet`` seconds (the drain polling ended)."""
    started = time.time()
    while time.time() - started < limit:
        last = standin.requests[-1].at if standin.requests else 0.0
        if time.time() - last >= quiet:
            return
        await asyncio.sleep(0.5)


def _by_verb_resource(requests: Iterable[AuditedRequest]) -> dict[str, dict[str, int]]:
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for q in requests:
        counts[q.verb][q.resource] += 1
    return {verb: dict(sorted(c.items())) for verb, c in sorted(counts.items())}


def _per(requests: Sequence[AuditedRequest], n: int) -> dict[str, dict[str, float]]:
    return {
        verb: {res: round(v / n, 2) for res, v in kinds.items()}
        for verb, kinds in _by_verb_resource(requests).items()
    }


def admin_label(q: Request) -> str:
    """``METHOD path``, with the query named (the two SQL queries share one path) and a
    forced registration told apart."""
    path = q.path
    if q.method == "DELETE" and path.startswith("/deployments/"):
        path = "/deployments/{id}"
    if q.method == "POST" and path == "/query" and isinstance(q.body, dict):
        sql = q.body.get("query")
        path += " (latest)" if sql == LATEST_SQL else " (pinned)" if sql == PINNED_SQL else ""
    if q.method == "POST" and path == "/deployments" and isinstance(q.body, dict):
        path += " (force)" if q.body.get("force") else ""
    return f"{q.method} {path}"


def _admin_counts(requests: Iterable[Request]) -> dict[str, int]:
    return dict(sorted(collections.Counter(admin_label(q) for q in requests).items()))


def _wasted_writes(
    probe: DeploymentProbe, requests: Sequence[AuditedRequest]
) -> dict[str, list[str]]:
    """The writes that changed nothing (``unchanged``: answered with the resourceVersion the
    object already had) or only bookkeeping (``bookkeeping_only``: ``managedFields``, the
    desired-hash annotation), with their request lines."""
    unchanged, bookkeeping = [], []
    for q in requests:
        if q.verb not in ("update", "patch") or not q.resource_version or q.code >= 300:
            continue
        same_version, same_content = probe.seen_before(q)
        if same_version:
            unchanged.append(_line(q))
        elif same_content:
            bookkeeping.append(_line(q))
    return {"unchanged": unchanged, "bookkeeping_only": bookkeeping}


def _line(q: AuditedRequest, start: float | None = None) -> str:
    at = f"+{q.received - start:.3f}s " if start is not None else ""
    where = f"{q.namespace}/{q.name}" if q.namespace else q.name
    return f"{at}{q.verb} {q.resource} {where} → {q.code}".rstrip()


def _admin_line(q: Request, start: float | None) -> str:
    at = f"+{q.at - start:.3f}s " if start is not None else ""
    body = ""
    if q.method == "POST" and q.path == "/deployments" and isinstance(q.body, dict):
        body = f" uri={q.body.get('uri')} force={q.body.get('force')}"
    return f"{at}{admin_label(q)}{body}"


async def _idle(
    r: Rig, standin: StandIn, namespaces: Sequence[str], seconds: float
) -> dict[str, Any]:
    """Requests per minute of the converged RSDs: the kube API (watches apart: the informers'
    streams and their re-opens) and the admin API (polled by the operator on its idle
    refresh)."""
    t0 = time.time()
    await asyncio.sleep(seconds)
    t1 = time.time()
    minutes = (t1 - t0) / 60
    audited = r.audit.requests(t0, t1)
    admin = [q for q in list(standin.requests) if t0 <= q.at < t1]
    ours = set(namespaces)
    return {
        "window_s": round(t1 - t0, 1),
        "kube_requests_per_minute": round(
            sum(1 for q in audited if q.verb != "watch" and q.resource != "leases") / minutes, 2
        ),
        "kube_requests_per_minute_of_the_rsds": round(
            sum(1 for q in audited if q.verb != "watch" and q.namespace in ours) / minutes, 2
        ),
        "kube_requests_by_verb_resource": _by_verb_resource(audited),
        "admin_requests_per_minute": round(len(admin) / minutes, 2),
        "admin_requests_by_method_path": _admin_counts(admin),
    }
