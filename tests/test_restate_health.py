"""The protobuf wire reader and the health judgement of restate_op.restate_health, on
messages encoded here with the field numbers of Restate's .proto files."""

from __future__ import annotations

import pytest

from restate_op import protowire as wire
from restate_op.restate_health import (
    ClusterConfiguration,
    NodeIdent,
    NodeState,
    PodHealth,
    RestateHealth,
    parse_cluster_configuration,
    parse_cluster_state,
    parse_ident,
    problems,
)

F = wire.encode_field


def _partition(pid: int, mode: int) -> bytes:
    return F(3, F(1, pid) + F(2, F(3, mode)))


def test_varints_round_trip_and_truncation_is_refused() -> None:
    for value in (0, 1, 127, 128, 300, 2**32, 2**63):
        assert wire.read_varint(wire.encode_varint(value), 0) == (
            value,
            len(wire.encode_varint(value)),
        )
    with pytest.raises(wire.WireError):
        wire.read_varint(b"\x80", 0)
    with pytest.raises(wire.WireError):
        wire.fields(F(1, b"abc")[:-1])


def test_unknown_and_fixed_width_fields_are_read_or_skipped() -> None:
    data = F(1, 7) + b"\x11" + (5).to_bytes(8, "little") + F(3, b"x") + F(1, 9)
    msg = wire.fields(data)
    assert wire.integer(msg, 1) == 9  # proto3: the last value wins
    assert wire.integer(msg, 2) == 5
    assert wire.text(msg, 3) == "x"
    assert wire.integer(msg, 4, default=-1) == -1


def test_ident_of_a_member_and_of_a_node_that_has_not_joined() -> None:
    joined = F(1, 1) + F(2, F(1, 3) + F(2, 7)) + F(3, b"c") + F(4, b"worker") + F(9, 3)
    assert parse_ident(joined) == NodeIdent(3, 7, "Alive", "Member", ("worker",))
    waiting = F(1, 2) + F(9, 2)
    assert parse_ident(waiting) == NodeIdent(None, None, "StartingUp", "AwaitingProvisioning")


def test_cluster_state_lists_alive_and_dead_nodes_and_who_leads() -> None:
    alive = F(1, F(1, 1) + F(2, 4)) + _partition(0, 1) + _partition(1, 2) + _partition(2, 1)
    state = F(4, F(1, 1) + F(2, F(1, alive))) + F(4, F(1, 2) + F(2, F(2, b"")))
    nodes = parse_cluster_state(F(1, state))
    assert nodes == (NodeState(1, True, 4, (0, 2)), NodeState(2, False))


def test_configuration_with_and_without_replication() -> None:
    config = F(1, F(1, 24) + F(2, F(1, b"{node: 2}")))
    assert parse_cluster_configuration(config) == ClusterConfiguration(24, "{node: 2}")
    assert parse_cluster_configuration(F(1, F(1, 4))) == ClusterConfiguration(4, None)


def _health(*pods: PodHealth, nodes: tuple[NodeState, ...], partitions: int = 4) -> RestateHealth:
    return RestateHealth(1.0, pods, nodes, ClusterConfiguration(partitions, "{node: 2}"))


def _member(pod: str, node_id: int) -> PodHealth:
    return PodHealth(pod, NodeIdent(node_id, 1, "Alive", "Member"))


def test_a_healthy_cluster_has_no_problems() -> None:
    health = _health(
        _member("restate-0", 1),
        _member("restate-1", 2),
        nodes=(NodeState(1, True, 1, (0, 1)), NodeState(2, True, 1, (2, 3))),
    )
    assert problems(health, ("restate-0", "restate-1")) == ()
    assert health.members == ("restate-0", "restate-1")


def test_problems_name_the_pod_and_the_partitions() -> None:
    health = _health(
        _member("restate-0", 1),
        PodHealth("restate-1", error="UNAVAILABLE: refused", known_id=2),
        PodHealth("restate-2", NodeIdent(None, None, "StartingUp", "Unknown")),
        nodes=(NodeState(1, True, 1, (0, 1)), NodeState(2, False)),
    )
    assert problems(health, ("restate-0", "restate-1", "restate-2")) == (
        "pod restate-1: the node port UNAVAILABLE: refused",
        "pod restate-2 runs but has not joined the Restate cluster",
        "node N2 (restate-1) is dead by the cluster controller",
        "2/4 partitions have no leader (2, 3)",
    )


def test_a_failed_read_is_one_problem() -> None:
    assert problems(RestateHealth(1.0, error="no pod answered"), ("restate-0",)) == (
        "Restate's view could not be read: no pod answered",
    )
