"""Writes ``restate_op/api/k8s_definitions.json`` from the pinned Kubernetes' OpenAPI v3.

The source is ``api/openapi-spec/v3`` of the ``k8s.io/kubernetes`` module at
``KUBERNETES_VERSION`` (``e2e/versions.env``), taken from the Go module cache
(``go mod download``, as the control-plane build does). Only the definitions the CRDs
reference are kept, and of each only what a CRD schema can use, so the vendored file stays
small, reviewable and reproducible: ``generate --check`` rebuilds it and compares.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from restate_op.api.k8s_openapi import CORE

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ROOT / "e2e" / "versions.env"
#: The Kubernetes types the models embed (``restate_op.api.kube_types``).
ROOTS = (
    f"{CORE}Affinity",
    f"{CORE}Container",
    f"{CORE}EnvVarSource",
    f"{CORE}Lifecycle",
    f"{CORE}PodSpec",
    f"{CORE}TopologySpreadConstraint",
    f"{CORE}Volume",
    f"{CORE}VolumeMount",
    "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec",
)
#: The OpenAPI v3 documents holding them (one per API group version).
DOCUMENTS = ("api__v1_openapi.json", "apis__autoscaling__v2_openapi.json")
#: What a CRD schema cannot use, or what would change stored objects (defaults).
DROPPED = {
    "default",
    "x-kubernetes-patch-strategy",
    "x-kubernetes-patch-merge-key",
    "x-kubernetes-unions",
    "x-kubernetes-group-version-kind",
}


def kubernetes_version() -> str:
    match = re.search(r"^KUBERNETES_VERSION=(\S+)$", VERSIONS.read_text(), re.MULTILINE)
    if match is None:
        raise ValueError(f"KUBERNETES_VERSION missing from {VERSIONS}")
    return match.group(1)


def module_dir(version: str) -> Path:
    """``k8s.io/kubernetes@version`` in the Go module cache (downloaded once if missing)."""
    proc = subprocess.run(
        ["go", "mod", "download", "-json", f"k8s.io/kubernetes@{version}"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"go mod download k8s.io/kubernetes@{version}: {proc.stderr}")
    return Path(json.loads(proc.stdout)["Dir"])


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value.rsplit("/", 1)[-1]
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


def _trimmed(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: ({p: _trimmed(s) for p, s in v.items()} if k == "properties" else _trimmed(v))
            for k, v in node.items()
            if k not in DROPPED
        }
    if isinstance(node, list):
        return [_trimmed(v) for v in node]
    return node


def closure(schemas: dict[str, Any], roots: Iterable[str]) -> dict[str, Any]:
    """``roots`` and every definition they reference, transitively, trimmed."""
    needed: dict[str, Any] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed[name] = _trimmed(schemas[name])
        todo.extend(_references(needed[name]))
    return dict(sorted(needed.items()))


@functools.cache
def definitions_json() -> str:
    """The text of ``k8s_definitions.json`` for the pinned version."""
    version = kubernetes_version()
    spec_dir = module_dir(version) / "api" / "openapi-spec" / "v3"
    schemas: dict[str, Any] = {}
    for document in DOCUMENTS:
        schemas.update(json.loads((spec_dir / document).read_text())["components"]["schemas"])
    vendored = {
        "generatedBy": "python -m restate_op generate (restate_op/api/k8s_vendor.py)",
        "source": f"k8s.io/kubernetes@{version} api/openapi-spec/v3/{{{','.join(DOCUMENTS)}}}",
        "kubernetesVersion": version,
        "definitions": closure(schemas, ROOTS),
    }
    return json.dumps(vendored, indent=1, sort_keys=False) + "\n"
