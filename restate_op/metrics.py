"""Prometheus metrics of the operator, with bounded label sets."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge, Histogram

from restate_op import __version__
from restate_op.config_figures import CONFIG_FIGURES
from restate_op.restate_health import RESTATE_FIGURES


@dataclass(frozen=True)
class OperatorMetrics:
    reconciles: Counter = field(
        default_factory=lambda: Counter(
            "restate_operator_reconciliations_total", "Reconciles run, by result", ["result"]
        )
    )
    reconcile_errors: Counter = field(
        default_factory=lambda: Counter(
            "restate_operator_reconciliation_errors_total",
            "Failed reconciles, by error class (a fixed set)",
            ["error"],
        )
    )
    reconcile_duration: Histogram = field(
        default_factory=lambda: Histogram(
            "restate_operator_reconcile_duration_seconds",
            "Duration of one reconcile",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 5, 15, 60),
        )
    )
    clusters: Gauge = field(
        default_factory=lambda: Gauge(
            "restate_operator_clusters", "RestateClusters by phase", ["phase"]
        )
    )
    queue_depth: Gauge = field(
        default_factory=lambda: Gauge(
            "restate_operator_workqueue_depth", "Cluster keys waiting to be reconciled"
        )
    )
    leader: Gauge = field(
        default_factory=lambda: Gauge(
            "restate_operator_leader", "1 while this process holds the leader Lease"
        )
    )
    crd_missing: Gauge = field(
        default_factory=lambda: Gauge(
            "restate_operator_crd_missing", "1 while a CRD the operator needs is missing", ["crd"]
        )
    )
    build_info: Gauge = field(
        default_factory=lambda: Gauge(
            "restate_operator_build_info", "Always 1; the operator's version", ["version"]
        )
    )

    restate_cluster: Gauge = field(
        default_factory=lambda: Gauge(
            "restate_operator_restate_cluster",
            "A RestateCluster as Restate itself reports it at the last read: partitions, "
            "partitions_led, replication (nodes per partition), nodes_alive, metadata_members",
            ["cluster", "figure"],
        )
    )

    restate_cluster_config: Gauge = field(
        default_factory=lambda: Gauge(
            "restate_operator_restate_cluster_config",
            "The configuration a RestateCluster's nodes run with, from its spec (else "
            "Restate's default): journal_retention_seconds, idempotency_retention_seconds, "
            "workflow_completion_retention_seconds",
            ["cluster", "setting"],
        )
    )

    def __post_init__(self) -> None:
        self.build_info.labels(version=__version__).set(1)

    def record_restate(self, cluster: str, figures: Mapping[str, int | None]) -> None:
        """One series per cluster and figure (a fixed set): bounded by the clusters."""
        for figure, value in figures.items():
            if value is None:
                self._drop(cluster, figure)
            else:
                self.restate_cluster.labels(cluster=cluster, figure=figure).set(value)

    def forget_cluster(self, cluster: str) -> None:
        for figure in RESTATE_FIGURES:
            self._drop(cluster, figure)

    def record_config(self, cluster: str, figures: Mapping[str, int | None]) -> None:
        """One series per cluster and setting (a fixed set): bounded by the clusters."""
        for setting, value in figures.items():
            if value is None:
                with contextlib.suppress(KeyError):
                    self.restate_cluster_config.remove(cluster, setting)
            else:
                self.restate_cluster_config.labels(cluster=cluster, setting=setting).set(value)

    def forget_config(self, cluster: str) -> None:
        self.record_config(cluster, dict.fromkeys(CONFIG_FIGURES))

    def _drop(self, cluster: str, figure: str) -> None:
        with contextlib.suppress(KeyError):
            self.restate_cluster.remove(cluster, figure)


METRICS = OperatorMetrics()
