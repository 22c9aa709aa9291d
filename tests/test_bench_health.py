"""The health stand-in's answers decode as a healthy, joined, fully led node."""

from __future__ import annotations

from bench import health
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
