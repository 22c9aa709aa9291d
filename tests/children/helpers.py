"""Shared helpers for the builder tests: example clusters and structural checks."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from restate_op.api.models import RestateCluster

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
UID = "8d3f2a4e-5b6c-4d7e-9f80-112233445566"

BASELINE_SPEC: dict[str, Any] = {
    "compute": {"image": "restatedev/restate:0.8.0"},
    "storage": {"storageRequestBytes": 2147483648},
}

# Keys whose empty object means something in Kubernetes and so may legitimately be sent.
MEANINGFUL_EMPTY_KEYS = {"emptyDir", "namespaceSelector", "podSelector"}
# A NetworkPolicy's empty rule lists are sent on purpose: applied, they clear rules others add.
MEANINGFUL_EMPTY_LISTS = {".spec.ingress", ".spec.egress"}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def make_cluster(
    spec: dict[str, Any] | None = None,
    *,
    name: str = "restate-test",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> RestateCluster:
    """The baseline cluster with ``spec`` deep-merged in (camelCase, as a user writes it)."""
    metadata: dict[str, Any] = {"name": name, "uid": UID}
    if labels is not None:
        metadata["labels"] = labels
    if annotations is not None:
        metadata["annotations"] = annotations
    return RestateCluster.model_validate(
        {"metadata": metadata, "spec": _merge(BASELINE_SPEC, spec or {})}
    )


def fixture_manifest(name: str) -> dict[str, Any]:
    data = yaml.safe_load((FIXTURES / name).read_text())
    assert isinstance(data, dict)
    return data


def load_fixture(name: str) -> RestateCluster:
    """A fixture manifest as the operator sees it (with a uid the API server would set)."""
    manifest = fixture_manifest(name)
    manifest["metadata"]["uid"] = UID
    return RestateCluster.model_validate(manifest)


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, value) pair in a nested manifest, the root included."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from walk(item, f"{path}[{i}]")


def empty_fields(manifest: dict[str, Any]) -> list[str]:
    """Paths of None values, empty lists and (non-meaningful) empty objects in a manifest."""
    found = []
    for path, value in walk(manifest):
        key = path.rsplit(".", 1)[-1]
        meaningful = key in MEANINGFUL_EMPTY_KEYS or path.endswith("]")
        if (
            value is None
            or (value == [] and path not in MEANINGFUL_EMPTY_LISTS)
            or (value == {} and not meaningful)
        ):
            found.append(path)
    return found


RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def restricted_violations(pod_spec: dict[str, Any]) -> list[str]:
    """Independent check of the restricted Pod Security Standard for a pod spec."""
    problems = []
    pod_context = pod_spec.get("securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(flag):
            problems.append(flag)
    for volume in pod_spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"volume {volume['name']}: {kinds}")
    containers = [*(pod_spec.get("initContainers") or []), *pod_spec["containers"]]
    for c in containers:
        name = c["name"]
        context = c.get("securityContext") or {}
        if context.get("privileged"):
            problems.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"{name}: drop ALL")
        if not set(capabilities.get("add") or []) <= {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: capabilities.add")
        if context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is not True:
            problems.append(f"{name}: runAsNonRoot")
        if context.get("runAsUser", pod_context.get("runAsUser")) == 0:
            problems.append(f"{name}: runAsUser 0")
        seccomp = context.get("seccompProfile") or pod_context.get("seccompProfile") or {}
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccomp")
        if any(p.get("hostPort") for p in c.get("ports") or []):
            problems.append(f"{name}: hostPort")
    return problems


def env_map(container: dict[str, Any]) -> dict[str, Any]:
    """name -> value (or the valueFrom object) of a container's environment."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env") or []}
