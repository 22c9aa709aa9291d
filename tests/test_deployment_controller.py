"""The RestateDeployment controller: registered only with --restate-deployments, what its
watches map to, and what it observes from the caches and the operator's memory."""

from __future__ import annotations

import copy
from typing import Any, cast

from restate_op.deployment_controller import (
    OWNED_SELECTOR,
    POD_SELECTOR,
    RestateDeploymentController,
)
from restate_op.deployment_decide import decide, rejections_key, view_key
from restate_op.deployment_observe import (
    DeploymentObservation,
    KnownDeployment,
    Rejection,
    RestateView,
)
from restate_op.effects import Apply, Forget
from restate_op.kube import resources
from restate_op.kube.client import KubeClient
from restate_op.memory import Memory
from restate_op.rbac import CLOUD_TUNNEL_PERMISSIONS, DEPLOYMENT_PERMISSIONS, PERMISSIONS
from restate_op.runtime import Operator, object_key
from restate_op.settings import Capabilities, OperatorSettings
from tests.test_deployment_decide import (
    ADMIN,
    NOW,
    READY_CLUSTER,
    UID,
    name_of,
    observe,
    rsd_raw,
)
from tests.test_runtime import DictCaches

SETTINGS = OperatorSettings(restate_deployments=True)


def _operator(settings: OperatorSettings) -> Operator:
    return Operator(cast(KubeClient, object()), settings, identity="test")


def test_registered_only_with_the_flag() -> None:
    off = _operator(OperatorSettings())
    assert list(off.controllers) == ["restatecluster"]
    assert "restatedeployments" not in [a.plural for a in off._required()]
    watched_off = {i.kind for i in off._watch()}
    assert resources.REPLICA_SET not in watched_off
    assert resources.RESTATE_DEPLOYMENT not in watched_off

    on = _operator(SETTINGS)
    assert list(on.controllers) == [
        "restatecluster",
        "restatedeployment",
        "restatecloudenvironment",
    ]
    assert "restatedeployments" in [a.plural for a in on._required()]
    # The RCE CRD is optional: not waited for, its watches only once it is served.
    assert "restatecloudenvironments" not in [a.plural for a in on._required()]
    without_rce = {i.kind for i in _operator(SETTINGS)._watch()}
    assert resources.RESTATE_CLOUD_ENVIRONMENT not in without_rce
    assert resources.SECRET not in without_rce
    on.capabilities = Capabilities(restate_cloud_environment=True)
    informers = {(i.kind, i.label_selector, i.namespace) for i in on._watch()}
    assert (resources.RESTATE_DEPLOYMENT, None, None) in informers
    assert (resources.REPLICA_SET, OWNED_SELECTOR, None) in informers
    assert (resources.HORIZONTAL_POD_AUTOSCALER, OWNED_SELECTOR, None) in informers
    assert (resources.POD, POD_SELECTOR, None) in informers
    assert (resources.RESTATE_CLOUD_ENVIRONMENT, None, None) in informers
    # Secrets only from the operator's namespace, one informer for both controllers.
    assert (resources.SECRET, None, "restate-operator") in informers
    assert not any(k == resources.SECRET and n is None for k, _s, n in informers)
    # One informer per (kind, selector, namespace), shared with the RestateCluster controller.
    assert len(informers) == len(on.caches.informers)


def test_a_namespaced_kind_is_keyed_by_namespace_and_name() -> None:
    raw = rsd_raw()
    assert object_key(resources.RESTATE_DEPLOYMENT, raw) == "default/my-service"
    assert object_key(resources.RESTATE_CLUSTER, READY_CLUSTER) == "restate"


def _keys(ctl: RestateDeploymentController, kind: Any, obj: Any, caches: DictCaches) -> list[str]:
    [watch] = [w for w in ctl.watches() if w.kind == kind]
    return list(watch.keys(obj, caches))


def _world() -> tuple[DictCaches, Memory, RestateDeploymentController, dict[str, Any]]:
    caches = DictCaches()
    memory = Memory()
    raw = rsd_raw()
    caches.add(resources.RESTATE_DEPLOYMENT, raw)
    caches.add(resources.RESTATE_CLUSTER, READY_CLUSTER)
    return caches, memory, RestateDeploymentController(caches, memory, SETTINGS), raw


def _replica_set(raw: dict[str, Any]) -> dict[str, Any]:
    """The ReplicaSet the first reconcile applies, as the API server then holds it."""
    decision = decide(observe(raw), NOW)
    [rs] = [e.manifest for e in decision.effects if isinstance(e, Apply) and e.kind == "ReplicaSet"]
    live = copy.deepcopy(dict(rs))
    live["metadata"]["uid"] = "rs-uid"
    assert any(ref["uid"] == UID for ref in live["metadata"]["ownerReferences"])
    return live


def test_watches_map_owned_objects_pods_and_clusters_to_the_rsd() -> None:
    caches, _, ctl, raw = _world()
    assert _keys(ctl, resources.RESTATE_DEPLOYMENT, raw, caches) == ["default/my-service"]
    rs = _replica_set(raw)
    caches.add(resources.REPLICA_SET, rs, OWNED_SELECTOR)
    assert _keys(ctl, resources.REPLICA_SET, rs, caches) == ["default/my-service"]
    name = rs["metadata"]["name"]
    pod: dict[str, Any] = {
        "metadata": {
            "name": f"{name}-abcde",
            "namespace": "default",
            "labels": {"pod-template-hash": name.rsplit("-", 1)[-1]},
            "ownerReferences": [{"kind": "ReplicaSet", "name": name, "controller": True}],
        }
    }
    assert _keys(ctl, resources.POD, pod, caches) == ["default/my-service"]
    stranger = copy.deepcopy(pod)
    stranger["metadata"]["ownerReferences"][0]["name"] = "someone-elses-rs"
    assert _keys(ctl, resources.POD, stranger, caches) == []
    assert _keys(ctl, resources.RESTATE_CLUSTER, READY_CLUSTER, caches) == ["default/my-service"]
    other = {**READY_CLUSTER, "metadata": {"name": "other"}}
    assert _keys(ctl, resources.RESTATE_CLUSTER, other, caches) == []
    unlabelled = {"metadata": {"name": "x", "namespace": "default", "labels": {}}}
    assert _keys(ctl, resources.SERVICE, unlabelled, caches) == []


def test_observe_reads_caches_and_restates_view_from_memory() -> None:
    caches, memory, ctl, raw = _world()
    assert ctl.observe("default/absent") is None
    rs = _replica_set(raw)
    foreign = copy.deepcopy(rs)
    foreign["metadata"]["name"] = "my-service-foreign"
    foreign["metadata"]["ownerReferences"] = [{"uid": "someone-else", "controller": True}]
    caches.add(resources.REPLICA_SET, rs, OWNED_SELECTOR)
    caches.add(resources.REPLICA_SET, foreign, OWNED_SELECTOR)
    name = rs["metadata"]["name"]
    mine: dict[str, Any] = {
        "metadata": {
            "name": f"{name}-a",
            "namespace": "default",
            "labels": {"pod-template-hash": "h"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": name, "controller": True}],
        }
    }
    theirs = copy.deepcopy(mine)
    theirs["metadata"]["name"] = "other-pod"
    theirs["metadata"]["ownerReferences"][0]["name"] = "my-service-foreign"
    caches.add(resources.POD, mine, POD_SELECTOR)
    caches.add(resources.POD, theirs, POD_SELECTOR)
    view = RestateView(ADMIN, NOW, (KnownDeployment("dp_1", "http://x", ("Greeter",)),))
    memory.put(view_key(ADMIN), view)
    held = Rejection(generation=1, attempts=2, retry_at=NOW + 60, status=400, message="no")
    memory.put(rejections_key("default", "my-service"), {name_of(raw): held})

    obs = ctl.observe("default/my-service")
    assert isinstance(obs, DeploymentObservation)
    assert [r["metadata"]["name"] for r in obs.replica_sets] == [name]
    assert [p["metadata"]["name"] for p in obs.pods] == [f"{name}-a"]
    assert obs.cluster == READY_CLUSTER
    assert obs.restate is view
    assert obs.rejections == {name_of(raw): held}
    assert obs.settings is SETTINGS


def test_a_deleting_rsd_is_still_observed_and_its_cluster_may_be_gone() -> None:
    caches = DictCaches()
    raw = rsd_raw()
    raw["metadata"]["deletionTimestamp"] = "2027-01-15T08:00:00Z"
    caches.add(resources.RESTATE_DEPLOYMENT, raw)
    obs = RestateDeploymentController(caches, Memory(), SETTINGS).observe("default/my-service")
    assert isinstance(obs, DeploymentObservation)
    assert obs.deleting and obs.cluster is None and obs.restate is None


def test_every_kind_watched_with_the_flag_has_list_and_watch_in_the_chart_rules() -> None:
    granted: dict[tuple[str, str], set[str]] = {}
    for p in (*PERMISSIONS, *DEPLOYMENT_PERMISSIONS, *CLOUD_TUNNEL_PERMISSIONS):
        granted.setdefault((p.group, p.resource), set()).update(p.verbs)
    everything = _operator(SETTINGS)
    everything.capabilities = Capabilities(restate_cloud_environment=True)
    for informer in everything._watch():
        kind = informer.kind
        if kind in (resources.POD_IDENTITY_ASSOCIATION,):
            continue
        assert {"list", "watch"} <= granted[(kind.group, kind.plural)], kind
    # The default ClusterRole is unchanged: nothing of the RestateDeployment rules in it.
    assert not any(p.resource.startswith("restatedeployments") for p in PERMISSIONS)


def test_a_deleted_rsd_forgets_its_rejections_and_a_namesake_starts_afresh() -> None:
    caches, memory, ctl, raw = _world()
    held = Rejection(generation=1, attempts=3, retry_at=NOW + 120, status=400, message="no")
    memory.put(rejections_key("default", "my-service"), {name_of(raw): held})
    other = rejections_key("default", "my-service-2")
    memory.put(other, {"my-service-2-x": held})
    caches.objects[(resources.RESTATE_DEPLOYMENT, None)].remove(raw)
    assert ctl.observe("default/my-service") is None
    effects = ctl.forget("default/my-service")
    assert effects == (Forget(rejections_key("default", "my-service")),)
    for effect in effects:
        assert isinstance(effect, Forget)
        memory.drop(effect.key)  # what the executor does with it (tests/test_executor.py)
    assert memory.get(other) is not None, "another RestateDeployment's are kept"

    caches.add(resources.RESTATE_DEPLOYMENT, rsd_raw())
    obs = ctl.observe("default/my-service")
    assert isinstance(obs, DeploymentObservation) and obs.rejections == {}


def test_knative_kinds_are_watched_only_where_knative_is_served() -> None:
    caches, memory, _, raw = _world()
    served = RestateDeploymentController(
        caches, memory, SETTINGS, lambda: Capabilities(knative_serving=True)
    )
    kinds = {resources.KNATIVE_CONFIGURATION, resources.KNATIVE_ROUTE, resources.KNATIVE_REVISION}
    for watch in served.watches():
        if watch.kind in kinds:
            assert watch.enabled(Capabilities(knative_serving=True), SETTINGS)
            assert not watch.enabled(Capabilities(), SETTINGS)
    config = {
        "metadata": {
            "name": "my-service-v1",
            "namespace": "default",
            "uid": "config-uid",
            "labels": {OWNED_SELECTOR: "my-service"},
            "ownerReferences": [{"uid": UID, "controller": True}],
        }
    }
    caches.add(resources.KNATIVE_CONFIGURATION, config, OWNED_SELECTOR)
    revision = {
        "metadata": {
            "name": "my-service-v1-00001",
            "namespace": "default",
            "labels": {"serving.knative.dev/configuration": "my-service-v1"},
        }
    }
    caches.add(resources.KNATIVE_REVISION, revision, "serving.knative.dev/configuration")
    keys = _keys(served, resources.KNATIVE_REVISION, revision, caches)
    assert keys == ["default/my-service"]
    raw["spec"]["deploymentMode"] = "knative"
    obs = served.observe("default/my-service")
    assert isinstance(obs, DeploymentObservation) and obs.knative_served
    assert [c["metadata"]["name"] for c in obs.configurations] == ["my-service-v1"]
    assert list(obs.revisions) == ["my-service-v1-00001"]
