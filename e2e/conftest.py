"""pytest integration of the e2e harness: which cluster, per-test namespaces, Restate netns.

Lives in e2e/ (not the repository root) so the unit tests under tests/ never load cluster
fixtures. Options:

    --cluster=local            (default) start e2e.controlplane.ControlPlane for the session
    --cluster=kind             pytest-kind (needs Docker; pass --kind-bin, no downloads here)
    --cluster=/path/kubeconfig an existing cluster (also: env RESTATE_OP_KUBECONFIG)
    --keep-control-plane       keep the local control plane's work dir (logs) after the run

A control plane that cannot start fails the session loudly, naming the component; it is
never skipped.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import kr8s
import pytest
from kr8s.asyncio.objects import Namespace
from pytest_kind import KindCluster

from e2e.controlplane import Binaries, ControlPlane, ControlPlaneError
from e2e.harness import KubeCluster, eventually
from e2e.restate_netns import LoopbackNetns, RestateBinaries

E2E_DIR = Path(__file__).resolve().parent
KUBECONFIG_ENV = "RESTATE_OP_KUBECONFIG"
TEST_LABEL = "e2e.restate.dev/test"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register --cluster and --keep-control-plane (pytest-kind already has --kind-bin)."""
    group = parser.getgroup("restate-op e2e")
    group.addoption(
        "--cluster",
        default=None,
        help=(
            "local (default): start a local control plane; kind: pytest-kind (needs Docker, "
            f"--kind-bin); or a path to a kubeconfig. Env: {KUBECONFIG_ENV}."
        ),
    )
    group.addoption(
        "--keep-control-plane",
        action="store_true",
        default=False,
        help="Keep the local control plane's work dir (logs, etcd data) after the session.",
    )


def pytest_configure(config: pytest.Config) -> None:
    """kr8s warns on every client for servers newer than it knows; the API we use is stable."""
    config.addinivalue_line(
        "filterwarnings", "ignore:Kubernetes version .* is not supported:UserWarning"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under e2e/ with `e2e`, so `-m "not e2e"` deselects them all."""
    for item in items:
        if E2E_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)


def _cluster_choice(config: pytest.Config) -> str:
    option: str | None = config.getoption("--cluster")
    return option or os.environ.get(KUBECONFIG_ENV) or "local"


@pytest.fixture(scope="session")
def kube(request: pytest.FixtureRequest) -> Iterator[KubeCluster]:
    """The cluster for the whole session; see the module docstring for how it is chosen."""
    choice = _cluster_choice(request.config)
    if choice == "local":
        yield from _local_cluster(request)
    elif choice == "kind":
        yield from _kind_cluster(request)
    else:
        path = Path(choice).expanduser()
        if not path.is_file():
            pytest.fail(f"--cluster={choice}: no such kubeconfig file", pytrace=False)
        yield KubeCluster(kubeconfig=path, kubectl_bin=_kubectl_or_none())


def _kubectl_or_none() -> Path | None:
    found = shutil.which("kubectl")
    if found:
        return Path(found)
    try:
        return Binaries.locate().kubectl
    except ControlPlaneError:
        return None


def _local_cluster(request: pytest.FixtureRequest) -> Iterator[KubeCluster]:
    keep = bool(request.config.getoption("--keep-control-plane"))
    cp = ControlPlane(keep_work_dir=keep)
    failure: str | None = None
    try:
        cp.start()
    except ControlPlaneError as err:
        failure = f"local control plane failed to start: {err}\n(all logs: {cp.work_dir})"
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    timings = ", ".join(f"{k}={v:.2f}s" for k, v in cp.timings.items())
    print(f"\n[e2e] local control plane up ({timings}); work dir {cp.work_dir}")
    try:
        yield KubeCluster(
            kubeconfig=cp.kubeconfig, control_plane=cp, kubectl_bin=cp.binaries.kubectl
        )
    finally:
        cp.stop()


def _kind_cluster(request: pytest.FixtureRequest) -> Iterator[KubeCluster]:
    if shutil.which("docker") is None:
        pytest.fail("--cluster=kind needs a Docker engine, and there is none here", pytrace=False)
    kind_bin = request.config.getoption("kind_bin")
    cluster = KindCluster(
        "restate-op-e2e",
        kind_path=Path(kind_bin) if kind_bin else None,
        kubectl_path=_kubectl_or_none(),
    )
    cluster.create()
    try:
        yield KubeCluster(
            kubeconfig=Path(cluster.kubeconfig_path),
            kubectl_bin=Path(cluster.kubectl_path),
            kind=cluster,
        )
    finally:
        if not request.config.getoption("keep_cluster"):
            cluster.delete()


@pytest.fixture
def name_prefix(request: pytest.FixtureRequest) -> str:
    """A short DNS-safe prefix unique to this test run, for cluster-scoped object names."""
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    base = base.removeprefix("test-")[:40].strip("-")
    return f"{base}-{secrets.token_hex(3)}"


@pytest.fixture
async def namespace(kube: KubeCluster, name_prefix: str) -> AsyncIterator[str]:
    """A fresh namespace for one test, with its `default` ServiceAccount ready.

    Deleted afterwards without waiting (deletion completing is tested separately).
    """
    api = await kube.api()
    ns = Namespace({"metadata": {"name": name_prefix, "labels": {TEST_LABEL: "true"}}}, api=api)
    await ns.create()

    async def default_sa() -> bool:
        async with api.call_api(
            "GET", version="v1", namespace=name_prefix, url="serviceaccounts/default"
        ):
            return True

    await eventually(default_sa, within=60, what=f"ServiceAccount {name_prefix}/default")
    try:
        yield name_prefix
    finally:
        # Already gone, or the API server is down after a fault test: nothing to clean.
        with contextlib.suppress(kr8s.NotFoundError, kr8s.ServerError):
            await ns.delete()


@pytest.fixture(scope="session")
def restate_binaries() -> RestateBinaries:
    """restate-server and restatectl, installed from npm on first use (never run here)."""
    try:
        return RestateBinaries.locate()
    except RuntimeError as err:
        pytest.fail(f"restate binaries unavailable: {err}", pytrace=False)


@pytest.fixture
def netns() -> Iterator[LoopbackNetns]:
    """A loopback-only network namespace, deleted with everything in it after the test."""
    with LoopbackNetns() as ns:
        yield ns


pytest_plugins = ["e2e.operator_fixtures"]
