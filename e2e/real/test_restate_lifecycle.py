"""The Restate-aware lifecycle on real Restate, with user data going through ingress.

One three-node RestateCluster (``default-replication = 2``) for the module, the SDK service
of e2e/sdk_service registered with it by a RestateDeployment, and a client pod that calls
the service through the cluster's ingress from inside the real node's namespace; its
snapshot repository is e2e/s3_standin.py running in a pod beside them (Restate 1.7.12 writes
snapshots to S3 only). In file order:

1. a snapshot on request (``restate.dev/snapshot``): one per partition in status, each
   partition's files listed in the repository;
2. a rolling image change: the operator restarts one pod at a time, each once Restate has
   the others back, while an invocation loop keeps calling ``Counter/add``: the worst gap
   without an answer is measured (and bounded), every answered call counted in Restate;
3. 3 -> 5 -> 3 replicas with data written before and read after: the departed nodes are
   out of the metadata cluster, every remaining partition is led, their claims are kept;
4. 3 -> 1 is refused (the replication needs two nodes): Degraded naming both fields, not a
   pod touched.
"""

from __future__ import annotations

import itertools
import json
import secrets
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.operator_process import wait_for
from e2e.real.conftest import note
from e2e.real.sdk_support import CLIENT_LABELS, Sdk, manifest, python_pod, python_pod_manifest
from e2e.real.support import (
    RealEnv,
    cluster_identity,
    dump,
    pod_ready,
    restricted_namespace,
    wait_restate_status,
)

#: The worst gap the invocation loop may see during a rolling update (seconds): a node's
#: partitions move to another leader when it stops, which takes Restate a few seconds.
WORST_GAP_LIMIT = 15.0

# Calls Counter/<key>/add with 1 every 0.2 s until a line arrives on stdin (or 10 minutes
# pass); prints one JSON line per call: [start offset, seconds taken, answered].
LOOP = textwrap.dedent(
    """
    import json, sys, threading, time, urllib.request
    url = sys.argv[1]
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    start = time.time()
    while not stop.is_set() and time.time() - start < 600:
        t = time.time()
        req = urllib.request.Request(url, data=b"1", method="POST")
        req.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                ok = r.status == 200
                r.read()
        except Exception:
            ok = False
        print(json.dumps([round(t - start, 3), round(time.time() - t, 3), ok]), flush=True)
        time.sleep(0.2)
    """
)


S3_LABELS = {"role": "s3"}
BUCKET = "snapshots"
# e2e/s3_standin.py, serving a directory of the pod on port 9000.
S3_SCRIPT = (Path(__file__).resolve().parents[1] / "s3_standin.py").read_text() + textwrap.dedent(
    """

    S3Server(Path("/data"), "0.0.0.0", 9000).start()
    threading.Event().wait()
    """
)
# Lists the repository's files in the stand-in's pod, one relative path a line.
LIST_FILES = (
    "import os\n"
    "for d, _, fs in os.walk('/data'):\n"
    "    [print(os.path.relpath(os.path.join(d, f), '/data')) for f in fs]"
)


def _snapshot_repository(env: RealEnv, namespace: str, cluster: str) -> str:
    """The S3 stand-in as a pod and Service that the cluster's nodes may reach; its URL."""
    labels = {**S3_LABELS, f"allow.restate.dev/{cluster}": "true"}
    pod = python_pod_manifest(env, namespace, "s3", labels, S3_SCRIPT, memory="128Mi")
    pod["spec"]["containers"][0] |= {
        "ports": [{"containerPort": 9000}],
        "readinessProbe": {"tcpSocket": {"port": 9000}, "periodSeconds": 1},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    pod["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s3", "namespace": namespace},
        "spec": {"selector": S3_LABELS, "ports": [{"port": 9000, "targetPort": 9000}]},
    }
    env.kubectl.apply(pod)
    env.kubectl.apply(service)
    env.kubectl.run("wait", "-n", namespace, "pod/s3", "--for=condition=Ready", "--timeout=90s")
    return f"http://s3.{namespace}.svc.cluster.local:9000"


def _config(s3: str) -> str:
    """Replication 2, and how the nodes reach the repository (an S3-compatible store)."""
    return textwrap.dedent(
        f"""\
        default-replication = 2

        [worker.snapshots]
        aws-endpoint-url = "{s3}"
        aws-allow-http = true
        aws-region = "local"
        aws-access-key-id = "e2e"
        aws-secret-access-key = "e2e"
        """
    )


@pytest.fixture(scope="module")
def life(real_env: RealEnv) -> Iterator[Sdk]:
    """A three-node cluster with replication 2, the SDK service registered, a client pod."""
    suffix = secrets.token_hex(2)
    cluster, namespace = f"real-life-{suffix}", f"real-life-sdk-{suffix}"
    real_env.kubectl.apply(restricted_namespace(namespace))
    peer = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        "podSelector": {"matchLabels": CLIENT_LABELS},
    }
    s3 = _snapshot_repository(real_env, namespace, cluster)
    spec = real_env.restate_cluster(cluster, replicas=3, auto_provision=True, config=_config(s3))
    spec["spec"]["snapshots"] = {"destination": f"s3://{BUCKET}/{cluster}"}
    spec["spec"]["compute"]["env"].append({"name": "AWS_EC2_METADATA_DISABLED", "value": "true"})
    spec["spec"]["security"] = {"networkPeers": {"ingress": [peer], "admin": [peer]}}
    real_env.kubectl.apply(spec)
    handle = Sdk(real_env, cluster, namespace)
    try:
        python_pod(handle, "client", CLIENT_LABELS, "import time; time.sleep(36000)")
        real_env.wait_cluster_ready(cluster, timeout=300)
        real_env.kubectl.apply(manifest(handle, {"SERVICE_VERSION": "v1"}))
        wait_for(
            lambda: handle.invoke("Counter/warm-up/get")[0] == 200,
            180,
            1.0,
            "Counter answering through ingress",
        )
        yield handle
    finally:
        real_env.kubectl.run("delete", "rsd", "--all", "-n", namespace, "--wait=false", check=False)
        real_env.delete_cluster(cluster)
        real_env.kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)


def _status(sdk: Sdk) -> dict[str, Any]:
    obj = sdk.env.kubectl.get("restatecluster", sdk.cluster)
    assert obj is not None
    status: dict[str, Any] = obj.get("status", {})
    return status


def _counter(sdk: Sdk, key: str) -> int:
    status, body = sdk.invoke(f"Counter/{key}/get")
    assert status == 200, body
    return int(json.loads(body))


class InvocationLoop:
    """LOOP running in the client pod through ``kubectl exec -i``, its lines collected."""

    def __init__(self, sdk: Sdk, key: str) -> None:
        kubectl = sdk.env.kubectl
        cmd = [
            str(kubectl.binary),
            "--kubeconfig",
            str(kubectl.kubeconfig),
            "exec",
            "-i",
            "-n",
            sdk.namespace,
            "client",
            "--",
            "python3",
            "-u",
            "-c",
            LOOP,
            f"{sdk.ingress}/Counter/{key}/add",
        ]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.calls: list[tuple[float, float, bool]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                start, took, ok = json.loads(line)
            except ValueError:
                continue
            self.calls.append((float(start), float(took), bool(ok)))

    def stop(self) -> list[tuple[float, float, bool]]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=30)
        self._reader.join(timeout=10)
        return list(self.calls)


def worst_gap(calls: list[tuple[float, float, bool]]) -> float:
    """The longest time without an answered call: from one answer to the next."""
    answered = [start + took for start, took, ok in calls if ok]
    assert len(answered) >= 2, calls[:20]
    return max(b - a for a, b in itertools.pairwise(answered))


def test_snapshot_on_request_lands_in_the_repository(life: Sdk) -> None:
    env = life.env
    token = f"t-{secrets.token_hex(3)}"
    t0 = time.monotonic()
    env.kubectl.run(
        "annotate", "restatecluster", life.cluster, f"restate.dev/snapshot={token}", "--overwrite"
    )

    def taken() -> dict[str, Any] | None:
        snapshots: dict[str, Any] = _status(life).get("snapshots") or {}
        return snapshots if snapshots.get("request") == token else None

    snapshots = wait_for(taken, 120, 1.0, f"status.snapshots for {token}")
    note("snapshot of every partition: annotate -> status", time.monotonic() - t0)
    partitions = snapshots.get("partitions") or []
    assert partitions and not snapshots.get("error"), snapshots
    assert all(p.get("snapshotId") and not p.get("error") for p in partitions), snapshots
    restate = _status(life).get("restate") or {}
    assert len(partitions) == restate.get("partitions"), (partitions, restate)
    _, listing = env.exec(life.namespace, "s3", "python3", "-c", LIST_FILES)
    files = listing.split()
    prefix = f"{BUCKET}/{life.cluster}"
    for p in partitions:
        ours = [f for f in files if f.startswith(f"{prefix}/{p['partition']}/")]
        assert f"{prefix}/{p['partition']}/latest.json" in ours, (p, files[:40])
        assert any(p["snapshotId"] in f for f in ours), (p, ours)
    print(f"[real] repository: {len(files)} files for {len(partitions)} partitions")


def test_rolling_image_change_keeps_ingress_answering(life: Sdk) -> None:
    env, ns = life.env, life.cluster
    uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in env.pods(ns)}
    assert len(uids) == 3
    image = f"{env.images.restate.ref.rsplit(':', 1)[0]}:roll-{secrets.token_hex(3)}"
    env.node.ctr("images", "tag", env.images.restate.ref, image)
    loop = InvocationLoop(life, "roll")
    try:
        wait_for(lambda: sum(ok for *_, ok in loop.calls) >= 5, 60, 0.5, "the loop answering")
        t0 = time.monotonic()
        env.kubectl.merge_patch(
            "restatecluster", life.cluster, {"spec": {"compute": {"image": image}}}
        )
        max_down = 0
        deadline = t0 + 420
        while time.monotonic() < deadline:
            pods = env.pods(ns)
            down = sum(1 for p in pods if not pod_ready(p)) + max(0, 3 - len(pods))
            max_down = max(max_down, down)
            rolled = [
                p
                for p in pods
                if uids.get(p["metadata"]["name"]) != p["metadata"]["uid"]
                and p["spec"]["containers"][0]["image"] == image
            ]
            if len(rolled) == 3 and all(pod_ready(p) for p in pods):
                break
            time.sleep(1)
        else:
            raise AssertionError(f"the roll did not finish: {dump(env.pods(ns))}")
        env.wait_cluster_ready(life.cluster, timeout=120)
        note("rolling image change of 3 nodes: Ready", time.monotonic() - t0)
        time.sleep(3)
    finally:
        calls = loop.stop()
    gap = worst_gap(calls)
    answered = sum(1 for *_, ok in calls if ok)
    note("rolling image change: worst ingress gap", gap)
    print(f"[real] invocation loop: {len(calls)} calls, {answered} answered, worst gap {gap:.1f}s")
    assert max_down <= 1, f"{max_down} pods were down at once"
    assert gap <= WORST_GAP_LIMIT, f"ingress did not answer for {gap:.1f}s"
    # Every answered add is in Restate's state; an unanswered one may have landed too.
    total = _counter(life, "roll")
    assert answered <= total <= len(calls), (answered, total, len(calls))
    events = env.kubectl.json(
        "get", "events", "-A", "--field-selector", f"involvedObject.name={life.cluster}"
    )["items"]
    restarts = sorted(
        (e for e in events if e.get("reason") == "PodRestarted"),
        key=lambda e: str(e.get("firstTimestamp") or e.get("eventTime")),
    )
    notes = [str(e.get("message")) for e in restarts]
    assert len(notes) == 3, notes
    assert all("paced by Restate's health" in n for n in notes), notes
    restate = wait_restate_status(env, life.cluster, 3, timeout=60)
    assert restate["replication"], restate


def test_scale_five_to_three_keeps_the_data(life: Sdk) -> None:
    """3 -> 5 -> 3 with a value written before and read after; restate-4 then restate-3
    leave the metadata cluster before their pods go; every remaining partition is led and
    the two claims stay (reported, never deleted)."""
    env, ns = life.env, life.cluster
    key = f"keep-{secrets.token_hex(2)}"
    status, body = life.call("POST", f"{life.ingress}/Counter/{key}/add", 41)
    assert status == 200, body
    written = _counter(life, key)
    name_before, nodes_before = cluster_identity(env, ns)
    t0 = time.monotonic()
    env.kubectl.merge_patch("restatecluster", life.cluster, {"spec": {"compute": {"replicas": 5}}})
    env.wait_pods_ready(ns, 5, timeout=240)
    env.wait_cluster_ready(life.cluster, timeout=240)
    wait_restate_status(env, life.cluster, 5, timeout=120)
    note("scale 3 -> 5: Ready with 5 healthy nodes", time.monotonic() - t0)

    t0 = time.monotonic()
    env.kubectl.merge_patch("restatecluster", life.cluster, {"spec": {"compute": {"replicas": 3}}})
    wait_for(lambda: _status(life).get("phase") == "ScalingDown", 60, 0.5, "phase ScalingDown")
    env.wait_pods_ready(ns, 3, timeout=300)
    ready = env.wait_cluster_ready(life.cluster, timeout=300)
    note("scale 5 -> 3: Ready with 3 pods", time.monotonic() - t0)
    restate = wait_restate_status(env, life.cluster, 3, timeout=120)
    assert restate["partitionsLed"] == restate["partitions"], restate
    _, servers = env.exec(
        ns, "restate-0", "restatectl", "metadata-server", "list-servers", container="restate"
    )
    assert len([line for line in servers.splitlines() if "Member" in line]) == 3, servers
    name_after, nodes_after = cluster_identity(env, ns)
    assert name_after == name_before
    for pod in ("restate-0", "restate-1", "restate-2"):
        assert nodes_after[pod][0] == nodes_before[pod][0], (nodes_before, nodes_after)
    assert _counter(life, key) == written, "the value written before the scale-down is gone"
    claims = sorted(
        p["metadata"]["name"] for p in env.kubectl.json("get", "pvc", "-n", ns)["items"]
    )
    assert [c for c in claims if c.endswith(("-3", "-4"))] and len(claims) == 5, claims
    message = str(ready.get("status", {}).get("message", ""))
    assert "volumes of removed pods kept" in message and "kubectl delete pvc" in message, message


def test_three_to_one_is_refused_with_replication_two(life: Sdk) -> None:
    env, ns = life.env, life.cluster
    uids = sorted(p["metadata"]["uid"] for p in env.pods(ns))
    env.kubectl.merge_patch("restatecluster", life.cluster, {"spec": {"compute": {"replicas": 1}}})

    def refused() -> dict[str, Any] | None:
        status = _status(life)
        return status if status.get("phase") == "Degraded" else None

    status = wait_for(refused, 60, 0.5, "the scale-down refused")
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    message = degraded["message"]
    assert "spec.compute.replicas" in message and "default-replication" in message, message
    assert degraded["reason"] == "InvalidConfig", degraded
    sts = env.kubectl.get("statefulset", "restate", ns)
    assert sts is not None and sts["spec"]["replicas"] == 3
    assert sorted(p["metadata"]["uid"] for p in env.pods(ns)) == uids
    assert _counter(life, "roll") > 0
    env.kubectl.merge_patch("restatecluster", life.cluster, {"spec": {"compute": {"replicas": 3}}})
    env.wait_cluster_ready(life.cluster, timeout=120)
