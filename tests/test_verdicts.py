"""State in, verdict out: the phase and reason each observation implies, without a cluster.

The effects and status of a whole reconcile are tested in ``tests/test_reconcile.py``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from restate_op.api.models import RestateCluster
from restate_op.machine import load_machine
from restate_op.observe import Observation
from restate_op.plan import make_plan
from restate_op.settings import Capabilities, OperatorSettings
from restate_op.status import Figures, Verdict, build_status, status_changed
from restate_op.verdicts import judge

UID = "0b5c1e2a-0000-4000-8000-000000000001"
NOW = 1_800_000_000.0
SETTINGS = OperatorSettings()
EXPANDABLE = {
    "metadata": {
        "name": "standard",
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
    },
    "allowVolumeExpansion": True,
}
FIXED = {"metadata": {"name": "fixed"}}


def cluster(
    phase: str | None = None,
    *,
    replicas: int = 1,
    size: int = 2 * 2**30,
    config: str | None = None,
    generation: int = 1,
    observed: int | None = 1,
    storage_class: str | None = None,
    auto_provision: bool | None = None,
    provisioned: bool | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "compute": {"image": "restatedev/restate:1.7.12", "replicas": replicas},
        "storage": {"storageRequestBytes": size},
    }
    if storage_class:
        spec["storage"]["storageClassName"] = storage_class
    if config is not None:
        spec["config"] = config
    if auto_provision is not None:
        spec["cluster"] = {"autoProvision": auto_provision}
    raw: dict[str, Any] = {
        "apiVersion": "restate.dev/v1",
        "kind": "RestateCluster",
        "metadata": {"name": "rc", "uid": UID, "generation": generation},
        "spec": spec,
    }
    if phase is not None:
        raw["status"] = {"phase": phase, "observedGeneration": observed, "provisioned": provisioned}
    return raw


def observe(
    raw: Mapping[str, Any],
    children: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
    namespace: Mapping[str, Any] | None = None,
    pvcs: tuple[Mapping[str, Any], ...] = (),
    classes: tuple[dict[str, Any], ...] = (EXPANDABLE, FIXED),
) -> Observation:
    return Observation(
        cluster=RestateCluster.model_validate(raw),
        raw=raw,
        namespace=namespace,
        children=children or {},
        pvcs=pvcs,
        storage_classes={c["metadata"]["name"]: c for c in classes},
        settings=SETTINGS,
        capabilities=Capabilities(),
    )


def pvc(
    index: int,
    request: int,
    capacity: int | None,
    conditions: tuple[str, ...] = (),
    storage_class: str = "standard",
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Bound" if capacity else "Pending"}
    if capacity:
        status["capacity"] = {"storage": str(capacity)}
    status["conditions"] = [{"type": c, "status": "True"} for c in conditions]
    return {
        "metadata": {
            "name": f"storage-restate-{index}",
            "namespace": "rc",
            "labels": {"app.kubernetes.io/name": "restate", "app.kubernetes.io/instance": "rc"},
        },
        "spec": {
            "storageClassName": storage_class,
            "resources": {"requests": {"storage": str(request)}},
        },
        "status": status,
    }


def converged(
    raw: dict[str, Any], *, ready: int | None = None, pvc_capacity: int | None = None
) -> Observation:
    """An observation in which every desired child exists exactly as the plan wants."""
    obs = observe(raw)
    plan = make_plan(obs)
    children: dict[tuple[str, str], dict[str, Any]] = {}
    namespace = None
    replicas = obs.cluster.spec.compute.desired_replicas
    for manifest in plan.apply:
        live = copy.deepcopy(manifest)
        live["metadata"]["uid"] = f"uid-{manifest['kind']}"
        live["metadata"]["generation"] = 1
        if manifest["kind"] == "Namespace":
            namespace = live
            continue
        if manifest["kind"] == "StatefulSet":
            count = replicas if ready is None else ready
            live["status"] = {
                "observedGeneration": 1,
                "replicas": replicas,
                "readyReplicas": count,
                "updatedReplicas": replicas,
                "currentRevision": "r1",
                "updateRevision": "r1",
            }
        children[(manifest["kind"], manifest["metadata"]["name"])] = live
    size = obs.cluster.spec.storage.storage_request_bytes
    pvcs = tuple(pvc(i, size, pvc_capacity or size) for i in range(replicas))
    return observe(raw, children, namespace, pvcs)


def reachable(current: str, target: str) -> str:
    """The phase a reconcile moves to now: the first step of the machine's shortest path."""
    path = load_machine().path(current, target)
    return path[0].dest if path else current


def verdict(obs: Observation) -> Verdict:
    return judge(obs, make_plan(obs), NOW)


def test_new_cluster_is_provisioned() -> None:
    result = verdict(observe(cluster()))
    assert result.phase == "Provisioning" and result.reason == "ApplyingChildren"
    assert reachable("Pending", result.phase) == "Provisioning"


def test_converged_cluster_is_ready_and_plans_no_writes() -> None:
    obs = converged(cluster("Provisioning"))
    plan = make_plan(obs)
    assert plan.apply == () and plan.delete == ()
    assert verdict(obs) == Verdict("Ready", "Ready", "Restate cluster ready: 1/1 pods")


def test_pending_never_jumps_to_ready() -> None:
    assert reachable("Pending", "Ready") == "Provisioning"
    assert reachable("Pending", "Expanding") == "Provisioning"
    assert reachable("Ready", "Expanding") == "Expanding"


def test_pods_not_ready_while_rolling_out_is_provisioning() -> None:
    obs = converged(cluster("Provisioning", replicas=3), ready=1)
    assert verdict(obs).phase == "Provisioning"
    assert "1/3 pods ready" in verdict(obs).message


def test_ready_pods_lost_without_a_spec_change_is_degraded() -> None:
    obs = converged(cluster("Ready", replicas=3, auto_provision=False), ready=2)
    result = verdict(obs)
    assert result.phase == "Degraded" and result.reason == "PodsNotReady"


def test_pods_lost_during_a_spec_change_is_provisioning() -> None:
    obs = converged(
        cluster("Ready", replicas=3, generation=2, observed=1, auto_provision=False), ready=2
    )
    assert verdict(obs).phase == "Provisioning"


def test_invalid_toml_is_degraded_with_the_field() -> None:
    result = verdict(observe(cluster(config="roles = [")))
    assert result.phase == "Degraded" and result.reason == "InvalidConfig"
    assert "spec.config" in result.message


def test_foreign_namespace_is_a_name_conflict() -> None:
    foreign = {"metadata": {"name": "rc", "uid": "other"}}
    result = verdict(observe(cluster(), namespace=foreign))
    assert result.phase == "Degraded" and result.reason == "NameConflict"
    assert "restate.dev/adopt" in result.message


def test_adopted_namespace_is_used_but_not_applied() -> None:
    adopted = {
        "metadata": {"name": "rc", "uid": "other", "annotations": {"restate.dev/adopt": "true"}}
    }
    plan = make_plan(observe(cluster(), namespace=adopted))
    assert plan.namespace == "adopted"
    assert "Namespace" not in {m["kind"] for m in plan.apply}


def _grown(raw: dict[str, Any], size: int) -> dict[str, Any]:
    grown = copy.deepcopy(raw)
    grown["spec"]["storage"]["storageRequestBytes"] = size
    grown["metadata"]["generation"] = 2
    return grown


def test_larger_request_is_expanding_and_plans_pvc_patches() -> None:
    base = converged(cluster("Ready", replicas=3, auto_provision=False))
    obs = observe(_grown(dict(base.raw), 4 * 2**30), dict(base.children), base.namespace, base.pvcs)
    plan = make_plan(obs)
    assert plan.volumes is not None
    assert plan.volumes.to_patch == ("storage-restate-0", "storage-restate-1", "storage-restate-2")
    assert plan.volumes.template_outdated
    statefulset = [m for m in plan.apply if m["kind"] == "StatefulSet"]
    assert not statefulset or statefulset[0]["spec"]["volumeClaimTemplates"][0]["spec"][
        "resources"
    ]["requests"]["storage"] == str(2 * 2**30), "template kept until re-created"
    result = judge(obs, plan, NOW)
    assert result.phase == "Expanding" and result.reason == "VolumeExpansion"


def test_waiting_for_resize_names_the_condition() -> None:
    base = converged(
        cluster("Expanding", size=4 * 2**30, auto_provision=False), pvc_capacity=2 * 2**30
    )
    pvcs = (pvc(0, 4 * 2**30, 2 * 2**30, ("FileSystemResizePending",)),)
    obs = observe(dict(base.raw), dict(base.children), base.namespace, pvcs)
    result = verdict(obs)
    assert result.phase == "Expanding"
    assert "FileSystemResizePending" in result.message


def test_resized_volumes_are_ready() -> None:
    obs = converged(cluster("Expanding", size=4 * 2**30))
    assert verdict(obs).phase == "Ready"


def test_fixed_storage_class_is_degraded_and_touches_no_volume() -> None:
    base = converged(cluster("Ready", storage_class="fixed"))
    pvcs = tuple(pvc(0, 2 * 2**30, 2 * 2**30, storage_class="fixed") for _ in range(1))
    obs = observe(_grown(dict(base.raw), 4 * 2**30), dict(base.children), base.namespace, pvcs)
    result = verdict(obs)
    assert result.phase == "Degraded" and result.reason == "VolumeExpansionNotSupported"
    assert "fixed" in result.message


def test_unbound_pvc_does_not_block() -> None:
    base = converged(cluster("Ready"))
    pvcs = (pvc(0, 2 * 2**30, None),)
    obs = observe(dict(base.raw), dict(base.children), base.namespace, pvcs)
    assert verdict(obs).phase == "Ready"


def test_drifted_child_is_reapplied() -> None:
    base = converged(cluster("Ready"))
    children = copy.deepcopy(dict(base.children))
    children[("Service", "restate")]["spec"]["ports"] = []
    obs = observe(dict(base.raw), children, base.namespace, base.pvcs)
    plan = make_plan(obs)
    assert [m["metadata"]["name"] for m in plan.apply] == ["restate"]
    assert verdict(obs).phase == "Provisioning"


def test_stale_config_map_is_deleted() -> None:
    base = converged(cluster("Ready"))
    children = dict(base.children)
    children[("ConfigMap", "restate-config-deadbeef")] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "restate-config-deadbeef"},
    }
    plan = make_plan(observe(dict(base.raw), children, base.namespace, base.pvcs))
    assert [d.name for d in plan.delete] == ["restate-config-deadbeef"]


def test_multi_node_cluster_waits_for_provisioning() -> None:
    obs = converged(cluster("Provisioning", replicas=3))
    plan = make_plan(obs)
    assert plan.provisioning_due
    assert judge(obs, plan, NOW).reason == "ProvisioningCluster"
    done = converged(cluster("Provisioning", replicas=3, provisioned=True))
    assert verdict(done).phase == "Ready"


def test_hibernated_cluster_is_ready() -> None:
    obs = converged(cluster("Provisioning", replicas=0))
    result = verdict(obs)
    assert result == Verdict("Ready", "Hibernated", "Hibernated: spec.compute.replicas is 0")


def test_status_conditions_follow_the_states_table() -> None:
    definition = load_machine()
    figures = Figures(
        desired_replicas=3, ready_replicas=3, requested_bytes=1, current_bytes=1, provisioned=None
    )
    status = build_status(
        definition,
        Verdict("Expanding", "VolumeExpansion", "growing"),
        figures,
        2,
        None,
        now="2026-01-01T00:00:00Z",
    )
    by_type = {c.type: c for c in status.conditions or []}
    assert by_type["Ready"].status == "True", "Expanding keeps Ready while pods serve"
    assert by_type["Progressing"].status == "True"
    assert by_type["Progressing"].reason == "VolumeExpansion"
    assert by_type["Degraded"].status == "False"
    assert all(c.observed_generation == 2 for c in by_type.values())
    assert status.replica_summary == "3/3"


def test_last_transition_time_moves_only_on_status_change() -> None:
    definition = load_machine()
    figures = Figures(1, 1, 1, 1, None)
    first = build_status(
        definition, Verdict("Ready", "Ready", "ok"), figures, 1, None, now="2026-01-01T00:00:00Z"
    )
    again = build_status(
        definition, Verdict("Ready", "Ready", "ok"), figures, 1, first, now="2026-01-02T00:00:00Z"
    )
    assert not status_changed(first.to_kube(), again)
    degraded = build_status(
        definition,
        Verdict("Degraded", "PodsNotReady", "x"),
        figures,
        1,
        first,
        now="2026-01-03T00:00:00Z",
    )
    times = {c.type: c.last_transition_time for c in degraded.conditions or []}
    assert times["Degraded"] == "2026-01-03T00:00:00Z"
    assert times["Ready"] == "2026-01-01T00:00:00Z" or times["Ready"] == "2026-01-03T00:00:00Z"


def test_terminating_statefulset_is_neither_patched_nor_deleted_again() -> None:
    base = converged(cluster("Expanding", replicas=3, auto_provision=False))
    children = copy.deepcopy(dict(base.children))
    children[("StatefulSet", "restate")]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    obs = observe(_grown(dict(base.raw), 4 * 2**30), children, base.namespace, base.pvcs)
    plan = make_plan(obs)
    assert "StatefulSet" not in {m["kind"] for m in plan.apply}
    assert plan.volumes is not None and plan.volumes.statefulset_uid is None
    assert judge(obs, plan, NOW).phase == "Expanding"


def test_csi_signing_key_without_the_driver_waits_in_pending() -> None:
    raw = cluster("Provisioning")
    raw["spec"]["security"] = {
        "requestSigningPrivateKey": {
            "version": "v1",
            "secretProvider": {
                "provider": "aws",
                "path": "key.pem",
                "parameters": {"objects": "x"},
            },
        }
    }
    result = verdict(observe(raw))
    assert result.phase == "Pending" and result.reason == "WaitingForCRD"
    assert "spec.security.requestSigningPrivateKey.secretProvider" in result.message
    with_driver = Observation(
        **{**observe(raw).__dict__, "capabilities": Capabilities(secret_provider_class=True)}
    )
    plan = make_plan(with_driver)
    assert "SecretProviderClass" in {m["kind"] for m in plan.apply}
