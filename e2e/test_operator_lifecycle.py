"""The operator end to end on a real control plane: children, phases, events, expansion."""

from __future__ import annotations

import re
from typing import Any

import pytest

from e2e.metrics import reconciles, write_requests
from e2e.operator_fixtures import (
    cluster_manifest,
    condition,
    example,
    phase_of,
    wait_phase,
)
from e2e.operator_process import Kubectl, OperatorProcess, wait_for
from restate_op.quantity import quantity_bytes

pytestmark = pytest.mark.usefixtures("operator")

SELECTOR = {"app.kubernetes.io/name": "restate"}


def _owned_by(obj: dict[str, Any], cluster: dict[str, Any]) -> bool:
    return any(
        ref.get("uid") == cluster["metadata"]["uid"] and ref.get("controller")
        for ref in obj["metadata"].get("ownerReferences", [])
    )


def _delete(kubectl: Kubectl, name: str) -> None:
    kubectl.run("delete", "restatecluster", name, "--wait=false", check=False)


def test_baseline_example_reaches_ready_with_every_child(kubectl: Kubectl) -> None:
    manifest = example("baseline")
    name = manifest["metadata"]["name"]
    kubectl.apply(manifest)
    try:
        cluster = wait_phase(kubectl, name, "Ready", timeout=90)
        assert condition(cluster, "Ready")["status"] == "True"
        assert condition(cluster, "Progressing")["status"] == "False"
        assert condition(cluster, "Degraded")["status"] == "False"
        status = cluster["status"]
        assert status["readyReplicas"] == 1 and status["replicas"] == 1
        assert status["storage"]["requestedBytes"] == 2147483648
        assert status["storage"]["currentBytes"] == 2147483648

        ns = kubectl.get("namespace", name)
        assert ns is not None and _owned_by(ns, cluster)
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"

        sts = kubectl.get("statefulset", "restate", name)
        assert sts is not None and _owned_by(sts, cluster)
        assert sts["spec"]["serviceName"] == "restate-cluster"
        assert sts["spec"]["podManagementPolicy"] == "Parallel"
        container = sts["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "restatedev/restate:0.8.0"
        assert container["readinessProbe"]["httpGet"]["port"] == 9070
        env = {e["name"]: e for e in container["env"]}
        assert env["RESTATE_NODE_NAME"]["value"] == "$(POD_NAME)"
        assert env["RESTATE_CLUSTER_NAME"]["value"] == name
        assert env["RESTATE_BASE_DIR"]["value"] == "/restate-data"
        assert env["RESTATE_CONFIG"]["value"] == "/config/config.toml"
        claim = sts["spec"]["volumeClaimTemplates"][0]
        assert claim["metadata"]["name"] == "storage"

        svc = kubectl.get("service", "restate", name)
        assert svc is not None and _owned_by(svc, cluster)
        assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {
            "ingress": 8080,
            "admin": 9070,
            "node": 5122,
        }
        headless = kubectl.get("service", "restate-cluster", name)
        assert headless is not None and headless["spec"]["clusterIP"] == "None"
        assert headless["spec"]["publishNotReadyAddresses"] is True
        assert kubectl.get("serviceaccount", "restate", name) is not None
        assert kubectl.get("poddisruptionbudget", "restate", name) is None, "1 replica: no PDB"
        cms = kubectl.json(
            "get", "configmap", "-n", name, "-l", "app.kubernetes.io/managed-by=restate-operator"
        )["items"]
        assert len(cms) == 1 and re.fullmatch(
            r"restate-config-[0-9a-f]+", cms[0]["metadata"]["name"]
        )
        policies = {
            p["metadata"]["name"] for p in kubectl.json("get", "networkpolicy", "-n", name)["items"]
        }
        assert {
            "deny-all",
            "allow-egress-to-dns",
            "allow-restate-egress-to-public-internet",
            "allow-restate-egress",
            "allow-ingress-access",
            "allow-admin-access",
        } <= policies
        pvcs = kubectl.json("get", "pvc", "-n", name)["items"]
        assert [p["status"]["phase"] for p in pvcs] == ["Bound"]

        # kubectl get / describe say where the cluster stands and why.
        row = kubectl.run("get", "rsc", name).stdout
        assert "Ready" in row and "1/1" in row and "2Gi" in row
        described = kubectl.run("describe", "rsc", name).stdout
        assert "Provisioning" in described and "Ready" in described
        events = kubectl.json(
            "get", "events", "-A", "--field-selector", f"involvedObject.name={name}"
        )["items"]
        reasons = [e["reason"] for e in events]
        assert "Provisioning" in reasons and "Ready" in reasons, reasons
    finally:
        _delete(kubectl, name)


def test_converged_cluster_gets_no_writes_on_resync(
    kubectl: Kubectl, operator: OperatorProcess, kube: Any, tmp_path: Any
) -> None:
    name = "e2e-idle"
    kubectl.apply(cluster_manifest(name))
    try:
        wait_phase(kubectl, name, "Ready", timeout=90)
        before = {
            kind: kubectl.json("get", kind, "-n", name)["items"]
            for kind in ("statefulset", "service", "configmap", "networkpolicy", "serviceaccount")
        }
        # A fresh operator lists everything and reconciles every cluster once.
        fresh = OperatorProcess(
            kube.kubeconfig, tmp_path, name="fresh", args=["--leader-elect", "false"]
        ).start()
        try:
            fresh.wait_ready()
            wait_for(lambda: reconciles(fresh) >= 1, 30, what="a reconcile")
            assert write_requests(fresh) == 0, fresh.http("/metrics")[1]
        finally:
            fresh.stop()
        after = {kind: kubectl.json("get", kind, "-n", name)["items"] for kind in before}
        for kind, items in before.items():
            assert [i["metadata"]["resourceVersion"] for i in items] == [
                i["metadata"]["resourceVersion"] for i in after[kind]
            ], kind
    finally:
        _delete(kubectl, name)


def _pvc_capacities(kubectl: Kubectl, name: str) -> dict[str, str]:
    return {
        p["metadata"]["name"]: p.get("status", {}).get("capacity", {}).get("storage", "")
        for p in kubectl.json("get", "pvc", "-n", name)["items"]
    }


def test_growing_storage_expands_volumes_online(kubectl: Kubectl) -> None:
    name = "e2e-expand"
    manifest = cluster_manifest(name, cluster={"autoProvision": False})
    manifest["spec"]["compute"]["replicas"] = 3
    kubectl.apply(manifest)
    try:
        wait_phase(kubectl, name, "Ready", timeout=90)
        pods_before = {
            p["metadata"]["name"]: p["metadata"]["uid"]
            for p in kubectl.json("get", "pods", "-n", name)["items"]
        }
        pvcs_before = {
            p["metadata"]["name"]: p["metadata"]["uid"]
            for p in kubectl.json("get", "pvc", "-n", name)["items"]
        }
        sts_uid = kubectl.json("get", "statefulset", "restate", "-n", name)["metadata"]["uid"]
        assert len(pods_before) == 3 and len(pvcs_before) == 3

        kubectl.merge_patch("rsc", name, {"spec": {"storage": {"storageRequestBytes": 4294967296}}})
        seen_expanding = wait_for(
            lambda: phase_of(kubectl, name) in ("Expanding",),
            30,
            interval=0.05,
            what="phase Expanding",
        )
        assert seen_expanding
        cluster = wait_phase(kubectl, name, "Ready", timeout=90)
        assert cluster["status"]["storage"]["currentBytes"] == 4294967296
        assert {quantity_bytes(c) for c in _pvc_capacities(kubectl, name).values()} == {4294967296}
        pods_after = {
            p["metadata"]["name"]: p["metadata"]["uid"]
            for p in kubectl.json("get", "pods", "-n", name)["items"]
        }
        pvcs_after = {
            p["metadata"]["name"]: p["metadata"]["uid"]
            for p in kubectl.json("get", "pvc", "-n", name)["items"]
        }
        assert pods_after == pods_before, "no pod was restarted"
        assert pvcs_after == pvcs_before, "no PVC was replaced"
        sts = kubectl.json("get", "statefulset", "restate", "-n", name)
        assert sts["metadata"]["uid"] != sts_uid, "the StatefulSet was re-created"
        assert (
            quantity_bytes(
                sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
            )
            == 4294967296
        )
        reasons = [
            e["reason"]
            for e in kubectl.json(
                "get", "events", "-A", "--field-selector", f"involvedObject.name={name}"
            )["items"]
        ]
        assert "VolumeExpansionStarted" in reasons and "StatefulSetRecreated" in reasons
    finally:
        _delete(kubectl, name)


def test_api_server_refuses_decrease_and_storage_class_change(kubectl: Kubectl) -> None:
    name = "e2e-refuse"
    manifest = cluster_manifest(name)
    manifest["spec"]["storage"]["storageClassName"] = "standard"
    kubectl.apply(manifest)
    try:
        smaller = kubectl.merge_patch(
            "rsc", name, {"spec": {"storage": {"storageRequestBytes": 1073741824}}}, check=False
        )
        assert smaller.returncode != 0
        assert "storageRequestBytes cannot be decreased" in smaller.stderr
        other = kubectl.merge_patch(
            "rsc", name, {"spec": {"storage": {"storageClassName": "fixed"}}}, check=False
        )
        assert other.returncode != 0 and "storageClassName is immutable" in other.stderr
        dotted = cluster_manifest("e2e.dotted")
        refused = kubectl.apply(dotted, check=False)
        assert refused.returncode != 0 and "DNS label" in refused.stderr
    finally:
        _delete(kubectl, name)


def test_non_expandable_storage_class_degrades_and_changes_nothing(kubectl: Kubectl) -> None:
    name = "e2e-fixed"
    manifest = cluster_manifest(name)
    manifest["spec"]["storage"]["storageClassName"] = "fixed"
    kubectl.apply(manifest)
    try:
        wait_phase(kubectl, name, "Ready", timeout=90)
        pvcs = kubectl.json("get", "pvc", "-n", name)["items"]
        kubectl.merge_patch("rsc", name, {"spec": {"storage": {"storageRequestBytes": 4294967296}}})
        cluster = wait_phase(
            kubectl, name, "Degraded", timeout=60, reason="VolumeExpansionNotSupported"
        )
        assert "fixed" in condition(cluster, "Degraded")["message"]
        after = kubectl.json("get", "pvc", "-n", name)["items"]
        assert [p["metadata"]["resourceVersion"] for p in after] == [
            p["metadata"]["resourceVersion"] for p in pvcs
        ]
    finally:
        _delete(kubectl, name)


def test_foreign_namespace_is_a_name_conflict_and_left_alone(kubectl: Kubectl) -> None:
    name = "e2e-taken"
    kubectl.run("create", "namespace", name)
    try:
        before = kubectl.json("get", "namespace", name)
        kubectl.apply(cluster_manifest(name))
        cluster = wait_phase(kubectl, name, "Degraded", reason="NameConflict")
        assert "restate.dev/adopt" in condition(cluster, "Degraded")["message"]
        after = kubectl.json("get", "namespace", name)
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        assert kubectl.json("get", "all", "-n", name)["items"] == []
        _delete(kubectl, name)
        wait_for(lambda: kubectl.get("restatecluster", name) is None, 30, what="rsc gone")
        assert kubectl.get("namespace", name) is not None, "a foreign namespace is never deleted"
    finally:
        kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def test_adopted_namespace_is_used_and_kept(kubectl: Kubectl) -> None:
    name = "e2e-adopt"
    kubectl.run("create", "namespace", name)
    kubectl.run("annotate", "namespace", name, "restate.dev/adopt=true")
    try:
        kubectl.apply(cluster_manifest(name))
        wait_phase(kubectl, name, "Ready", timeout=90)
        assert kubectl.get("statefulset", "restate", name) is not None
        pvcs = [p["metadata"]["uid"] for p in kubectl.json("get", "pvc", "-n", name)["items"]]
        assert len(pvcs) == 1
        kubectl.run("delete", "restatecluster", name)
        wait_for(
            lambda: kubectl.get("statefulset", "restate", name) is None,
            60,
            what="children garbage-collected",
        )
        assert kubectl.get("namespace", name) is not None
        assert [
            p["metadata"]["uid"] for p in kubectl.json("get", "pvc", "-n", name)["items"]
        ] == pvcs, "the user's volumes survive"
    finally:
        kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def test_config_change_rolls_pods_via_new_config_map(kubectl: Kubectl) -> None:
    name = "e2e-config"
    kubectl.apply(cluster_manifest(name, config="[worker]\n"))
    try:
        wait_phase(kubectl, name, "Ready", timeout=90)

        def config_maps() -> list[str]:
            return sorted(
                c["metadata"]["name"]
                for c in kubectl.json(
                    "get",
                    "configmap",
                    "-n",
                    name,
                    "-l",
                    "app.kubernetes.io/managed-by=restate-operator",
                )["items"]
            )

        old = config_maps()
        kubectl.merge_patch("rsc", name, {"spec": {"config": "default-num-partitions = 12\n"}})
        wait_phase(kubectl, name, "Ready", timeout=90)
        new = wait_for(
            lambda: (c := config_maps()) != old and len(c) == 1 and c,
            30,
            what="old ConfigMap removed",
        )
        sts = kubectl.json("get", "statefulset", "restate", "-n", name)
        volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
        assert volumes["config"]["configMap"]["name"] == new[0]
    finally:
        _delete(kubectl, name)


def test_scaling_one_three_one_manages_the_pdb(kubectl: Kubectl) -> None:
    name = "e2e-scale"
    # kwok pods run no Restate, so nobody could provision it: the user manages provisioning.
    kubectl.apply(cluster_manifest(name, cluster={"autoProvision": False}))
    try:
        wait_phase(kubectl, name, "Ready", timeout=90)
        for replicas, pdb in ((3, True), (1, False)):
            kubectl.merge_patch("rsc", name, {"spec": {"compute": {"replicas": replicas}}})
            cluster = wait_phase(kubectl, name, "Ready", timeout=90)
            assert cluster["status"]["readyReplicas"] == replicas
            assert (kubectl.get("poddisruptionbudget", "restate", name) is not None) == pdb
            zones = {
                p["spec"].get("nodeName") for p in kubectl.json("get", "pods", "-n", name)["items"]
            }
            assert len(zones) >= 1
    finally:
        _delete(kubectl, name)


def test_network_policies_follow_peers_and_can_be_disabled(kubectl: Kubectl) -> None:
    name = "e2e-netpol"
    security: dict[str, Any] = {
        "networkPeers": {
            "ingress": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}],
            "admin": [],
        },
        "networkEgressRules": [
            {
                "to": [{"ipBlock": {"cidr": "10.1.0.0/16"}}],
                "ports": [{"port": 5432, "protocol": "TCP"}],
            }
        ],
    }
    kubectl.apply(cluster_manifest(name, security=security))
    try:
        wait_phase(kubectl, name, "Ready", timeout=90)
        policies = {
            p["metadata"]["name"]: p
            for p in kubectl.json("get", "networkpolicy", "-n", name)["items"]
        }
        ingress = policies["allow-ingress-access"]["spec"]["ingress"]
        assert ingress[0]["from"] == security["networkPeers"]["ingress"]
        admin = policies["allow-admin-access"]["spec"]["ingress"]
        assert "from" not in admin[0], "[] means every source: no `from`"
        egress = policies["allow-restate-egress"]["spec"]["egress"]
        assert {
            "to": [{"ipBlock": {"cidr": "10.1.0.0/16"}}],
            "ports": [{"port": 5432, "protocol": "TCP"}],
        } in egress
        kubectl.merge_patch("rsc", name, {"spec": {"security": {"disableNetworkPolicies": True}}})
        wait_for(
            lambda: kubectl.json("get", "networkpolicy", "-n", name)["items"] == [],
            60,
            what="network policies removed",
        )
        wait_phase(kubectl, name, "Ready", timeout=60)
    finally:
        _delete(kubectl, name)


def test_deleting_the_cluster_removes_its_namespace(kubectl: Kubectl) -> None:
    name = "e2e-delete"
    kubectl.apply(cluster_manifest(name))
    wait_phase(kubectl, name, "Ready", timeout=90)
    kubectl.run("delete", "restatecluster", name)
    wait_for(
        lambda: kubectl.get("namespace", name) is None,
        120,
        what="owned namespace garbage-collected",
    )


def test_invalid_config_is_degraded_with_the_toml_error(kubectl: Kubectl) -> None:
    name = "e2e-badtoml"
    kubectl.apply(cluster_manifest(name, config="roles = [\n"))
    try:
        cluster = wait_phase(kubectl, name, "Degraded", reason="InvalidConfig")
        message = condition(cluster, "Degraded")["message"]
        assert "spec.config" in message
        assert kubectl.get("statefulset", "restate", name) is None
        kubectl.merge_patch(
            "rsc", name, {"spec": {"config": 'roles = ["admin", "worker", "metadata-server"]\n'}}
        )
        wait_phase(kubectl, name, "Ready", timeout=90)
    finally:
        _delete(kubectl, name)
