"""Restate's own health in a RestateCluster's reconcile: when it is read, how it judges the
phase, what ``status.restate`` says. Pure: observations built here, no cluster."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from prometheus_client import REGISTRY

from restate_op.decide import ClusterDecision, conclude, decide, health_key, poll_key
from restate_op.effects import Emit, Outcome, PollClusterHealth, ReadClusterHealth, WriteStatus
from restate_op.metrics import METRICS
from restate_op.observe import Observation
from restate_op.restate_drift import config_drift
from restate_op.restate_health import (
    HEALTH_REFRESH_CHANGING,
    HEALTH_REFRESH_READY,
    ClusterConfiguration,
    NodeIdent,
    NodeState,
    PodHealth,
    RestateHealth,
    health_figures,
)
from restate_op.settings import OperatorSettings
from restate_op.validation import replication_nodes
from tests.test_verdicts import cluster, converged, observe

NOW = 1_800_000_000.0
PODS = ("restate-0", "restate-1", "restate-2")


def _running(*names: str) -> tuple[dict[str, Any], ...]:
    return tuple(
        {"metadata": {"name": n, "namespace": "rc"}, "status": {"phase": "Running"}} for n in names
    )


def _ready_cluster(health: RestateHealth | None, phase: str = "Ready") -> Observation:
    obs = converged(cluster(phase, replicas=3, provisioned=True))
    return replace(
        obs,
        pods=_running(*PODS),
        restate_health=health,
        settings=OperatorSettings(status_coalesce_seconds=0),
    )


def _healthy(read_at: float = NOW, dead: int | None = None) -> RestateHealth:
    pods = tuple(PodHealth(p, NodeIdent(i + 1, 1, "Alive", "Member")) for i, p in enumerate(PODS))
    nodes = tuple(
        NodeState(i + 1, alive=i + 1 != dead, generation=1, leads=(i,) if i + 1 != dead else ())
        for i in range(3)
    )
    return RestateHealth(read_at, pods, nodes, ClusterConfiguration(3, "{node: 2}"))


def _polls(decision: ClusterDecision) -> list[PollClusterHealth]:
    return [e for e in decision.effects if isinstance(e, PollClusterHealth)]


def _reads(decision: ClusterDecision) -> list[ReadClusterHealth]:
    return [e for e in decision.effects if isinstance(e, ReadClusterHealth)]


def test_running_pods_are_asked_at_once_when_nothing_was_read() -> None:
    decision = decide(_ready_cluster(None), NOW)
    [read] = _reads(decision)
    assert read.key == health_key("rc")
    assert [pod for pod, _ in read.targets] == list(PODS)
    assert read.targets[1][1] == "restate-1.restate-cluster.rc.svc.cluster.local:5122"
    # Ready: later reads are the executor's standing poll, which wakes the cluster only
    # when the answer is new; no reconcile is scheduled for them.
    [poll] = _polls(decision)
    assert (poll.key, poll.health) == (poll_key("rc"), health_key("rc"))
    assert (poll.targets, poll.every) == (read.targets, HEALTH_REFRESH_READY)
    assert decision.requeue_after is None


def test_a_ready_cluster_is_polled_by_the_executor_not_by_reconciles() -> None:
    recent = decide(_ready_cluster(_healthy(read_at=NOW - 10)), NOW)
    assert recent.phase == "Ready"
    assert not _reads(recent)
    [poll] = _polls(recent)
    assert recent.requeue_after is None
    # The poll stands: a reconcile of the same cluster asks for nothing, even with an
    # answer older than the interval (the poll reads it when due).
    standing = replace(_ready_cluster(_healthy(read_at=NOW - 100)), health_poll=poll)
    again = decide(standing, NOW)
    assert (_reads(again), _polls(again), again.requeue_after) == ([], [], None)


def test_a_poll_moves_with_the_running_pods_and_stops_when_the_cluster_changes() -> None:
    [poll] = _polls(decide(_ready_cluster(_healthy()), NOW))
    two = replace(_ready_cluster(_healthy()), pods=_running(*PODS[:2]), health_poll=poll)
    moved = _polls(decide(two, NOW))
    assert [[pod for pod, _ in p.targets] for p in moved] == [list(PODS[:2])]
    # Degraded (a dead node): the poll stops, reconciles read every HEALTH_REFRESH_CHANGING.
    sick = replace(_ready_cluster(_healthy(read_at=NOW - 1, dead=3)), health_poll=poll)
    decision = decide(sick, NOW)
    assert decision.phase == "Degraded"
    assert _polls(decision) == [PollClusterHealth(poll_key("rc"), health_key("rc"))]
    assert decision.requeue_after == HEALTH_REFRESH_CHANGING - 1
    gone = replace(_ready_cluster(_healthy()), pods=(), health_poll=poll)
    assert _polls(decide(gone, NOW)) == [PollClusterHealth(poll_key("rc"), health_key("rc"))]


def test_a_read_due_within_the_slack_is_made_now() -> None:
    changing = HEALTH_REFRESH_CHANGING
    late = decide(_ready_cluster(_healthy(read_at=NOW - changing + 0.5, dead=3)), NOW)
    assert _reads(late)
    early = decide(_ready_cluster(_healthy(read_at=NOW - changing + 2, dead=3)), NOW)
    assert not _reads(early)
    assert early.requeue_after == 2


def test_the_ready_interval_is_a_flag_whose_zero_reads_only_once() -> None:
    assert OperatorSettings().restate_health_seconds == HEALTH_REFRESH_READY
    never = OperatorSettings(status_coalesce_seconds=0, restate_health_seconds=0)
    first = decide(replace(_ready_cluster(None), settings=never), NOW)
    assert _reads(first)
    assert not _polls(first)
    old = replace(_ready_cluster(_healthy(read_at=NOW - 3600)), settings=never)
    later = decide(old, NOW)
    assert later.phase == "Ready"
    assert (_reads(later), _polls(later), later.requeue_after) == ([], [], None)
    changing = replace(_ready_cluster(_healthy(read_at=NOW - 10, dead=3)), settings=never)
    assert _reads(decide(changing, NOW))


def test_a_changing_cluster_is_read_more_often() -> None:
    obs = _ready_cluster(_healthy(read_at=NOW - HEALTH_REFRESH_CHANGING, dead=3))
    decision = decide(obs, NOW)
    assert decision.phase == "Degraded"
    assert any(isinstance(e, ReadClusterHealth) for e in decision.effects)
    assert decision.requeue_after == 0.0  # judged again at once with the answer


def test_no_pod_running_means_nobody_to_ask() -> None:
    obs = replace(_ready_cluster(None), pods=())
    assert not any(isinstance(e, ReadClusterHealth) for e in decide(obs, NOW).effects)


def test_healthy_by_restate_is_ready_with_the_restate_section() -> None:
    obs = _ready_cluster(_healthy())
    decision = decide(obs, NOW)
    assert decision.phase == "Ready"
    conclusion = conclude(obs, decision, Outcome(), NOW)
    [write] = [e for e in conclusion.effects if isinstance(e, WriteStatus)]
    assert write.status["restate"] == {
        "members": list(PODS),
        "nodesAlive": 3,
        "partitions": 3,
        "partitionsLed": 3,
        "replication": "{node: 2}",
    }


def test_a_dead_node_of_a_serving_cluster_is_degraded_with_its_pod() -> None:
    obs = _ready_cluster(_healthy(dead=3))
    decision = decide(obs, NOW)
    assert (decision.phase, decision.reason) == ("Degraded", "RestateUnhealthy")
    assert "node N3 (restate-2) is dead" in decision.message
    assert "1/3 partitions have no leader (2)" in decision.message
    conclusion = conclude(obs, decision, Outcome(), NOW)
    [write] = [e for e in conclusion.effects if isinstance(e, WriteStatus)]
    assert write.status["restate"]["partitionsLed"] == 2
    assert write.status["conditions"][0]["type"] in ("Ready", "Progressing", "Degraded")


def test_a_cluster_still_starting_waits_for_restate_instead() -> None:
    health = _healthy()
    pods = (*health.pods[:2], PodHealth("restate-2", NodeIdent(None, None, "StartingUp", "")))
    obs = _ready_cluster(replace(health, pods=pods), phase="Provisioning")
    decision = decide(obs, NOW)
    assert (decision.phase, decision.reason) == ("Provisioning", "WaitingForRestate")
    assert "pod restate-2 runs but has not joined" in decision.message


def test_an_unreadable_restate_judges_nothing_but_is_reported() -> None:
    obs = _ready_cluster(RestateHealth(NOW, error="UNAVAILABLE: connection refused"))
    decision = decide(obs, NOW)
    assert decision.phase == "Ready"
    conclusion = conclude(obs, decision, Outcome(), NOW)
    [write] = [e for e in conclusion.effects if isinstance(e, WriteStatus)]
    assert write.status["restate"] == {"error": "UNAVAILABLE: connection refused"}


def test_an_unchanged_read_writes_nothing() -> None:
    obs = _ready_cluster(_healthy())
    decision = decide(obs, NOW)
    [write] = [
        e for e in conclude(obs, decision, Outcome(), NOW).effects if isinstance(e, WriteStatus)
    ]
    raw = copy.deepcopy(dict(obs.raw))
    raw["status"] = dict(write.status)
    again = replace(
        observe(raw, dict(obs.children), obs.namespace, obs.pvcs),
        pods=obs.pods,
        settings=obs.settings,
        restate_health=_healthy(read_at=NOW + 1),
    )
    later = decide(again, NOW + 1)
    conclusion = conclude(again, later, Outcome(), NOW + 1)
    assert not [e for e in conclusion.effects if isinstance(e, WriteStatus)]


# -- drift and gauges -------------------------------------------------------------------------


def _with_config(config: str, health: RestateHealth) -> Observation:
    raw = cluster("Ready", replicas=3, provisioned=True, config=config)
    obs = converged(raw)
    return replace(
        obs,
        pods=_running(*PODS),
        restate_health=health,
        settings=OperatorSettings(status_coalesce_seconds=0),
    )


def test_replication_and_partitions_that_differ_from_the_spec_are_drift() -> None:
    obs = _with_config("default-replication = 3\ndefault-num-partitions = 8\n", _healthy())
    drift = config_drift(obs.cluster, obs.restate_health)
    assert len(drift) == 2
    assert drift[0].startswith("spec.config default-replication asks for replication 3")
    assert "{node: 2}" in drift[0] and "restatectl config set" in drift[0]
    assert "asks for 8 partitions but the cluster was provisioned with 3" in drift[1]
    decision = decide(obs, NOW)
    assert decision.phase == "Ready"
    conclusion = conclude(obs, decision, Outcome(), NOW)
    [write] = [e for e in conclusion.effects if isinstance(e, WriteStatus)]
    assert write.status["restate"]["drift"] == list(drift)
    assert "drift: spec.config default-replication" in write.status["message"]
    warnings = [e for e in conclusion.effects if isinstance(e, Emit) and e.type == "Warning"]
    assert [e.reason for e in warnings] == ["ConfigurationDrift"]


def test_drift_already_in_the_status_is_not_warned_again() -> None:
    obs = _with_config("default-replication = 3\n", _healthy())
    decision = decide(obs, NOW)
    [write] = [
        e for e in conclude(obs, decision, Outcome(), NOW).effects if isinstance(e, WriteStatus)
    ]
    raw = copy.deepcopy(dict(obs.raw))
    raw["status"] = dict(write.status)
    again = replace(obs, raw=raw)
    effects = conclude(again, decide(again, NOW), Outcome(), NOW).effects
    assert not [e for e in effects if isinstance(e, Emit) and e.reason == "ConfigurationDrift"]


def test_a_spec_that_matches_or_says_nothing_has_no_drift() -> None:
    assert (
        config_drift(_with_config("default-replication = 2\n", _healthy()).cluster, _healthy())
        == ()
    )
    assert config_drift(_ready_cluster(None).cluster, _healthy()) == ()
    assert config_drift(_with_config("default-replication = 3\n", _healthy()).cluster, None) == ()


def test_gauges_follow_each_read_and_go_with_the_cluster() -> None:
    assert replication_nodes("{zone: 2, node: 3}") == 3
    assert replication_nodes("{node: x}") is None
    figures = health_figures(_healthy(dead=3))
    assert figures == {
        "partitions": 3,
        "partitions_led": 2,
        "replication": 2,
        "nodes_alive": 2,
        "metadata_members": 3,
    }
    METRICS.record_restate("gauge-test", figures)
    sample = REGISTRY.get_sample_value(
        "restate_operator_restate_cluster", {"cluster": "gauge-test", "figure": "partitions_led"}
    )
    assert sample == 2
    METRICS.forget_cluster("gauge-test")
    assert (
        REGISTRY.get_sample_value(
            "restate_operator_restate_cluster", {"cluster": "gauge-test", "figure": "partitions"}
        )
        is None
    )


def test_a_new_cluster_is_ready_only_after_the_first_read() -> None:
    obs = _ready_cluster(None, phase="Provisioning")
    decision = decide(obs, NOW)
    assert (decision.phase, decision.reason) == ("Provisioning", "WaitingForRestate")
    assert any(isinstance(e, ReadClusterHealth) for e in decision.effects)


def test_a_serving_cluster_keeps_its_phase_until_the_first_read_after_a_restart() -> None:
    decision = decide(_ready_cluster(None), NOW)
    assert decision.phase == "Ready"
    assert any(isinstance(e, ReadClusterHealth) for e in decision.effects)
