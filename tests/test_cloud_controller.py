"""The RestateCloudEnvironment controller's watches and observe, and the RestateDeployment
controller's mapping of RCE and Secret events (what makes a rotation reach it at once)."""

from __future__ import annotations

import copy
from typing import Any

from restate_op.cloud_children import TUNNEL_SELECTOR, tunnel_deployment
from restate_op.cloud_controller import RestateCloudEnvironmentController
from restate_op.deployment_controller import RestateDeploymentController
from restate_op.deployment_observe import DeploymentObservation
from restate_op.kube import resources
from restate_op.memory import Memory
from tests.test_cloud_environment import SECRET, SETTINGS, model, raw
from tests.test_runtime import DictCaches


def rsd(name: str, cloud: str | None) -> dict[str, Any]:
    register = {"cloud": cloud} if cloud else {"url": "http://x:9070"}
    return {
        "metadata": {"name": name, "namespace": "apps"},
        "spec": {"restate": {"register": register}},
    }


def caches() -> DictCaches:
    found = DictCaches()
    found.add(resources.RESTATE_CLOUD_ENVIRONMENT, raw("prod"))
    found.add(resources.RESTATE_DEPLOYMENT, rsd("greeter", "prod"))
    found.add(resources.RESTATE_DEPLOYMENT, rsd("other", None))
    return found


def test_watches_are_in_the_operator_namespace_and_map_to_the_environment() -> None:
    ctl = RestateCloudEnvironmentController(caches(), SETTINGS)
    by_kind = {(w.kind, w.label_selector): w for w in ctl.watches()}
    assert by_kind[(resources.RESTATE_CLOUD_ENVIRONMENT, None)].namespace is None
    for kind in (resources.DEPLOYMENT, resources.SERVICE, resources.POD_DISRUPTION_BUDGET):
        assert by_kind[(kind, TUNNEL_SELECTOR)].namespace == "ops"
    secret_watch = by_kind[(resources.SECRET, None)]
    assert secret_watch.namespace == "ops"
    assert list(secret_watch.keys({"metadata": {"name": "cloud-token"}}, caches())) == ["prod"]
    assert list(secret_watch.keys({"metadata": {"name": "unrelated"}}, caches())) == []
    deployment = tunnel_deployment(model(raw("prod")), SETTINGS)
    owned = by_kind[(resources.DEPLOYMENT, TUNNEL_SELECTOR)]
    assert list(owned.keys(deployment, caches())) == ["prod"]


def test_observe_reads_the_secret_and_only_children_it_controls() -> None:
    found = caches()
    found.add(resources.SECRET, {**SECRET, "metadata": {"name": "cloud-token", "namespace": "ops"}})
    mine = copy.deepcopy(tunnel_deployment(model(raw("prod")), SETTINGS))
    found.add(resources.DEPLOYMENT, mine, TUNNEL_SELECTOR)
    obs = RestateCloudEnvironmentController(found, SETTINGS).observe("prod")
    assert obs is not None and obs.secret is not None and obs.deployment is mine
    foreign = copy.deepcopy(mine)
    foreign["metadata"]["ownerReferences"] = []
    other = caches()
    other.add(resources.DEPLOYMENT, foreign, TUNNEL_SELECTOR)
    obs = RestateCloudEnvironmentController(other, SETTINGS).observe("prod")
    assert obs is not None and obs.deployment is None and obs.secret is None
    assert RestateCloudEnvironmentController(caches(), SETTINGS).observe("gone") is None


def test_an_rce_or_its_secret_changing_maps_to_the_restatedeployments_using_it() -> None:
    ctl = RestateDeploymentController(caches(), Memory(), SETTINGS)
    watches = {w.kind: w for w in ctl.watches()}
    rce_keys = watches[resources.RESTATE_CLOUD_ENVIRONMENT].keys(raw("prod"), caches())
    assert list(rce_keys) == ["apps/greeter"]
    secret = watches[resources.SECRET]
    assert secret.namespace == "ops"
    assert list(secret.keys({"metadata": {"name": "cloud-token"}}, caches())) == ["apps/greeter"]
    assert list(secret.keys({"metadata": {"name": "other"}}, caches())) == []


def test_the_restatedeployment_observes_the_environment_and_its_token() -> None:
    found = caches()
    found.add(resources.SECRET, {**SECRET, "metadata": {"name": "cloud-token", "namespace": "ops"}})
    full = {
        "apiVersion": "restate.dev/v1beta1",
        "kind": "RestateDeployment",
        "metadata": {"name": "greeter", "namespace": "apps", "uid": "u", "generation": 1},
        "spec": {
            "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}},
            "restate": {"register": {"cloud": "prod"}},
        },
    }
    found.objects[(resources.RESTATE_DEPLOYMENT, None)] = [full]
    obs = RestateDeploymentController(found, Memory(), SETTINGS).observe("apps/greeter")
    assert isinstance(obs, DeploymentObservation)
    assert obs.cloud is not None and obs.cloud.usable
    assert obs.token == "t" and obs.admin == "https://201abc.env.eu.restate.cloud:9070"
