"""A RestateCluster scale-down, state in, decision out: one pod at a time, highest ordinal
first, each after Restate let its node go (removed from the metadata cluster through the
leader); the StatefulSet is held until then; volumes are kept and reported."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from restate_op.decide import conclude, decide, health_key
from restate_op.effects import (
    Apply,
    Emit,
    Outcome,
    ReadClusterHealth,
    RemoveMetadataMember,
    WriteStatus,
)
from restate_op.observe import Observation
from restate_op.restate_health import (
    ClusterConfiguration,
    NodeIdent,
    NodeState,
    PodHealth,
    RestateHealth,
)
from restate_op.settings import OperatorSettings
from tests.test_verdicts import cluster, converged, observe, pvc

NOW = 1_800_000_000.0


def _health(pods: int, members: int, leader: int = 1) -> RestateHealth:
    names = [f"restate-{i}" for i in range(pods)]
    idents = tuple(
        PodHealth(n, NodeIdent(i + 1, 1, "Alive", "Member")) for i, n in enumerate(names)
    )
    nodes = tuple(NodeState(i + 1, True, 1, (i,)) for i in range(pods))
    return RestateHealth(
        NOW,
        idents,
        nodes,
        ClusterConfiguration(pods, "{node: 1}"),
        metadata_members=frozenset(range(1, members + 1)),
        metadata_leader=leader,
    )


def _shrinking(live: int, target: int, health: RestateHealth | None) -> Observation:
    """A Ready cluster of ``live`` pods whose spec now asks for ``target``."""
    obs = converged(cluster("Ready", replicas=live, provisioned=True))
    raw = copy.deepcopy(dict(obs.raw))
    raw["spec"]["compute"]["replicas"] = target
    raw["metadata"]["generation"] = 2
    pods = tuple(
        {"metadata": {"name": f"restate-{i}", "namespace": "rc"}, "status": {"phase": "Running"}}
        for i in range(live)
    )
    return replace(
        observe(raw, dict(obs.children), obs.namespace, obs.pvcs),
        pods=pods,
        restate_health=health,
        settings=OperatorSettings(status_coalesce_seconds=0),
    )


def _sts_replicas(effects: tuple[Any, ...]) -> int | None:
    applied = [e for e in effects if isinstance(e, Apply) and e.kind == "StatefulSet"]
    return int(applied[0].manifest["spec"]["replicas"]) if applied else None


def test_a_departing_member_is_removed_through_the_leader_before_its_pod_goes() -> None:
    decision = decide(_shrinking(5, 3, _health(5, members=5)), NOW)
    assert (decision.phase, decision.reason) == ("ScalingDown", "ScalingDown")
    assert "removing restate-4 (N5) from the Restate metadata cluster" in decision.message
    [remove] = [e for e in decision.effects if isinstance(e, RemoveMetadataMember)]
    assert remove.node_id == 5
    assert remove.leader == "restate-0.restate-cluster.rc.svc.cluster.local:5122"
    assert remove.health_key == health_key("rc")
    # The StatefulSet is not touched while the node is still a member.
    assert _sts_replicas(decision.effects) is None
    events = [e.reason for e in decision.effects if isinstance(e, Emit)]
    assert events == ["MetadataMemberRemoved"]
    assert decision.requeue_after == 0.0


def test_once_the_node_is_no_member_the_statefulset_shrinks_by_one() -> None:
    decision = decide(_shrinking(5, 3, _health(5, members=4)), NOW)
    assert decision.phase == "ScalingDown"
    assert "restate-4 (N5) leaves" in decision.message
    assert not any(isinstance(e, RemoveMetadataMember) for e in decision.effects)
    assert _sts_replicas(decision.effects) == 4


def test_the_next_departure_is_the_next_highest_ordinal() -> None:
    obs = _shrinking(5, 3, _health(5, members=4))
    sts = dict(obs.children[("StatefulSet", "restate")])
    sts = {**sts, "spec": {**sts["spec"], "replicas": 4}}
    children = {**obs.children, ("StatefulSet", "restate"): sts}
    obs = replace(obs, children=children)
    decision = decide(obs, NOW)
    [remove] = [e for e in decision.effects if isinstance(e, RemoveMetadataMember)]
    assert remove.node_id == 4 and "restate-3" in decision.message


def test_without_a_read_it_waits_and_reads() -> None:
    decision = decide(_shrinking(3, 2, None), NOW)
    assert decision.phase == "ScalingDown"
    assert "waits: Restate's view not read yet" in decision.message
    assert _sts_replicas(decision.effects) is None
    # The departing pod is asked too: only its node can say its id (found by the crash
    # test: an operator restarted mid-scale-down let restate-2 go without removing N3).
    [read] = [e for e in decision.effects if isinstance(e, ReadClusterHealth)]
    assert [pod for pod, _ in read.targets] == ["restate-0", "restate-1", "restate-2"]


def test_a_read_after_the_first_departure_still_asks_the_next_one() -> None:
    obs = _shrinking(5, 3, None)
    sts = dict(obs.children[("StatefulSet", "restate")])
    children = {
        **obs.children,
        ("StatefulSet", "restate"): {**sts, "spec": {**sts["spec"], "replicas": 4}},
    }
    pods = obs.pods[:4]
    [read] = [
        e
        for e in decide(replace(obs, children=children, pods=pods), NOW).effects
        if isinstance(e, ReadClusterHealth)
    ]
    assert [pod for pod, _ in read.targets] == [f"restate-{i}" for i in range(4)]


def test_no_leader_means_no_step() -> None:
    health = replace(_health(3, members=3), metadata_leader=None)
    decision = decide(_shrinking(3, 2, health), NOW)
    assert "waits: the metadata cluster has no leader" in decision.message
    assert not any(isinstance(e, RemoveMetadataMember) for e in decision.effects)
    assert _sts_replicas(decision.effects) is None


def test_unreachable_nodes_shrink_as_a_statefulset_would_and_say_so() -> None:
    decision = decide(_shrinking(3, 2, RestateHealth(NOW, error="UNAVAILABLE: x")), NOW)
    assert "without asking Restate" in decision.message
    assert _sts_replicas(decision.effects) == 2


def _refused(decision: Any) -> str:
    assert (decision.phase, decision.reason) == ("Degraded", "ScaleDownRefused")
    assert not any(isinstance(e, RemoveMetadataMember) for e in decision.effects)
    assert _sts_replicas(decision.effects) is None  # the StatefulSet keeps its pods
    return str(decision.message)


def test_a_removal_that_leaves_no_live_majority_is_refused_naming_the_dead_members() -> None:
    # Five members, but only three nodes: two were scaled away by a tool that never
    # removed them. Removing N3 would leave N1, N2 (alive) and N4, N5 (gone): 2 of 4.
    message = _refused(decide(_shrinking(3, 2, _health(3, members=5)), NOW))
    assert message.startswith("Scaling down 3 -> 2 refused for restate-2: removing node N3")
    assert "4 members, of which only 2 alive (dead: N4, N5)" in message
    assert "restatectl metadata-server remove-node" in message
    assert "spec.compute.replicas back to 3" in message


def test_a_removal_beside_a_dead_member_is_refused() -> None:
    health = _health(3, members=3)
    health = replace(health, nodes=tuple(replace(n, alive=n.node_id != 2) for n in health.nodes))
    message = _refused(decide(_shrinking(3, 2, health), NOW))
    assert "2 members, of which only 1 alive (dead: N2)" in message


def test_removing_the_only_member_is_refused() -> None:
    health = replace(_health(3, members=3), metadata_members=frozenset({3}), metadata_leader=3)
    message = _refused(decide(_shrinking(3, 2, health), NOW))
    assert "N3 it is the only metadata-server member" in message


def test_a_removal_that_keeps_a_live_majority_goes_ahead() -> None:
    # Four members, N2 dead: removing the departing N4 leaves N1, N3 alive of three.
    health = _health(4, members=4)
    health = replace(health, nodes=tuple(replace(n, alive=n.node_id != 2) for n in health.nodes))
    decision = decide(_shrinking(4, 3, health), NOW)
    assert decision.reason != "ScaleDownRefused"
    [remove] = [e for e in decision.effects if isinstance(e, RemoveMetadataMember)]
    assert remove.node_id == 4


def test_hibernation_is_not_a_scale_down() -> None:
    decision = decide(_shrinking(3, 0, _health(3, members=3)), NOW)
    assert decision.phase != "ScalingDown"
    assert _sts_replicas(decision.effects) == 0


def test_kept_volumes_are_reported_with_the_command_to_delete_them() -> None:
    obs = converged(cluster("Ready", replicas=3, provisioned=True))
    obs = replace(
        obs,
        pvcs=(*obs.pvcs, pvc(3, 2 * 2**30, 2 * 2**30), pvc(4, 2 * 2**30, 2 * 2**30)),
        settings=OperatorSettings(status_coalesce_seconds=0),
    )
    decision = decide(obs, NOW)
    assert decision.phase == "Ready"
    names = [p["metadata"]["name"] for p in obs.pvcs[3:]]
    assert f"volumes of removed pods kept: {', '.join(names)}" in decision.message
    assert f"kubectl delete pvc -n rc {' '.join(names)}" in decision.message
    effects = conclude(obs, decision, Outcome(), NOW).effects
    assert not any(isinstance(e, Apply) and e.kind == "PersistentVolumeClaim" for e in effects)
    assert [e for e in effects if isinstance(e, WriteStatus)]


def test_a_statefulset_someone_else_scaled_up_is_drift_restored_at_once() -> None:
    obs = converged(cluster("Ready", replicas=3, provisioned=True))
    sts = copy.deepcopy(dict(obs.children[("StatefulSet", "restate")]))
    sts["spec"]["replicas"] = 5  # kubectl scale: the desired-hash still says 3
    obs = replace(
        obs,
        children={**obs.children, ("StatefulSet", "restate"): sts},
        restate_health=_health(5, members=5),
    )
    decision = decide(obs, NOW)
    assert decision.phase != "ScalingDown"
    assert _sts_replicas(decision.effects) == 3
    notes = [
        e.note for e in decision.effects if isinstance(e, Emit) and e.reason == "DriftCorrected"
    ]
    assert notes and "StatefulSet/restate (spec.replicas changed)" in notes[0]
