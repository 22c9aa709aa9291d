"""What each version state does, as effects: the planners ``states/restatedeployment.yaml``
names.

Pure. A version in state S runs the planners S lists, in order; to change what a state
does, edit its list there; to add a kind of work, add a planner here (the machine refuses
to load when the two disagree). Every planner is level-triggered: it compares what it wants
with what the caches hold and plans nothing when they agree, so a converged
RestateDeployment costs no write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from restate_op import deployment_knative as knative
from restate_op.cloud_identity import in_process_env
from restate_op.deployment_children import (
    autoscaler,
    pod_latest_label,
    replica_set,
    stable_service,
    version_service,
)
from restate_op.deployment_observe import LATEST_LABEL, rfc3339
from restate_op.deployment_verdicts import Context, Facts, VersionVerdict
from restate_op.diff import up_to_date
from restate_op.effects import (
    Apply,
    Delete,
    DeregisterDeployment,
    Effect,
    RegisterDeployment,
)


@dataclass(frozen=True)
class VersionPlan:
    """One version as the decision sees it: its facts, its verdict, its place."""

    facts: Facts
    verdict: VersionVerdict
    #: The phase a reconcile moves it to now (the first step towards the verdict's).
    phase: str
    #: The version the stable Service and the restate.dev/latest label point at.
    routing: bool
    admin_url: str | None
    #: Its place among the Retired versions, newest first (None: not Retired).
    history_index: int | None = None


Planner = Callable[[Context, VersionPlan], tuple[Effect, ...]]


def _replicas(ctx: Context, plan: VersionPlan) -> int:
    """Retired: none. Draining: as many as it has (its pods finish what is pinned to it;
    one scaled to zero that Restate pinned invocations to gets its pods back). Otherwise:
    the spec's."""
    desired = ctx.obs.rsd.spec.desired_replicas
    if plan.phase == "Retired":
        return 0
    if plan.phase == "Draining":
        live = plan.facts.spec_replicas
        return desired if live == 0 and plan.facts.pinned > 0 else live
    return desired


def _remove_at(plan: VersionPlan) -> str | None:
    at = plan.verdict.remove_at if plan.phase in ("Draining", "Retired") else None
    return rfc3339(at) if at is not None else None


def _deployment_id(plan: VersionPlan) -> str | None:
    # A retired version is no longer registered: its old id would only mislead.
    v = plan.facts
    return v.deployment_id if plan.phase != "Retired" or v.known else None


def apply_knative_version(ctx: Context, plan: VersionPlan) -> tuple[Effect, ...]:
    """Knative mode: the version's Configuration, and its Route once the Configuration
    exists (the Route's owner). Nothing is scaled: Knative scales an unrouted Revision."""
    v = plan.facts
    rsd = ctx.obs.rsd
    manifest = knative.configuration(
        rsd,
        v.name,
        v.hash,
        live=v.replica_set,
        current=v.current,
        deployment_id=_deployment_id(plan),
        remove_at=_remove_at(plan),
        endpoint=v.uri or None,
    )
    if manifest is None or (ctx.obs.deleting and v.replica_set is None):
        return ()
    effects: list[Effect] = []
    if not up_to_date(v.replica_set, manifest):
        effects.append(
            Apply(manifest, refuse_foreign_of=None if v.replica_set else rsd.metadata.uid)
        )
    config = v.replica_set
    if config is None or not config.get("metadata", {}).get("uid"):
        return tuple(effects)
    route = knative.route(rsd, v.name, v.hash, config)
    live = ctx.obs.routes.get(v.name)
    if not up_to_date(live, route) and not (ctx.obs.deleting and live is None):
        effects.append(Apply(route, refuse_foreign_of=None if live else config["metadata"]["uid"]))
    return tuple(effects)


def _in_process_env(ctx: Context, version: str) -> dict[str, str] | None:
    """The RESTATE_INPROC_* variables of an in-process version (upstream §1.8)."""
    cloud = ctx.obs.cloud
    if not ctx.obs.in_process or cloud is None or not cloud.found:
        return None
    return in_process_env(cloud, version)


def apply_version(ctx: Context, plan: VersionPlan) -> tuple[Effect, ...]:
    """The version's ReplicaSet and Service, and the latest label on its pods."""
    if ctx.obs.knative:
        return apply_knative_version(ctx, plan)
    v = plan.facts
    rsd = ctx.obs.rsd
    manifest = replica_set(
        rsd,
        v.name,
        v.hash,
        _replicas(ctx, plan),
        current=v.current,
        live=v.replica_set,
        latest=plan.routing,
        deployment_id=_deployment_id(plan),
        remove_at=_remove_at(plan),
        endpoint=v.uri,
        inject_env=_in_process_env(ctx, v.name) if v.current else None,
    )
    if manifest is None:
        return ()
    if ctx.obs.deleting and v.replica_set is None:
        # Nothing is created while deleting (the Namespace may be terminating, and a refused
        # create would stop the reconcile before the deregistration and the release).
        return ()
    effects: list[Effect] = []
    if not up_to_date(v.replica_set, manifest):
        # A ReplicaSet of this name that is not this RestateDeployment's is never taken over.
        effects.append(
            Apply(manifest, refuse_foreign_of=None if v.replica_set else rsd.metadata.uid)
        )
    svc = version_service(rsd, v.name, v.hash, manifest, plan.routing)
    live_svc = ctx.obs.services.get(v.name)
    if not up_to_date(live_svc, svc) and not (ctx.obs.deleting and live_svc is None):
        effects.append(Apply(svc, refuse_foreign_of=None if live_svc else rsd.metadata.uid))
    if plan.phase != "Retired":
        for pod in ctx.obs.pods_of(v.hash):
            labelled = (pod["metadata"].get("labels") or {}).get(LATEST_LABEL) == "true"
            if labelled != plan.routing:
                effects.append(Apply(pod_latest_label(pod, plan.routing)))
    return tuple(effects)


def register_version(ctx: Context, plan: VersionPlan) -> tuple[Effect, ...]:
    """Register the endpoint, once Restate's view says what it knows (never blindly)."""
    if ctx.view not in ("ok", "forgotten") or plan.admin_url is None:
        return ()
    if plan.verdict.phase != "Registering":
        return ()  # a step on the way (say, Starting first): not registrable yet
    return (
        RegisterDeployment(
            admin_url=plan.admin_url,
            uri=plan.facts.uri,
            version=plan.facts.name,
            use_http11=ctx.obs.rsd.spec.restate.use_http11 is True,
            force=plan.verdict.force,
            token=ctx.obs.token,
        ),
    )


def route_latest(ctx: Context, plan: VersionPlan) -> tuple[Effect, ...]:
    """The stable Service ``<rsd>``, on the version Restate routes new invocations to (not
    in Knative mode: each version has its Route, and no pods of its own to select)."""
    if not plan.routing or ctx.obs.knative:
        return ()
    rs = replica_set(
        ctx.obs.rsd,
        plan.facts.name,
        plan.facts.hash,
        0,
        current=plan.facts.current,
        live=plan.facts.replica_set,
        latest=True,
        deployment_id=None,
        remove_at=None,
        endpoint=plan.facts.uri,
    )
    if rs is None:
        return ()
    rsd = ctx.obs.rsd
    svc = stable_service(rsd, rs)
    live = ctx.obs.services.get(rsd.name)
    if up_to_date(live, svc) or (ctx.obs.deleting and live is None):
        return ()
    return (Apply(svc, refuse_foreign_of=None if live else rsd.metadata.uid),)


def deregister_version(ctx: Context, plan: VersionPlan) -> tuple[Effect, ...]:
    """Remove a retired version from Restate: no ghost pointing at a Service without pods.

    Only on Restate's own word (the view answered and lists it); the verdict already made
    sure no service routes to it and nothing is pinned to it.
    """
    known = plan.facts.known
    if ctx.view != "ok" or known is None or plan.admin_url is None:
        return ()
    return (DeregisterDeployment(plan.admin_url, known.id, plan.facts.name, ctx.obs.token),)


def prune_history(ctx: Context, plan: VersionPlan) -> tuple[Effect, ...]:
    """Beyond revisionHistoryLimit, a retired version's ReplicaSet and Service go."""
    if ctx.obs.deleting or plan.history_index is None or plan.facts.replica_set is None:
        return ()
    if plan.facts.known is not None:
        return ()  # still registered: deregistered first, deleted on a later reconcile
    if plan.history_index < ctx.obs.rsd.spec.history_limit:
        return ()
    namespace = ctx.obs.rsd.namespace
    if ctx.obs.knative:
        # Its Route goes with it (owned by the Configuration).
        return (Delete(knative.SERVING, "Configuration", namespace, plan.facts.name),)
    # The Service first: it is owned by the RestateDeployment, and a version is found by its
    # ReplicaSet, so a Service left behind a deleted ReplicaSet (a crash, a refusal) would
    # never be deleted; the other way round the next reconcile finishes the work.
    effects: list[Effect] = []
    if plan.facts.name in ctx.obs.services:
        effects.append(Delete("v1", "Service", namespace, plan.facts.name))
    effects.append(Delete("apps/v1", "ReplicaSet", namespace, plan.facts.name))
    return tuple(effects)


def autoscale_version(ctx: Context, plan: VersionPlan) -> tuple[Effect, ...]:
    """A draining version scales on its own load (``spec.autoscaling``, upstream §1.7); any
    other version has no HPA: the current one follows ``spec.replicas`` (the scale
    subresource), a retired one has no pods. Not while deleting: nothing new is started."""
    rsd = ctx.obs.rsd
    name = plan.facts.name
    live = ctx.obs.autoscalers.get(name)
    wanted = (
        plan.phase == "Draining"
        and not plan.facts.current
        and rsd.spec.autoscaling is not None
        and not ctx.obs.deleting
        and plan.facts.replica_set is not None
    )
    if not wanted:
        if live is None:
            return ()
        return (Delete("autoscaling/v2", "HorizontalPodAutoscaler", rsd.namespace, name),)
    hpa = autoscaler(rsd, name, plan.facts.hash)
    if up_to_date(live, hpa):
        return ()
    return (Apply(hpa, refuse_foreign_of=None if live else rsd.metadata.uid),)


#: Every planner a state may name in ``states/restatedeployment.yaml``.
PLANNERS: Mapping[str, Planner] = {
    "apply_version": apply_version,
    "register_version": register_version,
    "route_latest": route_latest,
    "deregister_version": deregister_version,
    "prune_history": prune_history,
    "autoscale_version": autoscale_version,
}
