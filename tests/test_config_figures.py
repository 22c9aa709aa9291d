"""The retention a cluster's nodes run with, as gauges: Restate's durations parsed, the
spec's variable over its file over Restate's default, one series per cluster and setting,
read again only when the spec changed and gone with the cluster."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from prometheus_client import REGISTRY

from restate_op.api.models import RestateCluster
from restate_op.config_figures import CONFIG_FIGURES, config_figures, duration_seconds
from restate_op.kube import resources
from tests.test_runtime import DictCaches, controller
from tests.test_verdicts import cluster

DAY = 86400


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1d", DAY),
        ("12h 30m", 12 * 3600 + 30 * 60),
        ("1h30m", 5400),
        ("90s", 90),
        ("1500ms", 1),
        ("2 weeks", 14 * DAY),
        ("P1DT12H", DAY + 12 * 3600),
        ("PT90S", 90),
        ("0s", 0),
    ],
)
def test_restate_durations_parse_to_whole_seconds(text: str, seconds: int) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "1x", "d1", "1d and more", "P", "PT", "forever"])
def test_what_is_no_duration_has_no_figure(text: str) -> None:
    assert duration_seconds(text) is None


def _model(config: str | None = None, env: list[dict[str, Any]] | None = None) -> RestateCluster:
    raw = cluster(config=config)
    if env is not None:
        raw["spec"]["compute"]["env"] = env
    return RestateCluster.model_validate(raw)


def test_the_variable_wins_over_the_file_which_wins_over_restates_default() -> None:
    config = 'default-journal-retention = "7d"\ndefault-idempotency-retention = "12h"\n'
    env = [{"name": "RESTATE_DEFAULT_IDEMPOTENCY_RETENTION", "value": "30m"}]
    assert config_figures(_model(config, env)) == {
        "journal_retention_seconds": 7 * DAY,
        "idempotency_retention_seconds": 1800,
        "workflow_completion_retention_seconds": DAY,
    }
    # From a Secret: it wins over the file, but its value is not known here.
    secret = [
        {
            "name": "RESTATE_DEFAULT_JOURNAL_RETENTION",
            "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}},
        }
    ]
    assert config_figures(_model(config, secret))["journal_retention_seconds"] is None


def _gauge(name: str, setting: str) -> float | None:
    return REGISTRY.get_sample_value(
        "restate_operator_restate_cluster_config", {"cluster": name, "setting": setting}
    )


def test_the_gauges_follow_each_spec_change_and_go_with_the_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caches = DictCaches()
    raw = cluster(config='default-journal-retention = "2d"\n')
    raw["metadata"]["name"] = "figures"
    caches.add(resources.RESTATE_CLUSTER, raw)
    ctl = controller(caches)
    ctl.update_gauges()
    assert _gauge("figures", "journal_retention_seconds") == 2 * DAY
    assert _gauge("figures", "workflow_completion_retention_seconds") == DAY

    # The same generation is not read again; a new one is.
    reads: list[str] = []

    def counted(model: RestateCluster) -> dict[str, int | None]:
        reads.append(model.metadata.name)
        return config_figures(model)

    monkeypatch.setattr("restate_op.cluster_controller.config_figures", counted)
    ctl.update_gauges()
    assert reads == []
    changed = copy.deepcopy(raw)
    changed["spec"]["config"] = 'default-journal-retention = "bogus"\n'
    changed["metadata"]["generation"] = 2
    caches.objects[(resources.RESTATE_CLUSTER, None)] = [changed]
    ctl.update_gauges()
    assert reads == ["figures"]
    assert _gauge("figures", "journal_retention_seconds") is None  # no figure, no series
    assert _gauge("figures", "idempotency_retention_seconds") == DAY

    caches.objects[(resources.RESTATE_CLUSTER, None)] = []
    ctl.update_gauges()
    assert all(_gauge("figures", s) is None for s in CONFIG_FIGURES)
