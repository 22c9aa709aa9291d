"""A Ready cluster's health polled on the operator's own clock, on the fast tier: reads that
say the same thing cost no reconcile; a node that stops answering wakes the cluster's
reconcile at the next read and shows in ``status.restate``; back, the cluster is Ready again.
kwok runs no Restate: the three pods' node ports are stand-ins (``e2e/node_standin.py``).
(The real node's frozen restate-server is in ``e2e/real/test_restate_cluster.py``.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.metrics import samples_in
from e2e.node_standin import RestateStandIn, operator_over_standins
from e2e.operator_fixtures import HasKubeconfig, cluster_manifest, wait_phase
from e2e.operator_process import Kubectl, OperatorProcess, wait_for

NAME = "polls-e2e"
EVERY = 2.0
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def nodes_and_operator(
    kube: HasKubeconfig, restate_crd: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RestateStandIn, OperatorProcess]]:
    args = ("--restate-health-seconds", str(EVERY))
    with operator_over_standins(kube.kubeconfig, tmp_path_factory, NAME, 3, args=args) as both:
        yield both


def _reconciles(proc: OperatorProcess) -> float:
    _, text = proc.http("/metrics")
    return sum(v for _, v in samples_in(text, "restate_operator_reconciliations_total"))


def _restate(kubectl: Kubectl) -> dict[str, Any]:
    status = (kubectl.get("restatecluster", NAME) or {}).get("status") or {}
    return dict(status.get("restate") or {}, phase=status.get("phase"))


def test_polls_cost_no_reconcile_and_a_silent_node_shows_within_the_interval(
    kubectl: Kubectl, nodes_and_operator: tuple[RestateStandIn, OperatorProcess]
) -> None:
    nodes, proc = nodes_and_operator
    # Provisioning left to the user: the stand-ins answer as a provisioned cluster.
    manifest = cluster_manifest(NAME, cluster={"autoProvision": False})
    manifest["spec"]["compute"]["replicas"] = 3
    kubectl.apply(manifest)
    try:
        wait_phase(kubectl, NAME, "Ready", timeout=120)
        wait_for(lambda: _restate(kubectl).get("nodesAlive") == 3, 30, what="3 nodes in status")
        time.sleep(EVERY)  # the last reconciles of the way to Ready
        reconciles, glances = _reconciles(proc), nodes.calls["GetClusterState"]
        time.sleep(4 * EVERY)
        assert nodes.calls["GetClusterState"] - glances >= 3, "the poll reads every interval"
        assert _reconciles(proc) == reconciles, "an unchanged answer wakes no reconcile"

        nodes.pause(3)
        t0 = time.monotonic()

        def reported() -> dict[str, Any] | None:
            restate = _restate(kubectl)
            problems = restate.get("problems") or []
            return restate if any("restate-2" in p for p in problems) else None

        seen = wait_for(reported, EVERY + 10, 0.2, "restate-2 in status.restate.problems")
        took = time.monotonic() - t0
        print(f"\n[polls] restate-2 silent -> in status after {took:.1f} s: {seen['problems']}")
        assert seen["phase"] == "Degraded"

        nodes.resume(3)
        wait_phase(kubectl, NAME, "Ready", timeout=60)
        wait_for(lambda: not _restate(kubectl).get("problems"), 30, what="no problem left")
    finally:
        kubectl.run("delete", "restatecluster", NAME, "--wait=false", check=False)
        wait_for(lambda: kubectl.get("namespace", NAME) is None, 120, what="namespace deleted")
