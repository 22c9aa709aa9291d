"""A replication factor above the node count is refused before anything rolls (issue 14 #4).

Restate 1.7.12 starts a single node with ``default-replication = 2`` and reports it a
member, but no partition ever gets a leader: the cluster serves nothing while every probe
passes. So the operator refuses such a spec, naming both fields and the fix.
"""

from __future__ import annotations

from typing import Any

import pytest

from restate_op.api.models import RestateCluster
from restate_op.validation import replication_nodes, validate


def cluster(
    replicas: int, config: str | None = None, env: list[Any] | None = None
) -> RestateCluster:
    compute: dict[str, Any] = {"image": "restatedev/restate:1.7", "replicas": replicas}
    if env is not None:
        compute["env"] = env
    spec: dict[str, Any] = {"compute": compute, "storage": {"storageRequestBytes": 2**30}}
    if config is not None:
        spec["config"] = config
    return RestateCluster.model_validate(
        {
            "apiVersion": "restate.dev/v1",
            "kind": "RestateCluster",
            "metadata": {"name": "r"},
            "spec": spec,
        }
    )


@pytest.mark.parametrize(
    ("value", "nodes"),
    [
        (2, 2),
        ("3", 3),
        ("{zone: 2, node: 3}", 3),
        ("{ node : 1 }", 1),
        ({"zone": 2, "node": 2}, 2),
        ("two", None),
        ("{zone 2}", None),
        (True, None),
        (None, None),
    ],
)
def test_replication_nodes_reads_restates_forms(value: Any, nodes: int | None) -> None:
    assert replication_nodes(value) == nodes


def test_a_factor_above_the_replicas_is_refused_naming_both_fields() -> None:
    [problem] = validate(cluster(1, "default-replication = 2\n"))
    assert problem.reason == "InvalidConfig"
    assert problem.field == "spec.config"
    assert "default-replication = 2 needs at least 2 Restate nodes" in problem.message
    assert "spec.compute.replicas is 1" in problem.message
    assert "Set spec.compute.replicas to 2 or more, or lower default-replication" in (
        problem.message
    )


def test_a_scale_down_below_the_factor_is_refused() -> None:
    config = 'default-replication = "{zone: 1, node: 3}"\n'
    assert validate(cluster(3, config)) == []
    [problem] = validate(cluster(2, config))
    assert "needs at least 3 Restate nodes" in problem.message


def test_the_variable_wins_over_the_file_and_is_named() -> None:
    env = [{"name": "RESTATE_DEFAULT_REPLICATION", "value": "3"}]
    [problem] = validate(cluster(2, "default-replication = 1\n", env))
    assert problem.field == "spec.compute.env[RESTATE_DEFAULT_REPLICATION]"
    assert validate(cluster(3, "default-replication = 5\n", env)) == []


def test_enough_nodes_no_factor_or_another_clusters_nodes_are_fine() -> None:
    assert validate(cluster(3, "default-replication = 3\n")) == []
    assert validate(cluster(1)) == []
    assert validate(cluster(0, "default-replication = 2\n")) == []
    joined = 'default-replication = 3\n[metadata-client]\naddresses = ["http://other:5122"]\n'
    assert validate(cluster(1, joined)) == []
