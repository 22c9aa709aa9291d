"""Helpers of the fault, bad-input and security e2e tests: operators started and stopped per
test, snapshots of what a cluster owns, and the "nothing lost" comparison."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e.metrics import samples
from e2e.operator_process import NO_NETWORK_NODE_ADDRESS, Kubectl, OperatorProcess, wait_for
from restate_op.api.models import RestateCluster
from restate_op.faults import CRASH_ENV, CRASH_EXIT_CODE, selects
from restate_op.observe import Observation
from restate_op.plan import make_plan
from restate_op.settings import OperatorSettings

MANAGED = "app.kubernetes.io/managed-by=restate-operator"
CHILD_KINDS = (
    "serviceaccounts,services,configmaps,statefulsets,poddisruptionbudgets,networkpolicies"
)
CRASH_LINE = re.compile(r"injected crash at (\S+) \(cluster (\S+)\)")

ChildKey = tuple[str, str]


@contextlib.contextmanager
def running_operator(
    kubeconfig: Path,
    workdir: Path,
    name: str,
    *,
    args: Sequence[str] = ("--leader-elect", "false"),
    env: Mapping[str, str] | None = None,
    ready: bool = True,
    node_address_template: str = NO_NETWORK_NODE_ADDRESS,
) -> Iterator[OperatorProcess]:
    """An operator process for the duration of a ``with`` block (SIGTERM on exit)."""
    proc = OperatorProcess(
        kubeconfig,
        workdir,
        name=name,
        args=args,
        env=env,
        node_address_template=node_address_template,
    ).start()
    try:
        if ready:
            proc.wait_ready(90)
        yield proc
    finally:
        proc.stop()


def start_crash_operator(
    kubeconfig: Path,
    workdir: Path,
    switch: str,
    args: Sequence[str] = (),
    node_address_template: str = NO_NETWORK_NODE_ADDRESS,
) -> OperatorProcess:
    """An operator that exits with code 86 at the first fault point ``switch`` selects.

    Waits until it serves (CRDs found, caches synced) or has already crashed.
    ``node_address_template``: where it reaches Restate's node ports (``e2e/node_standin.py``).
    """
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", switch).strip("-")
    proc = OperatorProcess(
        kubeconfig,
        workdir,
        name=f"crash-{slug}",
        args=["--leader-elect", "false", *args],
        env={CRASH_ENV: switch},
        node_address_template=node_address_template,
    ).start()

    def serving() -> bool:
        return not proc.alive or proc.http("/readyz")[0] == 200

    wait_for(serving, 90, what=f"crash operator ({switch}) to serve")
    return proc


def wait_crash(proc: OperatorProcess, switch: str, cluster: str, timeout: float = 90) -> str:
    """Wait for the injected crash; return the point it crashed at (selected by ``switch``)."""
    try:
        code = proc.wait_exit(timeout)
    except Exception:
        proc.kill()
        raise AssertionError(
            f"operator did not reach fault point {switch} in {timeout}s:\n{proc.logs()[-3000:]}"
        ) from None
    logs = proc.logs()
    assert code == CRASH_EXIT_CODE, f"exit code {code}, not {CRASH_EXIT_CODE}:\n{logs[-3000:]}"
    match = CRASH_LINE.search(logs)
    assert match, logs[-3000:]
    point, crashed_on = match[1], match[2]
    assert selects(switch, point), (point, switch)
    assert crashed_on == cluster, f"crashed at {point} on cluster {crashed_on}, not {cluster}"
    return point


@dataclass(frozen=True)
class Snapshot:
    """UIDs of everything a cluster owns or uses, at one moment."""

    namespace: str | None
    children: dict[ChildKey, str]
    pvcs: dict[str, str]
    pods: dict[str, str]
    pvc_requests: dict[str, str] = field(default_factory=dict)


def snapshot(kubectl: Kubectl, name: str) -> Snapshot:
    ns = kubectl.get("namespace", name)
    items = kubectl.json("get", CHILD_KINDS, "-n", name, "-l", MANAGED)["items"]
    pvcs = kubectl.json("get", "pvc", "-n", name)["items"]
    pods = kubectl.json("get", "pods", "-n", name)["items"]
    return Snapshot(
        namespace=ns["metadata"]["uid"] if ns else None,
        children={(i["kind"], i["metadata"]["name"]): i["metadata"]["uid"] for i in items},
        pvcs={p["metadata"]["name"]: p["metadata"]["uid"] for p in pvcs},
        pods={
            p["metadata"]["name"]: p["metadata"]["uid"]
            for p in pods
            if not p["metadata"].get("deletionTimestamp")
        },
        pvc_requests={
            p["metadata"]["name"]: p["spec"]["resources"]["requests"]["storage"] for p in pvcs
        },
    )


def desired_children(manifest: Mapping[str, Any]) -> list[ChildKey]:
    """The children the operator builds for ``manifest``, in apply order (Namespace first)."""
    raw = {**manifest, "metadata": {**manifest["metadata"], "uid": "0", "generation": 1}}
    obs = Observation(
        cluster=RestateCluster.model_validate(raw),
        raw=raw,
        namespace=None,
        children={},
        pvcs=(),
        storage_classes={},
        settings=OperatorSettings(),
    )
    return [(m["kind"], m["metadata"]["name"]) for m in make_plan(obs).apply]


def assert_nothing_lost(
    before: Snapshot,
    after: Snapshot,
    *,
    expected: Sequence[ChildKey],
    may_recreate: Sequence[str] = (),
    pods_may_roll: bool = False,
    pods_may_go: Sequence[str] = (),
) -> None:
    """Converged without loss: exactly the expected children (no duplicates, nothing stale),
    the same objects where nothing required a new one, every PVC kept, no pod restarted."""
    wanted = {k for k in expected if k[0] != "Namespace"}
    assert set(after.children) == wanted, (
        f"children differ: extra {sorted(set(after.children) - wanted)}, "
        f"missing {sorted(wanted - set(after.children))}"
    )
    assert sum(1 for k in after.children if k[0] == "ConfigMap") == 1
    assert sum(1 for k in after.children if k[0] == "StatefulSet") == 1
    if before.namespace is not None:
        assert after.namespace == before.namespace, "the Namespace was re-created"
    replaced = [
        key
        for key, uid in before.children.items()
        if key in after.children and after.children[key] != uid and key[0] not in may_recreate
    ]
    assert not replaced, f"re-created although nothing required it: {replaced}"
    lost = {n: u for n, u in before.pvcs.items() if after.pvcs.get(n) != u}
    assert not lost, f"PVCs deleted or replaced: {lost}"
    if not pods_may_roll:
        restarted = [
            n for n, uid in before.pods.items() if n not in pods_may_go and after.pods.get(n) != uid
        ]
        assert not restarted, f"pods restarted without a reason: {restarted}"


def api_requests(operator: OperatorProcess) -> float:
    """Every API request the operator sent so far (any verb, failed ones included)."""
    return sum(v for _, v in samples(operator, "restate_operator_api_requests_total"))


def requests_by(operator: OperatorProcess, verb: str, kind: str) -> float:
    return sum(
        v
        for labels, v in samples(operator, "restate_operator_api_requests_total")
        if labels.get("verb") == verb and labels.get("kind") == kind
    )


def events(kubectl: Kubectl, name: str, reason: str | None = None) -> list[dict[str, Any]]:
    """Events about the RestateCluster ``name`` (optionally of one reason)."""
    found: list[dict[str, Any]] = kubectl.json(
        "get", "events", "-A", "--field-selector", f"involvedObject.name={name}"
    )["items"]
    return [e for e in found if reason is None or e.get("reason") == reason]


def delete_cluster(kubectl: Kubectl, name: str) -> None:
    kubectl.run("delete", "restatecluster", name, "--wait=false", check=False)
