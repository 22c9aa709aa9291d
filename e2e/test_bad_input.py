"""Bad input: generated RestateClusters, valid and invalid, applied to the real API server, and
surprising objects around a cluster (foreign children, a re-created Namespace, a deleted
ConfigMap).

The property: every manifest is either refused by the API server with a message, or accepted
and then settles in Ready (valid) or Degraded with a message naming a field that is wrong
(invalid). Throughout, the operator never crashes, never loops (no writes once a cluster has
settled, beyond bounded retries), and never deletes a PVC or a Namespace.
"""

from __future__ import annotations

import copy
import itertools
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from e2e.fake_storage import PROVISIONER
from e2e.fault_tools import MANAGED, delete_cluster, requests_by
from e2e.metrics import write_requests
from e2e.operator_fixtures import cluster_manifest, condition, wait_phase
from e2e.operator_process import Kubectl, OperatorProcess, wait_for

pytestmark = pytest.mark.usefixtures("operator")

SETTLE_SECONDS = 45
#: Writes a Degraded cluster may still cause in a quiet window: rate-limited retries.
WRITES_AFTER_SETTLING = 4
QUIET_WINDOW = 2.0


@dataclass(frozen=True)
class Mutation:
    """One field set to one value; ``breaks`` names the field when the value is invalid."""

    label: str
    path: tuple[str, ...]
    value: Any
    breaks: str | None = None


def _ok(label: str, path: tuple[str, ...], value: Any) -> Mutation:
    return Mutation(label, path, value)


def _bad(label: str, path: tuple[str, ...], value: Any, field: str | None = None) -> Mutation:
    return Mutation(label, path, value, field or ".".join(("spec", *path)))


C, S, SEC = ("compute",), ("storage",), ("security",)
SECRET_REF = {"secretName": "signing-key", "key": "private.pem"}

MUTATIONS: tuple[Mutation, ...] = (
    # compute
    _ok("one replica", (*C, "replicas"), 1),
    _ok("two replicas", (*C, "replicas"), 2),
    _ok("hibernated", (*C, "replicas"), 0),
    _bad("negative replicas", (*C, "replicas"), -1),
    _bad("replicas as text", (*C, "replicas"), "three"),
    _bad("empty image", (*C, "image"), ""),
    _bad("blank image", (*C, "image"), "   "),
    _ok("env", (*C, "env"), [{"name": "RUST_LOG", "value": "info"}]),
    _bad(
        "env value and valueFrom",
        (*C, "env"),
        [{"name": "X", "value": "a", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
    ),
    _bad("duplicate env", (*C, "env"), [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]),
    _bad("env without name", (*C, "env"), [{"value": "1"}]),
    _bad("pull policy", (*C, "imagePullPolicy"), "Sometimes"),
    _bad("dns policy", (*C, "dnsPolicy"), "Anything"),
    _bad("negative grace", (*C, "terminationGracePeriodSeconds"), -5),
    _ok(
        "tolerations",
        (*C, "tolerations"),
        [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
    ),
    _ok("scratch volume", (*C, "extraVolumes"), [{"name": "scratch", "emptyDir": {}}]),
    _bad("hostPath volume", (*C, "extraVolumes"), [{"name": "host", "hostPath": {"path": "/"}}]),
    _bad("reserved volume name", (*C, "extraVolumes"), [{"name": "storage", "emptyDir": {}}]),
    _bad("mount of nothing", (*C, "extraVolumeMounts"), [{"name": "nope", "mountPath": "/x"}]),
    _bad("relative mount", (*C, "extraVolumeMounts"), [{"name": "tmp", "mountPath": "x"}]),
    _ok("sidecar", (*C, "sidecars"), [{"name": "side", "image": "busybox:1.36"}]),
    _bad(
        "privileged sidecar",
        (*C, "sidecars"),
        [{"name": "side", "image": "busybox:1.36", "securityContext": {"privileged": True}}],
    ),
    _bad("sidecar without image", (*C, "sidecars"), [{"name": "side"}]),
    _bad("cpu request", (*C, "resources"), {"requests": {"cpu": "lots"}}),
    _ok("resources", (*C, "resources"), {"requests": {"cpu": "100m", "memory": "256Mi"}}),
    _bad("unknown compute field", (*C, "bogus"), 1),
    # storage
    _ok("3 GiB", (*S, "storageRequestBytes"), 3 * 2**30),
    _bad("zero bytes", (*S, "storageRequestBytes"), 0),
    _bad("bytes as text", (*S, "storageRequestBytes"), "2Gi"),
    _ok("standard class", (*S, "storageClassName"), "standard"),
    _ok("fixed class", (*S, "storageClassName"), "fixed"),
    _bad("missing class", (*S, "storageClassName"), "no-such-class"),
    # security
    _ok(
        "ingress peers",
        (*SEC, "networkPeers"),
        {"ingress": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}], "admin": []},
    ),
    _bad(
        "bad peer cidr",
        (*SEC, "networkPeers"),
        {"ingress": [{"ipBlock": {"cidr": "nope"}}]},
        "spec.security.networkPeers.ingress[0].ipBlock.cidr",
    ),
    _bad(
        "empty peer", (*SEC, "networkPeers"), {"admin": [{}]}, "spec.security.networkPeers.admin[0]"
    ),
    _bad(
        "ipBlock with selector",
        (*SEC, "networkPeers"),
        {"node": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]},
        "spec.security.networkPeers.node[0]",
    ),
    _ok(
        "egress rule",
        (*SEC, "networkEgressRules"),
        [{"to": [{"ipBlock": {"cidr": "10.1.0.0/16"}}], "ports": [{"port": 5432}]}],
    ),
    _bad(
        "inverted port range",
        (*SEC, "networkEgressRules"),
        [{"ports": [{"port": 5432, "endPort": 5000}]}],
        "spec.security.networkEgressRules[0].ports[0].endPort",
    ),
    _bad(
        "except outside cidr",
        (*SEC, "networkEgressRules"),
        [{"to": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["192.168.0.0/24"]}}]}],
        "spec.security.networkEgressRules[0].to[0].ipBlock.except[0]",
    ),
    _ok("security groups", (*SEC, "awsPodSecurityGroups"), ["sg-0123456789abcdef0"]),
    _bad(
        "bad security group",
        (*SEC, "awsPodSecurityGroups"),
        ["sg-xyz"],
        "spec.security.awsPodSecurityGroups[0]",
    ),
    _ok(
        "role arn",
        (*SEC, "awsPodIdentityAssociationRoleArn"),
        "arn:aws:iam::123456789012:role/restate",
    ),
    _bad("bad role arn", (*SEC, "awsPodIdentityAssociationRoleArn"), "not-an-arn"),
    _ok("signing key", (*SEC, "requestSigningPrivateKey"), {"version": "v1", "secret": SECRET_REF}),
    _bad("signing key without source", (*SEC, "requestSigningPrivateKey"), {"version": "v1"}),
    _bad(
        "signing key with two sources",
        (*SEC, "requestSigningPrivateKey"),
        {
            "version": "v1",
            "secret": SECRET_REF,
            "secretProvider": {"provider": "aws", "path": "key.pem"},
        },
    ),
    _bad(
        "signing key v2",
        (*SEC, "requestSigningPrivateKey"),
        {"version": "v2", "secret": SECRET_REF},
    ),
    _ok("trusted CA", (*SEC, "trustedCaCerts"), [{"secretName": "corp-ca", "key": "ca.crt"}]),
    _bad(
        "bad CA secret name",
        (*SEC, "trustedCaCerts"),
        [{"secretName": "Bad_Name", "key": "ca.crt"}],
        "spec.security.trustedCaCerts[0].secretName",
    ),
    _ok("service annotations", (*SEC, "serviceAnnotations"), {"example.com/team": "payments"}),
    _bad("bad annotation key", (*SEC, "serviceAnnotations"), {"not a key!": "x"}),
    _ok("no policies", (*SEC, "disableNetworkPolicies"), True),
    # the rest
    _ok("config", ("config",), 'roles = ["admin", "worker", "log-server", "metadata-server"]\n'),
    _bad("broken toml", ("config",), "roles = [\n"),
    _bad("quoted auto-provision", ("config",), 'auto-provision = "yes"\n'),
    _bad("no raft leader ever", ("config",), "[metadata-server]\nraft-election-tick = 2\n"),
    _ok("cluster name", ("clusterName",), "my_cluster-1"),
    _bad("bad cluster name", ("clusterName",), "-bad-"),
    _bad("unknown spec field", ("bogus",), {"a": 1}),
)

INVALID_NAMES = ("Upper-Case", "dotted.name", "-leading-dash", "x" * 64)


@st.composite
def manifests(draw: st.DrawFn) -> tuple[dict[str, Any], list[Mutation], bool]:
    """A manifest, the mutations applied to it, and whether its name is valid."""
    chosen = draw(st.lists(st.sampled_from(MUTATIONS), max_size=3, unique_by=lambda m: m.path))
    manifest = cluster_manifest("placeholder", cluster={"autoProvision": False})
    for mutation in chosen:
        target = manifest["spec"]
        for key in mutation.path[:-1]:
            target = target.setdefault(key, {})
        target[mutation.path[-1]] = copy.deepcopy(mutation.value)
    valid_name = draw(st.integers(0, 9)) > 0
    if not valid_name:
        manifest["metadata"]["name"] = draw(st.sampled_from(INVALID_NAMES))
    return manifest, chosen, valid_name


class Tally:
    """What the generated inputs did, for the report."""

    def __init__(self) -> None:
        self.outcomes: dict[str, int] = {}
        self.cases = 0

    def add(self, outcome: str) -> None:
        self.cases += 1
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


@pytest.fixture(scope="module")
def sentinel(kubectl: Kubectl) -> Iterator[dict[str, str]]:
    """A Namespace with a PVC that no RestateCluster owns: it must survive everything."""
    kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bi-sentinel"}})
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {
                "name": "precious",
                "namespace": "bi-sentinel",
                "labels": {"app.kubernetes.io/name": "restate"},
            },
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    )
    uids = {
        "namespace": kubectl.json("get", "namespace", "bi-sentinel")["metadata"]["uid"],
        "pvc": kubectl.json("get", "pvc", "precious", "-n", "bi-sentinel")["metadata"]["uid"],
    }
    try:
        yield uids
    finally:
        kubectl.run("delete", "namespace", "bi-sentinel", "--wait=false", check=False)


def _settled(kubectl: Kubectl, name: str) -> dict[str, Any] | None:
    obj = kubectl.get("restatecluster", name)
    if obj is None:
        return None
    status = obj.get("status", {})
    settled = status.get("phase") in ("Ready", "Degraded")
    return (
        obj
        if settled and status.get("observedGeneration") == obj["metadata"]["generation"]
        else None
    )


def check_one(
    kubectl: Kubectl,
    operator: OperatorProcess,
    tally: Tally,
    name: str,
    manifest: dict[str, Any],
    chosen: list[Mutation],
    valid_name: bool,
) -> None:
    """Apply one generated manifest and check the property."""
    broken = [m.breaks for m in chosen if m.breaks]
    if not valid_name:
        broken.append("metadata.name")
    else:
        manifest["metadata"]["name"] = name
    labels = ", ".join(m.label for m in chosen) or "baseline"
    applied = kubectl.apply(manifest, check=False)
    if applied.returncode != 0:
        assert broken, f"a valid manifest ({labels}) was refused: {applied.stderr}"
        assert applied.stderr.strip(), "refused without a message"
        tally.add("refused")
        return
    name = manifest["metadata"]["name"]
    try:
        try:
            cluster = wait_for(
                lambda: _settled(kubectl, name),
                SETTLE_SECONDS,
                what=f"{name} ({labels}) to settle in Ready or Degraded",
            )
        except AssertionError:
            obj = kubectl.get("restatecluster", name) or {}
            raise AssertionError(
                f"{labels}: never settled; status {json.dumps(obj.get('status'))}"
            ) from None
        phase = cluster["status"]["phase"]
        if not broken:
            assert phase == "Ready", f"valid ({labels}) but {phase}: {cluster['status']}"
        else:
            assert phase == "Degraded", f"invalid ({labels}: {broken}) but Ready"
            message = condition(cluster, "Degraded")["message"]
            assert any(field in message for field in broken), (
                f"{labels}: Degraded message names none of {broken}: {message}"
            )
        writes = write_requests(operator)
        time.sleep(QUIET_WINDOW)
        extra = write_requests(operator) - writes
        assert extra <= WRITES_AFTER_SETTLING, f"{labels}: {extra} writes after settling"
        tally.add(phase)
    finally:
        delete_cluster(kubectl, name)


def test_generated_clusters_are_refused_or_settle_with_a_message(
    kubectl: Kubectl, operator: OperatorProcess, sentinel: dict[str, str]
) -> None:
    tally = Tally()
    started = time.monotonic()
    run = secrets.token_hex(2)
    attempts = itertools.count()

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        database=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
    )
    @given(case=manifests())
    def property_holds(case: tuple[dict[str, Any], list[Mutation], bool]) -> None:
        manifest, chosen, valid_name = case
        check_one(
            kubectl, operator, tally, f"bi-{run}-{next(attempts)}", manifest, chosen, valid_name
        )

    property_holds()
    logs = operator.logs()
    assert "reconcile crashed" not in logs
    assert "Traceback" not in logs
    assert requests_by(operator, "delete", "PersistentVolumeClaim") == 0
    assert requests_by(operator, "delete", "Namespace") == 0
    assert (
        kubectl.json("get", "namespace", "bi-sentinel")["metadata"]["uid"] == sentinel["namespace"]
    )
    assert (
        kubectl.json("get", "pvc", "precious", "-n", "bi-sentinel")["metadata"]["uid"]
        == sentinel["pvc"]
    )
    print(
        f"\n[bad input] {tally.cases} generated manifests in "
        f"{time.monotonic() - started:.0f}s: {tally.outcomes}"
    )
    assert tally.cases >= 30
    assert {"refused", "Ready", "Degraded"} <= set(tally.outcomes), tally.outcomes


# -- surprising objects -------------------------------------------------------------------


def _uid(kubectl: Kubectl, kind: str, name: str, namespace: str | None = None) -> str | None:
    obj = kubectl.get(kind, name, namespace)
    return obj["metadata"]["uid"] if obj else None


def _adopted_namespace(kubectl: Kubectl, name: str) -> None:
    kubectl.run("create", "namespace", name)
    kubectl.run("annotate", "namespace", name, "restate.dev/adopt=true")


@pytest.mark.parametrize("owned", [False, True], ids=["no-owner", "other-controller"])
def test_a_foreign_child_in_an_adopted_namespace_is_a_conflict_and_left_alone(
    kubectl: Kubectl, operator: OperatorProcess, owned: bool
) -> None:
    """A Service ``restate`` someone else created in the namespace the cluster adopts is theirs:
    the operator reports the conflict and does not touch it (no takeover, no write loop);
    once they remove it, the cluster converges."""
    name = f"bi-foreign-svc-{secrets.token_hex(2)}"
    _adopted_namespace(kubectl, name)
    metadata: dict[str, Any] = {
        "name": "restate",
        "namespace": name,
        "annotations": {"owner.example.com/team": "web"},
    }
    if owned:
        kubectl.run("create", "configmap", "owner", "-n", name)
        metadata["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": "owner",
                "uid": _uid(kubectl, "configmap", "owner", name),
                "controller": True,
            }
        ]
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata,
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]},
        }
    )
    before = kubectl.json("get", "service", "restate", "-n", name)
    try:
        kubectl.apply(cluster_manifest(name))
        cluster = wait_phase(kubectl, name, "Degraded", timeout=60, reason="ChildConflict")
        message = condition(cluster, "Degraded")["message"]
        assert "Service restate" in message, message
        writes = write_requests(operator)
        time.sleep(QUIET_WINDOW)
        assert write_requests(operator) - writes <= WRITES_AFTER_SETTLING, "a write loop"
        after = kubectl.json("get", "service", "restate", "-n", name)
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        kubectl.run("delete", "service", "restate", "-n", name)
        wait_phase(kubectl, name, "Ready", timeout=120)
    finally:
        delete_cluster(kubectl, name)
        kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def test_a_namespace_recreated_by_someone_else_is_a_name_conflict_until_adopted(
    kubectl: Kubectl, operator: OperatorProcess
) -> None:
    """While the operator is down, a user deletes the cluster's Namespace and creates their own
    of the same name with data in it: the operator reports a conflict and touches nothing;
    once the user adopts it for the cluster, it converges and keeps their data."""
    name = f"bi-recreated-{secrets.token_hex(2)}"
    kubectl.apply(cluster_manifest(name))
    try:
        wait_phase(kubectl, name, "Ready", timeout=90)
        operator.stop()
        kubectl.run("delete", "namespace", name, "--timeout=120s", timeout=150)
        kubectl.run("create", "namespace", name)
        kubectl.run("create", "configmap", "user-data", "-n", name, "--from-literal=k=v")
        namespace = kubectl.json("get", "namespace", name)
        operator.start()
        operator.wait_ready()
        cluster = wait_phase(kubectl, name, "Degraded", timeout=60, reason="NameConflict")
        assert "restate.dev/adopt" in condition(cluster, "Degraded")["message"]
        assert (
            kubectl.json("get", "namespace", name)["metadata"]["resourceVersion"]
            == namespace["metadata"]["resourceVersion"]
        )
        assert kubectl.get("statefulset", "restate", name) is None
        kubectl.run("annotate", "namespace", name, "restate.dev/adopt=true")
        wait_phase(kubectl, name, "Ready", timeout=90)
        assert kubectl.json("get", "configmap", "user-data", "-n", name)["data"] == {"k": "v"}
        assert _uid(kubectl, "namespace", name) == namespace["metadata"]["uid"]
    finally:
        if not operator.alive:
            operator.start()
            operator.wait_ready()
        delete_cluster(kubectl, name)
        kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def test_a_deleted_config_map_is_restored_without_a_roll(
    kubectl: Kubectl, operator: OperatorProcess
) -> None:
    name = f"bi-lost-config-{secrets.token_hex(2)}"
    kubectl.apply(cluster_manifest(name, config="[worker]\n"))
    try:
        wait_phase(kubectl, name, "Ready", timeout=90)
        pods = {
            p["metadata"]["name"]: p["metadata"]["uid"]
            for p in kubectl.json("get", "pods", "-n", name)["items"]
        }
        config_map = kubectl.json("get", "configmap", "-n", name, "-l", MANAGED)["items"][0]
        kubectl.run("delete", "configmap", config_map["metadata"]["name"], "-n", name)
        restored = wait_for(
            lambda: kubectl.get("configmap", config_map["metadata"]["name"], name),
            60,
            what="the ConfigMap restored",
        )
        assert restored["data"] == config_map["data"]
        assert restored["metadata"]["uid"] != config_map["metadata"]["uid"]
        wait_phase(kubectl, name, "Ready", timeout=60)
        assert {
            p["metadata"]["name"]: p["metadata"]["uid"]
            for p in kubectl.json("get", "pods", "-n", name)["items"]
        } == pods
    finally:
        delete_cluster(kubectl, name)


def test_a_missing_storage_class_is_degraded_until_it_is_created(
    kubectl: Kubectl, operator: OperatorProcess
) -> None:
    name = f"bi-late-class-{secrets.token_hex(2)}"
    manifest = cluster_manifest(name)
    manifest["spec"]["storage"]["storageClassName"] = name
    kubectl.apply(manifest)
    try:
        cluster = wait_phase(kubectl, name, "Degraded", timeout=60, reason="StorageClassNotFound")
        assert "spec.storage.storageClassName" in condition(cluster, "Degraded")["message"]
        assert kubectl.get("statefulset", "restate", name) is None, "nothing built yet"
        kubectl.apply(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": name},
                "provisioner": PROVISIONER,
                "volumeBindingMode": "Immediate",
                "allowVolumeExpansion": True,
            }
        )
        wait_phase(kubectl, name, "Ready", timeout=90)
    finally:
        delete_cluster(kubectl, name)
        kubectl.run("delete", "storageclass", name, "--wait=false", check=False)


def test_a_spec_the_model_cannot_read_is_degraded_until_fixed(
    kubectl: Kubectl, operator: OperatorProcess
) -> None:
    name = f"bi-unreadable-{secrets.token_hex(2)}"
    manifest = cluster_manifest(name, security={"requestSigningPrivateKey": {"version": "v1"}})
    kubectl.apply(manifest)
    try:
        cluster = wait_phase(kubectl, name, "Degraded", timeout=60, reason="InvalidSpec")
        assert "spec.security.requestSigningPrivateKey" in condition(cluster, "Degraded")["message"]
        kubectl.merge_patch(
            "rsc",
            name,
            {
                "spec": {
                    "security": {
                        "requestSigningPrivateKey": {
                            "secret": {"secretName": "signing-key", "key": "private.pem"}
                        }
                    }
                }
            },
        )
        wait_phase(kubectl, name, "Ready", timeout=90)
    finally:
        delete_cluster(kubectl, name)


def test_a_scale_down_below_the_replication_factor_is_refused_before_anything_rolls(
    kubectl: Kubectl, operator: OperatorProcess
) -> None:
    """3 → 1 with default-replication = 2: Degraded naming both fields; the StatefulSet
    keeps its three pods (Restate would start one node that leads no partition)."""
    name = f"bi-replication-{secrets.token_hex(2)}"
    manifest = cluster_manifest(
        name, config="default-replication = 2\n", cluster={"autoProvision": False}
    )
    manifest["spec"]["compute"]["replicas"] = 3
    kubectl.apply(manifest)
    try:
        wait_phase(kubectl, name, "Ready", timeout=90)
        manifest["spec"]["compute"]["replicas"] = 1
        kubectl.apply(manifest)
        cluster = wait_phase(kubectl, name, "Degraded", timeout=60, reason="InvalidConfig")
        message = condition(cluster, "Degraded")["message"]
        assert "default-replication = 2 needs at least 2 Restate nodes" in message, message
        assert "spec.compute.replicas is 1" in message, message
        sts = kubectl.get("statefulset", "restate", name)
        assert sts is not None and sts["spec"]["replicas"] == 3, "scaled down anyway"
        manifest["spec"]["compute"]["replicas"] = 2
        kubectl.apply(manifest)
        wait_phase(kubectl, name, "Ready", timeout=90)
        sts = kubectl.get("statefulset", "restate", name)
        assert sts is not None and sts["spec"]["replicas"] == 2
    finally:
        delete_cluster(kubectl, name)
