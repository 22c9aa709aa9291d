"""Knative mode (upstream-2026 §1.5), state in, state out: a version is a Configuration and
a Route named ``<rsd>-<tag>``, registered under the Route's URL once Knative says the
latest Revision serves; drained and retired as in ReplicaSet mode."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

from restate_op.api.deployment import RestateDeployment
from restate_op.deployment_decide import DeploymentDecision, conclude, decide
from restate_op.deployment_observe import DeploymentObservation, KnownDeployment, RestateView
from restate_op.effects import (
    Apply,
    Delete,
    DeregisterDeployment,
    Outcome,
    QueryRestate,
    RegisterDeployment,
    RegistrationResult,
    WriteStatus,
)
from tests.test_deployment_decide import ADMIN, NOW, READY_CLUSTER, UID, of, rsd_raw

KNATIVE_PORTS = [{"containerPort": 8080, "name": "h2c"}]


def knative_raw(tag: str | None = "v1", image: str = "svc:v1", **spec: Any) -> dict[str, Any]:
    raw = rsd_raw(image, deploymentMode="knative", **spec)
    raw["spec"].pop("replicas", None)
    raw["spec"]["restate"]["drainDelaySeconds"] = 0
    raw["spec"]["template"]["spec"]["containers"][0]["ports"] = KNATIVE_PORTS
    if tag is not None:
        raw["spec"]["knative"] = {"tag": tag}
    return raw


def route_url(name: str) -> str:
    return f"http://{name}.default.svc.cluster.local"


@dataclass
class KnativeWorld:
    """The API server, Knative's controller (when ``serving``) and Restate."""

    raw: dict[str, Any]
    configurations: dict[str, dict[str, Any]] = field(default_factory=dict)
    routes: dict[str, dict[str, Any]] = field(default_factory=dict)
    revisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    restate: dict[str, KnownDeployment] = field(default_factory=dict)
    pinned: dict[str, int] = field(default_factory=dict)
    read: RestateView | None = None
    serving: bool = True
    now: float = NOW
    applied: list[Apply] = field(default_factory=list)
    registered: list[RegisterDeployment] = field(default_factory=list)
    deleted: list[Delete] = field(default_factory=list)
    served: bool = True

    def observe(self) -> DeploymentObservation:
        return DeploymentObservation(
            rsd=RestateDeployment.model_validate(self.raw),
            raw=self.raw,
            configurations=tuple(self.configurations.values()),
            routes=self.routes,
            revisions=self.revisions,
            knative_served=self.served,
            cluster=READY_CLUSTER,
            restate=self.read,
        )

    def play_knative(self) -> None:
        for name, config in self.configurations.items():
            generation = config["metadata"]["generation"]
            revision = f"{name}-{generation:05}"
            config["status"] = {
                "observedGeneration": generation,
                "latestCreatedRevisionName": revision,
                "latestReadyRevisionName": revision,
            }
            self.revisions[revision] = {
                "metadata": {
                    "name": revision,
                    "labels": {"serving.knative.dev/configuration": name},
                },
                "status": {
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "actualReplicas": 1,
                    "desiredReplicas": 1,
                },
            }
            if name in self.routes:
                self.routes[name]["status"] = {
                    "url": route_url(name),
                    "traffic": [{"revisionName": revision, "percent": 100}],
                    "conditions": [{"type": "Ready", "status": "True"}],
                }

    def step(self) -> DeploymentDecision:
        if self.serving:
            self.play_knative()
        obs = self.observe()
        decision = decide(obs, self.now)
        outcome = Outcome()
        for effect in decision.effects:
            self.carry_out(effect, outcome)
        for effect in conclude(obs, decision, outcome, self.now).effects:
            if isinstance(effect, WriteStatus):
                self.raw["status"] = dict(effect.status)
        self.now += 1
        return decision

    def carry_out(self, effect: Any, outcome: Outcome) -> None:
        if isinstance(effect, Apply):
            self.applied.append(effect)
            manifest = copy.deepcopy(dict(effect.manifest))
            if effect.kind == "Configuration":
                before = self.configurations.get(effect.name)
                generation = before["metadata"]["generation"] if before else 0
                if before is None or before["spec"] != manifest["spec"]:
                    generation += 1
                manifest["metadata"].update(uid=f"uid-{effect.name}", generation=generation)
                manifest["metadata"]["creationTimestamp"] = f"t{self.now}"
                manifest["status"] = (before or {}).get("status", {})
                self.configurations[effect.name] = manifest
            elif effect.kind == "Route":
                manifest["status"] = self.routes.get(effect.name, {}).get("status", {})
                self.routes[effect.name] = manifest
        elif isinstance(effect, Delete):
            self.deleted.append(effect)
            self.configurations.pop(effect.name, None)
            self.routes.pop(effect.name, None)
        elif isinstance(effect, RegisterDeployment):
            self.registered.append(effect)
            dep_id = f"dp_{effect.version}"
            for other_id, other in list(self.restate.items()):
                self.restate[other_id] = replace(other, latest_for=())
            self.restate[dep_id] = KnownDeployment(dep_id, effect.uri, ("Greeter",), ("Greeter",))
            outcome.registrations.append(RegistrationResult(effect.version, True, dep_id))
        elif isinstance(effect, DeregisterDeployment):
            self.restate.pop(effect.deployment_id, None)
        elif isinstance(effect, QueryRestate):
            self.read = RestateView(
                ADMIN,
                self.now,
                tuple(replace(d, pinned=self.pinned.get(d.id, 0)) for d in self.restate.values()),
            )

    def phases(self) -> dict[str, str]:
        return {v["name"]: v["phase"] for v in self.raw["status"]["versions"]}

    def settle(self, steps: int = 8) -> None:
        for _ in range(steps):
            self.step()


def test_without_knative_serving_nothing_is_touched_and_the_status_says_why() -> None:
    world = KnativeWorld(knative_raw(), served=False)
    decision = world.step()
    assert decision.reason == "NotSupported" and decision.effects == ()
    assert "Knative Serving" in world.raw["status"]["message"]


def test_a_template_without_an_h2c_or_http1_port_is_invalid() -> None:
    raw = knative_raw()
    raw["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 9080}]
    world = KnativeWorld(raw)
    decision = world.step()
    assert decision.reason == "InvalidRestateConfig" and decision.effects == ()
    assert "h2c" in world.raw["status"]["message"]


def test_a_version_is_a_configuration_and_route_registered_under_the_route_url() -> None:
    world = KnativeWorld(knative_raw(), serving=False)
    world.step()
    [config] = [a.manifest for a in world.applied if a.kind == "Configuration"]
    assert config["metadata"]["name"] == "my-service-v1"
    assert config["metadata"]["ownerReferences"][0]["uid"] == UID
    assert config["metadata"]["annotations"]["restate.dev/tag"] == "v1"
    template = config["spec"]["template"]
    assert template["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] == "0"
    assert template["metadata"]["labels"]["allow.restate.dev/restate"] == "true"
    assert template["spec"]["containers"][0]["ports"] == KNATIVE_PORTS
    assert not [a for a in world.applied if a.kind in ("ReplicaSet", "Service", "Route")]

    # The Route comes once the Configuration exists (it is the Route's owner).
    world.step()
    [route] = [a.manifest for a in world.applied if a.kind == "Route"]
    assert route["metadata"]["ownerReferences"][0]["uid"] == "uid-my-service-v1"
    assert route["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"
    assert route["spec"]["traffic"] == [
        {"configurationName": "my-service-v1", "latestRevision": True, "percent": 100}
    ]
    # Knative has not answered: nothing is registered.
    world.settle(3)
    assert world.phases() == {"my-service-v1": "Starting"}
    assert world.raw["status"]["versions"][0]["reason"] == "ConfigurationNotReady"
    assert not world.registered

    # Knative made the Revision, the Route does not serve it yet.
    world.play_knative()
    for route in world.routes.values():
        route["status"] = {}
    world.step()
    assert world.raw["status"]["versions"][0]["reason"] == "RouteNotReady"
    assert not world.registered

    world.serving = True
    world.settle()
    assert world.phases() == {"my-service-v1": "Latest"}
    [reg] = world.registered
    assert reg.uri == route_url("my-service-v1") and reg.force is False
    status = world.raw["status"]
    assert status["knative"] == {
        "configurationName": "my-service-v1",
        "routeName": "my-service-v1",
        "url": route_url("my-service-v1"),
        "latestRevision": "my-service-v1-00001",
    }
    assert status["replicas"] == 1 and "labelSelector" not in status
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"


def test_the_same_tag_updates_in_place_without_registering_again() -> None:
    world = KnativeWorld(knative_raw())
    world.settle()
    world.raw = knative_raw(image="svc:v1.1") | {"status": world.raw["status"]}
    world.raw["metadata"]["generation"] = 2
    world.settle()
    assert world.phases() == {"my-service-v1": "Latest"}
    assert len(world.registered) == 1
    image = world.configurations["my-service-v1"]["spec"]["template"]["spec"]["containers"][0]
    assert image["image"] == "svc:v1.1"


def test_a_new_tag_drains_the_old_version_then_retires_and_prunes_it() -> None:
    world = KnativeWorld(knative_raw(revisionHistoryLimit=0))
    world.settle()
    world.pinned["dp_my-service-v1"] = 1
    status = world.raw["status"]
    world.raw = knative_raw("v2", "svc:v2", revisionHistoryLimit=0) | {"status": status}
    world.raw["metadata"]["generation"] = 2
    world.settle()
    assert world.phases() == {"my-service-v2": "Latest", "my-service-v1": "Draining"}
    assert [r.uri for r in world.registered] == [route_url(f"my-service-{t}") for t in ("v1", "v2")]
    assert not of(tuple(world.deleted), Delete)

    world.pinned.clear()
    world.settle()
    assert "dp_my-service-v1" not in world.restate, "deregistered"
    assert [(d.kind, d.name) for d in world.deleted] == [("Configuration", "my-service-v1")]
    world.step()
    assert world.phases() == {"my-service-v2": "Latest"}


def test_an_automatic_tag_is_the_version_hash() -> None:
    world = KnativeWorld(knative_raw(tag=None))
    world.settle()
    [name] = world.phases()
    assert name.startswith("my-service-") and name != "my-service-v1"
    assert world.phases()[name] == "Latest"
    config = world.configurations[name]
    assert "restate.dev/pod-template" in config["metadata"]["annotations"]
