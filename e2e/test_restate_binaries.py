"""Real restate-server and restatectl, run only inside loopback-only network namespaces.

These prove the netns helpers the conformance tests build on: the namespace really has no
way out, a single node gets healthy, host names map to 127.0.0.x through /etc/netns, and
three nodes on distinct loopback addresses form a cluster that restatectl provisions once.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from e2e.restate_netns import (
    QUIET_LOG_ENV,
    SMALL_MEMORY_ENV,
    LoopbackNetns,
    NetnsError,
    RestateBinaries,
    RestateNode,
    loopback_address,
    node_env,
    restatectl,
    start_cluster,
)

pytestmark = [pytest.mark.restate, pytest.mark.timeout(180)]

EXTRA_ENV = {**SMALL_MEMORY_ENV, **QUIET_LOG_ENV}


def test_namespace_has_only_loopback(netns: LoopbackNetns) -> None:
    links = netns.run(["ip", "-o", "link", "show"], check=True).stdout
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]
    routes = netns.run(["ip", "route", "show"], check=True).stdout
    assert routes.strip() == "", f"a loopback-only namespace must have no routes: {routes}"
    # Nothing outside loopback is reachable, from a child process or from Python's thread.
    probe = netns.run(
        ["python3", "-c", "import socket; socket.create_connection(('192.0.2.1', 80), 2)"]
    )
    assert probe.returncode != 0 and "unreachable" in probe.stderr.lower()
    with pytest.raises(NetnsError):
        netns.http("GET", "http://192.0.2.1/")  # refused before any socket is opened
    with pytest.raises(OSError):
        netns.call(_connect_outside)


def _connect_outside() -> None:
    import socket  # noqa: PLC0415 - runs on the namespace's thread

    socket.create_connection(("192.0.2.1", 80), timeout=2)


def test_hosts_mapping_reaches_processes_and_python(netns: LoopbackNetns) -> None:
    netns.set_hosts({"restate-1.restate-cluster.ns.svc.cluster.local": "127.0.0.3"})
    out = netns.run(
        ["getent", "hosts", "restate-1.restate-cluster.ns.svc.cluster.local"], check=True
    ).stdout
    assert out.split()[0] == "127.0.0.3"
    assert netns.resolve("restate-1.restate-cluster.ns.svc.cluster.local") == "127.0.0.3"
    netns.add_hosts({"restate-2.restate-cluster.ns.svc.cluster.local": "127.0.0.4"})
    out = netns.run(
        ["getent", "hosts", "restate-2.restate-cluster.ns.svc.cluster.local"], check=True
    ).stdout
    assert out.split()[0] == "127.0.0.4"
    with pytest.raises(NetnsError):
        netns.set_hosts({"example.com": "93.184.215.14"})  # only loopback targets allowed
    netns.add_address(loopback_address(5))
    assert "127.0.0.5/32" in netns.run(["ip", "addr", "show", "lo"], check=True).stdout


async def test_single_node_answers_health(
    netns: LoopbackNetns, restate_binaries: RestateBinaries, tmp_path: Path
) -> None:
    address = loopback_address(2)
    netns.set_hosts({"restate-0.restate.e2e.svc.cluster.local": address})
    base = tmp_path / "single"
    node = RestateNode(
        netns=netns,
        binaries=restate_binaries,
        name="single",
        host="restate-0.restate.e2e.svc.cluster.local",
        base_dir=base,
        env=node_env(node_name="single", address=address, base_dir=base, extra=EXTRA_ENV),
    )
    node.start()
    await asyncio.to_thread(node.wait_healthy, 60)
    admin = await netns.ahttp("GET", f"{node.admin_url}/health")
    assert admin.status == 200
    ingress = await netns.ahttp("GET", f"{node.ingress_url}/restate/health")
    assert ingress.status == 200
    metrics = await netns.ahttp("GET", f"{node.node_url}/metrics")
    assert metrics.status == 200
    node.stop()
    assert not node.alive()


async def test_three_nodes_form_a_cluster_and_provision_once(
    netns: LoopbackNetns, restate_binaries: RestateBinaries, tmp_path: Path
) -> None:
    nodes = await asyncio.to_thread(
        start_cluster,
        netns,
        restate_binaries,
        tmp_path,
        size=3,
        cluster_name="e2e-three",
        auto_provision=False,
        extra_env=EXTRA_ENV,
    )
    assert len({n.base_dir for n in nodes}) == 3
    assert len({n.host for n in nodes}) == 3
    for node in nodes:
        addresses = json.loads(node.env["RESTATE_METADATA_CLIENT__ADDRESSES"])
        assert addresses == [f"http://{n.host}:5122" for n in nodes]

    first: subprocess.CompletedProcess[str] = await asyncio.to_thread(
        restatectl,
        netns,
        restate_binaries,
        nodes[0].node_url,
        "provision",
        "--replication",
        "2",
        "--yes",
    )
    assert first.returncode == 0, first.stdout + first.stderr
    assert "successfully provisioned" in first.stdout + first.stderr

    for node in nodes:
        await asyncio.to_thread(node.wait_healthy, 90)

    second = await asyncio.to_thread(
        restatectl,
        netns,
        restate_binaries,
        nodes[1].node_url,
        "provision",
        "--replication",
        "2",
        "--yes",
    )
    output = (second.stdout + second.stderr).lower()
    assert "provisioned" in output and "successfully" not in output, output

    status = await asyncio.to_thread(
        restatectl, netns, restate_binaries, nodes[2].node_url, "nodes", "list"
    )
    assert status.returncode == 0, status.stderr
    for node in nodes:
        assert node.name in status.stdout
