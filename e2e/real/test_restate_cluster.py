"""Restate really running under the operator on the real node: pods, volumes, Services, DNS.

One module-scoped client namespace; each test's RestateCluster lives in its own namespace
(the operator names it after the cluster). Timings (pod start, Ready) go to the terminal
summary.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.fake_storage import parse_quantity
from e2e.operator_process import REPO, wait_for
from e2e.real.conftest import note
from e2e.real.support import RealEnv, cluster_identity, pod_ready, wait_restate_status

CLIENT_LABELS = {"role": "restate-client"}
GIB = 1024**3


def _ts(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def pod_times(pod: dict[str, Any]) -> tuple[float, float]:
    """(created → container running, created → Ready) in seconds, from the pod's status."""
    created = _ts(pod["metadata"]["creationTimestamp"])
    status = pod["status"]
    running = next(
        s["state"]["running"]["startedAt"]
        for s in status["containerStatuses"]
        if s["name"] == "restate" and "running" in s["state"]
    )
    ready = next(c["lastTransitionTime"] for c in status["conditions"] if c["type"] == "Ready")
    return (_ts(running) - created).total_seconds(), (_ts(ready) - created).total_seconds()


@pytest.fixture(scope="module")
def clients(real_env: RealEnv) -> Iterator[str]:
    """A namespace with one client pod that the clusters below admit on ingress and admin."""
    ns = f"real-clients-{secrets.token_hex(3)}"
    real_env.kubectl.run("create", "namespace", ns)
    real_env.client_pod(ns, "client", CLIENT_LABELS)
    try:
        yield ns
    finally:
        real_env.kubectl.run("delete", "namespace", ns, "--wait=false", check=False)


def peers(client_ns: str) -> dict[str, Any]:
    """spec.security.networkPeers admitting the client pod on ingress and admin."""
    peer = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": client_ns}},
        "podSelector": {"matchLabels": CLIENT_LABELS},
    }
    return {"networkPeers": {"ingress": [peer], "admin": [peer]}}


def test_baseline_example_ready_with_a_real_pod_and_volume(real_env: RealEnv, clients: str) -> None:
    """examples/cluster.yaml on the real node: Ready, a real PVC, answers through its Service."""
    example = yaml.safe_load((REPO / "examples" / "cluster.yaml").read_text())
    name = f"real-base-{secrets.token_hex(2)}"
    manifest = real_env.restate_cluster(
        name, storage_bytes=example["spec"]["storage"]["storageRequestBytes"]
    )
    manifest["spec"]["security"] = peers(clients)
    t0 = time.monotonic()
    real_env.kubectl.apply(manifest)
    try:
        real_env.wait_cluster_ready(name, timeout=180)
        note("baseline: apply -> phase Ready", time.monotonic() - t0)
        (pod,) = real_env.wait_pods_ready(name, 1)
        assert pod["spec"]["nodeName"] == real_env.node.name
        started, ready = pod_times(pod)
        note("baseline: pod created -> container running", started)
        note("baseline: pod created -> Ready", ready)
        pvc = real_env.kubectl.json("get", "pvc", "-n", name)["items"][0]
        assert pvc["status"]["phase"] == "Bound", pvc["status"]
        assert pvc["spec"]["storageClassName"] == "local-path"
        pv = real_env.kubectl.get("pv", pvc["spec"]["volumeName"])
        assert pv is not None
        path = pv["spec"].get("hostPath", pv["spec"].get("local", {})).get("path")
        assert path and path.startswith(str(real_env.node.work_dir)), pv["spec"]
        svc = f"restate.{name}.svc.cluster.local"
        t1 = time.monotonic()
        wait_for(
            lambda: real_env.http_ok(clients, "client", f"http://{svc}:8080/restate/health"),
            60,
            1.0,
            "ingress /restate/health through the Service",
        )
        note("baseline: Ready -> ingress answers from a client pod", time.monotonic() - t1)
        assert real_env.http_ok(clients, "client", f"http://{svc}:9070/health")
    finally:
        real_env.delete_cluster(name)


@pytest.fixture(scope="module")
def trio(real_env: RealEnv, clients: str) -> Iterator[str]:
    """A 3-node RestateCluster with cluster.autoProvision (module-scoped: several tests)."""
    name = f"real-trio-{secrets.token_hex(2)}"
    manifest = real_env.restate_cluster(name, replicas=3, auto_provision=True)
    manifest["spec"]["security"] = peers(clients)
    t0 = time.monotonic()
    real_env.kubectl.apply(manifest)
    try:
        real_env.wait_cluster_ready(name, timeout=240)
        note("3 replicas: apply -> phase Ready", time.monotonic() - t0)
        yield name
    finally:
        real_env.delete_cluster(name)


def _status(real_env: RealEnv, name: str) -> dict[str, Any]:
    obj = real_env.kubectl.get("restatecluster", name)
    assert obj is not None
    status: dict[str, Any] = obj.get("status", {})
    return status


def wait_members(real_env: RealEnv, ns: str, count: int, timeout: float = 120) -> list[str]:
    """Wait until restatectl (in restate-0) lists `count` nodes that are all alive members."""

    def ok() -> list[str] | None:
        try:
            out = real_env.restatectl_status(ns)
        except AssertionError:
            return None
        members = real_env.members(ns)
        return members if len(members) == count and "dead" not in out.lower() else None

    result: list[str] = wait_for(ok, timeout, 2.0, f"{count} members in restatectl status")
    return result


def test_three_replicas_provision_through_cluster_dns(real_env: RealEnv, trio: str) -> None:
    """The operator pod provisioned the cluster through cluster DNS; restatectl lists three,
    and so does the status the operator reads from Restate itself."""
    status = _status(real_env, trio)
    assert status.get("provisioned") is True, status
    members = wait_members(real_env, trio, 3)
    assert members == ["N1", "N2", "N3"], real_env.restatectl_status(trio)
    restate = wait_restate_status(real_env, trio, 3)
    note(f"3 replicas: status.restate {restate}", 0.0)
    for pod in real_env.pods(trio):
        _, ready = pod_times(pod)
        note(f"3 replicas: {pod['metadata']['name']} created -> Ready", ready)


def _restate_server_pids(real_env: RealEnv, ns: str, pod: str) -> list[int]:
    """The host PIDs of a pod's restate-server (the real node's containers run on this
    host): the processes whose cgroup names the pod's uid."""
    obj = real_env.kubectl.get("pod", pod, ns)
    assert obj is not None, f"no pod {ns}/{pod}"
    uid = obj["metadata"]["uid"]
    marks = (uid, uid.replace("-", "_"))
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            comm = (proc / "comm").read_text().strip()
            cgroup = (proc / "cgroup").read_text()
        except OSError:
            continue
        if comm == "restate-server" and any(m in cgroup for m in marks):
            pids.append(int(proc.name))
    return pids


def test_frozen_node_shows_in_status_within_the_poll_interval(real_env: RealEnv, trio: str) -> None:
    """restate-2's server stopped (SIGSTOP from the host, so its pod stays Running): the
    operator's next read of Restate's view names it in status.restate.problems; resumed,
    the cluster is healthy again."""
    wait_restate_status(real_env, trio, 3)
    pids = _restate_server_pids(real_env, trio, "restate-2")
    assert len(pids) == 1, pids
    t0 = time.monotonic()
    os.kill(pids[0], signal.SIGSTOP)
    try:

        def reported() -> list[str] | None:
            restate = _status(real_env, trio).get("restate") or {}
            problems: list[str] = restate.get("problems") or []
            return problems if any("restate-2" in p for p in problems) else None

        # Read every 30 s while Ready (a 5 s deadline per request): well within 40 s.
        problems = wait_for(reported, 40, 0.5, "restate-2 in status.restate.problems")
        note(f"restate-2 frozen -> in status.restate ({problems})", time.monotonic() - t0)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the kubelet may have restarted it
            os.kill(pids[0], signal.SIGCONT)
    real_env.wait_cluster_ready(trio, timeout=120)
    wait_restate_status(real_env, trio, 3, timeout=90)


def test_deleted_pod_rejoins_under_its_node_name(real_env: RealEnv, trio: str) -> None:
    """restate-2 deleted: a new pod (new IP) comes back as the same node and rejoins."""
    before = {p["metadata"]["name"]: p for p in real_env.pods(trio)}
    old_uid = before["restate-2"]["metadata"]["uid"]
    t0 = time.monotonic()
    real_env.kubectl.run("delete", "pod", "-n", trio, "restate-2", "--wait=false")

    def back() -> bool:
        pods = {p["metadata"]["name"]: p for p in real_env.pods(trio)}
        pod = pods.get("restate-2")
        return pod is not None and pod["metadata"]["uid"] != old_uid and pod_ready(pod)

    wait_for(back, 120, 1.0, "restate-2 back and Ready")
    note("restate-2 deleted -> new pod Ready", time.monotonic() - t0)
    assert wait_members(real_env, trio, 3) == ["N1", "N2", "N3"]
    real_env.wait_cluster_ready(trio, timeout=120)
    wait_restate_status(real_env, trio, 3)


def test_all_pods_deleted_cluster_comes_back_with_its_data(
    real_env: RealEnv, trio: str, clients: str
) -> None:
    """Every pod deleted at once: same cluster (identity, provisioned), same volumes."""
    ns = trio
    name_before, nodes_before = cluster_identity(real_env, ns)
    pvcs_before = sorted(
        p["metadata"]["uid"] for p in real_env.kubectl.json("get", "pvc", "-n", ns)["items"]
    )
    t0 = time.monotonic()
    real_env.kubectl.run(
        "delete", "pods", "-n", ns, "-l", "app.kubernetes.io/name=restate", "--wait=false"
    )
    time.sleep(2)
    real_env.wait_pods_ready(ns, 3, timeout=180)
    real_env.wait_cluster_ready(trio, timeout=180)
    note("all 3 pods deleted -> cluster Ready again", time.monotonic() - t0)
    assert wait_members(real_env, ns, 3) == ["N1", "N2", "N3"]
    name_after, nodes_after = cluster_identity(real_env, ns)
    assert name_after == name_before
    assert {p: ident for p, (ident, _) in nodes_after.items()} == {
        p: ident for p, (ident, _) in nodes_before.items()
    }, (nodes_before, nodes_after)
    assert all(nodes_after[p][1] > gen for p, (_, gen) in nodes_before.items()), (
        nodes_before,
        nodes_after,
    )
    status = _status(real_env, trio)
    assert status.get("provisioned") is True, status
    pvcs_after = sorted(
        p["metadata"]["uid"] for p in real_env.kubectl.json("get", "pvc", "-n", ns)["items"]
    )
    assert pvcs_after == pvcs_before
    svc = f"restate.{ns}.svc.cluster.local"
    assert real_env.http_ok(clients, "client", f"http://{svc}:9070/health")


def test_config_change_rolls_one_pod_at_a_time(real_env: RealEnv, trio: str, clients: str) -> None:
    """A config change rolls the pods one at a time; admin keeps answering through it."""
    ns = trio
    revisions_before = {p["metadata"]["name"]: p["metadata"]["uid"] for p in real_env.pods(ns)}
    real_env.kubectl.merge_patch(
        "restatecluster", trio, {"spec": {"config": "[worker]\ninternal-queue-length = 999\n"}}
    )
    svc = f"restate.{ns}.svc.cluster.local"
    max_not_ready = 0
    failures = 0
    t0 = time.monotonic()
    deadline = t0 + 300
    while time.monotonic() < deadline:
        pods = real_env.pods(ns)
        not_ready = sum(1 for p in pods if not pod_ready(p)) + max(0, 3 - len(pods))
        max_not_ready = max(max_not_ready, not_ready)
        if not real_env.http_ok(clients, "client", f"http://{svc}:9070/health"):
            failures += 1
        replaced = [
            p for p in pods if revisions_before.get(p["metadata"]["name"]) != p["metadata"]["uid"]
        ]
        if len(replaced) == 3 and all(pod_ready(p) for p in pods):
            break
        time.sleep(1)
    else:
        raise AssertionError(f"rollout did not finish: {[p['metadata']['name'] for p in pods]}")
    note("config change: rollout of 3 pods", time.monotonic() - t0)
    assert max_not_ready <= 1, f"{max_not_ready} pods were down at once"
    assert failures <= 2, f"admin failed to answer {failures} times during the rollout"
    real_env.wait_cluster_ready(trio, timeout=120)


def test_volume_growth_on_real_claims(real_env: RealEnv, trio: str) -> None:
    """1 GiB → 2 GiB on real local-path claims: online (no pod replaced), capacity reported.

    local-path has no resizer: the growth itself is emulated at the API level by
    e2e/fake_storage.py (as external-resizer plus the kubelet would report it); the claims,
    the operator's expansion and the pods staying up are real.
    """
    uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in real_env.pods(trio)}
    t0 = time.monotonic()
    real_env.kubectl.merge_patch(
        "restatecluster", trio, {"spec": {"storage": {"storageRequestBytes": 2 * GIB}}}
    )

    def grown() -> bool:
        pvcs = real_env.kubectl.json("get", "pvc", "-n", trio)["items"]
        # local-path writes the request verbatim (bytes), so compare quantities.
        return bool(pvcs) and all(
            parse_quantity(p.get("status", {}).get("capacity", {}).get("storage", "0")) == 2 * GIB
            for p in pvcs
        )

    wait_for(grown, 120, 1.0, "every claim at 2Gi")
    real_env.wait_cluster_ready(trio, timeout=120)
    note("volume growth 1Gi -> 2Gi (emulated resize): Ready", time.monotonic() - t0)
    after = {p["metadata"]["name"]: p["metadata"]["uid"] for p in real_env.pods(trio)}
    assert after == uids, "a pod was replaced by the online expansion"
    assert _status(real_env, trio)["storage"]["currentBytes"] == 2 * GIB
