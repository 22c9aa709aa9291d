"""Crash anywhere, lose nothing: the operator killed at every fault point, then restarted.

For each point of ``restate_op.faults.FAULT_POINTS`` an operator started with
``RESTATE_OP_CRASH_AT`` drives a cluster through the transition that reaches the point
(create -> Ready, a config change, a scale-down, disabling policies, provisioning, storage
growth -> Expanding -> Ready, a metadata member's removal, a rolling update's pod restart, a
snapshot request) and exits there with code 86. The steps that talk to Restate reach stand-in
node ports (``e2e/node_standin.py``): kwok runs no Restate. A normal operator then takes over
and must converge to Ready with the same children (same UIDs where nothing required a new
object; the StatefulSet may be re-created only by expansion), every PVC kept, no pod restarted
where no roll was due, and no duplicate or stale object.

Operators here run without leader election (no Lease left behind by a crash) and never two
at a time; the module does not use the shared ``operator`` fixture.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.health import all_led, restate_status
from e2e.api_proxy import ApiProxy, Reply, conflict, too_many_requests
from e2e.fault_tools import (
    MANAGED,
    Snapshot,
    api_requests,
    assert_nothing_lost,
    delete_cluster,
    desired_children,
    events,
    running_operator,
    snapshot,
    start_crash_operator,
    wait_crash,
)
from e2e.metrics import is_leader, write_requests
from e2e.node_standin import RestateStandIn, node_address_template, serving
from e2e.operator_fixtures import cluster_manifest, condition, phase_of, wait_phase
from e2e.operator_process import NO_NETWORK_NODE_ADDRESS, REPO, Kubectl, wait_for
from e2e.restate_admin_standin import StandIn, StandInServer
from e2e.rsd_tools import manifest, posts_for, uri_of, version_of, wait_phases
from restate_op.faults import FAULT_POINTS, template_of
from restate_op.quantity import quantity_bytes
from restate_op.roll import REVISION_LABEL
from restate_op.snapshots import SNAPSHOT_ANNOTATION

pytestmark = pytest.mark.usefixtures("restate_crd")

GIB = 2**30
#: Every point a crash was injected at while this module ran, and the crash tests that ran,
#: for the coverage check when the module is done (see ``every_fault_point_is_exercised``).
CRASHED_AT: list[str] = []
CRASH_TESTS_RUN: set[str] = set()


def _manifest(name: str, replicas: int = 2, **spec: Any) -> dict[str, Any]:
    manifest = cluster_manifest(name, cluster={"autoProvision": False}, **spec)
    manifest["spec"]["compute"]["replicas"] = replicas
    return manifest


def _create_switches() -> list[str]:
    """Every step of creating a cluster, in the order the operator takes them."""
    switches = []
    for kind, name in desired_children(_manifest("probe")):
        switches.append(
            "before-apply-Namespace" if kind == "Namespace" else f"before-apply-{kind}/{name}"
        )
    return [
        *switches,
        "after-apply-children",
        "before-status-write-Provisioning",
        "after-status-write-Provisioning",
        "before-status-write-Ready",
        "after-status-write-Ready",
    ]


CREATE_SWITCHES = _create_switches()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def _crash_tests(request: pytest.FixtureRequest) -> set[str]:
    return {
        item.nodeid
        for item in request.session.items
        if item.path == request.path and item.name.startswith("test_crash_")
    }


@pytest.fixture(autouse=True)
def _note_crash_test(request: pytest.FixtureRequest) -> None:
    if request.node.name.startswith("test_crash_"):
        CRASH_TESTS_RUN.add(request.node.nodeid)


@pytest.fixture(scope="module", autouse=True)
def every_fault_point_is_exercised(request: pytest.FixtureRequest) -> Iterator[None]:
    """When the module is done, in whatever order its tests ran: if every crash test ran
    here, every template of FAULT_POINTS had a crash injected (else the run fails)."""
    CRASHED_AT.clear()
    CRASH_TESTS_RUN.clear()
    yield
    crash_tests = _crash_tests(request)
    expected = (
        len(CREATE_SWITCHES)
        + len(PRUNE_STEPS)
        + 1
        + len(EXPAND_SWITCHES)
        + len(RSD_SWITCHES)
        + len(SHRINK_CASES)
        + 1  # the roll
        + len(SNAPSHOT_SWITCHES)
    )
    if len(crash_tests) < expected or crash_tests != CRASH_TESTS_RUN:
        return  # only part of the crash tests was selected, or ran in this process
    exercised = {template_of(p) for p in CRASHED_AT}
    assert exercised == set(FAULT_POINTS), set(FAULT_POINTS) - exercised
    assert len(CRASHED_AT) == expected, CRASHED_AT
    print(f"\n[faults] {len(CRASHED_AT)} crashes at {len(exercised)} kinds of fault point")


def _crash_then_recover(
    kubectl: Kubectl,
    workdir: Path,
    switch: str,
    name: str,
    act: Any,
    *,
    nodes: str = NO_NETWORK_NODE_ADDRESS,
    after_crash: Callable[[], object] | None = None,
    recovered: Callable[[], object] | None = None,
) -> tuple[Snapshot, dict[str, Any], Snapshot]:
    """Start a crash operator, ``act()``, wait for the crash, recover with a normal one.

    ``nodes``: both operators' ``--node-address-template`` (``e2e/node_standin.py``);
    ``after_crash()`` runs while no operator does; the recovery is over once the cluster is
    Ready and ``recovered()`` says so (polled), if given.
    """
    # On kwok pods are Ready within a second, so the coalesced Provisioning status would
    # never be written: turn coalescing off to reach that write.
    extra = ["--status-coalesce", "0"] if "status-write-Provisioning" in switch else []
    crash = start_crash_operator(kubectl.kubeconfig, workdir, switch, extra, nodes)
    try:
        act()
        point = wait_crash(crash, switch, name)
    finally:
        crash.kill()
    CRASHED_AT.append(point)
    at_crash = snapshot(kubectl, name)
    if after_crash is not None:
        after_crash()
    with running_operator(
        kubectl.kubeconfig, workdir, "recovery", node_address_template=nodes
    ) as op:
        cluster = wait_phase(kubectl, name, "Ready", timeout=120)
        if recovered is not None:
            wait_for(recovered, 120, what=f"{name} recovered after the crash at {point}")
            cluster = wait_phase(kubectl, name, "Ready", timeout=60)
        after = snapshot(kubectl, name)
        assert "reconcile crashed" not in op.logs()
    return at_crash, cluster, after


@pytest.mark.parametrize("switch", CREATE_SWITCHES)
def test_crash_while_creating(kubectl: Kubectl, workdir: Path, switch: str) -> None:
    name = f"crash-create-{CREATE_SWITCHES.index(switch)}"
    manifest = _manifest(name)
    try:
        at_crash, cluster, after = _crash_then_recover(
            kubectl, workdir, switch, name, lambda: kubectl.apply(manifest)
        )
        assert_nothing_lost(at_crash, after, expected=desired_children(manifest))
        assert cluster["status"]["readyReplicas"] == 2
        assert sorted(after.pvcs) == ["storage-restate-0", "storage-restate-1"]
        assert condition(cluster, "Ready")["status"] == "True"
    finally:
        delete_cluster(kubectl, name)


# -- pruning: the new children exist, a stale one is about to go --------------------------


@pytest.fixture(scope="module")
def prune_cluster(
    kubectl: Kubectl, restate_crd: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    manifest = _manifest("crash-prune", config="[worker]\n")
    kubectl.apply(manifest)
    with running_operator(kubectl.kubeconfig, tmp_path_factory.mktemp("prune"), "setup"):
        wait_phase(kubectl, "crash-prune", "Ready", timeout=120)
    try:
        yield manifest
    finally:
        delete_cluster(kubectl, "crash-prune")


PRUNE_STEPS: dict[str, tuple[dict[str, Any], bool]] = {
    # switch: (spec change, pods may roll)
    "before-delete-ConfigMap": ({"config": "default-num-partitions = 12\n"}, True),
    # One node drops the metadata-client address list from the pod template: a roll is due.
    "before-delete-PodDisruptionBudget/restate": ({"compute": {"replicas": 1}}, True),
    "before-delete-NetworkPolicy": ({"security": {"disableNetworkPolicies": True}}, False),
}


@pytest.mark.parametrize("switch", list(PRUNE_STEPS))
def test_crash_while_pruning(
    kubectl: Kubectl, workdir: Path, prune_cluster: dict[str, Any], switch: str
) -> None:
    name = prune_cluster["metadata"]["name"]
    change, rolls = PRUNE_STEPS[switch]
    for section, fields in change.items():
        if isinstance(fields, dict):
            prune_cluster["spec"].setdefault(section, {}).update(fields)
        else:
            prune_cluster["spec"][section] = fields
    before = snapshot(kubectl, name)
    at_crash, _, after = _crash_then_recover(
        kubectl,
        workdir,
        switch,
        name,
        lambda: kubectl.merge_patch("rsc", name, {"spec": change}),
    )
    assert_nothing_lost(
        before,
        after,
        expected=desired_children(prune_cluster),
        pods_may_roll=rolls,
        pods_may_go=["restate-1"],
    )
    assert_nothing_lost(
        at_crash,
        after,
        expected=desired_children(prune_cluster),
        pods_may_roll=rolls,
        pods_may_go=["restate-1"],
    )


# -- provisioning ---------------------------------------------------------------------------


def test_crash_before_provisioning(kubectl: Kubectl, workdir: Path) -> None:
    """Crash just before ProvisionCluster: the next operator provisions (here it cannot:
    kwok pods run no Restate, so it keeps retrying and says why), nothing is recorded as
    provisioned, nothing lost; when the user takes provisioning over the cluster is Ready."""
    name = "crash-provision"
    manifest = cluster_manifest(name, cluster={"autoProvision": True})
    try:
        crash = start_crash_operator(kubectl.kubeconfig, workdir, "before-provision")
        try:
            kubectl.apply(manifest)
            CRASHED_AT.append(wait_crash(crash, "before-provision", name))
        finally:
            crash.kill()
        at_crash = snapshot(kubectl, name)
        with running_operator(kubectl.kubeconfig, workdir, "recovery") as op:

            def retried() -> dict[str, Any] | None:
                obj = kubectl.get("restatecluster", name)
                message = (obj or {}).get("status", {}).get("message", "")
                return obj if "ProvisionCluster failed" in message else None

            cluster = wait_for(retried, 90, what="the provisioning retried")
            assert cluster["status"]["phase"] == "Provisioning"
            assert not cluster["status"].get("provisioned")
            assert "reconcile crashed" not in op.logs()
            assert_nothing_lost(
                at_crash, snapshot(kubectl, name), expected=desired_children(manifest)
            )
            kubectl.merge_patch("rsc", name, {"spec": {"cluster": {"autoProvision": False}}})
            wait_phase(kubectl, name, "Ready", timeout=90)
            after = snapshot(kubectl, name)
        manifest["spec"]["cluster"]["autoProvision"] = False
        # Nodes now provision themselves: their environment changes, so they roll.
        assert_nothing_lost(
            at_crash, after, expected=desired_children(manifest), pods_may_roll=True
        )
    finally:
        delete_cluster(kubectl, name)


# -- expansion: one 3-node cluster grown once per point -----------------------------------


@pytest.fixture(scope="module")
def expand_cluster(
    kubectl: Kubectl, restate_crd: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    manifest = _manifest("crash-expand", replicas=3)
    kubectl.apply(manifest)
    with running_operator(kubectl.kubeconfig, tmp_path_factory.mktemp("expand"), "setup"):
        wait_phase(kubectl, "crash-expand", "Ready", timeout=120)
    try:
        yield manifest
    finally:
        delete_cluster(kubectl, "crash-expand")


EXPAND_SWITCHES = [
    "before-patch-pvc",  # nothing patched yet
    "before-patch-pvc-storage-restate-1",  # restate-0 patched, the others not
    "after-patch-pvcs",
    "after-orphan-delete",  # the StatefulSet is gone, pods and PVCs orphaned
    "before-apply-StatefulSet/restate",  # ... and about to be re-created
    "before-status-write-Expanding",
    "after-status-write-Expanding",
]


@pytest.mark.parametrize("switch", EXPAND_SWITCHES)
def test_crash_while_expanding(
    kubectl: Kubectl, workdir: Path, expand_cluster: dict[str, Any], switch: str
) -> None:
    name = expand_cluster["metadata"]["name"]
    storage = expand_cluster["spec"]["storage"]
    storage["storageRequestBytes"] += GIB
    size = storage["storageRequestBytes"]
    before = snapshot(kubectl, name)
    at_crash, cluster, after = _crash_then_recover(
        kubectl,
        workdir,
        switch,
        name,
        lambda: kubectl.merge_patch(
            "rsc", name, {"spec": {"storage": {"storageRequestBytes": size}}}
        ),
    )
    if switch == "before-patch-pvc-storage-restate-1":
        patched = {n: quantity_bytes(q) for n, q in at_crash.pvc_requests.items()}
        assert patched["storage-restate-0"] == size and patched["storage-restate-1"] < size
    for earlier in (before, at_crash):
        assert_nothing_lost(
            earlier, after, expected=desired_children(expand_cluster), may_recreate=["StatefulSet"]
        )
    assert cluster["status"]["storage"]["currentBytes"] == size
    pvcs = kubectl.json("get", "pvc", "-n", name)["items"]
    assert {quantity_bytes(p["status"]["capacity"]["storage"]) for p in pvcs} == {size}
    sts = kubectl.json("get", "statefulset", "restate", "-n", name)
    template = sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]
    assert quantity_bytes(template["storage"]) == size


# -- RestateDeployment: registration, deregistration, release -------------------------------

RSD_ARGS = ("--leader-elect", "false", "--restate-deployments", "true")
#: switch -> what the RestateDeployment does to reach it
RSD_SWITCHES = ("before-register", "before-deregister", "before-remove-finalizer")


@pytest.fixture(scope="module")
def standin(kubectl: Kubectl) -> Iterator[StandIn]:
    kubectl.run("apply", "--server-side", "-f", str(REPO / "crd" / "restatedeployments.yaml"))
    kubectl.wait_established("restatedeployments.restate.dev")
    with StandInServer() as server:
        yield server.state


def _rsd_latest(kubectl: Kubectl, workdir: Path, raw: dict[str, Any]) -> None:
    """v1 registered and the latest, by a normal operator (stopped again)."""
    kubectl.apply(raw)
    with running_operator(kubectl.kubeconfig, workdir, "rsd-setup", args=RSD_ARGS):
        wait_phases(kubectl, raw["metadata"]["namespace"], **{version_of(raw): "Latest"})


def _rsd_gone(kubectl: Kubectl, workdir: Path, namespace: str) -> None:
    """Deleted and released before the next test: a crash operator must meet only its own."""
    kubectl.run("delete", "rsd", "greeter", "-n", namespace, "--wait=false", check=False)
    with running_operator(kubectl.kubeconfig, workdir, "rsd-cleanup", args=RSD_ARGS):
        wait_for(lambda: kubectl.get("rsd", "greeter", namespace) is None, 60, what="rsd gone")


@pytest.mark.parametrize("switch", RSD_SWITCHES)
def test_crash_in_a_restate_deployment(
    kubectl: Kubectl, workdir: Path, namespace: str, standin: StandIn, switch: str
) -> None:
    """Killed just before a request to Restate (or the release), restarted: exactly one
    registration per version, the deregistration done, the finalizer released, no ghost."""
    try:
        _crash_in_a_restate_deployment(kubectl, workdir, namespace, standin, switch)
    finally:
        _rsd_gone(kubectl, workdir, namespace)


def _crash_in_a_restate_deployment(
    kubectl: Kubectl, workdir: Path, namespace: str, standin: StandIn, switch: str
) -> None:
    v1_raw = manifest(namespace, standin.url)
    v1, v1_uri = version_of(v1_raw), uri_of(version_of(v1_raw), namespace)
    v2_raw = manifest(namespace, standin.url, image="example/greeter:v2")
    v2, v2_uri = version_of(v2_raw), uri_of(version_of(v2_raw), namespace)

    def ours() -> list[str]:
        with standin.lock:
            return sorted(u for u in standin.deployments.values() if f".{namespace}.svc" in u)

    def act() -> None:
        if switch == "before-register":
            kubectl.apply(v1_raw)
        elif switch == "before-deregister":
            kubectl.apply(v2_raw)  # v1 unused: retired at once (drainDelaySeconds 0)
        else:
            kubectl.run("delete", "rsd", "greeter", "-n", namespace, "--wait=false")

    if switch != "before-register":
        _rsd_latest(kubectl, workdir, v1_raw)
    crash = start_crash_operator(kubectl.kubeconfig, workdir, switch, RSD_ARGS[2:])
    try:
        act()
        point = wait_crash(crash, switch, f"{namespace}/greeter")
    finally:
        crash.kill()
    CRASHED_AT.append(point)

    # What the crash left (no operator runs now).
    v1_id = standin.id_of(v1_uri)
    if switch == "before-register":
        assert point == f"before-register-{v1}"
        assert posts_for(standin, v1_uri) == [], "crashed before the request"
    elif switch == "before-deregister":
        assert point == f"before-deregister-{v1}"
        assert v1_id is not None and ours() == sorted([v1_uri, v2_uri]), "v1 still registered"
    else:
        obj = kubectl.get("rsd", "greeter", namespace)
        assert obj is not None and obj["metadata"].get("finalizers"), "not released yet"
        assert ours() == [], "deregistered before the crash"

    with running_operator(kubectl.kubeconfig, workdir, "recovery", args=RSD_ARGS):
        if switch == "before-register":
            wait_phases(kubectl, namespace, **{v1: "Latest"})
            assert ours() == [v1_uri]
        elif switch == "before-deregister":
            wait_phases(kubectl, namespace, **{v2: "Latest", v1: "Retired"})
            wait_for(lambda: ours() == [v2_uri], 60, what="v1 deregistered, v2 alone")
            assert len(standin.seen("DELETE", f"/deployments/{v1_id}")) == 1
        else:
            wait_for(lambda: kubectl.get("rsd", "greeter", namespace) is None, 60, what="gone")
    # Exactly one registration per version, whatever crashed.
    assert len(posts_for(standin, v1_uri)) == 1
    if switch == "before-deregister":
        assert len(posts_for(standin, v2_uri)) == 1


# -- Restate's own steps: scale-down, rolling update, snapshots --------------------------
# kwok runs no Restate: the pods' node ports are stand-ins (e2e/node_standin.py), restate-<i>
# node N<i+1>, every node a metadata member, N1 the metadata leader.


@pytest.fixture
def sockets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short directory for the stand-ins' unix sockets (paths are limited to 107 bytes)."""
    return tmp_path_factory.mktemp("nodes")


@contextlib.contextmanager
def _with_restate(
    kubectl: Kubectl, workdir: Path, sockets: Path, manifest: dict[str, Any]
) -> Iterator[tuple[RestateStandIn, str, Snapshot]]:
    """The cluster of ``manifest`` made Ready by a normal operator with Restate's view read
    (every partition led) from stand-in node ports: the stand-in, the node address template
    the operators need, and what the cluster owns then. Deleted after."""
    name = manifest["metadata"]["name"]
    with serving(sockets, name, manifest["spec"]["compute"]["replicas"]) as restate:
        nodes = node_address_template(sockets)
        kubectl.apply(manifest)
        try:
            with running_operator(
                kubectl.kubeconfig, workdir, "setup", node_address_template=nodes
            ):
                wait_phase(kubectl, name, "Ready", timeout=120)
                wait_for(
                    lambda: all_led(restate_status(kubectl.get("restatecluster", name))),
                    60,
                    what=f"{name}: Restate's view read",
                )
            yield restate, nodes, snapshot(kubectl, name)
        finally:
            delete_cluster(kubectl, name)


def _pods_left(kubectl: Kubectl, name: str, pods: set[str]) -> bool:
    return set(snapshot(kubectl, name).pods) == pods


#: Whether Restate had removed the member before the crash took the operator (a crash right
#: after the call, modelled by removing it in the stand-in while no operator runs).
SHRINK_CASES = {"unanswered": False, "answered": True}


@pytest.mark.parametrize("answered", list(SHRINK_CASES.values()), ids=list(SHRINK_CASES))
def test_crash_before_removing_a_metadata_member(
    kubectl: Kubectl, workdir: Path, sockets: Path, answered: bool
) -> None:
    """3 -> 2, killed just before RemoveNode of the departing node N3: the next operator asks
    Restate afresh, removes N3 exactly once (not at all when it is already gone), then lets
    restate-2 go; Ready with 2 replicas, every PVC kept."""
    name = f"crash-shrink-{int(answered)}"
    manifest = _manifest(name, replicas=3)
    with _with_restate(kubectl, workdir, sockets, manifest) as (restate, nodes, before):
        at_crash, cluster, after = _crash_then_recover(
            kubectl,
            workdir,
            "before-remove-metadata-member",
            name,
            lambda: kubectl.merge_patch("rsc", name, {"spec": {"compute": {"replicas": 2}}}),
            nodes=nodes,
            after_crash=(lambda: restate.remove_member(3)) if answered else None,
            recovered=lambda: _pods_left(kubectl, name, {"restate-0", "restate-1"}),
        )
        assert CRASHED_AT[-1] == "before-remove-metadata-member-N3"
        assert sorted(at_crash.pods) == ["restate-0", "restate-1", "restate-2"]
        assert restate.members == {1, 2}
        assert restate.removals == ([] if answered else [3]), "N3 removed once, through N1"
        removed = events(kubectl, name, "MetadataMemberRemoved")
        assert len(removed) == (0 if answered else 1), removed
        assert cluster["status"]["readyReplicas"] == 2
        assert kubectl.json("get", "statefulset", "restate", "-n", name)["spec"]["replicas"] == 2
        manifest["spec"]["compute"]["replicas"] = 2
        for earlier in (before, at_crash):
            assert_nothing_lost(
                earlier, after, expected=desired_children(manifest), pods_may_go=["restate-2"]
            )
        assert "storage-restate-2" in after.pvcs, "the departed node's volume is kept"


def _revisions(kubectl: Kubectl, name: str) -> tuple[str | None, dict[str, str | None]]:
    """The StatefulSet's update revision, and the revision each live pod was made from."""
    sts = kubectl.get("statefulset", "restate", name) or {}
    pods = kubectl.json("get", "pods", "-n", name)["items"]
    return (sts.get("status") or {}).get("updateRevision"), {
        p["metadata"]["name"]: (p["metadata"].get("labels") or {}).get(REVISION_LABEL)
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
    }


def _restarted(kubectl: Kubectl, name: str) -> list[str]:
    """The pods the PodRestarted Events name, oldest first."""
    found = events(kubectl, name, "PodRestarted")
    found.sort(key=lambda e: e.get("eventTime") or e.get("firstTimestamp") or "")
    return [e["message"].split()[2] for e in found]


def test_crash_before_restarting_a_pod(kubectl: Kubectl, workdir: Path, sockets: Path) -> None:
    """An image change on 3 nodes, killed just before the roll's first pod delete (restate-2:
    a metadata member but not the leader, highest ordinal): nothing restarted yet; the next
    operator restarts each pod once, in Restate's order (the leader restate-0 last), and every
    pod ends on the new revision and Ready."""
    name = "crash-roll"
    manifest = _manifest(name, replicas=3)
    image = "restatedev/restate:0.8.1"

    def rolled() -> bool:
        update, pods = _revisions(kubectl, name)
        return len(pods) == 3 and set(pods.values()) == {update}

    with _with_restate(kubectl, workdir, sockets, manifest) as (_, nodes, before):
        at_crash, cluster, after = _crash_then_recover(
            kubectl,
            workdir,
            "before-restart-pod",
            name,
            lambda: kubectl.merge_patch("rsc", name, {"spec": {"compute": {"image": image}}}),
            nodes=nodes,
            recovered=rolled,
        )
        assert CRASHED_AT[-1] == "before-restart-pod-restate-2"
        assert at_crash.pods == before.pods, "no pod restarted before the crash"
        restarted = _restarted(kubectl, name)
        # Each pod once: members by highest ordinal, the metadata leader (N1) last.
        assert restarted == ["restate-2", "restate-1", "restate-0"], restarted
        assert cluster["status"]["readyReplicas"] == 3
        pods = kubectl.json("get", "pods", "-n", name)["items"]
        images = {
            c["image"] for p in pods for c in p["spec"]["containers"] if c["name"] == "restate"
        }
        assert images == {image}
        assert not set(after.pods.values()) & set(before.pods.values()), "every pod rolled"
        manifest["spec"]["compute"]["image"] = image
        assert_nothing_lost(before, after, expected=desired_children(manifest), pods_may_roll=True)


SNAPSHOT_SWITCHES = ("before-take-snapshots", "after-take-snapshots")


def _answered(kubectl: Kubectl, name: str, token: str) -> dict[str, Any] | None:
    """``status.snapshots`` when it answers ``token``."""
    status = (kubectl.get("restatecluster", name) or {}).get("status") or {}
    section = status.get("snapshots") or {}
    return dict(section) if section.get("request") == token else None


@pytest.mark.parametrize("switch", SNAPSHOT_SWITCHES)
def test_crash_while_taking_snapshots(
    kubectl: Kubectl, workdir: Path, sockets: Path, switch: str
) -> None:
    """Killed before asking Restate, or after it answered while the answer was only in
    memory: either way status.snapshots does not answer the token, so the next operator takes
    every partition's snapshot (again) and answers the token with the snapshots it took."""
    name = f"crash-snap-{SNAPSHOT_SWITCHES.index(switch)}"
    token = "nightly"
    manifest = _manifest(name, replicas=1, snapshots={"destination": "s3://backups/crash"})
    with _with_restate(kubectl, workdir, sockets, manifest) as (restate, nodes, _):
        every = list(range(restate.partitions))
        # Before: Restate not asked yet; after: every partition snapshotted once.
        at_crash_taken = [] if switch.startswith("before") else every

        def unanswered() -> None:
            assert _answered(kubectl, name, token) is None, "the token is answered already"
            assert sorted(restate.snapshots) == at_crash_taken, restate.snapshots

        at_crash, _, after = _crash_then_recover(
            kubectl,
            workdir,
            switch,
            name,
            lambda: kubectl.run("annotate", "rsc", name, f"{SNAPSHOT_ANNOTATION}={token}"),
            nodes=nodes,
            after_crash=unanswered,
            recovered=lambda: _answered(kubectl, name, token),
        )
        assert CRASHED_AT[-1] == f"{switch}-{token}"
        assert sorted(restate.snapshots) == sorted(at_crash_taken + every), "taken again"
        section = _answered(kubectl, name, token)
        assert section is not None and section.get("takenAt") and "error" not in section
        n = 1 if switch.startswith("before") else 2
        assert [p["snapshotId"] for p in section["partitions"]] == [
            f"snap_{p}_{n}" for p in every
        ], "the status holds the snapshots the recovered operator took"
        assert after.pods == at_crash.pods, "a snapshot restarts nothing"


# -- API server outage -------------------------------------------------------------------


def _time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _alive_for(op: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert op.alive, f"the operator exited during the outage:\n{op.logs()[-3000:]}"
        time.sleep(0.5)


def test_api_server_outage_during_reconciles_and_expansion(
    kube: Any, kubectl: Kubectl, workdir: Path
) -> None:
    """kube-apiserver killed for 30 s while one cluster is being created and another expands:
    the operator stays up (stepping down from and retaking its Lease) at a bounded request
    rate, re-watches, and converges after."""
    cp = kube.control_plane
    assert cp is not None, "needs the local control plane (--cluster=local)"
    steady, growing, fresh = "outage-steady", "outage-expand", "outage-new"
    kubectl.apply(_manifest(steady, replicas=1))
    kubectl.apply(_manifest(growing, replicas=3))
    size = 3 * GIB
    args = ["--lease-name", "outage", "--lease-duration", "15", "--lease-renew", "2"]
    try:
        with running_operator(kubectl.kubeconfig, workdir, "outage", args=args) as op:
            wait_phase(kubectl, steady, "Ready", timeout=120)
            wait_phase(kubectl, growing, "Ready", timeout=120)
            before = {n: snapshot(kubectl, n) for n in (steady, growing)}
            # The API server goes down at once: the operator is mid-reconcile on both.
            kubectl.apply(_manifest(fresh, replicas=1))
            kubectl.merge_patch(
                "rsc", growing, {"spec": {"storage": {"storageRequestBytes": size}}}
            )
            # The moment the operator starts expanding (the resizer needs a second or more),
            # the API server dies: both clusters are mid-reconcile.
            wait_for(
                lambda: phase_of(kubectl, growing) == "Expanding",
                30,
                interval=0.02,
                what="phase Expanding",
            )
            cp.stop_apiserver(graceful=False)
            stopped = time.monotonic()
            stopped_wall = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
            try:
                time.sleep(3)  # connections fail; backoffs start
                first = api_requests(op)
                t_first = time.monotonic()
                _alive_for(op, 30 - (t_first - stopped))
                rate = (api_requests(op) - first) / (time.monotonic() - t_first)
                health = op.http("/healthz")[0]
            finally:
                cp.start_apiserver()
            restarted = time.monotonic()
            print(
                f"\n[outage] {time.monotonic() - stopped:.0f}s down, "
                f"{rate:.2f} requests/s while down"
            )
            assert health == 200, "liveness must not fail because the API server is down"
            assert rate <= 5, f"the operator spins: {rate:.1f} requests/s against a dead server"
            for name in (steady, growing, fresh):
                wait_phase(kubectl, name, "Ready", timeout=120)
            converged = time.monotonic() - restarted
            for name in (fresh, growing):
                # Progressing turned False (done) only after the outage began.
                done = condition(kubectl.get("restatecluster", name) or {}, "Progressing")
                assert _time(done["lastTransitionTime"]) >= stopped_wall, (
                    f"{name} was Ready before the outage: the test interrupted nothing"
                )
            wait_for(lambda: is_leader(op), 30, what="the Lease taken again")
            assert "standing by" in op.logs(), "the operator should have stepped down"
            print(f"[outage] converged {converged:.1f}s after the API server came back")
            assert op.alive
            # Watches are back: a deleted child is noticed and restored at once.
            kubectl.run("delete", "service", "restate", "-n", steady)
            wait_for(
                lambda: kubectl.get("service", "restate", steady) is not None,
                30,
                what="the Service restored through a re-established watch",
            )
            wait_phase(kubectl, steady, "Ready", timeout=60)
            assert "reconcile crashed" not in op.logs()
        after = {n: snapshot(kubectl, n) for n in (steady, growing)}
        assert_nothing_lost(
            before[steady],
            after[steady],
            expected=desired_children(_manifest(steady, replicas=1)),
            may_recreate=["Service"],
        )
        assert_nothing_lost(
            before[growing],
            after[growing],
            expected=desired_children(_manifest(growing, replicas=3)),
            may_recreate=["StatefulSet"],
        )
        pvcs = kubectl.json("get", "pvc", "-n", growing)["items"]
        assert {quantity_bytes(p["status"]["capacity"]["storage"]) for p in pvcs} == {size}
    finally:
        for name in (steady, growing, fresh):
            delete_cluster(kubectl, name)


# -- throttling and conflicts -------------------------------------------------------------

RETRY_AFTER = 1.5
WRITES = ("PATCH", "POST", "PUT", "DELETE")


def test_throttling_and_conflicts_are_retried_honouring_retry_after(
    kubectl: Kubectl, workdir: Path
) -> None:
    """Through a proxy that answers the operator's first write of many objects of the cluster
    with 429 (Retry-After: 1.5 s) or 409, and its first list of each kind with 429, while
    another client keeps editing the cluster and its children: every request is retried no
    sooner than asked, the operator converges on the user's last spec, and the other client's
    fields survive."""
    name = "throttled"
    seen: dict[tuple[str, str], int] = {}

    def intercept(method: str, path: str, query: str) -> Reply | None:
        ours = f"/namespaces/{name}" in path or path.endswith(f"/restateclusters/{name}/status")
        listing = method == "GET" and "watch=true" not in query and "limit=" in query
        if not (ours and method in WRITES) and not listing:
            return None
        attempt = seen.get((method, path), 0)
        seen[(method, path)] = attempt + 1
        if attempt > 0:
            return None
        # The first request of each: lists are throttled; of the objects written, one in
        # four is throttled, one in four refused with a conflict.
        if listing or len(seen) % 4 == 1:
            return too_many_requests(RETRY_AFTER)
        return conflict() if len(seen) % 4 == 3 else None

    manifest = _manifest(name, replicas=1, config="[worker]\n")
    with ApiProxy(kubectl.kubeconfig, workdir / "proxy") as proxy:
        proxy.interceptor = intercept
        try:
            with running_operator(proxy.kubeconfig, workdir, "throttled") as op:
                kubectl.apply(manifest)
                # Another client edits the spec while the operator fights the throttle ...
                for step in range(3):
                    patch = {"spec": {"config": f"default-num-partitions = {10 + step}\n"}}
                    kubectl.merge_patch("rsc", name, patch)
                    time.sleep(0.5)
                kubectl.merge_patch("rsc", name, {"spec": {"compute": {"replicas": 2}}})
                # ... and its children, once they exist.
                wait_for(lambda: kubectl.get("service", "restate", name), 60, what="the Service")
                kubectl.run(
                    "annotate", "service", "restate", "-n", name, "team.example.com/owner=payments"
                )
                wait_for(
                    lambda: kubectl.get("statefulset", "restate", name), 60, what="the StatefulSet"
                )
                kubectl.run(
                    "label", "statefulset", "restate", "-n", name, "backup.example.com/policy=daily"
                )
                cluster = wait_phase(kubectl, name, "Ready", timeout=120)
                assert cluster["status"]["readyReplicas"] == 2
                writes = write_requests(op)
                time.sleep(3)
                assert write_requests(op) == writes, "converged: no more writes"
                assert "reconcile crashed" not in op.logs()
            requests = list(proxy.requests)

            sts = kubectl.json("get", "statefulset", "restate", "-n", name)
            config_maps = kubectl.json("get", "configmap", "-n", name, "-l", MANAGED)["items"]
            assert [c["data"]["config.toml"] for c in config_maps] == [
                "default-num-partitions = 12\n"
            ]
            volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
            assert volumes["config"]["configMap"]["name"] == config_maps[0]["metadata"]["name"]
            assert sts["metadata"]["labels"]["backup.example.com/policy"] == "daily"
            service = kubectl.json("get", "service", "restate", "-n", name)
            assert service["metadata"]["annotations"]["team.example.com/owner"] == "payments"
        finally:
            delete_cluster(kubectl, name)

    throttled = [r for r in requests if r.injected == 429]
    conflicted = [r for r in requests if r.injected == 409]
    early = []
    for i, r in enumerate(requests):
        if r.injected != 429:
            continue
        retry = next((n for n in requests[i + 1 :] if n.key == r.key), None)
        if retry is not None and retry.at - r.at < RETRY_AFTER - 0.05:
            early.append(f"{r.method} {r.path}: retried after {retry.at - r.at:.2f}s")
    print(
        f"\n[throttle] {len(throttled)} answered 429, {len(conflicted)} answered 409, "
        f"{len(requests)} requests in all"
    )
    assert len(throttled) >= 12 and len(conflicted) >= 3
    assert not early, "Retry-After not honoured:\n" + "\n".join(early)


# -- drift --------------------------------------------------------------------------------


def test_drift_is_restored_and_reported(kubectl: Kubectl, workdir: Path) -> None:
    """Someone deletes the Service, widens a NetworkPolicy and scales the StatefulSet: the
    operator puts each back, says so in a DriftCorrected Event, and then writes nothing."""
    name = "drift"
    manifest = _manifest(name, replicas=1)
    kubectl.apply(manifest)
    try:
        with running_operator(kubectl.kubeconfig, workdir, "drift") as op:
            wait_phase(kubectl, name, "Ready", timeout=120)
            before = snapshot(kubectl, name)
            open_to_all = {"spec": {"ingress": [{"ports": [{"port": 8080}]}]}}
            tampering = [
                (["delete", "service", "restate", "-n", name], "Service/restate (deleted)"),
                (
                    [
                        "patch",
                        "networkpolicy",
                        "allow-ingress-access",
                        "-n",
                        name,
                        "--type=merge",
                        "-p",
                        json.dumps(open_to_all),
                    ],
                    "NetworkPolicy/allow-ingress-access (spec.",
                ),
                (
                    ["scale", "statefulset", "restate", "-n", name, "--replicas=3"],
                    "StatefulSet/restate (spec.replicas changed)",
                ),
            ]
            for command, note in tampering:
                kubectl.run(*command)

                def reported(note: str = note) -> bool:
                    return any(
                        note in e.get("message", "")
                        for e in events(kubectl, name, "DriftCorrected")
                    )

                wait_for(reported, 60, what=f"a DriftCorrected event for {note}")
                wait_phase(kubectl, name, "Ready", timeout=60)
            policy = kubectl.json("get", "networkpolicy", "allow-ingress-access", "-n", name)
            assert "ingress" not in policy["spec"], "nobody may come in: the rule is gone again"
            wait_for(
                lambda: len(kubectl.json("get", "pods", "-n", name)["items"]) == 1,
                60,
                what="the extra pods removed",
            )
            writes = write_requests(op)
            time.sleep(3)
            assert write_requests(op) == writes, "restored: no more writes"
            after = snapshot(kubectl, name)
        assert_nothing_lost(
            before, after, expected=desired_children(manifest), may_recreate=["Service"]
        )
    finally:
        delete_cluster(kubectl, name)
