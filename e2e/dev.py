"""The operator's main job, locally: control plane, CRD, operator, example cluster, live view.

``scripts/dev`` runs this. By default it starts the local control plane (etcd,
kube-apiserver, kube-controller-manager, kube-scheduler, kwok) **with a real node**
(e2e/realnode.py: kubelet, containerd, CNI, kube-proxy, CoreDNS, kube-router,
local-path-provisioner), installs the operator from ``charts/`` as a container (the image
built here by e2e/images.py), applies the example pointed at the real node (local Restate
image, ``local-path`` volume) and shows every RestateCluster's phase until Ctrl-C, with the
``kubectl port-forward`` command that reaches the running Restate's ingress and admin.

``--fake-nodes`` keeps the quick kwok-only run: the operator as a host process, fake pods.
With ``--kubeconfig`` it uses that cluster instead (operator as a host process).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from e2e.controlplane import Binaries, ControlPlane, ControlPlaneError
from e2e.helm import Helm
from e2e.images import ImageSet
from e2e.operator_process import NO_NETWORK_NODE_ADDRESS, REPO, Kubectl, OperatorProcess
from e2e.real.support import operator_values, restricted_namespace
from e2e.realnode import (
    LOCAL_PATH_CLASS,
    REAL_NODE_SELECTOR,
    REAL_NODE_TOLERATION,
    RealNode,
)

OPERATOR_NAMESPACE = "restate-operator"


def _phases(kubectl: Kubectl) -> list[str]:
    out = kubectl.run("get", "rsc", "-o", "jsonpath={.items[*].status.phase}", check=False)
    return out.stdout.split()


def _watch(kubectl: Kubectl, header: str, once: bool, timeout: float, logs: Any) -> int:
    deadline = time.monotonic() + timeout
    while True:
        table = kubectl.run("get", "rsc", "-o", "wide", check=False).stdout
        pods = kubectl.run(
            "get", "pods", "-A", "-l", "app.kubernetes.io/name=restate", check=False
        ).stdout
        print(f"\x1b[2J\x1b[H{time.strftime('%H:%M:%S')}  {header}\n{table}\n{pods}", flush=True)
        if once:
            phases = _phases(kubectl)
            if phases and all(p == "Ready" for p in phases):
                return 0
            if time.monotonic() > deadline:
                print(logs()[-4000:], file=sys.stderr)
                return 1
        time.sleep(2)


def real_example(path: Path, images: ImageSet) -> dict[str, Any]:
    """The example RestateCluster, pointed at the real node and the locally built image."""
    manifest: dict[str, Any] = yaml.safe_load(path.read_text())
    compute = manifest["spec"].setdefault("compute", {})
    compute.update(
        image=images.restate.ref,
        imagePullPolicy="Never",
        tolerations=[REAL_NODE_TOLERATION],
        nodeSelector=dict(REAL_NODE_SELECTOR),
    )
    compute.setdefault("env", [{"name": "RESTATE_ROCKSDB_TOTAL_MEMORY_SIZE", "value": "128MiB"}])
    manifest["spec"].setdefault("storage", {})["storageClassName"] = LOCAL_PATH_CLASS
    return manifest


def run_real(args: argparse.Namespace, workdir: Path) -> int:
    """Control plane + real node + operator pod from the chart + the example, live."""
    print(
        "starting a local control plane (etcd, kube-apiserver, kube-controller-manager, "
        "kube-scheduler, kwok) and a real node (containerd, kubelet, kube-proxy, CoreDNS, "
        "kube-router, local-path-provisioner); images are built here, never pulled...",
        flush=True,
    )
    plane = ControlPlane(work_dir=workdir / "cluster")
    node: RealNode | None = None
    try:
        plane.start()
        node = RealNode(plane)
        node.start()
        print(
            f"real node {node.name} Ready in {node.timings['total']:.0f}s (logs: {node.work_dir})",
            flush=True,
        )
        kubectl = Kubectl(plane.binaries.kubectl, plane.kubeconfig)
        kubectl.run("apply", "--server-side", "-f", str(REPO / "crd" / "restateclusters.yaml"))
        kubectl.run("wait", "--for=condition=Established", "crd/restateclusters.restate.dev")
        kubectl.apply(restricted_namespace(OPERATOR_NAMESPACE))
        helm = Helm.locate(plane.kubeconfig, workdir / "helm")
        print(f"helm install restate-operator ({node.images.operator.ref})...", flush=True)
        helm.install(
            "restate-operator",
            REPO / "charts" / "restate-operator-helm",
            OPERATOR_NAMESPACE,
            operator_values(node.images),
            wait_seconds=120,
        )
        example = real_example(args.example, node.images)
        kubectl.apply(example)
        name = example["metadata"]["name"]
        kube = f"{plane.binaries.kubectl} --kubeconfig {plane.kubeconfig}"
        header = (
            f"kubeconfig: {plane.kubeconfig}\n"
            f"reach Restate (ingress :8080, admin :9070) with\n"
            f"  {kube} port-forward -n {name} svc/restate 8080:8080 9070:9070\n"
            f"  curl http://127.0.0.1:9070/health ; curl http://127.0.0.1:8080/restate/health\n"
            f"operator logs: {kube} logs -n {OPERATOR_NAMESPACE} deploy/restate-operator\n"
            "Ctrl-C stops everything."
        )

        def logs() -> str:
            return kubectl.run(
                "logs", "-n", OPERATOR_NAMESPACE, "deploy/restate-operator", check=False
            ).stdout

        return _watch(kubectl, header, args.once, args.timeout, logs)
    finally:
        if node is not None:
            node.stop()
        plane.stop()


def run_fake(args: argparse.Namespace, workdir: Path) -> int:
    """Today's quick run: kwok nodes (or --kubeconfig), the operator as a host process."""
    plane: ControlPlane | None = None
    operator: OperatorProcess | None = None
    try:
        if args.kubeconfig is None:
            print(
                "starting a local control plane (etcd, kube-apiserver, "
                "kube-controller-manager, kube-scheduler, kwok)...",
                flush=True,
            )
            plane = ControlPlane(work_dir=workdir / "cluster")
            plane.start()
            kubeconfig = plane.kubeconfig
            print(f"control plane up; kubeconfig: {kubeconfig}", flush=True)
        else:
            kubeconfig = args.kubeconfig
        kubectl = Kubectl(Binaries.locate().kubectl, kubeconfig)
        kubectl.run("apply", "--server-side", "-f", str(REPO / "crd" / "restateclusters.yaml"))
        kubectl.run("wait", "--for=condition=Established", "crd/restateclusters.restate.dev")
        if kubectl.get("namespace", OPERATOR_NAMESPACE) is None:
            kubectl.run("create", "namespace", OPERATOR_NAMESPACE)
        operator = OperatorProcess(
            kubeconfig,
            workdir,
            args=["--log-format", "text"],
            # On a real cluster the operator provisions Restate through cluster DNS.
            node_address_template=None if args.kubeconfig else NO_NETWORK_NODE_ADDRESS,
        ).start()
        operator.wait_ready()
        print(f"operator running (log: {operator.log_path})", flush=True)
        kubectl.run("apply", "-f", str(args.example))
        print(f"applied {args.example}; Ctrl-C to stop\n", flush=True)
        return _watch(kubectl, f"kubeconfig: {kubeconfig}", args.once, args.timeout, operator.logs)
    finally:
        if operator is not None:
            operator.stop()
        if plane is not None:
            plane.stop()


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Parse the flags and run the real (default) or the fake-node variant."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, help="an existing cluster to use")
    parser.add_argument(
        "--fake-nodes",
        action="store_true",
        help="kwok nodes only, the operator as a host process (quick; no container runs)",
    )
    parser.add_argument("--example", type=Path, default=REPO / "examples" / "cluster.yaml")
    parser.add_argument(
        "--once", action="store_true", help="exit once every cluster is Ready (for smoke tests)"
    )
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="restate-op-dev-"))
    try:
        if args.fake_nodes or args.kubeconfig is not None:
            return run_fake(args, workdir)
        return run_real(args, workdir)
    except KeyboardInterrupt:
        return 0
    except (subprocess.CalledProcessError, ControlPlaneError, AssertionError) as exc:
        print(exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
