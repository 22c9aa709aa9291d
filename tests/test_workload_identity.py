"""GKE Workload Identity decided state in, state out: the plan, the verdict, the effects.

The operator's side of the binding without a cluster: which flag and API it needs, the
IAMPolicyMember first, then the canary, then the StatefulSet, and the clean-up.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from restate_op.cluster_controller import OPTIONAL_CHILD_KINDS
from restate_op.effects import Delete, Emit
from restate_op.kube import resources
from restate_op.observe import Observation
from restate_op.plan import make_plan
from restate_op.settings import Capabilities, OperatorSettings
from restate_op.workload_identity import IdentityProof
from tests.test_reconcile import run
from tests.test_verdicts import cluster, observe, verdict

EMAIL = "restate-sa@my-project.iam.gserviceaccount.com"
ANNOTATION = "iam.gke.io/gcp-service-account"
WI = OperatorSettings(gcp_workload_identity=True, status_coalesce_seconds=0)
CONFIG_CONNECTOR = Capabilities(iam_policy_member=True)
IPM = ("IAMPolicyMember", "restate-workload-identity")
CANARY = ("Job", "restate-wi-canary")


def annotated(email: str = EMAIL, phase: str | None = "Provisioning") -> dict[str, Any]:
    raw = cluster(phase)
    raw["spec"]["security"] = {"serviceAccountAnnotations": {ANNOTATION: email}}
    return raw


def with_wi(
    raw: dict[str, Any],
    children: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
    settings: OperatorSettings = WI,
    capabilities: Capabilities = CONFIG_CONNECTOR,
) -> Observation:
    return replace(observe(raw, children), settings=settings, capabilities=capabilities)


def settled(obs: Observation, **status: dict[str, Any]) -> Observation:
    """Every child the plan applies made live, with ``status`` set on the named kinds."""
    children = {k: dict(v) for k, v in obs.children.items()}
    namespace = obs.namespace
    for _ in range(5):
        plan = make_plan(replace(obs, children=children, namespace=namespace))
        if not plan.apply:
            break
        for manifest in plan.apply:
            live = copy.deepcopy(manifest)
            if manifest["kind"] == "Namespace":
                namespace = live
                continue
            if manifest["kind"] in status:
                live["status"] = status[manifest["kind"]]
            children[(manifest["kind"], manifest["metadata"]["name"])] = live
    return replace(obs, children=children, namespace=namespace)


def kinds(plan_apply: tuple[dict[str, Any], ...]) -> list[str]:
    return [m["kind"] for m in plan_apply]


READY = {"conditions": [{"type": "Ready", "status": "True", "reason": "UpToDate"}]}
COMPLETE = {"conditions": [{"type": "Complete", "status": "True"}]}
FAILED = {"conditions": [{"type": "Failed", "status": "True"}]}


def test_flag_without_config_connector_waits_in_pending_and_applies_nothing() -> None:
    obs = with_wi(annotated(phase=None), capabilities=Capabilities())
    result = verdict(obs)
    assert (result.phase, result.reason) == ("Pending", "WaitingForCRD")
    assert "iampolicymembers.iam.cnrm.cloud.google.com" in result.message
    assert "serviceAccountAnnotations[iam.gke.io/gcp-service-account]" in result.message
    decision, _ = run(obs)
    assert decision.phase == "Pending" and decision.effects == ()


def test_malformed_email_is_degraded_naming_the_annotation_and_the_format() -> None:
    for capabilities in (CONFIG_CONNECTOR, Capabilities()):
        obs = with_wi(annotated("restate@example.com"), capabilities=capabilities)
        result = verdict(obs)
        assert (result.phase, result.reason) == ("Degraded", "InvalidConfig")
        assert "spec.security.serviceAccountAnnotations[iam.gke.io/gcp-service-account]" in (
            result.message
        )
        assert "NAME@PROJECT.iam.gserviceaccount.com" in result.message


def test_the_iam_policy_member_comes_first_and_holds_back_the_statefulset() -> None:
    obs = with_wi(annotated())
    plan = make_plan(obs)
    assert "IAMPolicyMember" in kinds(plan.apply)
    assert "Job" not in kinds(plan.apply) and "StatefulSet" not in kinds(plan.apply)
    # Config Connector has not made it Ready yet.
    obs = settled(obs)
    plan = make_plan(obs)
    assert plan.identities == (IdentityProof("gcp", synced=False),)
    result = verdict(obs)
    assert (result.phase, result.reason) == ("Provisioning", "IAMPolicyMemberNotReady")
    assert "Config Connector" in result.message


def test_a_ready_binding_starts_the_canary_and_still_no_statefulset() -> None:
    obs = settled(with_wi(annotated()), IAMPolicyMember=READY)
    plan = make_plan(obs)
    assert plan.identities == (IdentityProof("gcp", synced=True, canary="pending"),)
    assert obs.child(*CANARY) is not None and obs.statefulset is None
    result = verdict(obs)
    assert (result.phase, result.reason) == ("Provisioning", "WorkloadIdentityCanaryPending")


def test_a_failed_canary_is_deleted_to_be_retried() -> None:
    obs = settled(with_wi(annotated()), IAMPolicyMember=READY, Job=FAILED)
    assert make_plan(obs).identities == (IdentityProof("gcp", synced=True, canary="failed"),)
    decision, _ = run(obs)
    deletes = [(e.kind, e.name) for e in decision.effects if isinstance(e, Delete)]
    assert deletes == [CANARY]
    assert obs.statefulset is None


def test_a_passed_canary_lets_the_pods_start_with_the_account_on_their_template() -> None:
    obs = settled(with_wi(annotated()), IAMPolicyMember=READY, Job=COMPLETE)
    sts = obs.statefulset
    assert sts is not None
    annotations = sts["spec"]["template"]["metadata"]["annotations"]
    assert annotations["restate.dev/gcp-service-account"] == EMAIL
    plan = make_plan(obs)
    assert plan.identities == (IdentityProof("gcp", synced=True, canary="passed"),)
    assert plan.apply == () and plan.delete == (), "the passed canary is kept as the proof"
    assert verdict(obs).reason == "RollingOut"


def test_removing_the_annotation_deletes_the_binding_and_its_canary() -> None:
    obs = settled(with_wi(annotated()), IAMPolicyMember=READY, Job=COMPLETE)
    raw = cluster("Ready")
    gone = replace(with_wi(raw, obs.children), namespace=obs.namespace)
    plan = make_plan(gone)
    metadata_policy = ("NetworkPolicy", "allow-restate-egress-to-gke-metadata")
    assert {(d.kind, d.name) for d in plan.delete} == {IPM, CANARY, metadata_policy}
    decision, _ = run(gone)
    deleted = {(e.kind, e.name) for e in decision.effects if isinstance(e, Delete)}
    assert deleted == {IPM, CANARY, metadata_policy}
    # The pods roll off the account (the annotation leaves their template).
    [sts] = [m for m in plan.apply if m["kind"] == "StatefulSet"]
    assert "restate.dev/gcp-service-account" not in sts["spec"]["template"]["metadata"].get(
        "annotations", {}
    )


def test_without_the_flag_the_annotation_is_ignored_with_a_warning_naming_the_flag() -> None:
    obs = with_wi(annotated(phase=None), settings=OperatorSettings(status_coalesce_seconds=0))
    plan = make_plan(obs)
    assert "IAMPolicyMember" not in kinds(plan.apply) and plan.identities == ()
    assert "StatefulSet" in kinds(plan.apply), "nothing is waited for"
    [sa] = [m for m in plan.apply if m["kind"] == "ServiceAccount"]
    assert sa["metadata"]["annotations"][ANNOTATION] == EMAIL
    decision, _ = run(obs)
    [warning] = [e for e in decision.effects if isinstance(e, Emit)]
    assert (warning.type, warning.reason) == ("Warning", "WorkloadIdentityDisabled")
    assert "--gcp-workload-identity" in warning.note
    # Once the ServiceAccount carries it, reconciles say nothing more.
    quiet = settled(obs)
    decision, _ = run(quiet)
    assert not [e for e in decision.effects if isinstance(e, Emit)]


def test_iam_policy_members_are_watched_only_with_the_flag_and_the_api() -> None:
    """Upstream v2.3.1: unconditional clean-up looped on 403s where the API is not granted;
    what is not watched is never observed, so never pruned."""
    [enabled] = [e for kind, e in OPTIONAL_CHILD_KINDS if kind == resources.IAM_POLICY_MEMBER]
    assert enabled(CONFIG_CONNECTOR, WI)
    assert not enabled(CONFIG_CONNECTOR, OperatorSettings())
    assert not enabled(Capabilities(), WI)


def test_pod_identity_and_workload_identity_both_hold_the_statefulset() -> None:
    raw = annotated()
    raw["spec"]["security"]["awsPodIdentityAssociationRoleArn"] = (
        "arn:aws:iam::123456789012:role/restate"
    )
    settings = WI.model_copy(update={"aws_pod_identity_association_cluster": "eks"})
    both = Capabilities(iam_policy_member=True, pod_identity_association=True)
    synced = {"conditions": [{"type": "ACK.ResourceSynced", "status": "True"}]}
    obs = settled(
        with_wi(raw, settings=settings, capabilities=both),
        IAMPolicyMember=READY,
        PodIdentityAssociation=synced,
    )
    aws_job = obs.child("Job", "restate-pia-canary")
    assert aws_job is not None and obs.child(*CANARY) is not None
    # Only Pod Identity proven: still no StatefulSet, and the verdict names the GCP canary.
    children = {k: dict(v) for k, v in obs.children.items()}
    children[("Job", "restate-pia-canary")]["status"] = COMPLETE
    half = replace(obs, children=children)
    assert "StatefulSet" not in kinds(make_plan(half).apply)
    assert verdict(half).reason == "WorkloadIdentityCanaryPending"
    children[CANARY]["status"] = COMPLETE
    whole = settled(replace(obs, children=children))
    assert whole.statefulset is not None
    annotations = whole.statefulset["spec"]["template"]["metadata"]["annotations"]
    assert annotations["restate.dev/gcp-service-account"] == EMAIL
    assert "restate.dev/aws-pod-identity-association-role-arn" in annotations
