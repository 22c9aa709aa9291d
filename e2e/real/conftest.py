"""Fixtures of the `real` tier: the real node and the operator installed from its chart.

Both are package-scoped: they start on the session's local control plane (the same one the
kwok tier uses, so one run covers both) when the first real test needs them, and are removed
when the last real test is done, so the kwok tier after it sees neither the node nor a second
operator. A component that cannot start fails the tests that need it, naming the component;
nothing here is ever skipped.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.controlplane import ControlPlaneError
from e2e.harness import KubeCluster
from e2e.helm import Helm
from e2e.images import ImageBuildError, ImageSet, build_all
from e2e.operator_process import REPO, Kubectl
from e2e.real.support import RealEnv, operator_values
from e2e.realnode import RealNode

OPERATOR_NAMESPACE = "restate-op-real"
RELEASE = "restate-operator"
TIMINGS: dict[str, float] = {}
"""Measured figures of this run (seconds), printed in the terminal summary."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test of this package `real`."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.real)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the real tier's measured start-up and readiness times."""
    if TIMINGS:
        terminalreporter.write_sep("-", "real tier timings (s)")
        for key, value in TIMINGS.items():
            terminalreporter.write_line(f"{key:48s} {value:8.1f}")


@pytest.fixture(scope="package")
def real_images() -> ImageSet:
    """The locally built images (a quick no-op when cached)."""
    t = time.monotonic()
    timings: dict[str, float] = {}
    try:
        images = build_all(timings)
    except ImageBuildError as err:
        pytest.fail(f"real tier: image build failed: {err}", pytrace=False)
    TIMINGS["images (build or cache check)"] = time.monotonic() - t
    return images


@pytest.fixture(scope="package")
def real_node(kube: KubeCluster, real_images: ImageSet) -> Iterator[RealNode]:
    """One real node joined to the session's local control plane."""
    plane = kube.control_plane
    if plane is None:
        pytest.fail("the real tier needs the local control plane (--cluster=local)", pytrace=False)
    node = RealNode(plane, images=real_images)
    try:
        node.start()
    except ControlPlaneError as err:
        pytest.fail(f"real node failed to start: {err}", pytrace=False)
    for key, value in node.timings.items():
        TIMINGS[f"node start: {key}"] = value
    try:
        yield node
    finally:
        t = time.monotonic()
        node.stop()
        TIMINGS["node stop"] = time.monotonic() - t


@pytest.fixture(scope="package")
def real_env(
    kube: KubeCluster,
    real_node: RealNode,
    real_images: ImageSet,
    restate_crd: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RealEnv]:
    """The operator, `helm install`ed from charts/ as a pod on the real node."""
    assert kube.control_plane is not None
    kubectl = Kubectl(kube.control_plane.binaries.kubectl, kube.kubeconfig)
    work = tmp_path_factory.mktemp("real")
    helm = Helm.locate(kube.kubeconfig, work / "helm")
    kubectl.run("apply", "--server-side", "-f", str(REPO / "crd" / "restatedeployments.yaml"))
    kubectl.wait_established("restatedeployments.restate.dev")
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": OPERATOR_NAMESPACE,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            },
        }
    )
    t = time.monotonic()
    helm.install(
        RELEASE,
        REPO / "charts" / "restate-operator-helm",
        OPERATOR_NAMESPACE,
        operator_values(real_images),
        wait_seconds=120,
    )
    TIMINGS["operator: helm install --wait"] = time.monotonic() - t
    env = RealEnv(kubectl, real_node, real_images, OPERATOR_NAMESPACE, work)
    try:
        yield env
    finally:
        logs = kubectl.run(
            "logs", "-n", OPERATOR_NAMESPACE, "deploy/restate-operator", "--tail=-1", check=False
        )
        (work / "operator.log").write_text(logs.stdout + logs.stderr)
        print(f"[real] operator log: {work / 'operator.log'}")
        clusters = kubectl.json("get", "restatecluster")["items"]
        for c in clusters:
            kubectl.run(
                "delete", "restatecluster", c["metadata"]["name"], "--wait=false", check=False
            )
        # Let the operator delete what it owns before it goes.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not kubectl.json("get", "restatecluster")["items"]:
                break
            time.sleep(1)
        with contextlib.suppress(Exception):
            helm.uninstall(RELEASE, OPERATOR_NAMESPACE, ignore_not_found=True)
        kubectl.run("delete", "namespace", OPERATOR_NAMESPACE, "--wait=false", check=False)


def note(key: str, seconds: float) -> None:
    """Record a measured figure for the terminal summary."""
    TIMINGS[key] = seconds


def as_json(obj: Any) -> str:
    """Compact JSON for messages."""
    return json.dumps(obj, default=str)[:2000]
