"""What e2e tests get from the fixtures: a cluster handle and a polling helper.

Kept out of conftest.py so tests can import the types (conftest modules are not meant to be
imported) and so that non-pytest code (benchmarks, the `dev` command) can reuse them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import kr8s
import kr8s.asyncio

from e2e.controlplane import ControlPlane
from e2e.polling import apoll, given

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    *,
    within: float,
    what: str,
    interval: float = 0.2,
) -> T:
    """Await `probe()` until it returns something other than None/False; fail after `within` s.

    Exceptions from the probe count as "not yet" (the API server may be restarting) and
    the last one is reported if time runs out, so a failure says what was seen last.
    """
    value = await apoll(
        probe, within=within, what=what, interval=interval, done=given, retry_on=(Exception,)
    )
    return cast(T, value)  # `given` let neither None nor False through


@dataclass
class KubeCluster:
    """A Kubernetes cluster to test against: local control plane, kind, or a kubeconfig."""

    kubeconfig: Path
    control_plane: ControlPlane | None = None
    """The local ControlPlane when `--cluster=local`, else None (no fault injection then)."""
    kubectl_bin: Path | None = None
    kind: Any = None
    """pytest_kind.KindCluster when `--cluster=kind`."""

    async def api(self) -> Any:
        """A kr8s asyncio API client for this cluster (kr8s caches one per kubeconfig)."""
        return await kr8s.asyncio.api(kubeconfig=str(self.kubeconfig))

    async def wait_ready(self, within: float = 60.0) -> None:
        """Wait until the API server answers again (e.g. after a restart)."""

        async def answers() -> bool:
            api = await self.api()
            await api.version()
            # A real read through the storage layer, not only the discovery handlers.
            async with api.call_api("GET", version="v1", url="namespaces/default") as response:
                return bool(response.status_code == 200)

        await eventually(answers, within=within, what="the API server to answer again")

    async def kubectl(
        self,
        *args: str,
        stdin: str | None = None,
        check: bool = True,
        command_timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the pinned kubectl (or the one on PATH) against this cluster."""
        binary = str(self.kubectl_bin) if self.kubectl_bin else "kubectl"
        argv: Sequence[str] = [binary, f"--kubeconfig={self.kubeconfig}", *args]

        def run() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                argv,
                input=stdin,
                capture_output=True,
                text=True,
                check=False,
                timeout=command_timeout,
                env={**os.environ, "KUBECONFIG": str(self.kubeconfig)},
            )

        result = await asyncio.to_thread(run)
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result


async def delete_quietly(obj: Any) -> None:
    """Delete a kr8s object, ignoring 'already gone' (for test clean-ups)."""
    with contextlib.suppress(kr8s.NotFoundError):
        await obj.delete()


async def fetch(kind: Any, name: str, *, api: Any, namespace: str | None = None) -> Any:
    """`await Kind.get(name, ...)` for a kr8s object class, typed for strict mypy."""
    return await kind.get(name, namespace=namespace, api=api)


def status_of(obj: Any) -> dict[str, Any]:
    """The `status` of a kr8s object's last-fetched state ({} when it has none yet)."""
    status: dict[str, Any] = obj.raw.get("status") or {}
    return status
