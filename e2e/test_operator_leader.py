"""Two operator processes: only the leader writes; a killed leader is replaced in time."""

from __future__ import annotations

import time

import pytest

from e2e.metrics import is_leader, write_requests
from e2e.operator_fixtures import cluster_manifest, wait_phase
from e2e.operator_process import Kubectl, OperatorProcess, wait_for

LEASE_SECONDS = 4


def test_only_the_leader_writes_and_a_standby_takes_over(
    kubectl: Kubectl, restate_crd: None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    args = [
        "--lease-name",
        "e2e-leader",
        "--lease-duration",
        str(LEASE_SECONDS),
        "--lease-renew",
        "1",
    ]
    a = OperatorProcess(
        kubectl.kubeconfig, tmp_path_factory.mktemp("a"), name="a", args=args
    ).start()
    b = OperatorProcess(
        kubectl.kubeconfig, tmp_path_factory.mktemp("b"), name="b", args=args
    ).start()
    names = ["e2e-lead-1", "e2e-lead-2"]
    try:
        a.wait_ready()
        b.wait_ready()
        leader, standby = wait_for(
            lambda: (a, b) if is_leader(a) else (b, a) if is_leader(b) else None,
            30,
            what="a leader",
        )
        assert not is_leader(standby)
        kubectl.apply(cluster_manifest(names[0]))
        wait_phase(kubectl, names[0], "Ready", timeout=90)
        assert write_requests(leader, exclude_kinds=("Lease",)) > 0
        assert write_requests(standby, exclude_kinds=("Lease",)) == 0, "a standby never writes"

        leader.kill()
        killed_at = time.monotonic()
        kubectl.apply(cluster_manifest(names[1]))
        wait_for(
            lambda: is_leader(standby),
            LEASE_SECONDS * 3,
            interval=0.2,
            what="the standby to take the Lease",
        )
        took_over = time.monotonic() - killed_at
        assert took_over <= LEASE_SECONDS + 3, took_over
        wait_phase(kubectl, names[1], "Ready", timeout=90)
    finally:
        for proc in (a, b):
            proc.stop()
        for name in names:
            kubectl.run("delete", "restatecluster", name, "--wait=false", check=False)
