"""RestateDeployment in Knative mode on the fast tier (upstream-2026 §1.5): stand-in Knative
Serving CRDs (``e2e/crds/knative-serving-stand-in.yaml``) with the test playing Knative's
controller (``e2e.knative_standin``), and the stand-in admin API on 127.0.0.1.

What it proves: a version is a Configuration (owned by the RestateDeployment) and a
cluster-local Route (owned by the Configuration) named ``<rsd>-<tag>``; it is registered under
the Route's URL once Knative reports the Revision and the Route Ready, exactly once (an
in-place update under the same tag is a new Revision, not a new registration); a new tag
drains the old version while an invocation is pinned to it and retires (deregisters) it once
unpinned; deletion deregisters every version; ``deploymentMode`` cannot change, also not
when first set.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from e2e.knative_standin import playing, route_url
from e2e.operator_fixtures import HasKubeconfig
from e2e.operator_process import REPO, Kubectl, OperatorProcess, wait_for
from e2e.restate_admin_standin import StandIn, StandInServer
from e2e.rsd_tools import UPSTREAM, WAIT, posts_for, versions, wait_phases

KNATIVE_CRDS = REPO / "e2e" / "crds" / "knative-serving-stand-in.yaml"


@pytest.fixture(scope="module")
def standin() -> Iterator[StandIn]:
    with StandInServer() as server:
        yield server.state


@pytest.fixture(scope="module")
def knative_crds(kubectl: Kubectl) -> Iterator[None]:
    """Installed before the operator starts (it watches Knative only where it is served);
    removed afterwards when this module installed them."""
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(KNATIVE_CRDS.read_text())]
    created = [name for name in names if kubectl.get("crd", name) is None]
    kubectl.run("apply", "-f", str(KNATIVE_CRDS))
    for name in names:
        kubectl.wait_established(name)
    try:
        yield
    finally:
        if created:
            kubectl.run("delete", "crd", *created, "--wait=false", check=False)


@pytest.fixture(scope="module")
def knative_operator(
    kube: HasKubeconfig,
    kubectl: Kubectl,
    restate_crd: None,
    knative_crds: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    kubectl.run("apply", "--server-side", "-f", str(REPO / "crd" / "restatedeployments.yaml"))
    kubectl.wait_established("restatedeployments.restate.dev")
    proc = OperatorProcess(
        kube.kubeconfig,
        tmp_path_factory.mktemp("operator"),
        args=["--restate-deployments", "true", "--lease-name", "e2e-rsd-knative"],
    ).start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        code = proc.stop()
        print(f"operator exited with {code}; log: {proc.log_path}")


def knative_manifest(
    namespace: str, url: str, tag: str, image: str = "example/greeter:v1"
) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(UPSTREAM.read_text())
    raw["metadata"] = {"name": "greeter", "namespace": namespace}
    raw["spec"].pop("replicas")
    raw["spec"]["deploymentMode"] = "knative"
    raw["spec"]["knative"] = {"tag": tag}
    raw["spec"]["restate"] = {"register": {"url": url}, "drainDelaySeconds": 0}
    container = raw["spec"]["template"]["spec"]["containers"][0]
    container["image"] = image
    container["ports"] = [{"containerPort": 9080, "name": "h2c"}]
    return raw


def _ours(standin: StandIn, namespace: str) -> list[str]:
    """The URIs registered at the stand-in that point into ``namespace``."""
    with standin.lock:
        return [uri for uri in standin.deployments.values() if f".{namespace}.svc" in uri]


@pytest.mark.usefixtures("knative_operator")
def test_knative_versions_register_the_route_url_drain_retire_and_delete(
    kubectl: Kubectl, namespace: str, standin: StandIn
) -> None:
    v1, v2 = "greeter-v1", "greeter-v2"
    v1_url, v2_url = route_url(v1, namespace), route_url(v2, namespace)
    with playing(kubectl, namespace):
        kubectl.apply(knative_manifest(namespace, standin.url, "v1"))
        wait_phases(kubectl, namespace, **{v1: "Latest"})
        config = kubectl.get("configurations.serving.knative.dev", v1, namespace)
        route = kubectl.get("routes.serving.knative.dev", v1, namespace)
        assert config is not None and route is not None
        rsd = kubectl.get("rsd", "greeter", namespace)
        assert rsd is not None
        assert config["metadata"]["ownerReferences"][0]["uid"] == rsd["metadata"]["uid"]
        assert route["metadata"]["ownerReferences"][0]["uid"] == config["metadata"]["uid"]
        assert route["spec"]["traffic"] == [
            {"configurationName": v1, "latestRevision": True, "percent": 100}
        ]
        assert posts_for(standin, v1_url) == [{"uri": v1_url, "use_http_11": False, "force": False}]
        wait_for(
            lambda: ((kubectl.get("rsd", "greeter", namespace) or {}).get("status") or {}).get(
                "knative"
            ),
            WAIT,
            what="status.knative",
        )
        status = (kubectl.get("rsd", "greeter", namespace) or {})["status"]
        assert status["knative"]["url"] == v1_url
        assert status["knative"]["latestRevision"] == f"{v1}-00001"
        assert kubectl.json("get", "replicasets", "-n", namespace)["items"] == []

        # The same tag, a new image: a new Revision behind the same Route, no new registration.
        kubectl.apply(knative_manifest(namespace, standin.url, "v1", "example/greeter:v1.1"))
        wait_for(
            lambda: kubectl.get("revisions.serving.knative.dev", f"{v1}-00002", namespace),
            WAIT,
            what="the second Revision",
        )
        wait_phases(kubectl, namespace, **{v1: "Latest"})
        assert len(posts_for(standin, v1_url)) == 1

        # A new tag while an invocation is pinned to v1: v1 drains, it is not deregistered.
        standin.pinned[v1_url] = 1
        kubectl.apply(knative_manifest(namespace, standin.url, "v2", "example/greeter:v2"))
        wait_phases(kubectl, namespace, **{v2: "Latest", v1: "Draining"})
        wait_for(
            lambda: versions(kubectl, namespace)[v1].get("pinnedInvocations") == 1,
            WAIT,
            what="v1's pinned invocation in the status",
        )
        v1_id = standin.id_of(v1_url)
        assert v1_id is not None and not standin.seen("DELETE", f"/deployments/{v1_id}")
        assert posts_for(standin, v2_url) == [{"uri": v2_url, "use_http_11": False, "force": False}]

        # Unpinned: v1 is retired -- deregistered; its Configuration kept as history.
        standin.pinned[v1_url] = 0
        wait_phases(kubectl, namespace, **{v1: "Retired"})
        wait_for(lambda: standin.id_of(v1_url) is None, WAIT, what="v1 deregistered")
        [delete] = standin.seen("DELETE", f"/deployments/{v1_id}")
        assert delete.query == {"force": ["true"]}
        assert kubectl.get("configurations.serving.knative.dev", v1, namespace) is not None

        # Deleting: every version is deregistered, the finalizer released, no ghost left.
        kubectl.run("delete", "rsd", "greeter", "-n", namespace, "--wait=false")
        wait_for(lambda: kubectl.get("rsd", "greeter", namespace) is None, WAIT, what="rsd gone")
        assert _ours(standin, namespace) == []


@pytest.mark.parametrize(
    ("first", "then"),
    [(None, "knative"), ("replicaset", "knative"), ("knative", "replicaset")],
)
def test_deployment_mode_is_immutable_also_when_first_set(
    kubectl: Kubectl, namespace: str, standin: StandIn, first: str | None, then: str
) -> None:
    """The API server refuses the change (the CRD's rule)."""
    raw = knative_manifest(namespace, standin.url, "v1")
    if first != "knative":
        raw["spec"].pop("knative")
        raw["spec"]["deploymentMode"] = first
        if first is None:
            raw["spec"].pop("deploymentMode")
    kubectl.apply(raw)
    proc = kubectl.merge_patch(
        "rsd", "greeter", {"spec": {"deploymentMode": then}}, namespace=namespace, check=False
    )
    assert proc.returncode != 0
    assert "deploymentMode" in proc.stderr and "immutable" in proc.stderr.lower(), proc.stderr
    obj = kubectl.get("rsd", "greeter", namespace)
    assert obj is not None and obj["spec"].get("deploymentMode") == first
