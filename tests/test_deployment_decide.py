"""A RestateDeployment's reconcile, state in and state out: every branch, no cluster.

Each test builds an observation (the RestateDeployment, its live ReplicaSets, Services and
pods, the target RestateCluster and Restate's view as last read), calls the pure
``decide``, and checks the phases and effects; ``conclude`` gets an outcome (Restate's answer
to a registration) and its status, memory and Events are checked. ``World`` plays the API
server and Restate for the few tests that walk a whole rollout.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from restate_op import deployment_decide, deployment_verdicts
from restate_op.api.deployment import RestateDeployment, RestateDeploymentStatus
from restate_op.api.deployment_crd import FINALIZER
from restate_op.deployment_decide import (
    BUSY_REFRESH_SECONDS,
    IDLE_REFRESH_SECONDS,
    MACHINE,
    DeploymentDecision,
    backoff,
    conclude,
    decide,
    rejections_key,
    view_key,
)
from restate_op.deployment_effects import PLANNERS
from restate_op.deployment_identity import endpoint_uri, version_hash, versioned_name
from restate_op.deployment_observe import (
    DeploymentObservation,
    KnownDeployment,
    Rejection,
    RestateView,
    recorded_rejections,
    rfc3339,
)
from restate_op.deployment_verdicts import declared
from restate_op.effects import (
    Apply,
    Delete,
    DeregisterDeployment,
    Effect,
    Emit,
    Forget,
    Outcome,
    QueryRestate,
    RegisterDeployment,
    RegistrationResult,
    Remember,
    RemoveFinalizer,
    WriteStatus,
)
from restate_op.outcomes import PermanentError

NOW = 1_800_000_000.0
UID = "rsd-uid"
ADMIN = "http://restate.restate.svc.cluster.local:9070"
UPSTREAM = Path(__file__).parent / "fixtures" / "restatedeployment-upstream.yaml"


def rsd_raw(image: str = "my-registry/my-service:v1", **spec: Any) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(UPSTREAM.read_text())
    raw["metadata"].update(uid=UID, generation=1, finalizers=[FINALIZER])
    raw["spec"]["template"]["spec"]["containers"][0]["image"] = image
    raw["spec"].update(spec)
    return raw


def name_of(raw: dict[str, Any]) -> str:
    spec = RestateDeployment.model_validate(raw).spec
    return versioned_name(raw["metadata"]["name"], version_hash(spec))


def hash_of(raw: dict[str, Any]) -> str:
    return version_hash(RestateDeployment.model_validate(raw).spec)


def uri(version: str) -> str:
    return endpoint_uri(version, "default", "cluster.local", None)


READY_CLUSTER = {
    "apiVersion": "restate.dev/v1",
    "kind": "RestateCluster",
    "metadata": {"name": "restate"},
    "status": {"conditions": [{"type": "Ready", "status": "True"}]},
}


def applied(effects: tuple[Effect, ...], kind: str) -> list[dict[str, Any]]:
    return [dict(e.manifest) for e in effects if isinstance(e, Apply) and e.kind == kind]


def live(manifest: dict[str, Any], created: str, ready: int | None = None) -> dict[str, Any]:
    """A live ReplicaSet as the API server holds it after applying ``manifest``."""
    obj = copy.deepcopy(manifest)
    obj["metadata"]["creationTimestamp"] = created
    obj["metadata"]["uid"] = f"uid-{obj['metadata']['name']}"
    if obj["kind"] == "ReplicaSet":
        n = obj["spec"]["replicas"] if ready is None else ready
        obj["status"] = {"replicas": n, "readyReplicas": n, "availableReplicas": n}
    return obj


def pod(version_hash_: str, n: int = 0, latest: bool = False) -> dict[str, Any]:
    labels = {"app": "my-service", "pod-template-hash": version_hash_}
    if latest:
        labels["restate.dev/latest"] = "true"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"p-{version_hash_}-{n}", "namespace": "default", "labels": labels},
    }


def view(*deployments: KnownDeployment, at: float = NOW, error: str | None = None) -> RestateView:
    return RestateView(ADMIN, at, tuple(deployments), error)


def observe(
    raw: dict[str, Any],
    replica_sets: tuple[Mapping[str, Any], ...] = (),
    services: dict[str, dict[str, Any]] | None = None,
    pods: tuple[dict[str, Any], ...] = (),
    restate: RestateView | None = None,
    cluster: dict[str, Any] | None = READY_CLUSTER,
    rejections: dict[str, Rejection] | None = None,
    autoscalers: dict[str, dict[str, Any]] | None = None,
) -> DeploymentObservation:
    return DeploymentObservation(
        rsd=RestateDeployment.model_validate(raw),
        raw=raw,
        replica_sets=replica_sets,
        services=services or {},
        pods=pods,
        cluster=cluster,
        restate=restate,
        rejections=rejections or {},
        autoscalers=autoscalers or {},
    )


def phases(decision: DeploymentDecision) -> dict[str, str]:
    return {v.name: v.phase for v in decision.versions}


def reasons(decision: DeploymentDecision) -> dict[str, str]:
    return {v.name: v.reason for v in decision.versions}


def of(effects: tuple[Effect, ...], kind: type) -> list[Any]:
    return [e for e in effects if isinstance(e, kind)]


@dataclass
class World:
    """The API server and Restate, just enough to walk a rollout through ``decide``."""

    raw: dict[str, Any]
    replica_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    restate: dict[str, KnownDeployment] = field(default_factory=dict)
    pinned: dict[str, int] = field(default_factory=dict)
    read: RestateView | None = None
    now: float = NOW
    clock: int = 0
    events: list[tuple[str, str, str]] = field(default_factory=list)
    #: Pods labelled restate.dev/latest by the operator.
    latest_pods: set[str] = field(default_factory=set)
    autoscalers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def observe(self) -> DeploymentObservation:
        pods = []
        for rs in self.replica_sets.values():
            for i in range(rs["spec"]["replicas"]):
                p = pod(rs["metadata"]["labels"]["pod-template-hash"], i)
                pods.append(
                    pod(
                        rs["metadata"]["labels"]["pod-template-hash"],
                        i,
                        latest=p["metadata"]["name"] in self.latest_pods,
                    )
                )
        return observe(
            self.raw,
            tuple(self.replica_sets.values()),
            self.services,
            tuple(pods),
            self.read,
            autoscalers=self.autoscalers,
        )

    def step(self, registration: RegistrationResult | None = None) -> DeploymentDecision:
        obs = self.observe()
        decision = decide(obs, self.now)
        outcome = Outcome()
        for effect in decision.effects:
            self.carry_out(effect, outcome, registration)
        conclusion = conclude(obs, decision, outcome, self.now)
        for effect in conclusion.effects:
            if isinstance(effect, WriteStatus):
                self.raw["status"] = dict(effect.status)
            elif isinstance(effect, Emit):
                self.events.append((effect.type, effect.reason, effect.action))
        self.now += 1
        return decision

    def carry_out(
        self, effect: Effect, outcome: Outcome, registration: RegistrationResult | None
    ) -> None:
        if isinstance(effect, Apply) and effect.kind == "ReplicaSet":
            self.clock += 1
            name = effect.name
            before = self.replica_sets.get(name)
            created = before["metadata"]["creationTimestamp"] if before else f"t{self.clock:03}"
            self.replica_sets[name] = live(dict(effect.manifest), created)
        elif isinstance(effect, Apply) and effect.kind == "Pod":
            pod_name = effect.name
            if effect.manifest["metadata"]["labels"]:
                self.latest_pods.add(pod_name)
            else:
                self.latest_pods.discard(pod_name)
        elif isinstance(effect, Apply) and effect.kind == "HorizontalPodAutoscaler":
            self.autoscalers[effect.name] = live(dict(effect.manifest), "t")
        elif isinstance(effect, Delete) and effect.kind == "HorizontalPodAutoscaler":
            self.autoscalers.pop(effect.name)
        elif isinstance(effect, Apply) and effect.kind == "Service":
            self.services[effect.name] = live(dict(effect.manifest), "t")
        elif isinstance(effect, Delete) and effect.kind == "ReplicaSet":
            self.replica_sets.pop(effect.name)
        elif isinstance(effect, Delete) and effect.kind == "Service":
            self.services.pop(effect.name)
        elif isinstance(effect, RegisterDeployment):
            if registration is not None:
                outcome.registrations.append(replace(registration, version=effect.version))
                return
            dep_id = f"dp_{effect.version}"
            services = ("Greeter",)
            for other_id, other in list(self.restate.items()):
                self.restate[other_id] = replace(other, latest_for=())
            self.restate[dep_id] = KnownDeployment(dep_id, effect.uri, services, services)
            outcome.registrations.append(RegistrationResult(effect.version, True, dep_id))
        elif isinstance(effect, DeregisterDeployment):
            self.restate.pop(effect.deployment_id, None)
        elif isinstance(effect, QueryRestate):
            self.read = RestateView(
                effect.admin_url,
                self.now,
                tuple(replace(d, pinned=self.pinned.get(d.id, 0)) for d in self.restate.values()),
            )

    def version(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = next(v for v in self.raw["status"]["versions"] if v["name"] == name)
        return found


# -- the machine and the code agree ----------------------------------------------------------


def test_the_machine_matches_the_planners_and_the_rules() -> None:
    MACHINE.check_effects(PLANNERS)
    MACHINE.check_reasons(declared())


# -- a new RestateDeployment -------------------------------------------------------------------


def test_a_new_deployment_adds_its_finalizer_then_applies_its_first_version() -> None:
    raw = rsd_raw()
    raw["metadata"]["finalizers"] = []
    decision = decide(observe(raw), NOW)
    name = name_of(raw)
    assert phases(decision) == {name: "Starting"}
    assert decision.reason == "ReplicaSetScaling"
    first = decision.effects[0]
    assert isinstance(first, Apply) and first.kind == "RestateDeployment"
    assert first.manifest["metadata"]["finalizers"] == [FINALIZER]
    [rs] = applied(decision.effects, "ReplicaSet")
    assert rs["metadata"]["name"] == name and rs["spec"]["replicas"] == 1
    labels = rs["spec"]["template"]["metadata"]["labels"]
    assert labels["pod-template-hash"] == hash_of(raw)
    assert labels["allow.restate.dev/restate"] == "true" and labels["app"] == "my-service"
    assert rs["spec"]["selector"]["matchLabels"] == labels
    assert rs["metadata"]["ownerReferences"][0]["uid"] == UID
    assert rs["metadata"]["annotations"]["restate.dev/endpoint"] == uri(name)
    [svc] = applied(decision.effects, "Service")
    assert svc["metadata"]["name"] == name and svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [
        {"name": "restate", "port": 9080, "targetPort": 9080, "protocol": "TCP"}
    ]
    assert svc["spec"]["selector"] == labels
    assert not of(decision.effects, RegisterDeployment)
    assert isinstance(decision.effects[-1], QueryRestate)
    assert decision.effects[-1].key == view_key(ADMIN)


def test_a_refused_write_is_what_ready_says() -> None:
    """The RBAC ablation's visible effect: a 403 on any write shows in Ready and the message,
    the versions' own phases kept."""
    raw = rsd_raw()
    obs = observe(raw)
    decision = decide(obs, NOW)
    refused = PermanentError('replicasets.apps is forbidden: cannot create resource "x"')
    conclusion = conclude(obs, decision, Outcome(error=refused), NOW)
    [write] = of(conclusion.effects, WriteStatus)
    ready = next(c for c in write.status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ApplyRejected"
    assert "forbidden" in ready["message"] and "forbidden" in write.status["message"]
    assert write.status["versions"][0]["phase"] == "Starting"
    assert conclusion.error is refused


def test_the_service_targets_the_container_port_named_restate() -> None:
    raw = rsd_raw()
    raw["spec"]["template"]["spec"]["containers"][0]["ports"] = [
        {"containerPort": 8000, "name": "http"},
        {"containerPort": 9081, "name": "restate"},
    ]
    [svc] = applied(decide(observe(raw), NOW).effects, "Service")
    assert svc["spec"]["ports"][0]["port"] == 9080
    assert svc["spec"]["ports"][0]["targetPort"] == 9081


def test_pods_not_ready_keep_the_version_starting() -> None:
    raw = rsd_raw()
    [rs] = applied(decide(observe(raw), NOW).effects, "ReplicaSet")
    unready = live(rs, "t1")
    unready["status"] = {"replicas": 1, "readyReplicas": 0, "availableReplicas": 0}
    decision = decide(observe(raw, (unready,), restate=view()), NOW)
    assert decision.reason == "ReplicaSetPodNotReady"
    assert not of(decision.effects, RegisterDeployment)


@pytest.mark.parametrize(
    ("cluster", "reason"),
    [(None, "ClusterNotFound"), ({**READY_CLUSTER, "status": {}}, "ClusterNotReady")],
)
def test_registration_waits_for_the_target_cluster(
    cluster: dict[str, Any] | None, reason: str
) -> None:
    raw = rsd_raw()
    [rs] = applied(decide(observe(raw), NOW).effects, "ReplicaSet")
    decision = decide(observe(raw, (live(rs, "t1"),), restate=view(), cluster=cluster), NOW)
    assert decision.phase == "Starting" and decision.reason == reason
    assert not of(decision.effects, RegisterDeployment)
    assert decision.requeue_after is not None and decision.requeue_after <= 30


def test_available_pods_are_registered_once_restate_has_answered() -> None:
    raw = rsd_raw(restate={"register": {"cluster": "restate"}, "useHttp11": True})
    [rs] = applied(decide(observe(raw), NOW).effects, "ReplicaSet")
    name = rs["metadata"]["name"]
    decision = decide(observe(raw, (live(rs, "t1"),), restate=view()), NOW)
    assert phases(decision) == {name: "Registering"}
    [register] = of(decision.effects, RegisterDeployment)
    assert register == RegisterDeployment(ADMIN, uri(name), name, use_http11=True, force=False)
    assert isinstance(decision.effects[-1], QueryRestate)
    assert decision.requeue_after == 0.0


def test_without_restates_answer_nothing_is_registered_blindly() -> None:
    raw = rsd_raw()
    [rs] = applied(decide(observe(raw), NOW).effects, "ReplicaSet")
    decision = decide(observe(raw, (live(rs, "t1"),)), NOW)
    assert decision.phase == "Registering" and decision.reason == "WaitingForRestate"
    assert not of(decision.effects, RegisterDeployment)
    assert of(decision.effects, QueryRestate)


# -- a whole rollout ------------------------------------------------------------------------


def rolled_out(world: World) -> str:
    """Walk a new RestateDeployment to Latest; returns its version's name."""
    for _ in range(6):
        world.step()
    name = name_of(world.raw)
    assert world.version(name)["phase"] == "Latest"
    return name


def test_a_first_version_walks_to_latest_and_then_costs_no_write() -> None:
    world = World(rsd_raw())
    name = rolled_out(world)
    status = world.raw["status"]
    assert status["latestVersion"] == name and status["deploymentId"] == f"dp_{name}"
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"Ready": "True", "Progressing": "False", "Available": "True"}
    assert status["labelSelector"] == (
        f"allow.restate.dev/restate=true,app=my-service,pod-template-hash={hash_of(world.raw)}"
    )
    assert world.services["my-service"]["spec"]["selector"]["pod-template-hash"] == hash_of(
        world.raw
    )
    assert world.replica_sets[name]["metadata"]["labels"]["restate.dev/latest"] == "true"
    assert [e[1] for e in world.events] == [
        "VersionStarting",
        "VersionRegistering",
        "VersionLatest",
    ]
    # Converged: nothing to apply, nobody to call, no status to write.
    assert world.latest_pods == {f"p-{hash_of(world.raw)}-0"}
    obs = world.observe()
    decision = decide(obs, world.now)
    assert decision.effects == ()
    assert conclude(obs, decision, Outcome(), world.now).effects == ()


def test_the_latest_versions_pods_get_the_latest_label_and_others_lose_it() -> None:
    world = World(rsd_raw())
    name = rolled_out(world)
    h = hash_of(world.raw)
    obs = replace(world.observe(), pods=(pod(h, 0), pod("old", 0, latest=True)))
    old = live(
        {
            **world.replica_sets[name],
            "metadata": {
                **world.replica_sets[name]["metadata"],
                "name": "my-service-old",
                "labels": {"pod-template-hash": "old"},
            },
        },
        "t000",
    )
    obs = replace(obs, replica_sets=(*obs.replica_sets, old))
    labels = {
        e.manifest["metadata"]["name"]: e.manifest["metadata"]["labels"]
        for e in decide(obs, world.now).effects
        if isinstance(e, Apply) and e.kind == "Pod"
    }
    assert labels == {f"p-{h}-0": {"restate.dev/latest": "true"}, "p-old-0": {}}


def roll_to_v2(world: World) -> tuple[str, str]:
    v1 = rolled_out(world)
    world.raw["spec"]["template"]["spec"]["containers"][0]["image"] = "my-registry/my-service:v2"
    world.raw["metadata"]["generation"] = 2
    return v1, name_of(world.raw)


def test_a_new_template_is_a_new_version_and_the_old_one_drains() -> None:
    world = World(rsd_raw())
    v1, v2 = roll_to_v2(world)
    decision = world.step()
    # v2 starts; v1 is still Restate's latest, so it drains and the stable Service stays.
    assert phases(decision) == {v2: "Starting", v1: "Draining"}
    assert reasons(decision)[v1] == "LatestForServices"
    assert decision.routing == v1
    for _ in range(4):
        decision = world.step()
    assert phases(decision)[v2] == "Latest"
    assert world.services["my-service"]["spec"]["selector"]["pod-template-hash"] == hash_of(
        world.raw
    )
    assert "restate.dev/latest" not in world.replica_sets[v1]["metadata"]["labels"]
    assert world.replica_sets[v1]["spec"]["replicas"] == 1


def test_a_pinned_invocation_keeps_the_old_version_draining_with_its_pods() -> None:
    world = World(rsd_raw())
    v1, v2 = roll_to_v2(world)
    world.pinned[f"dp_{v1}"] = 2
    for _ in range(6):
        decision = world.step()
    assert phases(decision) == {v2: "Latest", v1: "Draining"}
    assert reasons(decision)[v1] == "InvocationsPinned"
    assert world.version(v1)["pinnedInvocations"] == 2
    assert world.replica_sets[v1]["spec"]["replicas"] == 1
    assert f"dp_{v1}" in world.restate
    assert decision.requeue_after is not None and decision.requeue_after <= BUSY_REFRESH_SECONDS


def test_once_unused_the_old_version_waits_the_drain_delay_then_is_retired() -> None:
    world = World(rsd_raw())
    v1, _ = roll_to_v2(world)
    for _ in range(6):
        decision = world.step()
    assert reasons(decision)[v1] == "DrainDelay"
    remove_at = world.replica_sets[v1]["metadata"]["annotations"]["restate.dev/remove-version-at"]
    assert world.version(v1)["removeAt"] == remove_at
    assert decision.requeue_after is not None and decision.requeue_after <= 300
    world.now += 300
    decision = world.step()
    # Due, but the last answer is old: nothing is retired on it; it is read again first.
    assert phases(decision)[v1] == "Draining" and not of(decision.effects, DeregisterDeployment)
    assert of(decision.effects, QueryRestate) and decision.requeue_after == 0.0
    decision = world.step()
    assert phases(decision)[v1] == "Retired"
    [dereg] = of(decision.effects, DeregisterDeployment)
    assert dereg == DeregisterDeployment(ADMIN, f"dp_{v1}", v1)
    assert world.replica_sets[v1]["spec"]["replicas"] == 0
    assert f"dp_{v1}" not in world.restate  # no ghost deployment
    world.step()
    assert v1 in world.replica_sets  # kept as history for a rollback
    assert ("Normal", "VersionRetired", "DrainingToRetired") in world.events


def test_retired_versions_beyond_the_history_limit_are_deleted() -> None:
    world = World(rsd_raw(revisionHistoryLimit=1))
    names = [rolled_out(world)]
    for image in ("v2", "v3"):
        world.raw["spec"]["template"]["spec"]["containers"][0]["image"] = image
        for _ in range(6):
            world.step()
        names.append(name_of(world.raw))
        world.now += 400
        for _ in range(4):
            world.step()
    assert names[2] in world.replica_sets and names[1] in world.replica_sets
    assert names[0] not in world.replica_sets and names[0] not in world.services


def test_a_pruned_versions_service_goes_before_its_replica_set() -> None:
    """A version is found by its ReplicaSet: deleting that last means a refused or
    interrupted Service delete is planned again by the next reconcile, not left behind."""
    world = World(rsd_raw(revisionHistoryLimit=0))
    old = rolled_out(world)
    world.raw["spec"]["template"]["spec"]["containers"][0]["image"] = "v2"
    deletes: list[tuple[str, str]] = []
    for step in range(12):
        decision = world.step()
        deletes += [(d.kind, d.name) for d in of(decision.effects, Delete)]
        world.now += 400 if step == 5 else 1  # past drainDelaySeconds
    assert deletes == [("Service", old), ("ReplicaSet", old)]


def test_rollback_scales_the_old_version_up_and_registers_it_again() -> None:
    world = World(rsd_raw())
    v1, v2 = roll_to_v2(world)
    for _ in range(6):
        world.step()
    world.now += 400
    for _ in range(4):
        world.step()
    assert world.version(v1)["phase"] == "Retired"
    world.raw["spec"]["template"]["spec"]["containers"][0]["image"] = "my-registry/my-service:v1"
    decision = world.step()
    assert name_of(world.raw) == v1  # the same version again, not a new one
    assert phases(decision)[v1] == "Starting"
    assert world.replica_sets[v1]["spec"]["replicas"] == 1
    for _ in range(4):
        decision = world.step()
    assert phases(decision) == {v1: "Latest", v2: "Draining"}
    assert (
        world.services["my-service"]["spec"]["selector"]["pod-template-hash"]
        == (world.replica_sets[v1]["metadata"]["labels"]["pod-template-hash"])
    )


def test_rollback_to_a_version_restate_still_knows_registers_with_force() -> None:
    """Bug 3: Restate answers "unchanged" to a plain re-registration of a known endpoint."""
    raw = rsd_raw()
    v1 = name_of(raw)
    [rs] = applied(decide(observe(raw), NOW).effects, "ReplicaSet")
    other = KnownDeployment("dp_v2", uri("my-service-v2"), ("Greeter",), ("Greeter",))
    mine = KnownDeployment("dp_v1", uri(v1), ("Greeter",), (), pinned=1)
    decision = decide(observe(raw, (live(rs, "t1"),), restate=view(mine, other)), NOW)
    assert decision.reason == "Promoting"
    [register] = of(decision.effects, RegisterDeployment)
    assert register.force is True and register.uri == uri(v1)


# -- rejections -----------------------------------------------------------------------------


META0006 = RegistrationResult(
    "", False, status=409, code="META0006", message="service type of Greeter changed"
)


def test_a_refused_registration_is_rejected_with_restates_words_and_backs_off() -> None:
    world = World(rsd_raw())
    world.step()
    name = name_of(world.raw)
    obs = world.observe()
    decision = decide(obs, world.now)
    assert decision.reason == "Registering"
    outcome = Outcome(registrations=[replace(META0006, version=name)])
    conclusion = conclude(obs, decision, outcome, world.now)
    [remember] = of(conclusion.effects, Remember)
    assert remember.key == rejections_key("default", "my-service")
    [(version, held)] = remember.value.items()
    assert version == name and held.attempts == 1 and held.retry_at == world.now + 30
    [write] = of(conclusion.effects, WriteStatus)
    [entry] = write.status["versions"]
    assert entry["phase"] == "Rejected" and entry["rejections"] == 1
    assert "409 META0006" in entry["message"] and "service type of Greeter" in entry["message"]
    ready = next(c for c in write.status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and "META0006" in ready["message"]
    assert [(e.type, e.reason, e.action) for e in of(conclusion.effects, Emit)] == [
        ("Normal", "VersionRegistering", "StartingToRegistering"),
        ("Warning", "VersionRejected", "RegisteringToRejected"),
    ]


def rejected_obs(
    generation: int = 1, retry_at: float = NOW + 30, attempts: int = 1
) -> DeploymentObservation:
    raw = rsd_raw()
    raw["metadata"]["generation"] = generation
    name = name_of(raw)
    [rs] = applied(decide(observe(raw), NOW).effects, "ReplicaSet")
    rejection = Rejection(1, attempts, retry_at, 409, "META0006", "type changed")
    raw["status"] = {"versions": [{"name": name, "hash": hash_of(raw), "phase": "Rejected"}]}
    return observe(raw, (live(rs, "t1"),), restate=view(), rejections={name: rejection})


def test_a_rejected_version_waits_for_its_backoff_with_its_pods_running() -> None:
    decision = decide(rejected_obs(), NOW)
    assert decision.phase == "Rejected" and decision.reason == "RegistrationRejected"
    assert not of(decision.effects, RegisterDeployment)
    assert not [rs for rs in applied(decision.effects, "ReplicaSet") if rs["spec"]["replicas"] == 0]
    assert decision.requeue_after == pytest.approx(30)


def test_a_rejected_version_is_retried_once_the_backoff_passed() -> None:
    decision = decide(rejected_obs(retry_at=NOW - 1), NOW)
    assert decision.reason == "RetryingRejected" and "backoff passed" in decision.message
    assert of(decision.effects, RegisterDeployment)


def test_a_spec_change_retries_a_rejection_at_once() -> None:
    decision = decide(rejected_obs(generation=2), NOW)
    assert decision.reason == "RetryingRejected" and "spec changed" in decision.message
    assert of(decision.effects, RegisterDeployment)


def test_the_backoff_grows_and_is_capped() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff(20) == 3600


def test_a_second_refusal_doubles_the_wait() -> None:
    obs = rejected_obs(retry_at=NOW - 1)
    decision = decide(obs, NOW)
    name = decision.versions[0].name
    conclusion = conclude(
        obs, decision, Outcome(registrations=[replace(META0006, version=name)]), NOW
    )
    [remember] = of(conclusion.effects, Remember)
    held = remember.value[name]
    assert held.attempts == 2 and held.retry_at == NOW + 60


def test_an_accepted_registration_forgets_the_rejection() -> None:
    obs = rejected_obs(retry_at=NOW - 1)
    decision = decide(obs, NOW)
    name = decision.versions[0].name
    accepted = RegistrationResult(name, True, "dp_1")
    conclusion = conclude(obs, decision, Outcome(registrations=[accepted]), NOW)
    assert Forget(rejections_key("default", "my-service")) in conclusion.effects
    assert not of(conclusion.effects, Remember)


def test_a_rejected_version_that_goes_is_forgotten() -> None:
    """The spec moved on from a rejected version: its refusal is not remembered any more
    (it is an old version now, and one a rollback would retry at once anyway)."""
    obs = rejected_obs()
    moved = rsd_raw("my-registry/my-service:v2")
    moved["metadata"]["generation"] = 2
    moved["status"] = dict(obs.raw["status"])
    obs = replace(obs, rsd=RestateDeployment.model_validate(moved), raw=moved, restate=view())
    decision = decide(obs, NOW)
    conclusion = conclude(obs, decision, Outcome(), NOW)
    assert Forget(rejections_key("default", "my-service")) in conclusion.effects
    assert not of(conclusion.effects, Remember)


def test_a_rejection_still_standing_is_not_written_again() -> None:
    obs = rejected_obs()
    conclusion = conclude(obs, decide(obs, NOW), Outcome(), NOW)
    assert not of(conclusion.effects, Remember) and not of(conclusion.effects, Forget)


# -- when Restate's answer is missing or suspicious --------------------------------------------


def two_versions(restate: RestateView | None) -> tuple[DeploymentDecision, str, str]:
    """v2 (current, recorded Latest) and v1 (recorded Draining), both registered before."""
    world = World(rsd_raw())
    v1, v2 = roll_to_v2(world)
    world.pinned[f"dp_{v1}"] = 1
    for _ in range(6):
        world.step()
    assert world.version(v1)["phase"] == "Draining"
    world.read = replace(restate, read_at=world.now) if restate is not None else None
    return decide(world.observe(), world.now), v1, v2


def test_an_empty_answer_never_retires_old_versions_and_registers_the_current_again() -> None:
    """Bug 11: a re-created Restate lists nothing; that is no reason to scale anything down."""
    decision, v1, v2 = two_versions(view())
    assert decision.view == "forgotten"
    assert phases(decision) == {v2: "Registering", v1: "Draining"}
    assert reasons(decision) == {v2: "ReRegistering", v1: "RestateUnknown"}
    assert "registering the current one again" in decision.message
    assert [r.version for r in of(decision.effects, RegisterDeployment)] == [v2]
    assert not of(decision.effects, DeregisterDeployment)
    assert all(rs["spec"]["replicas"] > 0 for rs in applied(decision.effects, "ReplicaSet"))


def test_a_failed_query_keeps_every_version_as_it_was() -> None:
    decision, v1, v2 = two_versions(view(error="connection refused"))
    assert decision.view == "failed"
    assert phases(decision) == {v2: "Latest", v1: "Draining"}
    assert "connection refused" in decision.versions[1].message
    assert not of(decision.effects, RegisterDeployment)
    assert not of(decision.effects, DeregisterDeployment)
    assert of(decision.effects, QueryRestate)


def test_after_a_restart_the_view_is_read_before_anything_is_registered() -> None:
    decision, v1, v2 = two_versions(None)
    assert phases(decision) == {v2: "Latest", v1: "Draining"}
    assert not of(decision.effects, RegisterDeployment)
    assert of(decision.effects, QueryRestate) and decision.requeue_after == 0.0


def test_a_view_of_another_admin_api_is_not_trusted() -> None:
    stale = RestateView("http://elsewhere:9070", NOW, ())
    decision, _, _ = two_versions(stale)
    assert decision.view == "missing"


# -- admin URLs keep their paths ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("register", "admin"),
    [
        (
            {"service": {"name": "admin", "namespace": "restate", "path": "/prefix/"}},
            "http://admin.restate.svc.cluster.local:9070/prefix",
        ),
        ({"url": "https://restate.example.com/tenant-a/"}, "https://restate.example.com/tenant-a"),
    ],
)
def test_paths_of_the_admin_url_are_kept(register: dict[str, Any], admin: str) -> None:
    raw = rsd_raw(restate={"register": register, "servicePath": "/svc"})
    [rs] = applied(decide(observe(raw), NOW).effects, "ReplicaSet")
    restate = RestateView(admin, NOW, ())
    decision = decide(observe(raw, (live(rs, "t1"),), restate=restate, cluster=None), NOW)
    [register_effect] = of(decision.effects, RegisterDeployment)
    assert register_effect.admin_url == admin
    assert register_effect.uri.endswith(":9080/svc")
    assert of(decision.effects, QueryRestate)[0].admin_url == admin


# -- deletion -------------------------------------------------------------------------------


def deleting(world: World) -> None:
    """Deleted now; the reconciles that follow run a stamp's resolution later (an answer read
    within the stamp's second might predate the deletion, so it is not acted on)."""
    world.raw["metadata"]["deletionTimestamp"] = rfc3339(world.now)
    world.now += deployment_decide.DELETION_STAMP_SECONDS


def test_deletion_waits_only_for_pinned_invocations_then_deregisters_and_releases() -> None:
    """Bug 1: the latest version does not hold the deletion; pinned invocations do."""
    world = World(rsd_raw())
    name = rolled_out(world)
    world.pinned[f"dp_{name}"] = 1
    deleting(world)
    decision = world.step()
    # The last answer predates the deletion: nothing is removed on it.
    assert reasons(decision) == {name: "RestateUnknown"} and not of(
        decision.effects, DeregisterDeployment
    )
    decision = world.step()
    assert phases(decision) == {name: "Draining"}
    assert "waiting for the 1 non-completed invocation" in decision.message
    assert not of(decision.effects, RemoveFinalizer)
    assert world.raw["status"]["versions"][0]["pinnedInvocations"] == 1
    world.pinned.clear()
    world.now += BUSY_REFRESH_SECONDS + 1
    world.step()  # the view is old: read again, nothing pinned any more
    decision = world.step()
    assert phases(decision) == {name: "Retired"}
    assert of(decision.effects, DeregisterDeployment)
    decision = world.step()
    assert decision.released
    assert of(decision.effects, RemoveFinalizer) == [
        RemoveFinalizer(
            "restate.dev/v1beta1", "RestateDeployment", "default", "my-service", UID, FINALIZER
        )
    ]


def test_deletion_with_nothing_pinned_does_not_hang_on_the_latest_version() -> None:
    world = World(rsd_raw())
    name = rolled_out(world)
    deleting(world)
    world.step()
    decision = world.step()
    assert phases(decision) == {name: "Retired"} and world.restate == {}
    assert world.step().released


def test_deletion_releases_when_restate_knows_none_of_the_versions_any_more() -> None:
    """Found by the crash test at before-remove-finalizer: every version was deregistered,
    the status still says Latest. A Restate that knows none of them is not "forgotten"
    (a reason to re-register) while deleting: there is nothing left to wait for."""
    world = World(rsd_raw())
    name = rolled_out(world)
    assert world.raw["status"]["versions"][0]["phase"] == "Latest"
    world.restate.clear()  # deregistered by the operator that crashed
    deleting(world)
    world.read = None  # a restarted operator has no answer yet
    world.step()
    decision = world.step()
    assert decision.view == "ok" and phases(decision) == {name: "Retired"}
    assert decision.released and of(decision.effects, RemoveFinalizer)


def test_deletion_releases_at_once_when_the_target_cluster_is_gone() -> None:
    raw = rsd_raw()
    raw["metadata"]["deletionTimestamp"] = "2027-01-15T08:00:00Z"
    decision = decide(observe(raw, cluster=None), NOW)
    assert decision.released
    assert [type(e) for e in decision.effects] == [RemoveFinalizer]


def test_deletion_waits_while_restate_does_not_answer() -> None:
    world = World(rsd_raw())
    rolled_out(world)
    deleting(world)
    world.read = view(error="timeout")
    decision = decide(world.observe(), world.now)
    assert decision.reason == "RestateUnknown" and not decision.released


# -- identity, scale, unsupported modes ------------------------------------------------------


def test_a_hash_collision_bumps_the_collision_count_and_does_nothing_else() -> None:
    raw = rsd_raw()
    [rs] = applied(decide(observe(raw), NOW).effects, "ReplicaSet")
    taken = live(rs, "t1")
    taken["metadata"]["annotations"]["restate.dev/pod-template"] = '{"other":1}'
    obs = observe(raw, (taken,), restate=view())
    decision = decide(obs, NOW)
    assert decision.reason == "HashCollision" and decision.collision_count == 1
    assert decision.effects == () and decision.requeue_after == 0.0
    [write] = of(conclude(obs, decision, Outcome(), NOW).effects, WriteStatus)
    assert write.status["collisionCount"] == 1
    # The next reconcile names the version with the count in its hash: another name.
    raw["status"] = dict(write.status)
    renamed = decide(observe(raw, (taken,), restate=view()), NOW)
    assert renamed.versions[0].name == versioned_name(
        "my-service", version_hash(RestateDeployment.model_validate(raw).spec, 1)
    )
    assert renamed.versions[0].name != rs["metadata"]["name"]


def test_scaling_changes_the_current_replica_set_and_not_the_version() -> None:
    world = World(rsd_raw())
    name = rolled_out(world)
    world.raw["spec"]["replicas"] = 3
    decision = world.step()
    assert name_of(world.raw) == name
    assert world.replica_sets[name]["spec"]["replicas"] == 3
    # Scaling is not a rollout: the version stays Latest (nothing is registered again).
    assert phases(decision) == {name: "Latest"}
    assert not of(decision.effects, RegisterDeployment)
    world.step()  # the status reports what the next observation sees
    status = world.raw["status"]
    assert status["desiredReplicas"] == 3 and status["replicas"] == 3


def test_a_latest_version_short_of_pods_is_not_ready_but_stays_latest() -> None:
    world = World(rsd_raw())
    name = rolled_out(world)
    world.raw["spec"]["replicas"] = 3
    world.replica_sets[name]["status"] = {
        "replicas": 3,
        "readyReplicas": 1,
        "availableReplicas": 1,
    }
    world.replica_sets[name]["spec"]["replicas"] = 3
    obs = world.observe()
    decision = decide(obs, world.now)
    assert phases(decision) == {name: "Latest"}
    [write] = of(conclude(obs, decision, Outcome(), world.now).effects, WriteStatus)
    conditions = {c["type"]: (c["status"], c["reason"]) for c in write.status["conditions"]}
    assert conditions["Ready"] == ("False", "ReplicaSetPodNotAvailable")
    assert conditions["Progressing"][0] == "True" and conditions["Available"][0] == "True"
    assert write.status["unavailableReplicas"] == 2


def test_every_version_is_listed_in_the_status_newest_first() -> None:
    world = World(rsd_raw())
    v1, v2 = roll_to_v2(world)
    world.pinned[f"dp_{v1}"] = 1
    for _ in range(6):
        world.step()
    listed = [
        (v["name"], v["phase"], v.get("deploymentId"), v["pinnedInvocations"])
        for v in world.raw["status"]["versions"]
    ]
    assert listed == [(v2, "Latest", f"dp_{v2}", 0), (v1, "Draining", f"dp_{v1}", 1)]
    assert "draining " + v1 in world.raw["status"]["message"]


def test_an_old_version_keeps_the_endpoint_it_was_registered_under() -> None:
    world = World(rsd_raw())
    v1 = rolled_out(world)
    world.raw["spec"]["restate"]["servicePath"] = "/moved"
    for _ in range(6):
        decision = world.step()
    v2 = name_of(world.raw)
    assert v2 != v1  # servicePath is part of the identity
    assert phases(decision)[v2] == "Latest"
    assert world.replica_sets[v1]["metadata"]["annotations"]["restate.dev/endpoint"] == uri(v1)
    assert world.replica_sets[v2]["metadata"]["annotations"]["restate.dev/endpoint"].endswith(
        ":9080/moved"
    )


def test_the_drain_delay_deadline_is_kept_across_reconciles() -> None:
    world = World(rsd_raw())
    v1, _ = roll_to_v2(world)
    for _ in range(6):
        world.step()
    first = world.version(v1)["removeAt"]
    world.now += 100  # the view goes stale: held, and the deadline with it
    world.step()
    assert world.version(v1)["removeAt"] == first
    world.step()
    assert world.version(v1)["removeAt"] == first
    assert world.replica_sets[v1]["metadata"]["annotations"]["restate.dev/remove-version-at"] == (
        first
    )


def test_a_due_version_is_retired_only_on_an_answer_read_after_its_deadline() -> None:
    world = World(rsd_raw())
    v1, _ = roll_to_v2(world)
    for _ in range(6):
        world.step()
    remove_at = world.replica_sets[v1]["metadata"]["annotations"]["restate.dev/remove-version-at"]
    deadline = datetime.fromisoformat(remove_at.replace("Z", "+00:00")).timestamp()
    # A fresh answer (5 s old), but read before the deadline passed one second ago.
    world.now = deadline + 1
    world.read = replace(world.read, read_at=deadline - 4) if world.read else None
    decision = decide(world.observe(), world.now)
    assert reasons(decision)[v1] == "DrainDelay" and "confirming" in decision.versions[1].message
    assert not of(decision.effects, DeregisterDeployment)
    assert of(decision.effects, QueryRestate) and decision.requeue_after == 0.0


def test_a_version_superseded_before_it_was_registered_retires_without_a_drain_delay() -> None:
    obs = rejected_obs()
    rejected_name = name_of(dict(obs.raw))
    raw = copy.deepcopy(dict(obs.raw))
    raw["spec"]["template"]["spec"]["containers"][0]["image"] = "my-registry/my-service:v3"
    raw["metadata"]["generation"] = 2
    decision = decide(observe(raw, obs.replica_sets, restate=view()), NOW)
    assert phases(decision)[rejected_name] == "Retired"
    assert reasons(decision)[rejected_name] == "NeverRegistered"
    [old] = [
        rs
        for rs in applied(decision.effects, "ReplicaSet")
        if rs["metadata"]["name"] == rejected_name
    ]
    assert old["spec"]["replicas"] == 0


def test_rejections_recorded_in_the_status_survive_a_restart() -> None:
    status = RestateDeploymentStatus.model_validate(
        {
            "observedGeneration": 4,
            "versions": [
                {
                    "name": "v",
                    "hash": "h",
                    "phase": "Rejected",
                    "message": "409 META0006",
                    "rejections": 3,
                    "retryAt": rfc3339(NOW + 120),
                },
                {"name": "w", "hash": "i", "phase": "Latest"},
            ],
        }
    )
    assert recorded_rejections(status) == {
        "v": Rejection(generation=4, attempts=3, retry_at=NOW + 120, message="409 META0006")
    }
    assert recorded_rejections(None) == {}


def test_a_bug_while_deciding_is_an_internal_error_that_does_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_args: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr("restate_op.deployment_decide.judge", broken)
    obs = observe(rsd_raw())
    decision = decide(obs, NOW)
    assert decision.reason == "InternalError" and decision.effects == ()
    assert conclude(obs, decision, Outcome(), NOW).error is decision.error


def test_a_draining_version_scaled_to_zero_gets_pods_back_for_pinned_invocations() -> None:
    world = World(rsd_raw())
    v1, _ = roll_to_v2(world)
    for _ in range(6):
        world.step()
    world.replica_sets[v1]["spec"]["replicas"] = 0  # scaled down by hand
    world.pinned[f"dp_{v1}"] = 1
    world.now += BUSY_REFRESH_SECONDS + 1
    for _ in range(2):
        world.step()
    assert world.version(v1)["reason"] == "InvocationsPinned"
    assert world.replica_sets[v1]["spec"]["replicas"] == 1


def test_a_merely_old_view_is_read_again_without_a_status_write() -> None:
    world = World(rsd_raw())
    v1, v2 = roll_to_v2(world)
    world.pinned[f"dp_{v1}"] = 1
    for _ in range(6):
        world.step()
    world.now += IDLE_REFRESH_SECONDS
    obs = world.observe()
    decision = decide(obs, world.now)
    assert decision.view == "stale"
    assert phases(decision) == {v2: "Latest", v1: "Draining"}
    assert reasons(decision) == {v2: "Latest", v1: "InvocationsPinned"}
    assert [type(e) for e in decision.effects] == [QueryRestate]
    assert decision.requeue_after == 0.0
    assert conclude(obs, decision, Outcome(), world.now).effects == ()


def test_zero_replicas_leave_nothing_to_register() -> None:
    raw = rsd_raw(replicas=0)
    [rs] = applied(decide(observe(raw), NOW).effects, "ReplicaSet")
    decision = decide(observe(raw, (live(rs, "t1"),), restate=view()), NOW)
    assert decision.reason == "NoReplicas" and "spec.replicas is 0" in decision.message
    assert not of(decision.effects, RegisterDeployment)


def test_ready_but_not_yet_available_pods_wait_for_min_ready_seconds() -> None:
    raw = rsd_raw(minReadySeconds=30)
    [rs] = applied(decide(observe(raw), NOW).effects, "ReplicaSet")
    assert rs["spec"]["minReadySeconds"] == 30
    waiting = live(rs, "t1")
    waiting["status"] = {"replicas": 1, "readyReplicas": 1, "availableReplicas": 0}
    decision = decide(observe(raw, (waiting,), restate=view()), NOW)
    assert decision.reason == "ReplicaSetPodNotAvailable"


def test_without_an_answer_retired_versions_stay_retired() -> None:
    world = World(rsd_raw())
    v1, _ = roll_to_v2(world)
    for _ in range(6):
        world.step()
    world.now += 400
    for _ in range(3):
        world.step()
    assert world.version(v1)["phase"] == "Retired"
    world.read = view(error="503 Service Unavailable", at=world.now)
    decision = decide(world.observe(), world.now)
    assert phases(decision)[v1] == "Retired" and reasons(decision)[v1] == "Retired"


def test_deletion_holds_old_versions_too_until_restate_answers() -> None:
    world = World(rsd_raw())
    v1, v2 = roll_to_v2(world)
    world.pinned[f"dp_{v1}"] = 1
    for _ in range(6):
        world.step()
    deleting(world)
    decision = world.step()
    # The last answer predates the deletion: v2 waits for a new one, v1 is kept as it was.
    assert reasons(decision) == {v2: "RestateUnknown", v1: "InvocationsPinned"}
    assert not of(decision.effects, DeregisterDeployment)
    decision = world.step()
    assert phases(decision) == {v2: "Retired", v1: "Draining"}
    assert reasons(decision)[v1] == "InvocationsPinned"


def test_every_declared_verdict_is_reached_by_a_test_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every (phase, reason) the rules declare -- and so states/ lists -- has a test above."""
    seen: set[tuple[str, str]] = set()
    real = deployment_verdicts.judge

    def recording(ctx: Any, v: Any) -> Any:
        verdict = real(ctx, v)
        seen.add((verdict.phase, verdict.reason))
        return verdict

    monkeypatch.setattr(deployment_decide, "judge", recording)
    # Knative mode's tests live in their own module (which imports this one's helpers).
    knative_tests = vars(importlib.import_module("tests.test_deployment_knative"))
    for name, test in [*sorted(globals().items()), *sorted(knative_tests.items())]:
        itself = name == "test_every_declared_verdict_is_reached_by_a_test_here"
        if name.startswith("test_") and not itself and test.__code__.co_argcount == 0:
            test()
    for cluster, reason in [
        (None, "ClusterNotFound"),
        ({**READY_CLUSTER, "status": {}}, "ClusterNotReady"),
    ]:
        test_registration_waits_for_the_target_cluster(cluster, reason)
    # register.cloud's verdicts are reached by its own module (which imports this one).
    cloud_tests = importlib.import_module("tests.test_deployment_cloud")
    for name, test in sorted(vars(cloud_tests).items()):
        if name.startswith("test_") and test.__code__.co_argcount == 0:
            test()
    assert seen >= declared(), sorted(declared() - seen)


def test_a_draining_version_scales_with_its_own_autoscaler_and_loses_it_when_retired() -> None:
    autoscaling = {"minReplicas": 0, "maxReplicas": 4, "metrics": []}
    world = World(rsd_raw(autoscaling=autoscaling))
    v1, v2 = roll_to_v2(world)
    assert world.autoscalers == {}  # the current version follows spec.replicas
    world.pinned[f"dp_{v1}"] = 1
    for _ in range(6):
        world.step()
    hpa = world.autoscalers[v1]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": v1}
    assert hpa["minReplicas"] == 1 and hpa["maxReplicas"] == 4
    assert v2 not in world.autoscalers
    world.pinned.clear()
    world.now += BUSY_REFRESH_SECONDS + 1
    for _ in range(2):
        world.step()
    assert world.version(v1)["reason"] == "DrainDelay" and v1 in world.autoscalers
    world.now += 301
    for _ in range(3):
        world.step()
    assert world.version(v1)["phase"] == "Retired"
    assert world.autoscalers == {}


def test_rollback_removes_the_autoscaler_of_the_version_made_current_again() -> None:
    raw = rsd_raw(autoscaling={"maxReplicas": 3})
    name = name_of(raw)
    [rs] = applied(decide(observe(raw), NOW).effects, "ReplicaSet")
    hpa = {"metadata": {"name": name}, "spec": {}}
    decision = decide(observe(raw, (live(rs, "t1"),), restate=view(), autoscalers={name: hpa}), NOW)
    assert Delete("autoscaling/v2", "HorizontalPodAutoscaler", "default", name) in decision.effects


def test_deletion_creates_nothing_that_is_gone() -> None:
    """A terminating Namespace refuses every create: re-creating a ReplicaSet the namespace
    controller removed would stop the reconcile before the release, and hang the deletion."""
    raw = rsd_raw()
    raw["metadata"]["deletionTimestamp"] = rfc3339(NOW - 5)
    decision = decide(observe(raw, restate=view()), NOW)
    assert not [e for e in decision.effects if isinstance(e, Apply)]
    assert decision.released
