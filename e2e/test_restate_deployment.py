"""RestateDeployment end to end on the fast tier: the operator (``--restate-deployments
true``) on the local control plane (kwok pods), against a stand-in of Restate's admin API on
127.0.0.1 (``e2e.restate_admin_standin``) whose pinned invocations the test controls.

What it proves: registration of a version once its pods are available (ReplicaSet, Service,
stable Service, status), a new version rolling out while the old one is kept ``Draining`` by
a pinned invocation, the old one retired (scaled to zero, deregistered) once unpinned, a
rollback making the old version latest again (and a roll forward to a version Restate still
knows re-registering it with ``force``), a 4xx refusal shown as ``Rejected`` with Restate's
code and text and retried at once on a spec change, ``kubectl scale rsd``, and a deletion
that waits for a pinned invocation, then deregisters and releases the finalizer.

Nothing here contacts any address but 127.0.0.1: the endpoints registered are cluster DNS
names the stand-in never calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.operator_fixtures import HasKubeconfig
from e2e.operator_process import REPO, Kubectl, OperatorProcess, wait_for
from e2e.restate_admin_standin import StandIn, StandInServer
from e2e.rsd_tools import WAIT, manifest, posts_for, uri_of, version_of, versions, wait_phases
from restate_op.api.deployment import EXACTLY_ONE_TARGET_RULE


@pytest.fixture(scope="module")
def standin() -> Iterator[StandIn]:
    with StandInServer() as server:
        yield server.state


@pytest.fixture(scope="module")
def rsd_operator(
    kube: HasKubeconfig,
    kubectl: Kubectl,
    restate_crd: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    kubectl.run("apply", "--server-side", "-f", str(REPO / "crd" / "restatedeployments.yaml"))
    kubectl.wait_established("restatedeployments.restate.dev")
    proc = OperatorProcess(
        kube.kubeconfig,
        tmp_path_factory.mktemp("operator"),
        args=["--restate-deployments", "true", "--lease-name", "e2e-rsd"],
    ).start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        code = proc.stop()
        print(f"operator exited with {code}; log: {proc.log_path}")


pytestmark = pytest.mark.usefixtures("rsd_operator")

CRD_FILE = REPO / "crd" / "restatedeployments.yaml"


def test_rollout_drain_retire_rollback_and_promote(
    kubectl: Kubectl, namespace: str, standin: StandIn
) -> None:
    url = standin.url
    v1_raw = manifest(namespace, url)
    v1 = version_of(v1_raw)
    v1_uri = uri_of(v1, namespace)
    kubectl.apply(v1_raw)

    found = wait_phases(kubectl, namespace, **{v1: "Latest"})
    assert found[v1]["deploymentId"] == standin.id_of(v1_uri)
    assert kubectl.get("replicaset", v1, namespace) is not None
    assert kubectl.get("service", v1, namespace) is not None
    stable = kubectl.get("service", "greeter", namespace)
    assert stable is not None
    assert stable["spec"]["selector"]["pod-template-hash"] == v1.rsplit("-", 1)[-1]
    [first] = posts_for(standin, v1_uri)
    assert first == {"uri": v1_uri, "use_http_11": False, "force": False}

    # v2 rolls out while an invocation is pinned to v1: v1 drains, it is not retired.
    standin.pinned[v1_uri] = 1
    v2_raw = manifest(namespace, url, image="example/greeter:v2")
    v2 = version_of(v2_raw)
    v2_uri = uri_of(v2, namespace)
    kubectl.apply(v2_raw)
    found = wait_phases(kubectl, namespace, **{v2: "Latest", v1: "Draining"})
    wait_for(
        lambda: versions(kubectl, namespace)[v1].get("pinnedInvocations") == 1,
        WAIT,
        what="v1's pinned invocation in the status",
    )
    v1_id = standin.id_of(v1_uri)
    assert v1_id is not None
    assert not standin.seen("DELETE", f"/deployments/{v1_id}")

    # Unpinned: v1 is retired -- scaled to zero and removed from Restate.
    standin.pinned[v1_uri] = 0
    wait_phases(kubectl, namespace, **{v1: "Retired"})
    rs = kubectl.get("replicaset", v1, namespace)
    assert rs is not None and rs["spec"]["replicas"] == 0
    wait_for(lambda: standin.seen("DELETE", f"/deployments/{v1_id}"), WAIT, what="DELETE v1")
    [delete] = standin.seen("DELETE", f"/deployments/{v1_id}")
    assert delete.query == {"force": ["true"]}
    assert standin.id_of(v1_uri) is None

    # Rollback: v1's template again re-uses v1, scales it up and makes it latest; v2 is
    # kept (pinned) so that Restate still knows it.
    standin.pinned[v2_uri] = 1
    kubectl.apply(v1_raw)
    wait_phases(kubectl, namespace, **{v1: "Latest", v2: "Draining"})
    assert len(posts_for(standin, v1_uri)) == 2
    service = next(s for s, d in standin.latest.items() if d == standin.id_of(v1_uri))
    assert service
    wait_for(
        lambda: (
            (kubectl.get("replicaset", v1, namespace) or {}).get("spec", {}).get("replicas") == 1
        ),
        WAIT,
        what="v1 scaled up again",
    )

    # Forward to v2 again: Restate knows v2 but routes to v1, so v2 is registered with force.
    kubectl.apply(v2_raw)
    wait_phases(kubectl, namespace, **{v2: "Latest"})
    assert posts_for(standin, v2_uri)[-1]["force"] is True
    assert standin.latest[service] == standin.id_of(v2_uri)


def test_a_refusal_is_rejected_with_restates_text_and_scale_retries_at_once(
    kubectl: Kubectl, namespace: str, standin: StandIn
) -> None:
    url = standin.url
    raw = manifest(namespace, url, image="example/greeter:breaking")
    name = version_of(raw)
    standin.reject = (400, "META0006", "breaking change: service type changed")
    try:
        kubectl.apply(raw)
        found = wait_phases(kubectl, namespace, **{name: "Rejected"})
        assert "META0006" in found[name]["message"]
        assert "breaking change: service type changed" in found[name]["message"]
        events = kubectl.json("get", "events", "-n", namespace)["items"]
        assert any(e.get("reason") == "VersionRejected" for e in events), [
            e.get("reason") for e in events
        ]
        # Pods are left running.
        assert (kubectl.get("replicaset", name, namespace) or {})["spec"]["replicas"] == 1
    finally:
        standin.reject = None
    # `kubectl scale rsd` changes the spec: retried at once (not after the 30 s backoff).
    kubectl.run("scale", "rsd", "greeter", "-n", namespace, "--replicas=2")
    wait_phases(kubectl, namespace, **{name: "Latest"})
    wait_for(
        lambda: (
            (kubectl.get("replicaset", name, namespace) or {})
            .get("status", {})
            .get("readyReplicas")
            == 2
        ),
        WAIT,
        what="two ready replicas after kubectl scale",
    )
    path = f"/apis/restate.dev/v1beta1/namespaces/{namespace}/restatedeployments/greeter/scale"
    scale = json.loads(kubectl.run("get", "--raw", path).stdout)
    assert scale["spec"]["replicas"] == 2


def test_deletion_waits_for_a_pinned_invocation_then_completes(
    kubectl: Kubectl, namespace: str, standin: StandIn
) -> None:
    url = standin.url
    raw = manifest(namespace, url, image="example/greeter:delete")
    name = version_of(raw)
    uri = uri_of(name, namespace)
    kubectl.apply(raw)
    wait_phases(kubectl, namespace, **{name: "Latest"})
    ident = standin.id_of(uri)
    assert ident is not None
    standin.pinned[uri] = 1
    kubectl.run("delete", "rsd", "greeter", "-n", namespace, "--wait=false")
    wait_for(
        lambda: versions(kubectl, namespace).get(name, {}).get("pinnedInvocations") == 1,
        WAIT,
        what="the pinned invocation shown while deleting",
    )
    obj = kubectl.get("rsd", "greeter", namespace)
    assert obj is not None and obj["metadata"].get("deletionTimestamp")
    assert not standin.seen("DELETE", f"/deployments/{ident}")

    standin.pinned[uri] = 0
    wait_for(lambda: kubectl.get("rsd", "greeter", namespace) is None, WAIT, what="rsd gone")
    assert standin.seen("DELETE", f"/deployments/{ident}")
    assert standin.id_of(uri) is None


def test_the_standin_is_on_loopback_only(standin: StandIn) -> None:
    url = standin.url
    assert url.startswith("http://127.0.0.1:")
    assert standin.reject is None


def _without_one_target_rule(node: Any) -> Any:
    """The CRD as an older one was: without the "exactly one register target" rule."""
    if isinstance(node, dict):
        rules = node.get("x-kubernetes-validations")
        if isinstance(rules, list):
            kept = [r for r in rules if r.get("rule") != EXACTLY_ONE_TARGET_RULE]
            node = (
                {**node, "x-kubernetes-validations": kept}
                if kept
                else {k: v for k, v in node.items() if k != "x-kubernetes-validations"}
            )
        return {k: _without_one_target_rule(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_without_one_target_rule(v) for v in node]
    return node


def test_a_spec_the_model_cannot_read_gets_a_status_naming_the_field_until_fixed(
    kubectl: Kubectl, namespace: str, standin: StandIn
) -> None:
    """Stored under an older CRD (one without the one-of rule for register), then the CRD
    tightened: the operator says which field to fix instead of ignoring the object."""
    raw = manifest(namespace, standin.url, image="example/greeter:unreadable")
    version = version_of(raw)  # once fixed
    raw["spec"]["restate"]["register"]["service"] = {"name": "restate", "namespace": "restate"}
    crd = kubectl.json("get", "crd", "restatedeployments.restate.dev")
    loose = _without_one_target_rule(
        {k: v for k, v in crd.items() if k in ("apiVersion", "kind", "metadata", "spec")}
    )
    try:
        kubectl.run("replace", "-f", "-", stdin=json.dumps(loose))
        wait_for(
            lambda: kubectl.apply(raw, "--dry-run=server", check=False).returncode == 0,
            30,
            what="the loosened CRD served",
        )
        kubectl.apply(raw)
    finally:
        kubectl.run("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))

    def ready() -> dict[str, Any] | None:
        status = (kubectl.get("rsd", "greeter", namespace) or {}).get("status") or {}
        found = [c for c in status.get("conditions") or [] if c["type"] == "Ready"]
        return found[0] if found and found[0].get("reason") == "InvalidSpec" else None

    condition = wait_for(ready, WAIT, what="Ready InvalidSpec")
    assert condition["status"] == "False"
    assert "spec.restate.register" in condition["message"] and "fix" in condition["message"]
    events = kubectl.json("get", "events", "-n", namespace)["items"]
    assert any(e.get("reason") == "InvalidSpec" for e in events)
    assert kubectl.json("get", "replicasets", "-n", namespace)["items"] == [], "nothing touched"
    assert not [r for r in standin.seen("POST", "/deployments") if namespace in r.body["uri"]]

    fixed = {"spec": {"restate": {"register": {"service": None}}}}
    kubectl.merge_patch("rsd", "greeter", fixed, namespace=namespace)
    wait_phases(kubectl, namespace, **{version: "Latest"})
