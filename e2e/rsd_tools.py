"""Helpers of the RestateDeployment e2e modules: the manifest (upstream's example, registered
against a stand-in admin API), version names and URIs, and waiting for version phases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from e2e.operator_process import REPO, Kubectl, wait_for
from e2e.restate_admin_standin import StandIn
from restate_op.api.deployment import RestateDeployment
from restate_op.deployment_identity import endpoint_uri, version_hash, versioned_name

UPSTREAM = REPO / "tests" / "fixtures" / "restatedeployment-upstream.yaml"
WAIT = 90.0


def manifest(namespace: str, url: str, image: str = "example/greeter:v1") -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(Path(UPSTREAM).read_text())
    raw["metadata"] = {"name": "greeter", "namespace": namespace}
    raw["spec"]["restate"] = {"register": {"url": url}, "drainDelaySeconds": 0}
    raw["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return raw


def version_of(raw: dict[str, Any]) -> str:
    spec = RestateDeployment.model_validate(raw).spec
    return versioned_name(raw["metadata"]["name"], version_hash(spec))


def uri_of(version: str, namespace: str) -> str:
    return endpoint_uri(version, namespace, "cluster.local", None)


def versions(kubectl: Kubectl, namespace: str) -> dict[str, dict[str, Any]]:
    obj = kubectl.get("rsd", "greeter", namespace) or {}
    return {v["name"]: v for v in (obj.get("status") or {}).get("versions") or []}


def wait_phases(kubectl: Kubectl, namespace: str, **wanted: str) -> dict[str, dict[str, Any]]:
    """Until every named version (keyword: version name) has the phase given."""

    def reached() -> dict[str, dict[str, Any]] | None:
        found = versions(kubectl, namespace)
        ok = all(found.get(name, {}).get("phase") == phase for name, phase in wanted.items())
        return found if ok else None

    result: dict[str, dict[str, Any]] = wait_for(reached, WAIT, what=f"versions {wanted}")
    return result


def posts_for(standin: StandIn, uri: str) -> list[Any]:
    return [r.body for r in standin.seen("POST", "/deployments") if r.body["uri"] == uri]
