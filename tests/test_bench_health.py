"""The health stand-in's answers decode as a healthy, joined, fully led node."""

from __future__ import annotations

from typing import Any

from bench import health, report
from restate_op.restate_health import (
    ClusterConfiguration,
    NodeIdent,
    NodeState,
    parse_cluster_configuration,
    parse_cluster_state,
    parse_ident,
    parse_metadata_status,
)


def test_standin_answers_decode_as_a_healthy_node() -> None:
    assert parse_ident(health.ident_answer()) == NodeIdent(1, 1, "Alive", "Member")
    assert parse_cluster_state(health.cluster_state_answer(4)) == (
        NodeState(1, True, 1, (0, 1, 2, 3)),
    )
    assert parse_metadata_status(health.metadata_status_answer()) == (frozenset({1}), 1)
    assert parse_cluster_configuration(health.configuration_answer(4)) == ClusterConfiguration(
        4, "{node: 1}"
    )


def test_standin_answers_decode_as_a_multi_node_cluster() -> None:
    """The e2e stand-in of several nodes (``e2e/node_standin.py``) builds on these."""
    assert parse_ident(health.ident_answer(3, member=False)) == NodeIdent(3, 1, "Alive", "Standby")
    assert parse_cluster_state(health.cluster_state_answer(2, (1, 2, 3))) == (
        NodeState(1, True, 1, (0, 1)),
        NodeState(2, True, 1, ()),
        NodeState(3, True, 1, ()),
    )
    assert parse_metadata_status(health.metadata_status_answer({2, 1}, 2)) == (
        frozenset({1, 2}),
        2,
    )
    assert parse_metadata_status(health.metadata_status_answer((), None)) == (frozenset(), None)


def _window(cpu: float, rss: float, calls: float) -> dict[str, Any]:
    return {
        "window_s": 120.0,
        "grpc_calls_per_cluster_per_minute": calls,
        "grpc_calls_per_cluster_per_minute_by_method": {"GetIdent": calls},
        "requests_per_minute": 8.5,
        "requests_per_minute_excluding_watch": 8.5,
        "reconciles_per_minute": 0.5,
        "requests_by_verb_kind": {"update": {"Lease": 15}},
        "operator_cpu_percent": cpu,
        "operator_rss_mib": rss,
    }


def test_the_report_puts_reads_on_beside_the_same_runs_baseline() -> None:
    common = {"clusters": 100, "replicas": 1, "partitions": 4, "led": 100}
    run = {**common, "all_ready_s": 50.0, "all_led_s": 52.0, **_window(1.25, 84.0, 8.0)}
    table = "\n".join(report.health_markdown({**run, "baseline": _window(0.5, 82.5, 0.0)}, []))
    assert "| reads off (baseline) | 100 | 120 | 0 | 8.5 (8.5) | 0.5 | 0.5 | 82.5 |" in table
    assert "| reads on | 100 | 120 | 8 | 8.5 (8.5) | 0.5 | 1.25 | 84 |" in table
    assert "| reads on - baseline | | | | | | +0.75 | +1.5 |" in table
    assert "No idle figures" not in table
    modes = {"reads off": _window(0.5, 82.5, 0.0), "per read": _window(2.0, 82.0, 8.0)}
    three = "\n".join(
        report.health_markdown(
            {**run, "baseline": modes["reads off"], "modes": {**modes, "reads on": run}}, []
        )
    )
    assert "| per read - baseline | | | | | | +1.50 | -0.5 |" in three
    assert (
        three.index("| reads off (baseline) |")
        < three.index("| per read |")
        < three.index("| reads on |")
    )
