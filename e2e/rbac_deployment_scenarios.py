"""What makes the RestateDeployment controller use each verb of ``rbac.DEPLOYMENT_PERMISSIONS``,
and what a user sees when the verb is refused: the steps of ``e2e/test_helm.py``'s RBAC
ablation for RestateDeployments.

Each case gets a Namespace of its own (named as the case) holding one RestateDeployment
``greeter`` that registers against a stand-in admin API (``e2e.restate_admin_standin``) on
127.0.0.1; the steps take ``(kubectl, name)`` like the RestateCluster ones. The stand-in is
started by the ablation fixture and reached through :data:`STANDIN`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from e2e import rsd_tools
from e2e.operator_process import Kubectl, wait_for
from e2e.restate_admin_standin import StandIn
from e2e.rsd_tools import version_of

RSD = "greeter"
WAIT = 60.0

Step = Callable[[Kubectl, str], None]


@dataclass
class StandInHolder:
    """The stand-in admin API of the running ablation (set by its fixture)."""

    state: StandIn | None = None

    def get(self) -> StandIn:
        assert self.state is not None, "the ablation fixture starts the stand-in"
        return self.state


STANDIN = StandInHolder()


def manifest(namespace: str, image: str = "example/greeter:v1", **spec: Any) -> dict[str, Any]:
    raw = rsd_tools.manifest(namespace, STANDIN.get().url, image)
    raw["spec"].update(spec)
    return raw


def knative_manifest(namespace: str, tag: str, **spec: Any) -> dict[str, Any]:
    """Knative mode (the ablation plays Knative's controller for every Namespace)."""
    raw = manifest(namespace, f"example/greeter:{tag}", **spec)
    raw["spec"].pop("replicas", None)
    raw["spec"]["deploymentMode"] = "knative"
    raw["spec"]["knative"] = {"tag": tag}
    raw["spec"]["template"]["spec"]["containers"][0]["ports"] = [
        {"containerPort": 9080, "name": "h2c"}
    ]
    return raw


def _uri(raw: dict[str, Any]) -> str:
    return rsd_tools.uri_of(version_of(raw), raw["metadata"]["namespace"])


def _phase(kubectl: Kubectl, namespace: str, version: str) -> str | None:
    obj = kubectl.get("rsd", RSD, namespace) or {}
    found = [v for v in (obj.get("status") or {}).get("versions") or [] if v["name"] == version]
    return found[0].get("phase") if found else None


def _wait_phase(kubectl: Kubectl, raw: dict[str, Any], phase: str) -> None:
    namespace, version = raw["metadata"]["namespace"], version_of(raw)
    wait_for(lambda: _phase(kubectl, namespace, version) == phase, WAIT, what=f"{version} {phase}")


def _namespace(kubectl: Kubectl, name: str) -> None:
    kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


V1 = "example/greeter:v1"
V2 = "example/greeter:v2"
#: v1 is retired at once and deleted: revisionHistoryLimit 0.
NO_HISTORY: dict[str, Any] = {"revisionHistoryLimit": 0}
AUTOSCALING: dict[str, Any] = {
    "autoscaling": {"minReplicas": 1, "maxReplicas": 2},
}


def create(**spec: Any) -> Step:
    """A new RestateDeployment (its Namespace made with every right, by the test)."""

    def step(kubectl: Kubectl, name: str) -> None:
        _namespace(kubectl, name)
        kubectl.apply(manifest(name, V1, **spec))

    return step


def latest(**spec: Any) -> Step:
    """v1 registered and the latest (set up with every right)."""

    def step(kubectl: Kubectl, name: str) -> None:
        create(**spec)(kubectl, name)
        _wait_phase(kubectl, manifest(name, V1, **spec), "Latest")

    return step


def roll_out(*, pin_v1: bool, **spec: Any) -> Step:
    """v2 replaces v1; with ``pin_v1`` an invocation keeps v1 draining."""

    def step(kubectl: Kubectl, name: str) -> None:
        STANDIN.get().pinned[_uri(manifest(name, V1, **spec))] = 1 if pin_v1 else 0
        kubectl.apply(manifest(name, V2, **spec))

    return step


def draining_with_autoscaler(kubectl: Kubectl, name: str) -> None:
    """v1 draining (pinned) under its own HPA, v2 the latest."""
    latest(**AUTOSCALING)(kubectl, name)
    roll_out(pin_v1=True, **AUTOSCALING)(kubectl, name)
    v1 = version_of(manifest(name, V1, **AUTOSCALING))
    wait_for(lambda: kubectl.get("hpa", v1, name), WAIT, what=f"the HPA of {v1}")


def unpin_v1(**spec: Any) -> Step:
    def step(_kubectl: Kubectl, name: str) -> None:
        STANDIN.get().pinned[_uri(manifest(name, V1, **spec))] = 0

    return step


def knative_create(**spec: Any) -> Step:
    def step(kubectl: Kubectl, name: str) -> None:
        _namespace(kubectl, name)
        kubectl.apply(knative_manifest(name, "v1", **spec))

    return step


def knative_latest(**spec: Any) -> Step:
    """Knative mode, tag v1 registered and the latest."""

    def step(kubectl: Kubectl, name: str) -> None:
        knative_create(**spec)(kubectl, name)
        wait_for(lambda: _phase(kubectl, name, f"{RSD}-v1") == "Latest", WAIT, what="v1 Latest")

    return step


def knative_new_tag(**spec: Any) -> Step:
    def step(kubectl: Kubectl, name: str) -> None:
        kubectl.apply(knative_manifest(name, "v2", **spec))

    return step


def delete(kubectl: Kubectl, name: str) -> None:
    kubectl.run("delete", "rsd", RSD, "-n", name, "--wait=false")


def cleanup(kubectl: Kubectl, name: str) -> None:
    """The Namespace goes; the operator (every right back) deregisters and releases."""
    kubectl.run("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


# -- what the user sees ----------------------------------------------------------------------


def ready_says_forbidden(kubectl: Kubectl, name: str, _log: str) -> None:
    """The reconcile failed on the refusal: Ready is False and says why."""

    def forbidden() -> dict[str, Any] | None:
        status = (kubectl.get("rsd", RSD, name) or {}).get("status") or {}
        ready = [c for c in status.get("conditions") or [] if c["type"] == "Ready"]
        message = ready[0].get("message", "") if ready else ""
        return ready[0] if ready and "forbidden" in message.lower() else None

    ready = wait_for(forbidden, 20, what="Ready saying forbidden")
    assert ready["status"] == "False", ready


def no_status(kubectl: Kubectl, name: str, _log: str) -> None:
    """Nobody can write the RestateDeployment's status: it never gets one."""
    obj = kubectl.get("rsd", RSD, name)
    assert obj is not None and not obj.get("status"), obj


def finalizer_kept(kubectl: Kubectl, name: str, _log: str) -> None:
    """Deleted and deregistered, but never released: the object stays, finalizer and all."""
    time.sleep(2)
    obj = kubectl.get("rsd", RSD, name)
    assert obj is not None and obj["metadata"].get("deletionTimestamp"), obj
    assert obj["metadata"].get("finalizers"), obj
