"""A child the API server refuses for what the user wrote: Degraded naming the field, once.

The CRD's Kubernetes schemas catch unknown fields and wrong types at apply time; what they
cannot know is Kubernetes' own validation of the child (a label key in an affinity term must
be a qualified name). Such a 422 is the user's input, not an outage: the RestateCluster turns
Degraded with a message naming the child's field and the spec field it came from, and the
operator does not retry the StatefulSet apply until the spec changes.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from e2e.fault_tools import delete_cluster, requests_by
from e2e.operator_fixtures import cluster_manifest, condition, wait_phase
from e2e.operator_process import Kubectl, OperatorProcess

pytestmark = pytest.mark.usefixtures("operator")

QUIET_SECONDS = 6.0
BAD_TERM = {
    "labelSelector": {"matchExpressions": [{"key": "not a key!", "operator": "Exists"}]},
    "topologyKey": "kubernetes.io/hostname",
}


def _manifest(name: str) -> dict[str, Any]:
    manifest = cluster_manifest(name)
    manifest["spec"]["compute"]["affinity"] = {
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [BAD_TERM]}
    }
    return manifest


def test_a_child_refused_for_the_spec_is_degraded_naming_the_field_and_not_retried(
    kubectl: Kubectl, operator: OperatorProcess
) -> None:
    name = "e2e-invalid-child"
    kubectl.apply(_manifest(name))  # valid for the CRD's schema: a string is a string
    try:
        degraded = wait_phase(kubectl, name, "Degraded", timeout=60, reason="ApplyRejected")
        message = condition(degraded, "Degraded")["message"]
        field = "podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]"
        assert f"StatefulSet restate at spec.template.spec.affinity.{field}" in message, message
        assert f"(from spec.compute.affinity.{field}" in message, message
        assert "persisted after retries" not in message

        applies = requests_by(operator, "apply", "StatefulSet")
        time.sleep(QUIET_SECONDS)
        assert requests_by(operator, "apply", "StatefulSet") == applies, "no retry loop"

        # A change of the spec is the next try, and a good one converges.
        kubectl.merge_patch("restatecluster", name, {"spec": {"compute": {"affinity": None}}})
        wait_phase(kubectl, name, "Ready", timeout=90)
    finally:
        delete_cluster(kubectl, name)
