"""``python -m bench [--quick]``: run every benchmark on local control planes, print and save
the figures (``bench/results/<timestamp>.json``, ``latest.md``, ``latest.png``).

Benchmarks measure; they do not pass or fail. The targets table says which targets were met.
See docs/benchmarks.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import deployments, health, procstat, report, scenarios
from bench.operator import BenchOperator
from e2e.controlplane import Binaries
from e2e.operator_process import REPO

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = ("converge", "expansion", "scale", "concurrency", "rsd", "health")


@dataclass(frozen=True)
class Plan:
    """How big each scenario is."""

    converge_clusters: int
    expansion_runs: int
    scale: tuple[int, ...]
    idle_seconds: float  # at the largest N
    idle_seconds_other: float  # at every other N
    resync_seconds: float
    concurrency_clusters: int
    concurrency: tuple[int, ...]
    rsd_deployments: int  # RestateDeployments, each registered, rolled forward (and back)
    rsd_idle_seconds: float
    health_clusters: int  # Ready clusters whose health the operator reads from a stand-in
    health_seconds: float  # the measured window


#: At the largest N the idle window (6 min) spans the default 5-minute periodic resync and
#: the first re-opening of the informers' watches (every 5 to 7.5 min).
#: The RSD idle window (6 min) spans the operator's idle refresh of Restate's view (5 min).
FULL = Plan(50, 3, (1, 100, 500, 1000), 360, 60, 30, 500, (1, 4, 16, 64), 20, 360, 100, 120)
QUICK = Plan(10, 1, (1, 20, 50), 60, 20, 15, 50, (1, 4, 16, 64), 5, 30, 20, 60)


def _log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def _timeout(n: int) -> float:
    return max(180.0, 0.6 * n)


def _versions() -> dict[str, str]:
    b = Binaries.locate()
    return {
        "kubernetes": b.kube_apiserver.parent.name.removeprefix("kubernetes-"),
        "etcd": b.etcd.parent.name.removeprefix("etcd-"),
        "kwok": b.kwok.parent.name.removeprefix("kwok-"),
        "python": sys.version.split()[0],
        "restate-op": _git_revision(),
    }


def _git_revision() -> str:
    """The commit measured, and whether the working tree differed from it."""

    def git(*args: str) -> str:
        proc = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False, timeout=30
        )
        return proc.stdout.strip() if proc.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = [
        line
        for line in git("--no-optional-locks", "status", "--porcelain").splitlines()
        if line.strip()
    ]
    return f"{commit} (+{len(changed)} uncommitted files)" if changed else commit


class Run:
    """One invocation: the plan, where things go, and the figures so far."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.plan = QUICK if args.quick else FULL
        if args.scale:
            self.plan = Plan(**{**asdict(self.plan), "scale": tuple(args.scale)})
        if args.idle is not None:
            idle = {"idle_seconds": args.idle, "idle_seconds_other": args.idle}
            self.plan = Plan(**{**asdict(self.plan), **idle})
        if args.rsd is not None:
            self.plan = Plan(**{**asdict(self.plan), "rsd_deployments": args.rsd})
        if args.rsd_idle is not None:
            self.plan = Plan(**{**asdict(self.plan), "rsd_idle_seconds": args.rsd_idle})
        self.rsd_rollback = not args.rsd_no_rollback
        self.rsd_at_once = args.rsd_at_once
        self.only = set(args.only or SCENARIOS)
        self.keep = args.keep
        self.profile = args.profile
        self.profile_format = args.profile_format
        self.out: Path = args.out
        self.out.mkdir(parents=True, exist_ok=True)
        started = datetime.now(UTC)
        self.stamp = started.strftime("%Y%m%dT%H%M%SZ")
        self.workdir = Path(tempfile.mkdtemp(prefix="restate-op-bench-"))
        self.results: dict[str, Any] = {
            "mode": "quick" if args.quick else "full",
            "started": started.strftime("%Y-%m-%d %H:%M UTC"),
            "machine": procstat.machine(),
            "versions": _versions(),
            "plan": asdict(self.plan),
            "notes": [],
        }

    def save(self) -> None:
        """The JSON of this run; ``latest.md`` and ``latest.png`` unless only the rsd scenario
        ran, whose tables go to ``rsd-latest.md`` (so that they do not replace the tables
        and plot of the last cluster run)."""
        self.results["targets"] = report.targets(self.results)
        (self.out / f"{self.stamp}.json").write_text(json.dumps(self.results, indent=2) + "\n")
        if self.only == {"rsd"}:
            (self.out / "rsd-latest.md").write_text(report.markdown(self.results))
            return
        if self.only == {"health"}:
            (self.out / "health-latest.md").write_text(report.markdown(self.results))
            return
        (self.out / "latest.md").write_text(report.markdown(self.results))
        report.plot(self.results, self.out / "latest.png")

    def publish(self) -> None:
        """A complete full run into the default results directory also updates the README."""
        complete = self.only == set(SCENARIOS) and self.plan == FULL
        if complete and self.out == RESULTS:
            report.update_readme(self.results, REPO / "README.md")

    async def converge_and_expand(self) -> None:
        async with scenarios.rig(
            self.workdir, "converge", _log, self.keep, watch_pvcs="expansion" in self.only
        ) as r:
            op = await r.start_operator("operator-converge")
            if "converge" in self.only:
                _log(f"[converge] {self.plan.converge_clusters} clusters one after another")
                self.results["converge"] = await scenarios.converge(
                    r, op, self.plan.converge_clusters
                )
                self.save()
            if "expansion" in self.only:
                _log(f"[expansion] {self.plan.expansion_runs} run(s)")
                self.results["expansion"] = await scenarios.expansion(
                    r, op, self.plan.expansion_runs
                )
                self.save()

    def _maybe_profile(self, op: BenchOperator, what: str) -> None:
        """Sample ``op`` with py-spy when asked to (the profiler costs CPU: it shows)."""
        if self.profile:
            suffix = {"flamegraph": "svg", "raw": "txt", "speedscope": "json"}
            op.start_profile(
                self.out / f"{self.stamp}-profile-{what}.{suffix[self.profile_format]}",
                fmt=self.profile_format,
            )

    async def scale(self) -> None:
        self.results["scale"] = []
        largest = max(self.plan.scale)
        for n in self.plan.scale:
            async with scenarios.rig(self.workdir, f"scale-{n}", _log, self.keep) as r:
                op = await r.start_operator(f"operator-scale-{n}")
                if n == largest:
                    self._maybe_profile(op, f"scale-{n}")
                _log(f"[scale] creating {n} clusters at once")
                entry = await scenarios.burst(r, op, "scale", n, _timeout(n))
                op.stop_profile()
                _log(f"[scale] N={n}: all Ready after {entry['all_ready_s']} s")
                window = self.plan.idle_seconds if n == largest else self.plan.idle_seconds_other
                _log(f"[scale] N={n}: idle for {window:.0f} s")
                entry["idle"] = await scenarios.idle(r, op, window)
                await r.stop_operator(op)
                _log(f"[scale] N={n}: restart and periodic resync")
                entry["resync"] = await scenarios.resync(r, n, self.plan.resync_seconds)
                self.results["scale"].append(entry)
                self.save()

    async def concurrency(self) -> None:
        self.results["concurrency"] = []
        n = self.plan.concurrency_clusters
        for c in self.plan.concurrency:
            async with scenarios.rig(self.workdir, f"concurrency-{c}", _log, self.keep) as r:
                op = await r.start_operator(f"operator-c{c}", ["--concurrency", str(c)])
                if c == max(self.plan.concurrency):
                    self._maybe_profile(op, f"concurrency-{c}")
                _log(f"[concurrency] {n} clusters at --concurrency {c}")
                entry = await scenarios.burst(r, op, "conc", n, _timeout(n))
                op.stop_profile()
                entry["concurrency"] = c
                _log(f"[concurrency] c={c}: all Ready after {entry['all_ready_s']} s")
                self.results["concurrency"].append(entry)
                self.save()

    async def rsd(self) -> None:
        """RestateDeployments: registration, a version change, a rollback, then idle."""
        async with deployments.rig(self.workdir, _log, self.keep) as (r, standin):
            op = await r.start_operator("operator-rsd", deployments.OPERATOR_ARGS)
            self.results["rsd"] = await deployments.scenario(
                r,
                op,
                standin,
                self.plan.rsd_deployments,
                rollback=self.rsd_rollback,
                idle_seconds=self.plan.rsd_idle_seconds,
                at_once=self.rsd_at_once,
            )
            self.save()

    async def health(self) -> None:
        """Health from Restate: N Ready clusters read from a stand-in node, then a window."""
        n = self.plan.health_clusters
        async with scenarios.rig(self.workdir, "health", _log, self.keep) as r:
            standin = health.HealthStandIn(r.workdir / "standin", health.cluster_names(n)).start()
            try:
                _log(f"[health] {n} clusters (1 replica each) read from a stand-in node")
                self.results["health"] = await health.scenario(
                    r, standin, n, self.plan.health_seconds, _timeout(n)
                )
            finally:
                for op in r.operators:  # before the stand-in goes (stop is idempotent)
                    await r.stop_operator(op)
                standin.stop()
            self.save()

    async def main(self) -> None:
        _log(f"benchmarks ({self.results['mode']}): work dir {self.workdir}")
        try:
            if self.only & {"converge", "expansion"}:
                await self.converge_and_expand()
            if "scale" in self.only:
                await self.scale()
            if "concurrency" in self.only:
                await self.concurrency()
            if "rsd" in self.only:
                await self.rsd()
            if "health" in self.only:
                await self.health()
        finally:
            self.save()
            if not self.keep:
                shutil.rmtree(self.workdir, ignore_errors=True)
        self.publish()
        print(report.markdown(self.results))
        tables = {"rsd": "rsd-latest.md", "health": "health-latest.md"}.get(
            "".join(self.only) if len(self.only) == 1 else "", "latest.md, latest.png"
        )
        _log(f"wrote {self.out / (self.stamp + '.json')}, {tables}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small N (1, 20, 50) for a quick look")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, help="run only these scenarios")
    parser.add_argument("--scale", nargs="+", type=int, help="override the N of the scale runs")
    parser.add_argument(
        "--idle", type=float, help="override the idle windows (seconds; the full plan's is 360)"
    )
    parser.add_argument(
        "--rsd", type=int, help="RestateDeployments in the rsd scenario (full plan: 20)"
    )
    parser.add_argument(
        "--rsd-idle", type=float, help="the rsd idle window in seconds (full plan: 360)"
    )
    parser.add_argument(
        "--rsd-no-rollback", action="store_true", help="rsd: skip the rollback round"
    )
    parser.add_argument(
        "--rsd-at-once",
        action="store_true",
        help="rsd: apply each round's templates all at once (default: one RSD at a time)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--keep", action="store_true", help="keep control-plane work dirs (logs)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy flame graph of the operator at the largest N and the highest concurrency",
    )
    parser.add_argument(
        "--profile-format",
        choices=("flamegraph", "raw", "speedscope"),
        default="flamegraph",
        help="py-spy output: an SVG flame graph, collapsed stacks, or speedscope JSON",
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="Kubernetes version .* is not supported")
    asyncio.run(Run(args).main())
    return 0


if __name__ == "__main__":
    sys.exit(main())
