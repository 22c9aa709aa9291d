"""Command line: ``run`` the operator, ``generate`` its artefacts."""

from __future__ import annotations

import argparse
import asyncio
import sys
import warnings
from collections.abc import Sequence

from pydantic import ValidationError

from restate_op import __version__
from restate_op.generate import stale_artefacts, write_artefacts
from restate_op.kube.client import KubeClient
from restate_op.logs import setup_logging
from restate_op.runtime import Operator
from restate_op.settings import OperatorSettings


async def run_operator(settings: OperatorSettings) -> None:
    client = await KubeClient.connect(settings.kubeconfig, user_agent="restate-operator")
    try:
        await Operator(client, settings).run()
    finally:
        await client.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="restate-op", description=__doc__)
    parser.add_argument("--version", action="version", version=f"restate-op {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator")
    run_flags = OperatorSettings.cli(run)
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

        try:
            settings = OperatorSettings.from_cli(args, run_flags)
        except ValidationError as e:
            run.error(_problems(e))
        setup_logging(settings.log_level, settings.log_format)
        asyncio.run(run_operator(settings))
        return 0
    return 2


def _problems(error: ValidationError) -> str:
    """One line per bad setting, named as its flag."""
    return "; ".join(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}" for e in error.errors())


if __name__ == "__main__":
    sys.exit(main())
