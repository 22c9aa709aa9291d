"""Taking over from the upstream Rust operator (v2.9) without losing a volume.

``/work/shared/fixtures/upstream-2.9-children/`` (copied to ``e2e/upstream-2.9/``) holds what
upstream v2.9 created on this project's local control plane for three RestateClusters: the
RestateCluster with upstream's status, its Namespace and every object in it. This test puts
exactly those objects back as upstream left them (server-side applied with upstream's field
manager ``restate-operator``, the status as captured, the PVCs as the StatefulSet made them),
lets the StatefulSets bring their pods up, then starts restate-op and proves:

- every cluster becomes Ready, with restate-op's phase and conditions;
- the same PVCs (same UIDs), none deleted or re-created; Services keep their UID and IP;
- no upstream-only object stays: each is taken over (restate-op's label) or removed;
- each StatefulSet's revision changes at most once, and no two pods are down at once;
- the RestateCluster's spec is untouched (same generation).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from e2e.operator_fixtures import HasKubeconfig, condition, wait_phase
from e2e.operator_process import Kubectl, OperatorProcess, wait_for

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).resolve().parent / "upstream-2.9"
CLUSTERS = ("restate-test", "restate-multi-zone", "restate-rich")
UPSTREAM_MANAGER = "restate-operator"
MANAGED_BY = ("app.kubernetes.io/managed-by", "restate-operator")
KINDS = "serviceaccounts,services,configmaps,statefulsets,poddisruptionbudgets,networkpolicies"

#: Upstream objects restate-op removes on takeover, and why (docs/migrating.md).
EXPECTED_REMOVED = {
    # restate-op's policy for port 5122 is allow-node-access (the port is not only metrics).
    ("NetworkPolicy", "allow-metrics-access"),
    # restate-op protects no single-node cluster with a budget (it would block every drain).
    ("PodDisruptionBudget", "restate"),
}


def fixture_objects(cluster: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((FIXTURES / f"{cluster}.yaml").read_text()) if d]


def _as_upstream_left_it(obj: dict[str, Any], uid: str) -> dict[str, Any]:
    """The object to apply: the fixture minus what the API server or other controllers own."""
    obj = copy.deepcopy(obj)
    meta = obj["metadata"]
    for ref in meta.get("ownerReferences", []):
        ref["uid"] = uid
    if obj["kind"] == "Service" and obj["spec"].get("clusterIP") != "None":
        # Allocated by the API server (the captured IPs belong to another cluster's range);
        # upstream's own headless `clusterIP: None` stays.
        for key in ("clusterIP", "clusterIPs"):
            obj["spec"].pop(key, None)
    if obj["kind"] == "StatefulSet":
        for template in obj["spec"]["volumeClaimTemplates"]:
            template.pop("status", None)
    if obj["kind"] == "PersistentVolumeClaim":
        # Bound by the (fake) provisioner, as the real one bound upstream's.
        meta.pop("annotations", None)
        meta.pop("finalizers", None)
        obj["spec"].pop("volumeName", None)
    return obj


def put_back(kubectl: Kubectl, cluster: str) -> None:
    """Create one cluster's objects exactly as upstream left them."""
    objs = fixture_objects(cluster)
    (rsc,) = [o for o in objs if o["kind"] == "RestateCluster"]
    status = rsc.pop("status")
    rsc = copy.deepcopy(rsc)
    apply(kubectl, rsc)
    uid = kubectl.json("get", "restatecluster", cluster)["metadata"]["uid"]
    kubectl.run(
        "patch", "restatecluster", cluster, "--subresource=status", "--type=merge",
        f"--field-manager={UPSTREAM_MANAGER}", "-p", json.dumps({"status": status}),
    )  # fmt: skip
    order = ["Namespace", "PersistentVolumeClaim"]
    rest = [o for o in objs if o["kind"] not in ("RestateCluster", *order)]
    for kind in order:
        for obj in objs:
            if obj["kind"] == kind:
                apply(kubectl, _as_upstream_left_it(obj, uid))
    for obj in rest:
        apply(kubectl, _as_upstream_left_it(obj, uid))


def apply(kubectl: Kubectl, obj: dict[str, Any]) -> None:
    kubectl.run(
        "apply", "--server-side", f"--field-manager={UPSTREAM_MANAGER}", "-f", "-",
        stdin=json.dumps(obj),
    )  # fmt: skip


def inventory(kubectl: Kubectl, cluster: str) -> dict[tuple[str, str], dict[str, Any]]:
    items = kubectl.json("get", f"{KINDS},persistentvolumeclaims", "-n", cluster)["items"]
    return {(o["kind"], o["metadata"]["name"]): o for o in items}


def statefulset_settled(kubectl: Kubectl, cluster: str) -> dict[str, Any] | None:
    sts = kubectl.get("statefulset", "restate", cluster)
    if sts is None:
        return None
    status = sts.get("status", {})
    want = sts["spec"]["replicas"]
    if sts["spec"]["updateStrategy"]["type"] == "OnDelete":
        # The operator restarts the pods and OnDelete never moves currentRevision
        # (kubernetes#73492): the pods' revisions say the roll is over.
        pods = kubectl.json("get", "pods", "-n", cluster, "-l", "app.kubernetes.io/name=restate")
        labels = [p["metadata"]["labels"] for p in pods["items"]]
        rolled = {lab.get("controller-revision-hash") for lab in labels} == {
            status.get("updateRevision")
        }
    else:  # upstream's, as it left it
        rolled = status.get("currentRevision") == status.get("updateRevision")
    ok = (
        status.get("observedGeneration") == sts["metadata"]["generation"]
        and status.get("readyReplicas") == want
        and status.get("updatedReplicas") == want
        and rolled
    )
    return sts if ok else None


class NodeCtl:
    """Stands in for each cluster's ``restate-0`` node port (kwok's pods run no Restate).

    ProvisionCluster answers as Restate does: OK (an empty response) for a cluster never
    provisioned, ALREADY_EXISTS for one that provisioned itself under upstream.
    """

    def __init__(self, sockets: Path, already_provisioned: set[str]) -> None:
        self.calls: dict[str, int] = {}
        self.servers = []
        for cluster in CLUSTERS:
            self.calls[cluster] = 0

            def provision(
                request: bytes, context: grpc.ServicerContext, cluster: str = cluster
            ) -> bytes:
                self.calls[cluster] += 1
                if cluster in already_provisioned:
                    context.abort(grpc.StatusCode.ALREADY_EXISTS, "cluster already provisioned")
                return b""

            handler = grpc.method_handlers_generic_handler(
                "restate.node_ctl_svc.NodeCtlSvc",
                {"ProvisionCluster": grpc.unary_unary_rpc_method_handler(provision)},
            )
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
            server.add_generic_rpc_handlers((handler,))
            server.add_insecure_port(f"unix://{sockets}/{cluster}-restate-0.sock")
            server.start()
            self.servers.append(server)

    def stop(self) -> None:
        for server in self.servers:
            server.stop(grace=None)


class Watcher:
    """Samples every cluster's StatefulSet revision and pods while restate-op takes over."""

    def __init__(self, kubectl: Kubectl) -> None:
        self.kubectl = kubectl
        self.revisions: dict[str, list[str]] = {c: [] for c in CLUSTERS}
        #: Most pods of one cluster seen not Ready (or terminating) at once, of the desired.
        self.most_down: dict[str, int] = dict.fromkeys(CLUSTERS, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watcher:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(0.3):
            self._sample()

    def _sample(self) -> None:
        for cluster in CLUSTERS:
            sts = self.kubectl.get("statefulset", "restate", cluster)
            if sts is None:
                continue
            revision = sts.get("status", {}).get("updateRevision")
            seen = self.revisions[cluster]
            if revision and (not seen or seen[-1] != revision):
                seen.append(revision)
            pods = self.kubectl.json("get", "pods", "-n", cluster)["items"]
            ready = sum(
                1
                for p in pods
                if not p["metadata"].get("deletionTimestamp")
                and any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in p.get("status", {}).get("conditions", [])
                )
            )
            down = sts["spec"]["replicas"] - ready
            self.most_down[cluster] = max(self.most_down[cluster], down)


@pytest.fixture(scope="module")
def upstream_left(kube: HasKubeconfig, kubectl: Kubectl, restate_crd: None) -> Iterator[None]:
    for cluster in CLUSTERS:
        assert kubectl.get("restatecluster", cluster) is None, f"{cluster} exists already"
        put_back(kubectl, cluster)
    for cluster in CLUSTERS:
        wait_for(
            lambda c=cluster: statefulset_settled(kubectl, c),  # type: ignore[misc]
            120,
            what=f"upstream's StatefulSet in {cluster} ready",
        )
    try:
        yield
    finally:
        for cluster in CLUSTERS:
            kubectl.run("delete", "restatecluster", cluster, "--wait=false", check=False)
        for cluster in CLUSTERS:
            # Upstream's finalizer stays if restate-op did not remove it; do it for the next
            # module either way (its deletion would otherwise wait for upstream forever).
            kubectl.run(
                "patch", "restatecluster", cluster, "--type=merge",
                "-p", '{"metadata":{"finalizers":null}}', check=False,
            )  # fmt: skip
        for cluster in CLUSTERS:
            wait_for(
                lambda c=cluster: kubectl.get("namespace", c) is None,  # type: ignore[misc]
                120,
                what=f"namespace {cluster} deleted",
            )


def test_restate_op_takes_over_what_upstream_left(
    kube: HasKubeconfig,
    kubectl: Kubectl,
    upstream_left: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    before = {c: inventory(kubectl, c) for c in CLUSTERS}
    clusters_before = {c: kubectl.json("get", "restatecluster", c) for c in CLUSTERS}
    for cluster in CLUSTERS:
        # Upstream's status: a Ready condition, no phase.
        assert "phase" not in clusters_before[cluster]["status"]
        assert condition(clusters_before[cluster], "Ready")["reason"] in {
            "Reconciled",
            "ProvisioningFailed",  # restate-multi-zone: upstream could not reach its pod
        }

    sockets = tmp_path_factory.mktemp("nodes")
    proc = OperatorProcess(
        kube.kubeconfig,
        tmp_path_factory.mktemp("migration"),
        node_address_template=f"unix://{sockets}/{{namespace}}-{{pod}}.sock",
    )
    # restate-rich (two nodes, no auto-provision = false) provisioned itself under upstream;
    # restate-multi-zone (autoProvision, auto-provision = false) never was: upstream failed.
    node_ctl = NodeCtl(sockets, already_provisioned={"restate-rich"})
    proc.start()
    try:
        with Watcher(kubectl) as watcher:
            proc.wait_ready()
            for cluster in CLUSTERS:
                try:
                    wait_phase(kubectl, cluster, "Ready", timeout=120)
                except AssertionError:
                    print(kubectl.run("get", "rsc", cluster, "-o", "yaml").stdout)
                    print(kubectl.run("get", "sts,pods,pvc", "-n", cluster, "-o", "wide").stdout)
                    raise
            for cluster in CLUSTERS:
                settled = wait_for(
                    lambda c=cluster: statefulset_settled(kubectl, c),  # type: ignore[misc]
                    120,
                    what=f"{cluster} rollout settled",
                )
                # Upstream's RollingUpdate (with its defaulted partition) is now the operator's.
                assert settled["spec"]["updateStrategy"] == {"type": "OnDelete"}, settled["spec"]
            time.sleep(3)  # a second apply (and a second revision) would show by now
        after = {c: inventory(kubectl, c) for c in CLUSTERS}
        clusters_after = {c: kubectl.json("get", "restatecluster", c) for c in CLUSTERS}
    finally:
        proc.stop()
        node_ctl.stop()
        print(f"operator log: {proc.log_path}")
    # Multi-node clusters are provisioned by restate-op (already provisioned is success).
    assert node_ctl.calls["restate-test"] == 0  # one node provisions itself
    for cluster in ("restate-multi-zone", "restate-rich"):
        assert node_ctl.calls[cluster] >= 1, cluster
        assert clusters_after[cluster]["status"].get("provisioned") is True, cluster

    for cluster in CLUSTERS:
        old, new = before[cluster], after[cluster]
        # Volumes: the very same claims, never deleted or re-created, spec unchanged.
        old_pvcs = {k: v for k, v in old.items() if k[0] == "PersistentVolumeClaim"}
        assert old_pvcs, cluster
        for key, pvc in old_pvcs.items():
            assert key in new, f"{cluster}: {key} deleted"
            assert new[key]["metadata"]["uid"] == pvc["metadata"]["uid"], f"{cluster}: {key}"
            assert new[key]["spec"] == pvc["spec"], f"{cluster}: {key} changed"
        assert {k for k in new if k[0] == "PersistentVolumeClaim"} == set(old_pvcs)

        # No upstream-only object stays: taken over (same UID, restate-op's label) or removed.
        upstreams = {(o["kind"], o["metadata"]["name"]) for o in fixture_objects(cluster)}
        for key, obj in old.items():
            if key[0] == "PersistentVolumeClaim" or key not in upstreams:
                continue
            if key in new:
                labels = new[key]["metadata"].get("labels", {})
                assert labels.get(MANAGED_BY[0]) == MANAGED_BY[1], f"{cluster}: {key} stale"
                assert new[key]["metadata"]["uid"] == obj["metadata"]["uid"], (
                    f"{cluster}: {key} re-created"
                )
            else:
                assert key in EXPECTED_REMOVED or key[0] == "PodDisruptionBudget", (
                    f"{cluster}: {key} removed unexpectedly"
                )
        removed = {k for k in old if k not in new}
        replicas = clusters_after[cluster]["spec"]["compute"].get("replicas", 1)
        expected = {("NetworkPolicy", "allow-metrics-access")}
        if replicas <= 1:
            expected.add(("PodDisruptionBudget", "restate"))
        assert removed == expected, cluster
        for svc in ("restate", "restate-cluster"):
            key = ("Service", svc)
            assert new[key]["spec"]["clusterIP"] == old[key]["spec"]["clusterIP"]

        # Pods rolled at most once, one at a time.
        assert 1 <= len(watcher.revisions[cluster]) <= 2, watcher.revisions[cluster]
        assert watcher.most_down[cluster] <= 1, (cluster, watcher.most_down[cluster])

        # The RestateCluster: spec untouched, restate-op's phase and conditions, Ready kept.
        rsc_old, rsc_new = clusters_before[cluster], clusters_after[cluster]
        assert rsc_new["spec"] == rsc_old["spec"]
        assert rsc_new["metadata"]["generation"] == rsc_old["metadata"]["generation"]
        assert rsc_new["status"]["phase"] == "Ready"
        assert condition(rsc_new, "Ready")["status"] == "True"
        assert {c["type"] for c in rsc_new["status"]["conditions"]} >= {"Ready"}
