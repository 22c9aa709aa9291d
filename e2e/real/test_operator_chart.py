"""The operator as a container from its own chart, on the real node."""

from __future__ import annotations

import json

from e2e.real.conftest import OPERATOR_NAMESPACE
from e2e.real.support import RealEnv, pod_ready
from e2e.realnode import REAL_NODE_LABEL


def _operator_pod(env: RealEnv) -> dict:  # type: ignore[type-arg]
    pods = env.kubectl.json(
        "get", "pods", "-n", OPERATOR_NAMESPACE, "-l", "app.kubernetes.io/name=restate-operator"
    )["items"]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    pod: dict = pods[0]  # type: ignore[type-arg]
    return pod


def test_operator_pod_runs_restricted_on_the_real_node(real_env: RealEnv) -> None:
    """helm install --wait succeeded: the pod was admitted under restricted PSS and is Ready."""
    ns = real_env.kubectl.get("namespace", OPERATOR_NAMESPACE)
    assert ns is not None
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    pod = _operator_pod(real_env)
    assert pod["spec"]["nodeName"] == real_env.node.name
    node = real_env.kubectl.get("node", real_env.node.name)
    assert node is not None and node["metadata"]["labels"][REAL_NODE_LABEL] == "true"
    assert pod_ready(pod), json.dumps(pod["status"])[:2000]
    container = pod["spec"]["containers"][0]
    assert container["image"] == real_env.images.operator.ref
    assert container["imagePullPolicy"] == "Never"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # Probes went through the kubelet for real: the container is ready and never restarted.
    status = pod["status"]["containerStatuses"][0]
    assert status["ready"] is True and status["restartCount"] == 0, status
    assert "running" in status["state"]
    # It really runs read-only as 1000:3000: writing outside /tmp fails.
    code, out = real_env.exec(OPERATOR_NAMESPACE, pod["metadata"]["name"], "id", check=False)
    assert code == 0 and "uid=1000" in out and "gid=3000" in out, out
    code, out = real_env.exec(
        OPERATOR_NAMESPACE,
        pod["metadata"]["name"],
        "python",
        "-c",
        "open('/app/x', 'w')",
        check=False,
    )
    assert code != 0 and "Read-only file system" in out, out


def test_operator_pod_holds_the_lease(real_env: RealEnv) -> None:
    """The pod took the chart's Lease (leader election through the in-cluster API path)."""
    pod = _operator_pod(real_env)
    leases = real_env.kubectl.json("get", "leases", "-n", OPERATOR_NAMESPACE)["items"]
    holders = [lease["spec"].get("holderIdentity", "") for lease in leases]
    assert any(pod["metadata"]["name"] in h for h in holders), holders
    logs = real_env.kubectl.run(
        "logs", "-n", OPERATOR_NAMESPACE, pod["metadata"]["name"], check=False
    ).stdout
    assert "leader" in logs.lower(), logs[-2000:]
