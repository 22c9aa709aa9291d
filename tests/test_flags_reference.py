"""The generated flags table of docs/reference.md says what the chart really sets."""

from __future__ import annotations

from pathlib import Path

from restate_op.flags_reference import CHART_VALUES, flags_markdown
from restate_op.settings import OperatorSettings

DEPLOYMENT = (
    Path(__file__).resolve().parent.parent
    / "charts"
    / "restate-operator-helm"
    / "templates"
    / "deployment.yaml"
)


def test_every_flag_has_a_row() -> None:
    table = flags_markdown()
    for env in OperatorSettings.environment_variables().values():
        assert f"| `{env}` |" in table
    row = "| `--gcp-workload-identity` | `GCP_WORKLOAD_IDENTITY` | `gcpWorkloadIdentity` |"
    assert row in table


def test_chart_values_named_are_the_ones_the_chart_reads_for_that_variable() -> None:
    template = DEPLOYMENT.read_text()
    for env, value in CHART_VALUES.items():
        at = template.index(f"- name: {env}")
        # The value is read on the variable's line or the `with`/`if` just before it.
        window = template[max(0, at - 120) : at + 120]
        assert f".Values.{value}" in window, (env, value)
