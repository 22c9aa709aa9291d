"""What a new cluster costs the API server: one apply per child, one status write, two Events.

A status that only reports Provisioning progress waits up to ``--status-coalesce`` seconds
(restate_op/coalesce.py). With a window longer than any rollout here the result does not
depend on how fast the machine is; with the window at 0 the same cluster costs more status
writes, which shows the saving comes from the coalescing.

Each test runs its own operator (no leader election, so no Lease traffic); the module does not
use the shared ``operator`` fixture.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from e2e.fault_tools import delete_cluster, desired_children, events, running_operator
from e2e.metrics import writes_by_verb_kind
from e2e.operator_fixtures import cluster_manifest, wait_phase
from e2e.operator_process import Kubectl, wait_for

pytestmark = pytest.mark.usefixtures("restate_crd")


def _manifest(name: str) -> dict[str, Any]:
    manifest = cluster_manifest(name, cluster={"autoProvision": False})
    manifest["spec"]["compute"]["replicas"] = 3
    return manifest


def _create_and_count(
    kubectl: Kubectl, tmp_path: Path, name: str, coalesce: str
) -> Counter[tuple[str, str]]:
    """Create ``name`` under a fresh operator, wait for Ready and quiet; its writes by kind."""
    args = ["--leader-elect", "false", "--status-coalesce", coalesce]
    with running_operator(kubectl.kubeconfig, tmp_path, f"cost-{coalesce}", args=args) as op:
        before = writes_by_verb_kind(op)
        kubectl.apply(_manifest(name))
        wait_phase(kubectl, name, "Ready", timeout=90)

        def quiet() -> Counter[tuple[str, str]] | None:
            # Settled when two readings a coalescing window apart agree.
            first = writes_by_verb_kind(op)
            time.sleep(1.5)
            return first if writes_by_verb_kind(op) == first else None

        after: Counter[tuple[str, str]] = wait_for(quiet, 30, what="the operator to stop writing")
    return after - before


def test_new_cluster_costs_its_children_plus_three_writes(kubectl: Kubectl, tmp_path: Path) -> None:
    name = "cost-coalesced"
    children = desired_children(_manifest(name))
    try:
        writes = _create_and_count(kubectl, tmp_path, name, coalesce="30")
        applied = {kind: n for (verb, kind), n in writes.items() if verb == "apply"}
        assert applied.pop("RestateCluster") == 1, writes  # the status, once: Ready
        assert sum(applied.values()) == len(children), writes  # one apply each
        assert writes[("create", "Event")] == 2, writes
        assert sum(writes.values()) <= len(children) + 3, writes
        # The transitions are still announced: Events cost nothing more than the two creates.
        reasons = {e["reason"] for e in events(kubectl, name)}
        assert {"Provisioning", "Ready"} <= reasons, reasons
    finally:
        delete_cluster(kubectl, name)


def test_without_coalescing_progress_costs_more_status_writes(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    name = "cost-uncoalesced"
    try:
        writes = _create_and_count(kubectl, tmp_path, name, coalesce="0")
        # At least Provisioning (written before any pod exists) and Ready.
        assert writes[("apply", "RestateCluster")] >= 2, writes
    finally:
        delete_cluster(kubectl, name)
