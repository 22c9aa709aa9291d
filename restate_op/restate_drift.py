"""Drift between the spec and the configuration a Restate cluster actually runs with. Pure.

Restate reads ``default-replication`` and ``default-num-partitions`` once, when the cluster
is provisioned; afterwards the cluster's own configuration (``GetClusterConfiguration``,
``restatectl config get``) is what counts, and a changed spec silently does nothing
(restate-operator#195). The operator says so instead: each difference is a sentence naming
the spec field, what Restate runs with and what can be done about it.
"""

from __future__ import annotations

from typing import Final

from restate_op.api.models import RestateCluster
from restate_op.children.restate_config import spec_value
from restate_op.restate_health import RestateHealth
from restate_op.validation import REPLICATION_KEY, replication_nodes

PARTITIONS_KEY: Final = "default-num-partitions"


def config_drift(cluster: RestateCluster, health: RestateHealth | None) -> tuple[str, ...]:
    """Every spec setting the running cluster does not follow, as a sentence."""
    config = health.configuration if health is not None and health.ok else None
    if config is None:
        return ()
    found: list[str] = []
    replication = spec_value(cluster, REPLICATION_KEY)
    if replication is not None and config.replication is not None:
        field, value = replication.source, replication.value
        wanted, running = replication_nodes(value), replication_nodes(config.replication)
        if wanted is not None and running is not None and wanted != running:
            found.append(
                f"{field} asks for replication {value} but the cluster runs with partition "
                f"replication {config.replication}: Restate reads it only when the cluster is "
                "provisioned; change the running cluster with `restatectl config set "
                f"--partition-replication {value}`, or set the spec back"
            )
    partitions = spec_value(cluster, PARTITIONS_KEY)
    if partitions is not None and config.partitions:
        field, value = partitions.source, partitions.value
        try:
            wanted_partitions = int(value)
        except (TypeError, ValueError):
            wanted_partitions = None
        if wanted_partitions is not None and wanted_partitions != config.partitions:
            found.append(
                f"{field} asks for {wanted_partitions} partitions but the cluster was "
                f"provisioned with {config.partitions}: Restate cannot change the partition "
                "count of a provisioned cluster; set the spec back"
            )
    return tuple(found)
