"""Helpers for the real tier: Restate clusters pinned to the real node, client pods, exec.

Everything a test runs on the real node lives in its network namespace: client pods are
busybox (locally built image, ``imagePullPolicy: Never``) and every address a test dials is
a Service, a pod or an address of the node itself.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.images import ImageSet
from e2e.operator_process import Kubectl, wait_for
from e2e.realnode import (
    LOCAL_PATH_CLASS,
    REAL_NODE_SELECTOR,
    REAL_NODE_TOLERATION,
    RealNode,
)

RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "runAsUser": 65534,
    "runAsGroup": 65534,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def operator_values(images: ImageSet) -> dict[str, Any]:
    """Chart values for the locally built operator image, as a pod on the real node."""
    repository, tag = images.operator.ref.rsplit(":", 1)
    return {
        "version": tag,
        "image": {"repository": repository, "pullPolicy": "Never"},
        # The CRD comes from a server-side apply (the restate_crd fixture, or dev.py), as for
        # the kwok tier, so the two never fight over its fields.
        "installCrds": False,
        "restateDeployments": {"enabled": True},
        "nodeSelector": dict(REAL_NODE_SELECTOR),
        "tolerations": [REAL_NODE_TOLERATION],
        "logging": {"format": "text", "level": "info"},
        "leaderElection": {"enabled": True, "leaseDuration": 15, "renewPeriod": 5},
        "resources": {"requests": {"cpu": "20m", "memory": "96Mi"}, "limits": {"memory": "512Mi"}},
    }


def restricted_namespace(name: str) -> dict[str, Any]:
    """A Namespace that enforces the restricted Pod Security Standard."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            },
        },
    }


@dataclass
class RealEnv:
    """What a real-tier test gets: kubectl, the node, the images, the operator's namespace."""

    kubectl: Kubectl
    node: RealNode
    images: ImageSet
    operator_namespace: str
    work: Path

    def restate_cluster(
        self,
        name: str,
        *,
        replicas: int = 1,
        config: str | None = None,
        auto_provision: bool | None = None,
        storage_bytes: int = 1024**3,
        compute: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A RestateCluster on the real node: local image, local-path volume, small memory."""
        spec_compute: dict[str, Any] = {
            "image": self.images.restate.ref,
            "imagePullPolicy": "Never",
            "replicas": replicas,
            "tolerations": [REAL_NODE_TOLERATION],
            "nodeSelector": dict(REAL_NODE_SELECTOR),
            "env": [{"name": "RESTATE_ROCKSDB_TOTAL_MEMORY_SIZE", "value": "128MiB"}],
            "resources": {
                "requests": {"cpu": "20m", "memory": "128Mi"},
                "limits": {"memory": "1Gi"},
            },
        }
        spec_compute.update(compute or {})
        spec: dict[str, Any] = {
            "compute": spec_compute,
            "storage": {
                "storageRequestBytes": storage_bytes,
                "storageClassName": LOCAL_PATH_CLASS,
            },
        }
        if config is not None:
            spec["config"] = config
        if auto_provision is not None:
            spec["cluster"] = {"autoProvision": auto_provision}
        return {
            "apiVersion": "restate.dev/v1",
            "kind": "RestateCluster",
            "metadata": {"name": name},
            "spec": spec,
        }

    def client_pod(
        self,
        namespace: str,
        name: str,
        labels: dict[str, str] | None = None,
        *,
        script: str | None = None,
    ) -> str:
        """A busybox pod on the real node (restricted PSS), Running; returns its name."""
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": {
                "terminationGracePeriodSeconds": 0,
                "tolerations": [REAL_NODE_TOLERATION],
                "nodeSelector": dict(REAL_NODE_SELECTOR),
                "securityContext": {
                    "runAsNonRoot": True,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "client",
                        "image": self.images.busybox.ref,
                        "imagePullPolicy": "Never",
                        "command": (
                            ["/bin/sh", "-c", script] if script else ["/bin/sleep", "3600"]
                        ),
                        "securityContext": RESTRICTED_CONTAINER,
                        "resources": {"limits": {"memory": "32Mi"}},
                    }
                ],
            },
        }
        self.kubectl.apply(pod)
        self.kubectl.run(
            "wait", "-n", namespace, f"pod/{name}", "--for=condition=Ready", "--timeout=60s"
        )
        return name

    def exec(
        self, namespace: str, pod: str, *cmd: str, container: str | None = None, check: bool = True
    ) -> tuple[int, str]:
        """`kubectl exec` (through the kubelet); returns (exit code, stdout+stderr)."""
        extra = ["-c", container] if container else []
        proc = self.kubectl.run(
            "exec", "-n", namespace, pod, *extra, "--", *cmd, check=False, timeout=60
        )
        out = proc.stdout + proc.stderr
        if check and proc.returncode != 0:
            raise AssertionError(f"exec {pod} {' '.join(cmd)} failed ({proc.returncode}): {out}")
        return proc.returncode, out

    def tcp_open(self, namespace: str, pod: str, host: str, port: int) -> bool:
        """Whether `pod` can open a TCP connection to host:port (3 s connect timeout)."""
        code, _ = self.exec(
            namespace,
            pod,
            "/bin/sh",
            "-c",
            f"timeout 5 nc -w 3 {host} {port} </dev/null >/dev/null 2>&1",
            check=False,
        )
        return code == 0

    def http_get(self, namespace: str, pod: str, url: str) -> str | None:
        """GET `url` from `pod` with busybox wget; the body ("" if empty), None on failure.

        (busybox 1.35's `wget -T` crashes in these pods; `timeout` bounds the call instead.)
        """
        code, out = self.exec(
            namespace, pod, "timeout", "8", "wget", "-q", "-O", "-", url, check=False
        )
        return out if code == 0 else None

    def http_ok(self, namespace: str, pod: str, url: str) -> bool:
        """Whether GET `url` from `pod` answers 2xx."""
        return self.http_get(namespace, pod, url) is not None

    def py_connect(
        self, namespace: str, pod: str, host: str, port: int, container: str = "restate"
    ) -> bool:
        """Whether `pod` (an image with python3: Restate's, the operator's) connects."""
        code, _ = self.exec(
            namespace,
            pod,
            "python3",
            "-c",
            "import socket,sys\n"
            f"try: socket.create_connection(({host!r}, {port}), timeout=3).close()\n"
            "except OSError: sys.exit(1)",
            container=container,
            check=False,
        )
        return code == 0

    def restatectl_status(self, namespace: str, pod: str = "restate-0") -> str:
        """`restatectl status` run inside a Restate pod (against its own node)."""
        _, out = self.exec(namespace, pod, "restatectl", "status", container="restate")
        return out

    def members(self, namespace: str, pod: str = "restate-0") -> list[str]:
        """Node ids (N1, N2, ...) that `restatectl status` lists."""
        return sorted(set(re.findall(r"\bN\d+\b", self.restatectl_status(namespace, pod))))

    def pods(self, namespace: str) -> list[dict[str, Any]]:
        """The Restate pods of a cluster namespace."""
        data = self.kubectl.json(
            "get", "pods", "-n", namespace, "-l", "app.kubernetes.io/name=restate"
        )
        items: list[dict[str, Any]] = data["items"]
        return items

    def wait_cluster_ready(self, name: str, timeout: float = 180) -> dict[str, Any]:
        """Wait for phase Ready with the observed generation current."""

        def ready() -> dict[str, Any] | None:
            obj = self.kubectl.get("restatecluster", name)
            if obj is None:
                return None
            status = obj.get("status", {})
            if status.get("phase") != "Ready":
                return None
            if status.get("observedGeneration") != obj["metadata"]["generation"]:
                return None
            return obj

        result: dict[str, Any] = wait_for(ready, timeout, 1.0, f"RestateCluster {name} Ready")
        return result

    def wait_pods_ready(
        self, namespace: str, count: int, timeout: float = 180
    ) -> list[dict[str, Any]]:
        """Wait until `count` Restate pods are Ready."""

        def ready() -> list[dict[str, Any]] | None:
            pods = self.pods(namespace)
            ok = [p for p in pods if _pod_ready(p)]
            return ok if len(ok) == count and len(pods) == count else None

        result: list[dict[str, Any]] = wait_for(
            ready, timeout, 1.0, f"{count} Ready pods in {namespace}"
        )
        return result

    def delete_cluster(self, name: str) -> None:
        """Delete a RestateCluster (its namespace goes with it)."""
        self.kubectl.run("delete", "restatecluster", name, "--ignore-not-found", "--wait=false")


def _pod_ready(pod: dict[str, Any]) -> bool:
    conds = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def pod_ready(pod: dict[str, Any]) -> bool:
    """Whether a pod's Ready condition is True."""
    return _pod_ready(pod)


def dump(obj: Any) -> str:
    """Compact JSON for assertion messages."""
    return json.dumps(obj, default=str)[:3000]


def monotonic() -> float:
    """time.monotonic (re-exported for the tests' timing notes)."""
    return time.monotonic()


def restate_status(real_env: RealEnv, name: str) -> dict[str, Any]:
    """The RestateCluster's status."""
    obj = real_env.kubectl.get("restatecluster", name)
    assert obj is not None
    status: dict[str, Any] = obj.get("status", {})
    return status


def wait_restate_status(
    real_env: RealEnv, name: str, pods: int, timeout: float = 60
) -> dict[str, Any]:
    """Wait until status.restate (the operator's read of Restate's own view) says every one
    of ``pods`` is an alive metadata member and every partition is led, with no problem."""
    expected = [f"restate-{i}" for i in range(pods)]

    def healthy() -> dict[str, Any] | None:
        restate: dict[str, Any] = restate_status(real_env, name).get("restate") or {}
        return (
            restate
            if restate.get("members") == expected
            and restate.get("nodesAlive") == pods
            and restate.get("partitions")
            and restate.get("partitionsLed") == restate.get("partitions")
            and not restate.get("problems")
            and not restate.get("error")
            else None
        )

    result: dict[str, Any] = wait_for(healthy, timeout, 1.0, f"status.restate: {pods} healthy")
    return result


def cluster_identity(real_env: RealEnv, ns: str) -> tuple[str, dict[str, tuple[str, int]]]:
    """The cluster name (admin API) and, per pod name, its node id and generation.

    A cluster that lost its data would come back re-provisioned: node ids reassigned and
    generations back at 1. One that kept it keeps ids and names and bumps generations.
    """
    _, health = real_env.exec(
        ns,
        "restate-0",
        "python3",
        "-c",
        "import urllib.request,json;"
        "d=json.load(urllib.request.urlopen('http://127.0.0.1:9070/cluster-health',timeout=5));"
        "print(d['cluster_name'])",
        container="restate",
    )
    _, nodes = real_env.exec(ns, "restate-0", "restatectl", "nodes", "list", container="restate")
    table: dict[str, tuple[str, int]] = {}
    for line in nodes.splitlines():
        parts = line.split()
        if len(parts) >= 3 and re.fullmatch(r"N\d+", parts[0]) and parts[1].isdigit():
            table[parts[2]] = (parts[0], int(parts[1]))
    return health.strip().splitlines()[-1], table
