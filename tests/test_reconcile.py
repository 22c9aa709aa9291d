"""State in, decision out; outcome in, conclusion out: every branch of a reconcile, no cluster.

In the style of canonical/operator's Scenario: build an observation, call the pure
``decide``, check the effects; hand ``conclude`` an outcome, check the status written (or
held), the Events and the requeue.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest
from pydantic import ValidationError

from restate_op.api.models import RestateCluster
from restate_op.coalesce import Held
from restate_op.controller import Conclusion, sooner
from restate_op.decide import MACHINE, ClusterDecision, conclude, decide, memory_key
from restate_op.effects import (
    Apply,
    Delete,
    Emit,
    Forget,
    OrphanDelete,
    Outcome,
    PatchClaimSize,
    Provision,
    ProvisionResult,
    Remember,
    WriteStatus,
)
from restate_op.executor import classify
from restate_op.kube.errors import KubeError
from restate_op.observe import Observation, Unreadable
from restate_op.outcomes import child_conflict
from restate_op.plan import make_plan
from restate_op.restate_health import RestateHealth
from restate_op.settings import Capabilities, OperatorSettings
from tests.test_verdicts import UID, _grown, cluster, converged, observe, pvc

NOW = 1_800_000_000.0


def writes(conclusion: Conclusion) -> list[WriteStatus]:
    return [e for e in conclusion.effects if isinstance(e, WriteStatus)]


def events(conclusion: Conclusion) -> list[tuple[str, str, str]]:
    return [(e.type, e.reason, e.action) for e in conclusion.effects if isinstance(e, Emit)]


def run(obs: Observation, outcome: Outcome | None = None) -> tuple[ClusterDecision, Conclusion]:
    decision = decide(obs, NOW)
    return decision, conclude(obs, decision, outcome or Outcome(), NOW)


def no_coalescing(obs: Observation) -> Observation:
    return replace(obs, settings=OperatorSettings(status_coalesce_seconds=0))


# -- a new cluster ---------------------------------------------------------------------------


def test_new_cluster_applies_every_child_in_order_and_moves_to_provisioning() -> None:
    obs = no_coalescing(observe(cluster()))
    decision, conclusion = run(obs)
    assert decision.phase == "Provisioning" and decision.reason == "ApplyingChildren"
    assert [t.trigger for t in decision.path] == ["provision"]
    kinds = [e.kind for e in decision.effects if isinstance(e, Apply)]
    assert kinds[0] == "Namespace" and kinds[-1] == "StatefulSet"
    assert all(isinstance(e, Apply) for e in decision.effects)
    [write] = writes(conclusion)
    assert write.phase == "Provisioning" and write.name == "rc"
    assert events(conclusion) == [("Normal", "Provisioning", "PendingToProvisioning")]


def test_new_cluster_status_is_held_within_the_window_and_the_event_still_sent() -> None:
    obs = observe(cluster())
    _, conclusion = run(obs)
    assert writes(conclusion) == []
    [remember] = [e for e in conclusion.effects if isinstance(e, Remember)]
    assert remember.key == memory_key("rc")
    assert isinstance(remember.value, Held) and remember.value.since == NOW
    assert conclusion.requeue_after == pytest.approx(1.0)
    assert events(conclusion) == [("Normal", "Provisioning", "PendingToProvisioning")]


def test_a_held_status_is_written_once_its_window_passed() -> None:
    obs = replace(observe(cluster("Provisioning")), held_since=NOW - 1.0)
    _, conclusion = run(obs)
    assert [w.phase for w in writes(conclusion)] == ["Provisioning"]
    assert Forget(memory_key("rc")) in conclusion.effects


def test_pending_toward_ready_takes_one_step_through_provisioning() -> None:
    obs = converged(cluster("Pending"))
    decision, conclusion = run(no_coalescing(obs))
    assert [t.dest for t in decision.path] == ["Provisioning", "Ready"]
    assert decision.phase == "Provisioning"
    assert MACHINE.state("Provisioning").effects == (
        "apply_children",
        "delete_stale_children",
        "provision_restate",
        "roll_pods",
    )
    assert events(conclusion) == [("Normal", "Provisioning", "PendingToProvisioning")]


# -- converged ------------------------------------------------------------------------------


def test_converged_cluster_does_nothing_and_writes_nothing() -> None:
    obs = converged(cluster("Provisioning"))
    decision, conclusion = run(obs)
    assert decision.effects == ()
    # The status changes once (to Ready); the next reconcile finds nothing to write.
    [write] = writes(conclusion)
    live = copy.deepcopy(dict(obs.raw))
    live["status"] = dict(write.status)
    again = observe(live, dict(obs.children), obs.namespace, obs.pvcs)
    decision, conclusion = run(again)
    assert decision.effects == ()
    assert writes(conclusion) == [] and events(conclusion) == []
    assert conclusion.effects == (Forget(memory_key("rc")),)


def test_ready_prunes_stale_children() -> None:
    base = converged(cluster("Ready"))
    children = dict(base.children)
    children[("ConfigMap", "restate-config-deadbeef")] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "restate-config-deadbeef"},
    }
    obs = observe(dict(base.raw), children, base.namespace, base.pvcs)
    decision, _ = run(obs)
    assert Delete("v1", "ConfigMap", "rc", "restate-config-deadbeef") in decision.effects


def test_a_deleted_child_of_a_ready_cluster_is_restored_with_a_drift_event() -> None:
    base = converged(cluster("Ready"))
    ready = converged_with_status(base)
    children = dict(ready.children)
    del children[("Service", "restate")]
    obs = observe(dict(ready.raw), children, ready.namespace, ready.pvcs)
    decision, _ = run(obs)
    applies = [e for e in decision.effects if isinstance(e, Apply)]
    assert [(a.kind, a.name) for a in applies] == [("Service", "restate")]
    [drift] = [e for e in decision.effects if isinstance(e, Emit)]
    assert drift.reason == "DriftCorrected" and "Service/restate (deleted)" in drift.note


def converged_with_status(obs: Observation) -> Observation:
    """``obs`` with the Ready status its own reconcile would write (so drift is visible)."""
    _, conclusion = run(no_coalescing(obs))
    raw = copy.deepcopy(dict(obs.raw))
    [write] = writes(conclusion)
    raw["status"] = dict(write.status)
    return observe(raw, dict(obs.children), obs.namespace, obs.pvcs)


def test_adopted_namespace_checks_for_foreign_children_before_applying() -> None:
    adopted = {
        "metadata": {"name": "rc", "uid": "other", "annotations": {"restate.dev/adopt": "true"}}
    }
    decision, _ = run(observe(cluster(), namespace=adopted))
    applies = [e for e in decision.effects if isinstance(e, Apply)]
    assert applies and all(a.refuse_foreign_of == UID for a in applies)
    owned, _ = run(observe(cluster()))
    assert all(e.refuse_foreign_of is None for e in owned.effects if isinstance(e, Apply))


# -- expansion ------------------------------------------------------------------------------


def _expanding(resizing: bool = False) -> Observation:
    base = converged(cluster("Ready", replicas=3, auto_provision=False))
    grown = _grown(dict(base.raw), 4 * 2**30)
    if not resizing:
        return observe(grown, dict(base.children), base.namespace, base.pvcs)
    children = copy.deepcopy(dict(base.children))
    template = children[("StatefulSet", "restate")]["spec"]["volumeClaimTemplates"][0]
    template["spec"]["resources"]["requests"]["storage"] = str(4 * 2**30)
    grown["status"]["phase"] = "Expanding"
    pvcs = tuple(pvc(i, 4 * 2**30, 2 * 2**30, ("Resizing",)) for i in range(3))
    return observe(grown, children, base.namespace, pvcs)


def test_expansion_patches_every_claim_then_orphan_deletes_the_statefulset() -> None:
    decision, conclusion = run(_expanding())
    assert decision.phase == "Expanding"
    effects = [e for e in decision.effects if not isinstance(e, Apply | Delete)]
    patches = [e for e in effects if isinstance(e, PatchClaimSize)]
    assert [p.name for p in patches] == [f"storage-restate-{i}" for i in range(3)]
    assert all(p.size_bytes == 4 * 2**30 for p in patches)
    orphan = [e for e in effects if isinstance(e, OrphanDelete)]
    assert orphan == [OrphanDelete("rc", "restate", "uid-StatefulSet")]
    reasons = [e.reason for e in effects if isinstance(e, Emit)]
    assert reasons == ["VolumesResized", "StatefulSetRecreated"]
    assert decision.requeue_after == 0.5
    # The start of an expansion is written at once, not held.
    assert [w.phase for w in writes(conclusion)] == ["Expanding"]


def test_expansion_looks_again_while_volumes_resize() -> None:
    decision, conclusion = run(_expanding(resizing=True))
    assert decision.phase == "Expanding"
    assert not any(isinstance(e, PatchClaimSize | OrphanDelete) for e in decision.effects)
    assert decision.requeue_after == 5.0
    assert conclusion.requeue_after is not None and conclusion.requeue_after <= 5.0


# -- provisioning a multi-node cluster ------------------------------------------------------


def running(*names: str) -> tuple[dict[str, Any], ...]:
    return tuple(
        {"metadata": {"name": n, "namespace": "rc"}, "status": {"phase": "Running"}} for n in names
    )


def test_multi_node_cluster_provisions_through_the_first_pod_once_it_runs() -> None:
    obs = replace(converged(cluster("Provisioning", replicas=3)), pods=running("restate-0"))
    decision, _ = run(obs)
    [provision] = [e for e in decision.effects if isinstance(e, Provision)]
    assert provision.target == "restate-0.restate-cluster.rc.svc.cluster.local:5122"


def test_waiting_for_the_first_pod_is_said_in_the_status() -> None:
    obs = no_coalescing(converged(cluster("Provisioning", replicas=3)))
    # Restate's health was just read (it is read on its own clock, see test_cluster_health).
    obs = replace(obs, pods=running("restate-1"), restate_health=RestateHealth(NOW, error="x"))
    decision, conclusion = run(obs)
    assert not any(isinstance(e, Provision) for e in decision.effects)
    [write] = writes(conclusion)
    assert "Waiting for pod restate-0 to run before provisioning" in write.status["message"]
    assert conclusion.requeue_after == 5.0


def test_a_provisioned_cluster_records_it_at_once_with_an_event() -> None:
    obs = converged(cluster("Provisioning", replicas=3))
    outcome = Outcome(provision=ProvisionResult(True, False, "Provisioned the Restate cluster"))
    _, conclusion = run(obs, outcome)
    [write] = writes(conclusion)
    assert write.status["provisioned"] is True
    assert events(conclusion)[0] == ("Normal", "Provisioned", "Provision")
    assert conclusion.requeue_after == 0.0


def test_a_failed_provisioning_is_a_warning_and_retried() -> None:
    obs = no_coalescing(converged(cluster("Provisioning", replicas=3)))
    result = ProvisionResult(False, False, "ProvisionCluster failed: UNAVAILABLE: no route")
    _, conclusion = run(obs, Outcome(provision=result))
    assert ("Warning", "ProvisioningFailed", "Provision") in events(conclusion)
    [write] = writes(conclusion)
    assert "UNAVAILABLE" in write.status["message"]
    assert conclusion.requeue_after == 5.0 and conclusion.error is None


def test_a_bad_node_address_template_is_an_operator_bug_not_an_outage() -> None:
    settings = OperatorSettings(node_address_template="{pod}.{nope}:5122")
    obs = replace(
        converged(cluster("Provisioning", replicas=3)), settings=settings, pods=running("restate-0")
    )
    decision, conclusion = run(obs)
    assert decision.effects == ()
    [write] = writes(conclusion)
    degraded = next(c for c in write.status["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "InternalError"
    assert "KeyError" in degraded["message"] and "operator log" in degraded["message"]
    assert conclusion.error is not None
    assert conclusion.error.error_class.metric_label == "Internal"
    assert ("Warning", "ReconcileFailed", "ProvisioningToDegraded") in events(conclusion)


# -- failures while carrying out effects ----------------------------------------------------


@pytest.mark.parametrize(
    ("error", "reason", "label"),
    [
        (KubeError("boom", status=503, reason="ServiceUnavailable"), "ApiError", "KubeTransient"),
        (KubeError("bad", status=422, reason="Invalid"), "ApplyRejected", "KubePermanent"),
        (child_conflict("Service restate already exists"), "ChildConflict", "KubePermanent"),
        (TypeError("unsupported operand"), "InternalError", "Internal"),
    ],
)
def test_each_kind_of_failure_has_its_reason_and_metric_label(
    error: Exception, reason: str, label: str
) -> None:
    obs = no_coalescing(observe(cluster("Provisioning")))
    _, conclusion = run(obs, Outcome(error=classify(error)))
    [write] = writes(conclusion)
    assert write.phase == "Degraded"
    degraded = next(c for c in write.status["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == reason
    assert conclusion.error is not None and conclusion.error.error_class.metric_label == label
    assert events(conclusion) == [("Warning", "ReconcileFailed", "ProvisioningToDegraded")]


def test_an_outage_message_says_it_is_retried_and_keeps_retry_after() -> None:
    error = classify(KubeError("slow down", status=429, reason="TooManyRequests", retry_after=7))
    assert "persisted after retries" in error.message
    assert getattr(error, "retry_after", None) == 7


def test_a_failure_while_degraded_emits_no_second_event() -> None:
    obs = no_coalescing(observe(cluster("Degraded")))
    _, conclusion = run(obs, Outcome(error=classify(KubeError("x", status=500))))
    assert events(conclusion) == []


# -- spec the operator cannot read ----------------------------------------------------------


def test_an_unreadable_spec_is_degraded_once_with_the_field() -> None:
    raw = cluster("Ready")
    raw["spec"]["compute"]["replicas"] = "three"
    with pytest.raises(ValidationError) as caught:
        RestateCluster.model_validate(raw)
    obs = Unreadable("rc", raw, caught.value)
    decision, conclusion = decide(obs, NOW), None
    conclusion = conclude(obs, decision, Outcome(), NOW)
    assert decision.effects == ()
    [write] = writes(conclusion)
    assert "spec.compute.replicas" in write.status["message"]
    assert events(conclusion) == [("Warning", "InvalidSpec", "ToDegraded")]
    assert conclusion.effects[0] == Forget(memory_key("rc"))


# -- small pieces ---------------------------------------------------------------------------


def test_sooner_is_the_earlier_delay() -> None:
    assert sooner(5.0, 0.5) == 0.5
    assert sooner(0.5, 5.0) == 0.5
    assert sooner(None, 3.0) == 3.0
    assert sooner(3.0, None) == 3.0
    assert sooner(None, None) is None


def test_conclusion_requeues_at_the_earliest_of_decision_outcome_and_hold() -> None:
    obs = no_coalescing(_expanding(resizing=True))
    decision = decide(obs, NOW)
    conclusion = conclude(obs, decision, Outcome(requeue_after=1.0), NOW)
    assert conclusion.requeue_after == 1.0


def test_a_passed_canary_job_is_kept_as_the_proof() -> None:
    raw = cluster("Ready")
    raw["spec"]["security"] = {
        "awsPodIdentityAssociationRoleArn": "arn:aws:iam::123456789012:role/restate"
    }
    settings = OperatorSettings(aws_pod_identity_association_cluster="eks")
    pia: dict[str, Any] = {
        "apiVersion": "eks.services.k8s.aws/v1alpha1",
        "kind": "PodIdentityAssociation",
        "metadata": {"name": "restate"},
        "status": {"conditions": [{"type": "ACK.ResourceSynced", "status": "True"}]},
    }
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "restate-pia-canary"},
        "status": {"conditions": [{"type": "Complete", "status": "True"}]},
    }
    obs = replace(
        observe(
            raw,
            {("PodIdentityAssociation", "restate"): pia, ("Job", "restate-pia-canary"): job},
        ),
        settings=settings,
        capabilities=Capabilities(pod_identity_association=True),
    )
    plan = make_plan(obs)
    assert [(p.provider, p.canary) for p in plan.identities] == [("aws", "passed")]
    assert all(d.name != "restate-pia-canary" for d in plan.delete)
