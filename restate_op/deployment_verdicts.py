"""From what is known of one version to its phase, and the sentence that says why.

Pure. Two ordered rule lists, as ``restate_op.verdicts`` has for clusters: one for the
*current* version (the one the spec describes), one for the older versions. The first rule
with something to say wins. Each rule declares the (phase, reason) pairs it may return;
``restate_op.deployment_decide`` checks them against ``states/restatedeployment.yaml`` at
import, and ``judge`` refuses at run time a verdict its rule did not declare.

The upstream bugs (upstream-2026 §1.9) these rules are written against:

- *deletion hangs* (1): while deleting, only pinned invocations keep a version -- being
  the latest of a service does not;
- *rollback does not promote* (3): a current version Restate knows but does not route to
  is registered again with ``force``;
- *permanent rejections look transient* (4): a refused registration is ``Rejected`` and
  waits for its backoff or a spec change;
- *mass scale-down on a partial answer* (11): without an answer, or with one that knows
  none of the versions that were registered, no version is retired; the current one is
  registered again;
- *ghost deployments* (2): ``Retired`` means removed from Restate (its effects deregister),
  not merely scaled to zero.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from restate_op import deployment_knative as knative
from restate_op.api.deployment import VersionPhase, VersionStatus
from restate_op.deployment_observe import (
    REMOVE_AT_ANNOTATION,
    DeploymentObservation,
    KnownDeployment,
    Rejection,
    parse_time,
    rfc3339,
)

#: How Restate's view stands: answered, never read, too old to act on, failed, or answered
#: but knowing none of the versions that were registered (a restarted or re-created Restate).
ViewState = Literal["ok", "missing", "stale", "failed", "forgotten"]


@dataclass(frozen=True)
class Facts:
    """Everything known of one version, gathered by ``deployment_decide`` before judging."""

    name: str
    hash: str
    #: The spec's version (the one to run and register); the others are older.
    current: bool
    replica_set: Mapping[str, Any] | None
    uri: str
    #: Restate's entry for the version's endpoint (None: not registered, or no answer).
    known: KnownDeployment | None
    #: Its entry in the recorded status.
    recorded: VersionStatus | None
    #: The deployment id it was last known by (Restate, else annotation, else status).
    deployment_id: str | None
    rejection: Rejection | None

    @property
    def recorded_phase(self) -> VersionPhase | None:
        return self.recorded.phase if self.recorded is not None else None

    def replicas(self, key: str) -> int:
        status = (self.replica_set or {}).get("status") or {}
        return int(status.get(key) or 0)

    @property
    def spec_replicas(self) -> int:
        return int(((self.replica_set or {}).get("spec") or {}).get("replicas") or 0)

    @property
    def remove_at(self) -> float | None:
        annotations = (self.replica_set or {}).get("metadata", {}).get("annotations") or {}
        return parse_time(annotations.get(REMOVE_AT_ANNOTATION))

    @property
    def pinned(self) -> int:
        return self.known.pinned if self.known is not None else 0


@dataclass(frozen=True)
class Context:
    obs: DeploymentObservation
    now: float
    view: ViewState
    #: Why the view is not "ok", for messages.
    view_note: str = ""


@dataclass(frozen=True)
class VersionVerdict:
    phase: VersionPhase
    reason: str
    message: str
    #: Register with force (Restate knows the endpoint and must route to it again).
    force: bool = False
    #: When the version may be retired (the drain delay is running); None: not scheduled.
    remove_at: float | None = None
    #: Due, but Restate's view predates the deadline: read it again before retiring.
    confirm: bool = False


Check = Callable[[Context, Facts], VersionVerdict | None]

RETIRED_MESSAGE = "Scaled to zero and removed from Restate; kept for rollback"
DRAINING_REASONS = ("LatestForServices", "InvocationsPinned", "DrainDelay", "RestateUnknown")


@dataclass(frozen=True)
class Rule:
    name: str
    returns: tuple[tuple[VersionPhase, str], ...]
    check: Check


def _services(known: KnownDeployment) -> str:
    return ", ".join(known.latest_for)


def _pinned(n: int) -> str:
    return f"{n} non-completed invocation{'s' if n != 1 else ''} pinned to it"


# -- the current version -------------------------------------------------------------------


def latest(ctx: Context, v: Facts) -> VersionVerdict | None:
    """Restate routes to it: Latest, whatever its pods do (scaling is not a rollout; the
    Ready condition still waits for the pods)."""
    known = v.known
    if known is None:
        return None
    if set(known.services) <= set(known.latest_for):
        return VersionVerdict("Latest", "Latest", f"Registered as {known.id}, the latest")
    return None


def deleting(ctx: Context, v: Facts) -> VersionVerdict | None:
    """Deletion waits for pinned invocations only (never for being the latest: bug 1)."""
    if not ctx.obs.deleting:
        return None
    if ctx.view != "ok":
        return VersionVerdict(
            "Draining",
            "RestateUnknown",
            f"Deleting: waiting for Restate's answer before removing it ({ctx.view_note})",
            remove_at=v.remove_at,
        )
    if v.pinned > 0:
        return VersionVerdict(
            "Draining", "InvocationsPinned", f"Deleting: waiting for the {_pinned(v.pinned)}"
        )
    return VersionVerdict("Retired", "Deleting", "Deleting: removed from Restate")


def cluster(ctx: Context, v: Facts) -> VersionVerdict | None:
    target = ctx.obs.rsd.spec.restate.register.cluster
    if target is None:
        return None
    if ctx.obs.cluster is None:
        return VersionVerdict(
            "Starting",
            "ClusterNotFound",
            f"RestateCluster {target} (spec.restate.register.cluster) does not exist",
        )
    if not ctx.obs.cluster_ready:
        return VersionVerdict(
            "Starting", "ClusterNotReady", f"Waiting for RestateCluster {target} to be Ready"
        )
    return None


def cloud(ctx: Context, v: Facts) -> VersionVerdict | None:
    """``register.cloud``: the RestateCloudEnvironment exists, is valid and has its token."""
    access = ctx.obs.cloud
    if access is None:
        return None
    if not access.found:
        return VersionVerdict("Starting", "CloudEnvironmentNotFound", access.problem or "")
    if access.problem is not None:
        return VersionVerdict("Starting", "CloudEnvironmentNotReady", access.problem)
    return None


def pods(ctx: Context, v: Facts) -> VersionVerdict | None:
    """Registration needs the pods: Restate discovers the services by calling them. In
    Knative mode, Knative's word instead: the Route serves the latest Revision, Ready."""
    if ctx.obs.knative:
        gate = knative.not_serving(v.replica_set, ctx.obs.routes.get(v.name), ctx.obs.revisions)
        return VersionVerdict("Starting", *gate) if gate is not None else None
    desired = ctx.obs.rsd.spec.desired_replicas
    if desired == 0:
        return VersionVerdict(
            "Starting",
            "NoReplicas",
            "spec.replicas is 0: no pod to register (scale up to register this version)",
        )
    progress = f"{v.replicas('availableReplicas')}/{desired} pods available"
    if v.replica_set is None or v.spec_replicas != desired or v.replicas("replicas") < desired:
        return VersionVerdict("Starting", "ReplicaSetScaling", f"Scaling up: {progress}")
    if v.replicas("readyReplicas") < desired:
        return VersionVerdict("Starting", "ReplicaSetPodNotReady", f"Pods not ready: {progress}")
    if v.replicas("availableReplicas") < desired:
        return VersionVerdict(
            "Starting", "ReplicaSetPodNotAvailable", f"Pods not available yet: {progress}"
        )
    return None


def rejected(ctx: Context, v: Facts) -> VersionVerdict | None:
    """A refusal stands until its backoff passes or the spec changes (bug 4)."""
    r = v.rejection
    if r is None or r.generation != ctx.obs.rsd.metadata.generation or ctx.now >= r.retry_at:
        return None
    code = f"{r.status} {r.code}" if r.code else f"{r.status}"
    return VersionVerdict(
        "Rejected",
        "RegistrationRejected",
        f"Restate refused the registration ({code}): {r.message}; retrying at "
        f"{rfc3339(r.retry_at)} (attempt {r.attempts}), or at once when the spec changes",
    )


def recorded_latest(ctx: Context, v: Facts) -> VersionVerdict | None:
    """Without a usable answer, a version recorded Latest stays so: nothing is re-registered
    blindly (the first reconcile after a restart has no answer yet)."""
    if ctx.view not in ("missing", "stale", "failed") or v.recorded_phase != "Latest":
        return None
    if ctx.view == "stale" and v.recorded is not None and v.recorded.message:
        # Merely old (it is being read again): the recorded sentence stands, no write.
        return VersionVerdict("Latest", "Latest", v.recorded.message)
    return VersionVerdict(
        "Latest", "Latest", f"Registered as {v.deployment_id} (not re-checked: {ctx.view_note})"
    )


def no_answer(ctx: Context, v: Facts) -> VersionVerdict | None:
    if ctx.view not in ("missing", "stale", "failed"):
        return None
    return VersionVerdict("Registering", "WaitingForRestate", f"Waiting for {ctx.view_note}")


def forgotten(ctx: Context, v: Facts) -> VersionVerdict | None:
    if ctx.view != "forgotten":
        return None
    return VersionVerdict(
        "Registering",
        "ReRegistering",
        "Restate knows none of this RestateDeployment's registered versions (restarted or "
        "re-created?): registering the current one again; older versions are kept as they are",
    )


def promote(ctx: Context, v: Facts) -> VersionVerdict | None:
    """Known to Restate but not routed to: a rollback, registered again with force (bug 3)."""
    known = v.known
    if known is None:
        return None
    behind = sorted(set(known.services) - set(known.latest_for))
    return VersionVerdict(
        "Registering",
        "Promoting",
        f"Restate knows {known.id} but routes {', '.join(behind)} elsewhere: registering it "
        f"again with force to make it the latest",
        force=True,
    )


def register(ctx: Context, v: Facts) -> VersionVerdict:
    if v.rejection is not None:
        why = (
            "the spec changed"
            if v.rejection.generation != ctx.obs.rsd.metadata.generation
            else "the backoff passed"
        )
        return VersionVerdict(
            "Registering",
            "RetryingRejected",
            f"Registering again after Restate refused it ({why}): {v.rejection.message}",
        )
    return VersionVerdict("Registering", "Registering", "Registering with Restate")


CURRENT_RULES: tuple[Rule, ...] = (
    Rule(
        "deleting",
        (
            ("Draining", "RestateUnknown"),
            ("Draining", "InvocationsPinned"),
            ("Retired", "Deleting"),
        ),
        deleting,
    ),
    Rule("latest", (("Latest", "Latest"),), latest),
    Rule("recorded_latest", (("Latest", "Latest"),), recorded_latest),
    Rule("cluster", (("Starting", "ClusterNotFound"), ("Starting", "ClusterNotReady")), cluster),
    Rule(
        "cloud",
        (("Starting", "CloudEnvironmentNotFound"), ("Starting", "CloudEnvironmentNotReady")),
        cloud,
    ),
    Rule(
        "pods",
        (
            ("Starting", "NoReplicas"),
            ("Starting", "ReplicaSetScaling"),
            ("Starting", "ReplicaSetPodNotReady"),
            ("Starting", "ReplicaSetPodNotAvailable"),
            ("Starting", "ConfigurationNotReady"),
            ("Starting", "RouteNotReady"),
        ),
        pods,
    ),
    Rule("rejected", (("Rejected", "RegistrationRejected"),), rejected),
    Rule("no_answer", (("Registering", "WaitingForRestate"),), no_answer),
    Rule("forgotten", (("Registering", "ReRegistering"),), forgotten),
    Rule("promote", (("Registering", "Promoting"),), promote),
    Rule(
        "register",
        (("Registering", "Registering"), ("Registering", "RetryingRejected")),
        register,
    ),
)


# -- older versions ------------------------------------------------------------------------


def hold(ctx: Context, v: Facts) -> VersionVerdict | None:
    """No answer, or a suspicious one: keep every old version as it is (bug 11)."""
    if ctx.view == "ok":
        return None
    if v.recorded_phase == "Retired":
        return VersionVerdict("Retired", "Retired", RETIRED_MESSAGE, remove_at=v.remove_at)
    recorded = v.recorded
    if (
        ctx.view == "stale"
        and recorded is not None
        and recorded.phase == "Draining"
        and recorded.reason in DRAINING_REASONS
    ):
        # Merely old (it is being read again): the recorded verdict stands, no write.
        return VersionVerdict(
            "Draining", recorded.reason, recorded.message or "", remove_at=v.remove_at
        )
    return VersionVerdict(
        "Draining",
        "RestateUnknown",
        f"Kept as it is until Restate answers ({ctx.view_note})",
        remove_at=v.remove_at,
    )


def old_deleting(ctx: Context, v: Facts) -> VersionVerdict | None:
    return deleting(ctx, v)


def still_latest(ctx: Context, v: Facts) -> VersionVerdict | None:
    if v.known is None or not v.known.latest_for:
        return None
    return VersionVerdict(
        "Draining",
        "LatestForServices",
        f"Still the latest deployment in Restate of {_services(v.known)} (the current version "
        f"does not offer them, or is not registered yet)",
    )


def pinned(ctx: Context, v: Facts) -> VersionVerdict | None:
    if v.pinned == 0:
        return None
    return VersionVerdict("Draining", "InvocationsPinned", f"Draining: {_pinned(v.pinned)}")


def stays_retired(ctx: Context, v: Facts) -> VersionVerdict | None:
    """Retired is for good (until a rollback makes it current): not rescheduled."""
    if v.recorded_phase != "Retired" or v.known is not None:
        return None
    return VersionVerdict("Retired", "Retired", RETIRED_MESSAGE, remove_at=v.remove_at)


def never_registered(ctx: Context, v: Facts) -> VersionVerdict | None:
    """Nothing can be pinned to what Restate never knew: no drain delay."""
    if v.known is not None or v.deployment_id is not None:
        return None
    if v.recorded_phase in ("Draining", "Latest"):
        return None
    return VersionVerdict(
        "Retired", "NeverRegistered", "Superseded before it was registered; scaled to zero"
    )


def drain_delay(ctx: Context, v: Facts) -> VersionVerdict:
    delay = ctx.obs.rsd.spec.restate.drain_delay
    remove_at = v.remove_at if v.remove_at is not None else ctx.now + delay
    if ctx.now < remove_at:
        return VersionVerdict(
            "Draining",
            "DrainDelay",
            f"Unused; retired at {rfc3339(remove_at)} (spec.restate.drainDelaySeconds {delay})",
            remove_at=remove_at,
        )
    view = ctx.obs.restate
    if view is None or view.read_at < remove_at:
        # Unused when the deadline was set is not unused now: only an answer read after the
        # deadline may retire it (an invocation pinned in between keeps it).
        return VersionVerdict(
            "Draining",
            "DrainDelay",
            f"Unused since before {rfc3339(remove_at)}; confirming with Restate before retiring it",
            remove_at=remove_at,
            confirm=True,
        )
    return VersionVerdict("Retired", "Retired", RETIRED_MESSAGE, remove_at=remove_at)


OLD_RULES: tuple[Rule, ...] = (
    Rule(
        "hold",
        (("Retired", "Retired"), *(("Draining", reason) for reason in DRAINING_REASONS)),
        hold,
    ),
    Rule(
        "deleting",
        (
            ("Draining", "RestateUnknown"),
            ("Draining", "InvocationsPinned"),
            ("Retired", "Deleting"),
        ),
        old_deleting,
    ),
    Rule("still_latest", (("Draining", "LatestForServices"),), still_latest),
    Rule("pinned", (("Draining", "InvocationsPinned"),), pinned),
    Rule("stays_retired", (("Retired", "Retired"),), stays_retired),
    Rule("never_registered", (("Retired", "NeverRegistered"),), never_registered),
    Rule("drain_delay", (("Draining", "DrainDelay"), ("Retired", "Retired")), drain_delay),
)


class UndeclaredVerdict(RuntimeError):
    """A rule returned a (phase, reason) it does not declare: a bug in the rule."""


def judge(ctx: Context, v: Facts) -> VersionVerdict:
    for rule in CURRENT_RULES if v.current else OLD_RULES:
        verdict = rule.check(ctx, v)
        if verdict is None:
            continue
        if (verdict.phase, verdict.reason) not in rule.returns:
            raise UndeclaredVerdict(
                f"rule {rule.name} returned {verdict.phase}/{verdict.reason}, "
                f"which it does not declare"
            )
        return verdict
    raise UndeclaredVerdict("no rule gave a verdict")  # pragma: no cover - the last always does


def declared() -> set[tuple[str, str]]:
    return {pair for rule in (*CURRENT_RULES, *OLD_RULES) for pair in rule.returns}
