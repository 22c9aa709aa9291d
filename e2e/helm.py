"""The real helm binary (built by ``e2e/build-binaries.sh``) against a test cluster.

A thin wrapper: every call is one ``helm`` process with the test cluster's kubeconfig and a
private ``HELM_*_HOME``, so the user's repositories, registry logins and caches never leak in.
Values go as a JSON file (JSON is YAML), so nested values need no ``--set`` escaping.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from e2e.controlplane import Binaries


class HelmError(AssertionError):
    """A helm command failed; the message carries the command line and helm's output."""


class Helm:
    """``helm`` for one cluster (kubeconfig) with its own home directory."""

    def __init__(self, binary: Path, kubeconfig: Path, home: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.home = home
        self._values_files = 0

    @classmethod
    def locate(cls, kubeconfig: Path, home: Path) -> Helm:
        """The pinned helm next to the control-plane binaries (built on first use)."""
        binary = Binaries.locate().helm
        if binary is None:
            raise HelmError("no helm binary: `bash e2e/build-binaries.sh helm` did not build it")
        return cls(binary, kubeconfig, home)

    def _env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
            "KUBECONFIG": str(self.kubeconfig),
        }

    def run(
        self, *args: str, check: bool = True, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        """Run ``helm ARGS``; raise :class:`HelmError` on failure when ``check``."""
        self.home.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [str(self.binary), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=self._env(),
        )
        if check and proc.returncode != 0:
            raise HelmError(
                f"helm {shlex.join(args)} exited {proc.returncode}:\n{proc.stderr}{proc.stdout}"
            )
        return proc

    def _values_args(self, values: Mapping[str, Any] | None) -> list[str]:
        if not values:
            return []
        self.home.mkdir(parents=True, exist_ok=True)
        self._values_files += 1
        path = self.home / f"values-{self._values_files}.json"
        path.write_text(json.dumps(values, indent=2))
        return ["--values", str(path)]

    def install(
        self,
        release: str,
        chart: Path,
        namespace: str,
        values: Mapping[str, Any] | None = None,
        *extra: str,
        wait_seconds: int = 90,
    ) -> subprocess.CompletedProcess[str]:
        """``helm install`` into ``namespace`` (created), waiting for the workload."""
        return self.run(
            "install",
            release,
            str(chart),
            "--namespace",
            namespace,
            "--create-namespace",
            *self._values_args(values),
            "--wait",
            "--timeout",
            f"{wait_seconds}s",
            *extra,
            timeout=wait_seconds + 60,
        )

    def upgrade(
        self,
        release: str,
        chart: Path,
        namespace: str,
        values: Mapping[str, Any] | None = None,
        *extra: str,
        wait_seconds: int = 90,
    ) -> subprocess.CompletedProcess[str]:
        """``helm upgrade`` (values replace the previous ones unless ``extra`` says else)."""
        return self.run(
            "upgrade",
            release,
            str(chart),
            "--namespace",
            namespace,
            *self._values_args(values),
            "--wait",
            "--timeout",
            f"{wait_seconds}s",
            *extra,
            timeout=wait_seconds + 60,
        )

    def uninstall(
        self, release: str, namespace: str, *, ignore_not_found: bool = False
    ) -> subprocess.CompletedProcess[str]:
        extra = ["--ignore-not-found"] if ignore_not_found else []
        return self.run("uninstall", release, "--namespace", namespace, "--wait", *extra)

    def status(self, release: str, namespace: str) -> dict[str, Any] | None:
        """``helm status -o json``, or ``None`` when there is no such release."""
        proc = self.run("status", release, "--namespace", namespace, "-o", "json", check=False)
        if proc.returncode != 0:
            if "not found" in proc.stderr:
                return None
            raise HelmError(f"helm status {release}: {proc.stderr}")
        result: dict[str, Any] = json.loads(proc.stdout)
        return result

    def manifest(self, release: str, namespace: str) -> list[dict[str, Any]]:
        """The objects of the release's current revision (``helm get manifest``)."""
        proc = self.run("get", "manifest", release, "--namespace", namespace)
        return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]

    def template(
        self,
        release: str,
        chart: Path,
        namespace: str,
        values: Mapping[str, Any] | None = None,
        *extra: str,
    ) -> list[dict[str, Any]]:
        """``helm template`` (offline rendering) as a list of objects."""
        proc = self.run(
            "template",
            release,
            str(chart),
            "--namespace",
            namespace,
            *self._values_args(values),
            *extra,
        )
        return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def kubeconfig_with_token(admin_kubeconfig: Path, token: str, user: str) -> dict[str, Any]:
    """A kubeconfig for the admin kubeconfig's current cluster, authenticating with ``token``.

    How an in-cluster pod talks to the API server (a bearer token of its ServiceAccount),
    for an operator run out of cluster under exactly the chart's identity.
    """
    admin: dict[str, Any] = yaml.safe_load(admin_kubeconfig.read_text())
    contexts = {c["name"]: c["context"] for c in admin["contexts"]}
    current = contexts[admin.get("current-context") or next(iter(contexts))]
    cluster = copy.deepcopy(next(c for c in admin["clusters"] if c["name"] == current["cluster"]))
    ca = cluster["cluster"].get("certificate-authority")
    if ca:  # a file path, relative to the kubeconfig it came from
        cluster["cluster"]["certificate-authority"] = str(admin_kubeconfig.parent / ca)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user}}],
        "current-context": user,
    }


def write_kubeconfig(path: Path, config: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dict(config)))
    path.chmod(0o600)
    return path
