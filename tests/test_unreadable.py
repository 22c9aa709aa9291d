"""A spec the CRD accepts but the model cannot read becomes a Degraded status naming the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from restate_op.api.models import RestateCluster
from restate_op.unreadable import field_path, lenient_figures, unreadable_verdict


def _raw(security: dict[str, object]) -> dict[str, object]:
    return {
        "apiVersion": "restate.dev/v1",
        "kind": "RestateCluster",
        "metadata": {"name": "demo", "generation": 3},
        "spec": {
            "compute": {"image": "restatedev/restate:1.7.12", "replicas": 2},
            "storage": {"storageRequestBytes": 2147483648},
            "security": security,
        },
        "status": {"phase": "Ready", "readyReplicas": 2, "storage": {"currentBytes": 7}},
    }


def test_field_path() -> None:
    assert field_path(("spec", "compute", "env", 0, "name")) == "spec.compute.env[0].name"
    assert field_path(()) == ""


@pytest.mark.parametrize(
    "key",
    [
        {"version": "v1"},
        {
            "version": "v1",
            "secret": {"secretName": "k", "key": "p"},
            "secretProvider": {"provider": "aws", "path": "p"},
        },
    ],
)
def test_a_signing_key_without_exactly_one_source_names_the_field(
    key: dict[str, object],
) -> None:
    raw = _raw({"requestSigningPrivateKey": key})
    with pytest.raises(ValidationError) as caught:
        RestateCluster.model_validate(raw)
    verdict = unreadable_verdict(caught.value)
    assert verdict.phase == "Degraded" and verdict.reason == "InvalidSpec"
    assert "spec.security.requestSigningPrivateKey" in verdict.message
    assert "exactly one of secret or secretProvider" in verdict.message


def test_figures_are_read_without_the_model() -> None:
    figures = lenient_figures(_raw({}))
    assert (figures.desired_replicas, figures.ready_replicas) == (2, 2)
    assert (figures.requested_bytes, figures.current_bytes) == (2147483648, 7)
    broken = lenient_figures({"spec": {"compute": "nonsense", "storage": None}, "status": 5})
    assert (broken.desired_replicas, broken.requested_bytes, broken.current_bytes) == (1, 0, None)
