"""The operator as a real process against the test cluster, and a kubectl for assertions.

e2e tests run ``python -m restate_op run`` exactly as the container would, so crash, restart
and leader-election tests exercise the real process, signals included.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from e2e.polling import poll

REPO = Path(__file__).resolve().parent.parent
NO_NETWORK_NODE_ADDRESS = "unix:///nonexistent/restate-op-e2e/{namespace}/{pod}.sock"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Kubectl:
    """The real kubectl (built with the control plane) against one kubeconfig."""

    def __init__(self, binary: Path, kubeconfig: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.binary), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        ns = ["-n", namespace] if namespace else []
        proc = self.run("get", kind, name, *ns, "-o", "json", check=False)
        if proc.returncode != 0:
            if "NotFound" in proc.stderr or "not found" in proc.stderr:
                return None
            raise AssertionError(f"kubectl get {kind} {name}: {proc.stderr.strip()}")
        result: dict[str, Any] = json.loads(proc.stdout)
        return result

    def wait_established(self, crd: str, timeout: float = 60) -> None:
        """Until the CustomResourceDefinition ``crd`` is Established. Polled: ``kubectl wait``
        fails at once while a new CRD's status has no conditions yet."""

        def established() -> bool:
            obj = self.get("crd", crd) or {}
            conditions = (obj.get("status") or {}).get("conditions") or []
            return any(
                c.get("type") == "Established" and c.get("status") == "True" for c in conditions
            )

        wait_for(established, timeout, what=f"CRD {crd} to be Established")

    def apply(
        self, manifest: Mapping[str, Any] | str, *extra: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        return self.run("apply", "-f", "-", *extra, stdin=text, check=check)

    def merge_patch(
        self,
        kind: str,
        name: str,
        patch: Mapping[str, Any],
        *,
        namespace: str | None = None,
        subresource: str | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """``kubectl patch --type=merge``: the one-command change a user makes."""
        ns = ["-n", namespace] if namespace else []
        sub = [f"--subresource={subresource}"] if subresource else []
        return self.run(
            "patch", kind, name, *ns, *sub, "--type=merge", "-p", json.dumps(patch), check=check
        )


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 60,
    interval: float = 0.25,
    what: str = "condition",
) -> Any:
    """Poll until ``predicate`` returns a truthy value; fail with ``what`` on time-out."""
    return poll(predicate, within=timeout, what=what, interval=interval)


class OperatorProcess:
    """``python -m restate_op run`` as a child process with its own log file."""

    def __init__(
        self,
        kubeconfig: Path,
        workdir: Path,
        *,
        name: str = "operator",
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        node_address_template: str | None = NO_NETWORK_NODE_ADDRESS,
    ) -> None:
        """``node_address_template`` defaults to a unix socket that is not there: kwok pods run
        no Restate, and their cluster DNS names must never reach this machine's resolver."""
        self.kubeconfig = kubeconfig
        self.node_address_template = node_address_template
        self.workdir = workdir
        self.name = name
        self.port = free_port()
        self.args = list(args)
        self.env = dict(env or {})
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _address_args(self) -> list[str]:
        if self.node_address_template is None:
            return []
        return ["--node-address-template", self.node_address_template]

    def start(self) -> OperatorProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        env = {**os.environ, **self.env}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "restate_op",
                "run",
                "--kubeconfig",
                str(self.kubeconfig),
                "--http-port",
                str(self.port),
                "--operator-namespace",
                "restate-operator",
                "--lease-duration",
                "4",
                "--lease-renew",
                "1",
                *self._address_args(),
                *self.args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
        )
        log.close()
        return self

    def http(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"operator exited ({self.proc.returncode}):\n{self.logs()}")
            return self.http("/readyz")[0] == 200

        wait_for(ready, timeout, what=f"{self.name} /readyz")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait: the graceful path (reconcile in flight finishes, Lease released)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, nothing cleaned up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def wait_exit(self, timeout: float = 60) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
