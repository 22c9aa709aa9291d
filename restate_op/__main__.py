"""Command line: ``run`` the operator, ``generate`` its artefacts."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import warnings
from collections.abc import Sequence

from restate_op import __version__
from restate_op.generate import stale_artefacts, write_artefacts
from restate_op.kube.client import KubeClient
from restate_op.logs import setup_logging
from restate_op.runtime import Operator
from restate_op.settings import OperatorSettings


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def _flag_bool(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    defaults = OperatorSettings()
    parser.add_argument(
        "--kubeconfig",
        default=_env("KUBECONFIG"),
        help="kubeconfig file (default: in-cluster, then $KUBECONFIG)",
    )
    parser.add_argument(
        "--aws-pod-identity-association-cluster",
        default=_env("AWS_POD_IDENTITY_ASSOCIATION_CLUSTER"),
        help="EKS cluster name; enables PodIdentityAssociations",
    )
    parser.add_argument(
        "--operator-namespace", default=_env("OPERATOR_NAMESPACE", defaults.operator_namespace)
    )
    parser.add_argument(
        "--operator-label-name", default=_env("OPERATOR_LABEL_NAME", defaults.operator_label_name)
    )
    parser.add_argument(
        "--operator-label-value",
        default=_env("OPERATOR_LABEL_VALUE", defaults.operator_label_value),
    )
    parser.add_argument("--cluster-dns", default=_env("CLUSTER_DNS", defaults.cluster_dns))
    parser.add_argument(
        "--node-address-template",
        default=_env("NODE_ADDRESS_TEMPLATE"),
        help="gRPC target of a Restate pod's node port, with {pod}, {namespace}, {cluster_dns} "
        "(default {pod}.restate-cluster.{namespace}.svc.{cluster_dns}:5122)",
    )
    parser.add_argument("--canary-image", default=_env("CANARY_IMAGE", defaults.canary_image))
    parser.add_argument(
        "--concurrency", type=int, default=int(_env("CONCURRENCY", str(defaults.concurrency)) or 8)
    )
    parser.add_argument(
        "--leader-elect",
        type=_flag_bool,
        default=_flag_bool(_env("LEADER_ELECT", "true") or "true"),
    )
    parser.add_argument("--lease-name", default=_env("LEASE_NAME", defaults.lease_name))
    parser.add_argument(
        "--lease-duration", type=float, default=float(_env("LEASE_DURATION", "20") or 20)
    )
    parser.add_argument("--lease-renew", type=float, default=float(_env("LEASE_RENEW", "8") or 8))
    parser.add_argument("--resync", type=float, default=float(_env("RESYNC_SECONDS", "300") or 300))
    parser.add_argument(
        "--status-coalesce",
        type=float,
        default=float(
            _env("STATUS_COALESCE_SECONDS", str(defaults.status_coalesce_seconds))
            or defaults.status_coalesce_seconds
        ),
        help="seconds a status that only reports progress (Provisioning, an expansion under "
        "way) may wait to be written, so a quick rollout costs one status write "
        "(0: write every change at once)",
    )
    parser.add_argument("--http-port", type=int, default=int(_env("HTTP_PORT", "8080") or 8080))
    parser.add_argument("--log-level", default=_env("LOG_LEVEL", "INFO"))
    parser.add_argument(
        "--log-format", choices=("json", "text"), default=_env("LOG_FORMAT", "json")
    )


def settings_from(args: argparse.Namespace) -> OperatorSettings:
    if not re.fullmatch(r"[A-Za-z0-9.-]+", args.cluster_dns or ""):
        raise SystemExit(f"--cluster-dns {args.cluster_dns!r} must be a DNS domain")
    return OperatorSettings(
        operator_namespace=args.operator_namespace,
        operator_label_name=args.operator_label_name,
        operator_label_value=args.operator_label_value,
        aws_pod_identity_association_cluster=args.aws_pod_identity_association_cluster or None,
        cluster_dns=args.cluster_dns,
        node_address_template=args.node_address_template or None,
        canary_image=args.canary_image,
        concurrency=max(1, args.concurrency),
        leader_elect=args.leader_elect,
        lease_name=args.lease_name,
        lease_duration_seconds=args.lease_duration,
        lease_renew_seconds=args.lease_renew,
        resync_seconds=args.resync,
        status_coalesce_seconds=max(0.0, args.status_coalesce),
        http_port=args.http_port,
        log_level=args.log_level,
        log_format=args.log_format,
    )


async def run_operator(args: argparse.Namespace) -> None:
    settings = settings_from(args)
    client = await KubeClient.connect(args.kubeconfig, user_agent="restate-operator")
    try:
        await Operator(client, settings).run()
    finally:
        await client.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="restate-op", description=__doc__)
    parser.add_argument("--version", action="version", version=f"restate-op {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator")
    add_run_flags(run)
    gen = sub.add_parser("generate", help="write the CRD, Pkl template and state diagram")
    gen.add_argument("--check", action="store_true", help="fail if a checked-in copy is stale")
    args = parser.parse_args(argv)

    if args.command == "generate":
        if args.check:
            stale = stale_artefacts()
            for path in stale:
                print(f"stale: {path} (run python -m restate_op generate)", file=sys.stderr)
            return 1 if stale else 0
        for path in write_artefacts():
            print(f"wrote {path}")
        return 0
    if args.command == "run":
        # kr8s warns about API server versions newer than it was tested with; we test them.
        warnings.filterwarnings("ignore", message="Kubernetes version .* is not supported")

        setup_logging(args.log_level, args.log_format)
        asyncio.run(run_operator(args))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
