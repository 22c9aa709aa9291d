"""The operator under test: a real ``python -m restate_op run`` process and its own figures."""

from __future__ import annotations

import collections
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from bench import procstat
from e2e.metrics import WRITE_VERBS, samples_in
from e2e.operator_process import NO_NETWORK_NODE_ADDRESS, OperatorProcess
from e2e.polling import poll

#: The chart's defaults, overriding the short test timings OperatorProcess starts with.
PRODUCTION_FLAGS = ("--lease-duration", "20", "--lease-renew", "8", "--log-format", "json")
#: Background requests that belong to no cluster (leader election, API discovery).
BACKGROUND_KINDS = ("Lease", "discovery")

Counts = dict[tuple[str, str], float]


class BenchOperator:
    """An operator process plus readings of its metrics and of ``/proc``."""

    def __init__(
        self,
        kubeconfig: Path,
        workdir: Path,
        name: str,
        args: Sequence[str] = (),
        node_address_template: str | None = None,
    ) -> None:
        """``node_address_template``: where the operator reaches the nodes (None: the e2e
        default, a socket that is not there)."""
        self.process = OperatorProcess(
            kubeconfig,
            workdir,
            name=name,
            args=[*PRODUCTION_FLAGS, *args],
            node_address_template=node_address_template or NO_NETWORK_NODE_ADDRESS,
        )
        self.name = name
        self.profile: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process.proc is not None, "start() first"
        return self.process.proc.pid

    def start(self, timeout: float = 120) -> BenchOperator:
        self.process.start()
        self.process.wait_ready(timeout)
        return self

    def stop(self) -> int | None:
        self.stop_profile()
        return self.process.stop()

    # -- profiling -----------------------------------------------------------------------

    def start_profile(self, output: Path, rate: int = 50, fmt: str = "flamegraph") -> None:
        """Sample the operator with py-spy; ``output`` (a flame graph SVG, collapsed stacks
        with ``fmt="raw"``, or a speedscope JSON) is written on :meth:`stop_profile`."""
        py_spy = Path(sys.executable).with_name("py-spy")
        self.profile = subprocess.Popen(
            [
                str(py_spy),
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                str(rate),
                "--output",
                str(output),
                "--format",
                fmt,
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop_profile(self) -> None:
        if self.profile is not None and self.profile.poll() is None:
            self.profile.send_signal(2)  # SIGINT: py-spy writes its output and exits
            try:
                self.profile.wait(30)
            except subprocess.TimeoutExpired:
                self.profile.kill()
                self.profile.wait()
        self.profile = None

    # -- readings ------------------------------------------------------------------------

    def proc(self) -> procstat.ProcSample:
        reading = procstat.sample(self.pid)
        if reading is None:
            raise RuntimeError(f"{self.name} exited:\n{self.process.logs()[-3000:]}")
        return reading

    def metrics(self, timeout: float = 60) -> str:
        """The ``/metrics`` text; waits for a busy operator rather than reading nothing."""

        def read() -> str:
            url = f"http://127.0.0.1:{self.process.port}/metrics"
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    return str(response.read().decode())
            except OSError as err:
                if not self.process.alive:
                    raise RuntimeError(
                        f"{self.name} exited:\n{self.process.logs()[-3000:]}"
                    ) from err
                raise

        return poll(
            read,
            within=timeout,
            what=f"{self.name} /metrics",
            interval=0.2,
            done=lambda _: True,
            retry_on=(OSError,),
        )

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        return samples_in(self.metrics(), name)

    def requests(self) -> Counts:
        """``restate_operator_api_requests_total`` by (verb, kind)."""
        return {
            (labels.get("verb", ""), labels.get("kind", "")): value
            for labels, value in self.samples("restate_operator_api_requests_total")
        }

    def reconciles(self) -> float:
        return sum(v for _, v in self.samples("restate_operator_reconciliations_total"))

    def queue_depth(self) -> float:
        return sum(v for _, v in self.samples("restate_operator_workqueue_depth"))

    def reconcile_errors(self) -> float:
        return sum(v for _, v in self.samples("restate_operator_reconciliation_errors_total"))

    def wait_reconciles(self, at_least: float, timeout: float) -> float:
        """Wait until the reconcile counter reaches ``at_least`` and the queue is empty;
        returns the seconds waited."""
        started = time.monotonic()
        poll(
            lambda: (self.reconciles(), self.queue_depth()),
            within=timeout,
            what=f"{self.name}: {at_least} reconciles and an empty queue (reconciles, depth)",
            interval=0.2,
            done=lambda seen: seen[0] >= at_least and seen[1] == 0,
            fail=TimeoutError,
        )
        return time.monotonic() - started


def delta(after: Counts, before: Counts) -> Counts:
    """Per-(verb, kind) difference of two :meth:`BenchOperator.requests` readings."""
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) > 0}


def by_verb(counts: Counts, *, exclude_kinds: Sequence[str] = ()) -> dict[str, int]:
    totals: collections.Counter[str] = collections.Counter()
    for (verb, kind), value in counts.items():
        if kind not in exclude_kinds:
            totals[verb] += int(value)
    return dict(sorted(totals.items()))


def by_verb_kind(counts: Counts) -> dict[str, dict[str, int]]:
    nested: dict[str, dict[str, int]] = collections.defaultdict(dict)
    for (verb, kind), value in sorted(counts.items()):
        nested[verb][kind] = int(value)
    return dict(nested)


def writes(counts: Counts, *, exclude_kinds: Sequence[str] = ()) -> int:
    return int(
        sum(
            value
            for (verb, kind), value in counts.items()
            if verb in WRITE_VERBS and kind not in exclude_kinds
        )
    )


def total(counts: Counts, *, exclude_kinds: Sequence[str] = ()) -> int:
    return int(sum(v for (_, kind), v in counts.items() if kind not in exclude_kinds))
