"""pytest fixtures for operator e2e tests: kubectl, the CRD, a running operator, examples."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml

from e2e.controlplane import Binaries
from e2e.operator_process import REPO, Kubectl, OperatorProcess, wait_for

FIXTURES = REPO / "tests" / "fixtures"
OPERATOR_NAMESPACE = "restate-operator"


class HasKubeconfig(Protocol):
    kubeconfig: Path


def example(name: str) -> dict[str, Any]:
    """One of the example manifests in tests/fixtures (upstream-compatible)."""
    loaded: dict[str, Any] = yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())
    return loaded


def cluster_manifest(name: str, base: str = "baseline", **spec: Any) -> dict[str, Any]:
    """The ``base`` example renamed to ``name``, with top-level spec sections replaced."""
    manifest = copy.deepcopy(example(base))
    manifest["metadata"] = {"name": name}
    for key, value in spec.items():
        manifest["spec"][key] = value
    return manifest


def phase_of(kubectl: Kubectl, name: str) -> str | None:
    obj = kubectl.get("restatecluster", name)
    phase = (obj or {}).get("status", {}).get("phase")
    return str(phase) if phase is not None else None


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == ctype:
            return dict(c)
    raise AssertionError(f"no {ctype} condition in {obj.get('status')}")


def wait_phase(
    kubectl: Kubectl, name: str, phase: str, timeout: float = 60, reason: str | None = None
) -> dict[str, Any]:
    """Wait for ``status.phase`` (and the observed generation to be current)."""

    def reached() -> dict[str, Any] | None:
        obj = kubectl.get("restatecluster", name)
        if obj is None:
            return None
        status = obj.get("status", {})
        if status.get("phase") != phase:
            return None
        if status.get("observedGeneration") != obj["metadata"]["generation"]:
            return None
        if (
            reason is not None
            and condition(obj, "Degraded" if phase == "Degraded" else "Progressing").get("reason")
            != reason
        ):
            return None
        return obj

    result: dict[str, Any] = wait_for(reached, timeout, what=f"RestateCluster {name} phase {phase}")
    return result


@pytest.fixture(scope="session")
def kubectl(kube: HasKubeconfig) -> Kubectl:
    return Kubectl(Binaries.locate().kubectl, kube.kubeconfig)


@pytest.fixture(scope="session")
def restate_crd(kubectl: Kubectl) -> None:
    kubectl.run("apply", "--server-side", "-f", str(REPO / "crd" / "restateclusters.yaml"))
    kubectl.wait_established("restateclusters.restate.dev")
    if kubectl.get("namespace", OPERATOR_NAMESPACE) is None:
        kubectl.run("create", "namespace", OPERATOR_NAMESPACE)


@pytest.fixture(scope="module")
def operator(
    kube: HasKubeconfig,
    restate_crd: None,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """One operator per test module, started with the module's ``OPERATOR_ARGS``.

    Module scope lets a module start the operator with other flags (say the Pod Identity
    cluster) without two operators fighting over the same clusters.
    """
    args = list(getattr(request.module, "OPERATOR_ARGS", ()))
    proc = OperatorProcess(kube.kubeconfig, tmp_path_factory.mktemp("operator"), args=args).start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        code = proc.stop()
        print(f"operator exited with {code}; log: {proc.log_path}")
