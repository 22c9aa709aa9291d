"""From a plan to a verdict: the phase a RestateCluster is in and the sentence that says why.

Pure. ``RULES`` is ordered: the first rule with something to say wins, so the order is the
priority of the messages (a spec the operator cannot build wins over everything; a healthy
cluster is Ready only when nothing else applies). Each rule declares the (phase, reason)
pairs it may return; ``restate_op.cluster_controller`` checks them against ``states/`` at
load time, and ``judge`` refuses at run time a verdict its rule did not declare.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from restate_op.api.lifecycle import Phase, Reason
from restate_op.observe import Observation
from restate_op.plan import Plan
from restate_op.pod_health import pod_names, pod_problems, running_pods
from restate_op.restate_health import problems as restate_problems
from restate_op.status import Verdict

RuleFn = Callable[[Observation, Plan, float], Verdict | None]


@dataclass(frozen=True)
class Rule:
    name: str
    returns: tuple[tuple[Phase, Reason], ...]
    check: RuleFn


def missing_crd(obs: Observation, plan: Plan, now: float) -> Verdict | None:
    # A prerequisite the cluster lacks, not a mistake in the spec: wait for it.
    if plan.problems and all(p.reason == "MissingCRD" for p in plan.problems):
        return Verdict("Pending", Reason.WAITING_FOR_CRD, plan.problems[0].message)
    return None


def spec_problems(obs: Observation, plan: Plan, now: float) -> Verdict | None:
    if not plan.problems:
        return None
    first = next(p for p in plan.problems if p.reason != "MissingCRD")
    more = f" (and {len(plan.problems) - 1} more problem(s))" if len(plan.problems) > 1 else ""
    return Verdict("Degraded", first.reason, first.message + more)


def name_conflict(obs: Observation, plan: Plan, now: float) -> Verdict | None:
    if plan.namespace != "conflict":
        return None
    return Verdict(
        "Degraded",
        Reason.NAME_CONFLICT,
        f"Namespace {obs.cluster.name} already exists and is not managed by this "
        f"RestateCluster; choose another metadata.name, or annotate the Namespace with "
        f"restate.dev/adopt=true to let this cluster use it",
    )


def volumes(obs: Observation, plan: Plan, now: float) -> Verdict | None:
    v = plan.volumes
    if v is None or not v.expansion_needed:
        return None
    if v.expandable is False:
        return Verdict(
            "Degraded",
            Reason.VOLUME_EXPANSION_NOT_SUPPORTED,
            f"spec.storage.storageRequestBytes asks for {v.requested_bytes} bytes but "
            f"StorageClass {v.storage_class} does not allow volume expansion; set "
            f"allowVolumeExpansion: true on it (volumes are left as they are)",
        )
    if v.to_patch or v.template_outdated:
        return Verdict(
            "Expanding",
            Reason.VOLUME_EXPANSION,
            f"Growing {len(v.to_patch) or 'the'} volume(s) to {v.requested_bytes} bytes",
        )
    waiting = ", ".join(
        f"{name} ({'/'.join(kinds) or 'waiting for the resizer'})" for name, kinds in v.resizing
    )
    return Verdict(
        "Expanding",
        Reason.VOLUME_EXPANSION,
        f"Waiting for volumes to reach {v.requested_bytes} bytes: {waiting}",
    )


def children(obs: Observation, plan: Plan, now: float) -> Verdict | None:
    if not (plan.apply or plan.delete):
        return None
    kinds = sorted({m["kind"] for m in plan.apply} | {d.kind for d in plan.delete})
    return Verdict("Provisioning", Reason.APPLYING_CHILDREN, f"Applying {', '.join(kinds)}")


#: Per cloud: who syncs the binding, and what the canary proves.
_IDENTITY_WORDS = {
    "aws": ("the AWS ACK controller to sync the PodIdentityAssociation", "Pod Identity"),
    "gcp": ("Config Connector to make the IAMPolicyMember Ready", "GKE Workload Identity"),
}
_IDENTITY_REASONS = {
    "aws": (
        Reason.POD_IDENTITY_ASSOCIATION_NOT_SYNCED,
        Reason.POD_IDENTITY_ASSOCIATION_CANARY_FAILED,
        Reason.POD_IDENTITY_ASSOCIATION_CANARY_PENDING,
    ),
    "gcp": (
        Reason.IAM_POLICY_MEMBER_NOT_READY,
        Reason.WORKLOAD_IDENTITY_CANARY_FAILED,
        Reason.WORKLOAD_IDENTITY_CANARY_PENDING,
    ),
}


def identity(obs: Observation, plan: Plan, now: float) -> Verdict | None:
    """The first identity binding not yet proven says what it waits for."""
    for proof in plan.identities:
        not_synced, failed, pending = _IDENTITY_REASONS[proof.provider]
        controller, credentials = _IDENTITY_WORDS[proof.provider]
        if not proof.synced:
            return Verdict("Provisioning", not_synced, f"Waiting for {controller}")
        if proof.canary == "failed":
            return Verdict(
                "Provisioning",
                failed,
                f"The canary Job did not receive {credentials} credentials; retrying "
                "(the identity webhook or IAM may need to catch up)",
            )
        if proof.canary == "pending":
            return Verdict(
                "Provisioning",
                pending,
                f"Waiting for the canary Job to prove {credentials} credentials",
            )
    return None


def pods(obs: Observation, plan: Plan, now: float) -> Verdict | None:
    """A pod that cannot run says why; the first such pod is named, the count of others too."""
    problems = pod_problems(obs.pods, now)
    if not problems:
        return None
    first = problems[0]
    more = f" (and {len(problems) - 1} more pod(s))" if len(problems) > 1 else ""
    return Verdict("Degraded", first.reason, first.message + more)


def roll(obs: Observation, plan: Plan, now: float) -> Verdict | None:
    """A template change reaching the pods one at a time, in Restate's order and pace
    (``restate_op.roll``); halted, Degraded, on a re-created pod that does not come back."""
    step = plan.roll
    if step is None:
        return None
    namespace = obs.cluster.name
    if step.halted is not None:
        return Verdict(
            "Degraded",
            Reason.ROLL_HALTED,
            f"Rolling update halted: {step.halted}; the other pods keep the old template "
            f"until it is back (kubectl describe pod -n {namespace}; fix the spec, or the "
            "node, and the roll goes on)",
        )
    said = f"Rolling update, one pod at a time: {step.updated}/{step.total} pods updated"
    if step.restart is not None:
        said += f"; restarting {step.restart}"
    elif step.waiting is not None:
        said += f"; the next ({step.outdated[0]}) waits: {step.waiting}"
    if step.unchecked is not None:
        said += f" (paced by readiness: Restate's view unread: {step.unchecked})"
    return Verdict("Provisioning", Reason.ROLLING_OUT, said)


def rollout(obs: Observation, plan: Plan, now: float) -> Verdict | None:
    r = plan.rollout
    if r is None or r.complete:
        return None
    # Ready counts only: a message that changed with every updated pod would cost a status
    # write each time and tell a human nothing kubectl get pods does not.
    progress = f"{r.ready}/{r.desired} pods ready"
    cluster = obs.cluster
    was_serving = obs.phase in ("Ready", "Degraded")
    unchanged = (
        cluster.status is not None
        and cluster.status.observed_generation == cluster.metadata.generation
    )
    if was_serving and unchanged and r.settled:
        return Verdict(
            "Degraded",
            Reason.PODS_NOT_READY,
            f"Pods stopped being ready: {progress}; check the pods of namespace {cluster.name}",
        )
    return Verdict("Provisioning", Reason.ROLLING_OUT, f"Waiting for pods: {progress}")


def scaling_down(obs: Observation, plan: Plan, now: float) -> Verdict | None:
    step = plan.scale_down
    if step is None:
        return None
    head = f"Scaling down {step.live} -> {step.target}"
    node = f" (N{step.node_id})" if step.node_id is not None else ""
    if step.refused is not None:
        return Verdict(
            "Degraded",
            Reason.SCALE_DOWN_REFUSED,
            f"{head} refused for {step.departing}: {step.refused}",
        )
    if step.blocked is not None:
        said = f"{head}: {step.departing}{node} waits: {step.blocked}"
    elif step.removing is not None:
        said = (
            f"{head}: removing {step.departing}{node} from the Restate metadata cluster "
            "before its pod goes"
        )
    elif step.unchecked is not None:
        said = (
            f"{head} without asking Restate, whose nodes do not answer ({step.unchecked}): "
            f"{step.departing} goes as the StatefulSet shrinks"
        )
    else:
        said = f"{head}: {step.departing}{node} leaves (not a metadata member)"
    return Verdict("ScalingDown", Reason.SCALING_DOWN, said)


def kept_volumes(obs: Observation) -> list[str]:
    """Claims of pods a scale-down removed: never deleted by the operator."""
    replicas = obs.cluster.spec.compute.desired_replicas
    if replicas == 0:
        return []
    kept = []
    for claim in obs.pvcs:
        name = str(claim.get("metadata", {}).get("name", ""))
        ordinal = name.rsplit("-", 1)[-1]
        if ordinal.isdigit() and int(ordinal) >= replicas:
            kept.append(name)
    return sorted(kept, key=lambda n: int(n.rsplit("-", 1)[-1]))


def provisioning(obs: Observation, plan: Plan, now: float) -> Verdict | None:
    if not plan.provisioning_due:
        return None
    return Verdict("Provisioning", Reason.PROVISIONING_CLUSTER, "Provisioning the Restate cluster")


def restate_health(obs: Observation, plan: Plan, now: float) -> Verdict | None:
    """Ready only when Restate agrees: every pod a joined node, none dead, every partition
    led. A read that failed (no node answered at all) judges nothing: the probes stand.

    A cluster that was serving this generation turns Degraded, naming the pod; one that is
    still rolling out or starting waits for Restate: the roll is only over, and the cluster
    Ready, once Restate counts every restarted pod back in (``roll`` paces the pods
    themselves the same way).
    """
    health = obs.restate_health
    replicas = obs.cluster.spec.compute.desired_replicas
    cluster = obs.cluster
    was_serving = obs.phase in ("Ready", "Degraded")
    if health is None and not was_serving and running_pods(obs.pods, replicas):
        # Asked at once (decide's health_reads); the first Ready already says Restate's word.
        # A serving cluster (an operator restart, memory empty) keeps its phase meanwhile.
        return Verdict(
            "Provisioning", Reason.WAITING_FOR_RESTATE, "Waiting for Restate's view of the cluster"
        )
    if health is None or not health.ok or replicas == 0:
        return None
    found = restate_problems(health, pod_names(replicas))
    if not found:
        return None
    said = "; ".join(found)
    unchanged = (
        cluster.status is not None
        and cluster.status.observed_generation == cluster.metadata.generation
    )
    if was_serving and unchanged:
        return Verdict("Degraded", Reason.RESTATE_UNHEALTHY, f"Restate reports: {said}")
    return Verdict("Provisioning", Reason.WAITING_FOR_RESTATE, f"Waiting for Restate: {said}")


def ready(obs: Observation, plan: Plan, now: float) -> Verdict:
    replicas = plan.rollout.desired if plan.rollout else obs.cluster.spec.compute.desired_replicas
    if replicas == 0:
        return Verdict("Ready", Reason.HIBERNATED, "Hibernated: spec.compute.replicas is 0")
    said = f"Restate cluster ready: {replicas}/{replicas} pods"
    kept = kept_volumes(obs)
    if kept:
        said += (
            f"; volumes of removed pods kept: {', '.join(kept)} (a scale-up reuses them; "
            f"once sure: kubectl delete pvc -n {obs.cluster.name} {' '.join(kept)})"
        )
    return Verdict("Ready", Reason.READY, said)


#: The rules in priority order; the last always answers.
RULES: tuple[Rule, ...] = (
    Rule("missing_crd", (("Pending", Reason.WAITING_FOR_CRD),), missing_crd),
    Rule(
        "spec_problems",
        (("Degraded", Reason.INVALID_CONFIG), ("Degraded", Reason.STORAGE_CLASS_NOT_FOUND)),
        spec_problems,
    ),
    Rule("name_conflict", (("Degraded", Reason.NAME_CONFLICT),), name_conflict),
    Rule(
        "volumes",
        (
            ("Degraded", Reason.VOLUME_EXPANSION_NOT_SUPPORTED),
            ("Expanding", Reason.VOLUME_EXPANSION),
        ),
        volumes,
    ),
    Rule(
        "scaling_down",
        (("ScalingDown", Reason.SCALING_DOWN), ("Degraded", Reason.SCALE_DOWN_REFUSED)),
        scaling_down,
    ),
    Rule("children", (("Provisioning", Reason.APPLYING_CHILDREN),), children),
    Rule(
        "identity",
        (
            ("Provisioning", Reason.POD_IDENTITY_ASSOCIATION_NOT_SYNCED),
            ("Provisioning", Reason.POD_IDENTITY_ASSOCIATION_CANARY_FAILED),
            ("Provisioning", Reason.POD_IDENTITY_ASSOCIATION_CANARY_PENDING),
            ("Provisioning", Reason.IAM_POLICY_MEMBER_NOT_READY),
            ("Provisioning", Reason.WORKLOAD_IDENTITY_CANARY_FAILED),
            ("Provisioning", Reason.WORKLOAD_IDENTITY_CANARY_PENDING),
        ),
        identity,
    ),
    Rule(
        "pods",
        (
            ("Degraded", Reason.POD_IMAGE_UNAVAILABLE),
            ("Degraded", Reason.POD_CRASH_LOOPING),
            ("Degraded", Reason.POD_OOM_KILLED),
            ("Degraded", Reason.POD_UNSCHEDULABLE),
        ),
        pods,
    ),
    Rule(
        "roll",
        (("Degraded", Reason.ROLL_HALTED), ("Provisioning", Reason.ROLLING_OUT)),
        roll,
    ),
    Rule(
        "rollout",
        (("Degraded", Reason.PODS_NOT_READY), ("Provisioning", Reason.ROLLING_OUT)),
        rollout,
    ),
    Rule("provisioning", (("Provisioning", Reason.PROVISIONING_CLUSTER),), provisioning),
    Rule(
        "restate_health",
        (("Degraded", Reason.RESTATE_UNHEALTHY), ("Provisioning", Reason.WAITING_FOR_RESTATE)),
        restate_health,
    ),
    Rule("ready", (("Ready", Reason.READY), ("Ready", Reason.HIBERNATED)), ready),
)


class UndeclaredVerdict(RuntimeError):
    """A rule returned a (phase, reason) it does not declare: a bug in the rule."""


def judge(obs: Observation, plan: Plan, now: float) -> Verdict:
    """The verdict of the first rule that has one (``ready`` always does)."""
    for rule in RULES:
        verdict = rule.check(obs, plan, now)
        if verdict is None:
            continue
        if (verdict.phase, verdict.reason) not in rule.returns:
            raise UndeclaredVerdict(
                f"rule {rule.name} returned {verdict.phase}/{verdict.reason}, "
                f"which it does not declare"
            )
        return verdict
    raise UndeclaredVerdict("no rule gave a verdict")  # pragma: no cover - ready always does
