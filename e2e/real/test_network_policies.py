"""The operator's NetworkPolicies, enforced for real by kube-router on the real node.

The kwok tier can only judge the policies with an evaluator (e2e/netpol_eval.py); here
packets are dropped or let through by iptables/ipset rules. Every address dialled is a pod,
a Service or an address inside the node's own network namespace.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.operator_process import wait_for
from e2e.real.conftest import OPERATOR_NAMESPACE, note
from e2e.real.support import RealEnv
from e2e.realnode import PRIVATE_PROBE_IP

PROBE_PORT = 8099
LISTENER = "while true; do echo hello | nc -l -p 8099 >/dev/null 2>&1 || sleep 0.2; done"


@pytest.fixture(scope="module")
def guarded(real_env: RealEnv) -> Iterator[dict[str, Any]]:
    """A 1-node cluster admitting one `admin-peer` pod on admin, plus outside pods.

    - `stranger`: an unlabelled pod in a namespace without policies;
    - `admin-peer`: admitted on the admin port through spec.security.networkPeers.admin;
    - `opted-in`: listens on 8099, labelled allow.restate.dev/<cluster>;
    - `not-opted-in`: listens on 8099, unlabelled.
    """
    name = f"real-netpol-{secrets.token_hex(2)}"
    outside = f"{name}-outside"
    real_env.kubectl.run("create", "namespace", outside)
    manifest = real_env.restate_cluster(name)
    manifest["spec"]["security"] = {
        "networkPeers": {
            "admin": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": outside}},
                    "podSelector": {"matchLabels": {"role": "admin-peer"}},
                }
            ]
        }
    }
    real_env.kubectl.apply(manifest)
    try:
        real_env.client_pod(outside, "stranger")
        real_env.client_pod(outside, "admin-peer", {"role": "admin-peer"})
        real_env.client_pod(
            outside, "opted-in", {f"allow.restate.dev/{name}": "true"}, script=LISTENER
        )
        real_env.client_pod(outside, "not-opted-in", script=LISTENER)
        real_env.wait_cluster_ready(name, timeout=180)
        (pod,) = real_env.wait_pods_ready(name, 1)
        real_env.node.start_probe_listener(PROBE_PORT)
        ips = {
            p["metadata"]["name"]: p["status"]["podIP"]
            for p in real_env.kubectl.json("get", "pods", "-n", outside)["items"]
        }
        # kube-router syncs its rules every 10 s and on every pod or policy change.
        t0 = time.monotonic()
        wait_for(
            lambda: not real_env.tcp_open(outside, "stranger", pod["status"]["podIP"], 9070),
            60,
            1.0,
            "kube-router to enforce the policies",
        )
        note("netpol: cluster Ready -> policies enforced", time.monotonic() - t0)
        yield {"name": name, "outside": outside, "restate_ip": pod["status"]["podIP"], "ips": ips}
    finally:
        real_env.delete_cluster(name)
        real_env.kubectl.run("delete", "namespace", outside, "--wait=false", check=False)


@pytest.mark.parametrize("port", [9070, 5122, 8080])
def test_unlabelled_pod_cannot_reach_restate(
    real_env: RealEnv, guarded: dict[str, Any], port: int
) -> None:
    """An arbitrary pod reaches none of admin, node and ingress."""
    assert not real_env.tcp_open(guarded["outside"], "stranger", guarded["restate_ip"], port)


def test_admin_peer_reaches_admin_only(real_env: RealEnv, guarded: dict[str, Any]) -> None:
    """A pod named in networkPeers.admin reaches admin, and still not node or ingress."""
    ip = guarded["restate_ip"]
    assert real_env.tcp_open(guarded["outside"], "admin-peer", ip, 9070)
    assert not real_env.tcp_open(guarded["outside"], "admin-peer", ip, 5122)
    assert not real_env.tcp_open(guarded["outside"], "admin-peer", ip, 8080)


def test_operator_reaches_admin(real_env: RealEnv, guarded: dict[str, Any]) -> None:
    """The operator pod (selected by its labels in its namespace) reaches admin."""
    pod = real_env.kubectl.json(
        "get", "pods", "-n", OPERATOR_NAMESPACE, "-l", "app.kubernetes.io/name=restate-operator"
    )["items"][0]["metadata"]["name"]
    assert real_env.py_connect(
        OPERATOR_NAMESPACE, pod, guarded["restate_ip"], 9070, container="restate-operator"
    )


def test_restate_reaches_opted_in_pods_only(real_env: RealEnv, guarded: dict[str, Any]) -> None:
    """Restate's egress: a pod labelled allow.restate.dev/<cluster> yes, any other pod no."""
    ips = guarded["ips"]
    assert real_env.py_connect(guarded["name"], "restate-0", ips["opted-in"], PROBE_PORT)
    assert not real_env.py_connect(guarded["name"], "restate-0", ips["not-opted-in"], PROBE_PORT)


def test_dns_works_under_the_policies(real_env: RealEnv, guarded: dict[str, Any]) -> None:
    """Restate resolves cluster names (CoreDNS); names outside the cluster do not resolve."""
    ns = guarded["name"]
    code, out = real_env.exec(
        ns,
        "restate-0",
        "python3",
        "-c",
        f"import socket; print(socket.gethostbyname('restate.{ns}.svc.cluster.local'))",
        container="restate",
        check=False,
    )
    assert code == 0 and out.strip().startswith("10.96."), out
    code, out = real_env.exec(
        ns,
        "restate-0",
        "python3",
        "-c",
        "import socket; socket.gethostbyname('restate.dev')",
        container="restate",
        check=False,
    )
    assert code != 0 and "gaierror" in out, out


def test_restate_cannot_reach_a_private_address(real_env: RealEnv, guarded: dict[str, Any]) -> None:
    """A private-range address (inside the node's namespace) is open to others, not Restate."""
    assert real_env.tcp_open(guarded["outside"], "stranger", PRIVATE_PROBE_IP, PROBE_PORT)
    assert not real_env.py_connect(guarded["name"], "restate-0", PRIVATE_PROBE_IP, PROBE_PORT)
