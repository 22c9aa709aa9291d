"""The operator's main job, locally: control plane, CRD, operator, example cluster, live view.

``scripts/dev`` runs this. By default it starts the local control plane (etcd,
kube-apiserver, kube-controller-manager, kube-scheduler, kwok); with ``--kubeconfig`` it uses
that cluster instead. It then installs the CRD, runs the operator, applies the example and
prints every RestateCluster's phase until Ctrl-C, when it stops everything it started.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from e2e.controlplane import Binaries, ControlPlane
from e2e.operator_process import NO_NETWORK_NODE_ADDRESS, REPO, Kubectl, OperatorProcess


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, help="an existing cluster to use")
    parser.add_argument("--example", type=Path, default=REPO / "examples" / "cluster.yaml")
    parser.add_argument(
        "--once", action="store_true", help="exit once every cluster is Ready (for smoke tests)"
    )
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="restate-op-dev-"))
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
        if kubectl.get("namespace", "restate-operator") is None:
            kubectl.run("create", "namespace", "restate-operator")
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
        deadline = time.monotonic() + args.timeout
        while True:
            table = kubectl.run("get", "rsc", "-o", "wide", check=False).stdout
            print(
                f"\x1b[2J\x1b[H{time.strftime('%H:%M:%S')}  kubeconfig: {kubeconfig}\n{table}",
                flush=True,
            )
            if args.once:
                phases = kubectl.run(
                    "get", "rsc", "-o", "jsonpath={.items[*].status.phase}"
                ).stdout.split()
                if phases and all(p == "Ready" for p in phases):
                    return 0
                if time.monotonic() > deadline:
                    print(operator.logs()[-4000:], file=sys.stderr)
                    return 1
            time.sleep(2)
    except KeyboardInterrupt:
        return 0
    except subprocess.CalledProcessError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        if operator is not None:
            operator.stop()
        if plane is not None:
            plane.stop()


if __name__ == "__main__":
    sys.exit(main())
