"""Ordered rolling updates (restate_op.roll): which pod restarts next, in Restate's order and
only once Restate has every other node back; what a reconcile says and does about it.
Pure: StatefulSets, pods and health reads built here."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from restate_op.cluster_effects import health_key
from restate_op.decide import decide
from restate_op.effects import Apply, Emit, RestartPod, SwitchToOnDelete
from restate_op.observe import Observation
from restate_op.plan import make_plan
from restate_op.restate_health import (
    ClusterConfiguration,
    NodeIdent,
    NodeState,
    PodHealth,
    RestateHealth,
)
from restate_op.roll import ROLL_PATIENCE_SECONDS, plan_roll
from restate_op.settings import OperatorSettings
from tests.test_verdicts import cluster, converged

NOW = 1_800_000_000.0
PODS = ("restate-0", "restate-1", "restate-2")
OLD, NEW = "restate-old", "restate-new"


def _time(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sts(replicas: int = 3, strategy: str = "OnDelete", generation: int = 2) -> dict[str, Any]:
    return {
        "metadata": {"name": "restate", "generation": generation},
        "spec": {"replicas": replicas, "updateStrategy": {"type": strategy}},
        "status": {
            "observedGeneration": generation,
            "replicas": replicas,
            "currentRevision": OLD,
            "updateRevision": NEW,
        },
    }


def _pod(
    name: str,
    revision: str = OLD,
    *,
    ready: bool = True,
    ready_at: float = NOW - 600,
    created: float = NOW - 900,
    terminating: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "rc",
        "uid": f"uid-{name}",
        "labels": {"controller-revision-hash": revision},
        "creationTimestamp": _time(created),
    }
    if terminating:
        meta["deletionTimestamp"] = _time(NOW)
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    condition["lastTransitionTime"] = _time(ready_at)
    return {"metadata": meta, "status": {"phase": "Running", "conditions": [condition]}}


def _health(
    read_at: float = NOW - 1,
    *,
    leader: int = 1,
    members: frozenset[int] = frozenset({1, 2}),
    leaderless: bool = False,
) -> RestateHealth:
    """Three live nodes N1..N3 (restate-0..2); N1, N2 metadata members by default."""
    pods = tuple(
        PodHealth(p, NodeIdent(i + 1, 1, "Alive", "Member" if i + 1 in members else "Standby"))
        for i, p in enumerate(PODS)
    )
    nodes = tuple(
        NodeState(i + 1, alive=True, generation=1, leads=() if leaderless else (i,))
        for i in range(3)
    )
    return RestateHealth(
        read_at,
        pods,
        nodes,
        ClusterConfiguration(3, "{node: 2}"),
        metadata_members=members,
        metadata_leader=leader,
    )


def test_a_statefulset_the_controller_rolls_itself_is_not_the_operators() -> None:
    pods = [_pod(p) for p in PODS]
    assert plan_roll(_sts(strategy="RollingUpdate"), pods, _health(), NOW) is None


def test_nothing_rolls_when_every_pod_has_the_new_template() -> None:
    assert plan_roll(_sts(), [_pod(p, NEW) for p in PODS], _health(), NOW) is None


def test_nothing_rolls_before_the_controller_counted_the_new_template() -> None:
    sts = _sts()
    sts["status"]["observedGeneration"] = 1
    assert plan_roll(sts, [_pod(p) for p in PODS], _health(), NOW) is None


def test_non_members_go_first_and_the_metadata_leader_last() -> None:
    pods = [_pod(p) for p in PODS]
    roll = plan_roll(_sts(), pods, _health(leader=1, members=frozenset({1, 2})), NOW)
    assert roll is not None
    # restate-2 (N3) is no member; restate-1 (N2) a member; restate-0 (N1) leads.
    assert roll.outdated == ("restate-2", "restate-1", "restate-0")
    assert (roll.restart, roll.restart_uid) == ("restate-2", "uid-restate-2")
    assert (roll.updated, roll.total) == (0, 3)

    # With the leader on N3 and everyone a member, ordinals decide the others.
    roll = plan_roll(_sts(), pods, _health(leader=3, members=frozenset({1, 2, 3})), NOW)
    assert roll is not None and roll.outdated == ("restate-1", "restate-0", "restate-2")


def test_the_next_pod_waits_while_one_is_being_replaced() -> None:
    pods = [_pod("restate-0"), _pod("restate-1"), _pod("restate-2", NEW, terminating=True)]
    roll = plan_roll(_sts(), pods, _health(), NOW)
    assert roll is not None and roll.restart is None
    assert roll.waiting == "pod restate-2 is being replaced"
    roll = plan_roll(_sts(), pods[:2], _health(), NOW)
    assert roll is not None and roll.waiting == "pod restate-2 is being replaced"


def test_the_next_pod_waits_until_the_restarted_one_is_ready() -> None:
    pods = [_pod("restate-0"), _pod("restate-1"), _pod("restate-2", NEW, ready=False, created=NOW)]
    roll = plan_roll(_sts(), pods, _health(), NOW)
    assert roll is not None and roll.restart is None and roll.halted is None
    assert roll.waiting == "pod restate-2 is not ready"
    assert roll.updated == 1


def test_the_next_pod_waits_until_restate_counts_the_restarted_one_back_in() -> None:
    back = NOW - 3
    pods = [_pod("restate-0"), _pod("restate-1"), _pod("restate-2", NEW, ready_at=back)]
    stale = plan_roll(_sts(), pods, _health(read_at=back - 5), NOW)
    assert stale is not None and stale.restart is None
    assert stale.waiting == "waiting for Restate to count restate-2 back in"
    # A read in the very second the pod became ready may predate it: it does not count.
    same_second = plan_roll(_sts(), pods, _health(read_at=back + 0.5), NOW)
    assert same_second is not None and same_second.restart is None
    fresh = plan_roll(_sts(), pods, _health(read_at=back + 2), NOW)
    assert fresh is not None and fresh.restart == "restate-1"


def test_the_next_pod_waits_while_restate_reports_a_problem() -> None:
    pods = [_pod(p) for p in PODS]
    roll = plan_roll(_sts(), pods, _health(leaderless=True), NOW)
    assert roll is not None and roll.restart is None
    assert roll.waiting is not None and roll.waiting.startswith("Restate reports: 3/3 partitions")
    assert plan_roll(_sts(), pods, None, NOW) == replace(
        roll, waiting="Restate's view not read yet"
    )


def test_unreadable_restate_paces_by_readiness_and_says_so() -> None:
    pods = [_pod(p) for p in PODS]
    roll = plan_roll(_sts(), pods, RestateHealth(NOW, error="no node answered"), NOW)
    assert roll is not None
    assert roll.restart == "restate-2" and roll.unchecked == "no node answered"


def test_an_outdated_pod_that_is_not_ready_is_replaced_at_once() -> None:
    pods = [_pod("restate-0", ready=False), _pod("restate-1"), _pod("restate-2")]
    roll = plan_roll(_sts(), pods, None, NOW)
    assert roll is not None and (roll.restart, roll.broken) == ("restate-0", True)


def test_a_restarted_pod_that_does_not_come_back_halts_the_roll() -> None:
    late = NOW - ROLL_PATIENCE_SECONDS - 10
    pods = [_pod("restate-0"), _pod("restate-1"), _pod("restate-2", NEW, ready=False, created=late)]
    roll = plan_roll(_sts(), pods, _health(), NOW)
    assert roll is not None and roll.restart is None
    assert roll.halted == "pod restate-2 (N3) is not ready 310s after it restarted"
    # Without a clock nothing is late.
    assert plan_roll(_sts(), pods, _health(), None) == replace(
        roll, halted=None, waiting="pod restate-2 is not ready"
    )


def test_a_restarted_pod_ready_but_never_back_in_restate_halts_the_roll() -> None:
    late = NOW - ROLL_PATIENCE_SECONDS - 10
    pods = [_pod("restate-0"), _pod("restate-1"), _pod("restate-2", NEW, created=late)]
    health = _health(read_at=NOW - 1)
    health = replace(
        health, pods=(*health.pods[:2], PodHealth("restate-2", NodeIdent(None, None, "Alive", "")))
    )
    roll = plan_roll(_sts(), pods, health, NOW)
    assert roll is not None and roll.halted is not None
    assert roll.halted.startswith("pod restate-2 runs but has not joined the Restate cluster")


def _rolling(health: RestateHealth | None, pods: list[dict[str, Any]]) -> Observation:
    obs = converged(cluster("Ready", replicas=3, provisioned=True))
    children = dict(obs.children)
    sts = copy.deepcopy(dict(children[("StatefulSet", "restate")]))
    sts["status"] = {**sts["status"], "currentRevision": OLD, "updateRevision": NEW}
    sts["status"]["updatedReplicas"] = sum(1 for p in pods if "new" in str(p["metadata"]))
    children[("StatefulSet", "restate")] = sts
    return replace(
        obs,
        children=children,
        pods=tuple(pods),
        restate_health=health,
        settings=OperatorSettings(status_coalesce_seconds=0),
    )


def test_a_reconcile_restarts_the_next_pod_with_an_event() -> None:
    obs = _rolling(_health(), [_pod(p) for p in PODS])
    plan = make_plan(obs, NOW)
    assert plan.apply == () and plan.roll is not None and plan.roll.restart == "restate-2"
    decision = decide(obs, NOW)
    assert decision.phase == "Provisioning" and decision.reason == "RollingOut"
    assert decision.message == (
        "Rolling update, one pod at a time: 0/3 pods updated; restarting restate-2"
    )
    restart = next(e for e in decision.effects if isinstance(e, RestartPod))
    assert restart == RestartPod("rc", "restate-2", "uid-restate-2", health_key(obs))
    [event] = [e for e in decision.effects if isinstance(e, Emit) and e.reason == "PodRestarted"]
    assert event.note == (
        "Restarted pod restate-2 (N3) for the new pod template (0/3 updated before it; "
        "paced by Restate's health)"
    )


def test_a_waiting_roll_restarts_nothing_and_says_why() -> None:
    pods = [_pod("restate-0"), _pod("restate-1"), _pod("restate-2", NEW, ready=False, created=NOW)]
    decision = decide(_rolling(_health(), pods), NOW)
    assert not any(isinstance(e, RestartPod) for e in decision.effects)
    assert decision.message == (
        "Rolling update, one pod at a time: 1/3 pods updated; the next (restate-1) waits: "
        "pod restate-2 is not ready"
    )


def test_a_halted_roll_is_degraded_naming_the_pod() -> None:
    late = NOW - ROLL_PATIENCE_SECONDS - 10
    pods = [_pod("restate-0"), _pod("restate-1"), _pod("restate-2", NEW, ready=False, created=late)]
    decision = decide(_rolling(_health(), pods), NOW)
    assert decision.phase == "Degraded" and decision.reason == "RollHalted"
    assert "pod restate-2 (N3) is not ready 310s after it restarted" in decision.message
    assert not any(isinstance(e, RestartPod) for e in decision.effects)


def test_no_roll_while_the_statefulset_itself_is_being_applied() -> None:
    obs = _rolling(_health(), [_pod(p) for p in PODS])
    changed = replace(obs, cluster=obs.cluster.model_copy(deep=True))
    changed.cluster.spec.compute.image = "restate:other"
    plan = make_plan(changed, NOW)
    assert any(m["kind"] == "StatefulSet" for m in plan.apply)
    assert plan.roll is None


def test_on_delete_rollout_is_settled_once_every_pod_is_updated() -> None:
    # OnDelete never moves currentRevision (kubernetes#73492): the updated count says it.
    obs = _rolling(_health(), [_pod(p, NEW) for p in PODS])
    rollout = make_plan(obs, NOW).rollout
    assert rollout is not None and rollout.settled and rollout.complete
    assert make_plan(obs, NOW).roll is None


def test_a_statefulset_made_before_ordered_rolls_is_switched_before_the_apply() -> None:
    # The API server defaulted rollingUpdate.partition for nobody: an apply of OnDelete
    # alone is refused (422), so a merge patch that drops it goes first.
    obs = _rolling(_health(), [_pod(p, NEW) for p in PODS])
    children = dict(obs.children)
    old = copy.deepcopy(dict(children[("StatefulSet", "restate")]))
    old["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    old["metadata"]["annotations"] = {}
    children[("StatefulSet", "restate")] = old
    decision = decide(replace(obs, children=children), NOW)
    kinds = [type(e).__name__ for e in decision.effects]
    assert "SwitchToOnDelete" in kinds
    switch = kinds.index("SwitchToOnDelete")
    apply = next(
        i
        for i, e in enumerate(decision.effects)
        if isinstance(e, Apply) and e.kind == "StatefulSet"
    )
    assert decision.effects[switch] == SwitchToOnDelete("rc", "restate") and switch < apply
    # An OnDelete StatefulSet is applied as usual.
    assert not any(isinstance(e, SwitchToOnDelete) for e in decide(obs, NOW).effects)
