"""Knative mode (``deploymentMode: knative``, upstream-2026 §1.5): a version is a Knative
Serving ``Configuration`` and ``Route`` named ``<rsd>-<tag>``, registered under the Route's
URL. Pure: builders of the desired manifests and readers of what Knative reports.

The tag is ``spec.knative.tag``, else the version hash: the same tag is an in-place update (a
new Knative Revision behind the same Route, so the same Restate deployment), a changed tag a
new version. The Configuration carries the version annotations the ReplicaSet carries in
ReplicaSet mode (endpoint, deployment id, remove-at), so the drain and retire rules are the
same; "retired" here means deregistered (Knative scales an unrouted Revision down by itself,
``min-scale`` defaults to 0). The Route is owned by its Configuration (upstream's choice:
deleting a Configuration takes its Route along).

Knative itself is optional: the operator watches its kinds only where
``serving.knative.dev/v1`` is served (``Capabilities.knative_serving``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from restate_op.api.deployment import RestateDeployment
from restate_op.children.constants import MANAGED_BY, MANAGED_BY_LABEL
from restate_op.deployment_children import owner_reference
from restate_op.deployment_identity import template_json, version_hash, versioned_name
from restate_op.deployment_observe import (
    ALLOW_LABEL_PREFIX,
    DEPLOYMENT_ID_ANNOTATION,
    ENDPOINT_ANNOTATION,
    OWNED_BY_LABEL,
    POD_TEMPLATE_ANNOTATION,
    REMOVE_AT_ANNOTATION,
    TEMPLATE_HASH_LABEL,
)
from restate_op.diff import with_desired_hash

SERVING = "serving.knative.dev/v1"
DEPLOYMENT_ANNOTATION = "restate.dev/deployment"
TAG_ANNOTATION = "restate.dev/tag"
#: Set by Knative on each Revision: the Configuration it belongs to.
CONFIGURATION_LABEL = "serving.knative.dev/configuration"
VISIBILITY_LABEL = "networking.knative.dev/visibility"
#: Not copied from the RestateDeployment onto the Configuration (upstream's list).
DROPPED_ANNOTATIONS = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "serving.knative.dev/rollout-duration",
)
PORT_PREFIXES = ("h2c", "http1")


def tag(rsd: RestateDeployment, collision_count: int | None = None) -> str:
    knative = rsd.spec.knative
    if knative is not None and knative.tag:
        return knative.tag
    return version_hash(rsd.spec, collision_count)


def version_name(rsd: RestateDeployment, collision_count: int | None = None) -> str:
    return versioned_name(rsd.name, tag(rsd, collision_count))


def invalid_config(rsd: RestateDeployment) -> str | None:
    """Upstream's checks of a Knative template: Knative routes to exactly one container
    port, and Restate needs to know whether it speaks HTTP/2 (``h2c``) or HTTP/1.1."""
    declaring = [c for c in rsd.spec.template.spec.get("containers") or [] if c.get("ports")]
    if len(declaring) != 1:
        return (
            f"spec.template.spec.containers: exactly one container must declare ports in "
            f"Knative mode ({len(declaring)} do)"
        )
    names = [str(p.get("name") or "") for p in declaring[0]["ports"]]
    if not any(n.startswith(PORT_PREFIXES) for n in names):
        return (
            "spec.template.spec.containers[].ports: name the port h2c (HTTP/2) or http1 "
            "(HTTP/1.1) in Knative mode"
        )
    return None


def _scale_annotations(rsd: RestateDeployment) -> dict[str, str]:
    knative = rsd.spec.knative
    wanted = {"autoscaling.knative.dev/min-scale": "0"}
    if knative is not None:
        for key, value in (
            ("min-scale", knative.min_scale),
            ("max-scale", knative.max_scale),
            ("target", knative.target),
        ):
            if value is not None:
                wanted[f"autoscaling.knative.dev/{key}"] = str(value)
    return wanted


def configuration(
    rsd: RestateDeployment,
    name: str,
    tag_: str,
    *,
    live: Mapping[str, Any] | None,
    current: bool,
    deployment_id: str | None,
    remove_at: str | None,
    endpoint: str | None,
) -> dict[str, Any] | None:
    """The version's Configuration; an old version's keeps its live template. None for an
    old version whose Configuration is gone."""
    if current:
        template = rsd.spec.template
        labels = dict((template.metadata.labels if template.metadata else None) or {})
        labels[MANAGED_BY_LABEL] = MANAGED_BY
        cluster = rsd.spec.restate.register.cluster
        if cluster is not None:
            labels[f"{ALLOW_LABEL_PREFIX}{cluster}"] = "true"
        user = dict((template.metadata.annotations if template.metadata else None) or {})
        pod_annotations = {**_scale_annotations(rsd), **user, DEPLOYMENT_ANNOTATION: rsd.name}
        revision: dict[str, Any] = {
            "metadata": {"labels": labels, "annotations": pod_annotations},
            "spec": dict(template.spec),
        }
    elif live is not None:
        revision = dict(((live.get("spec") or {}).get("template")) or {})
    else:
        return None
    annotations = {
        k: v for k, v in (rsd.metadata.annotations or {}).items() if k not in DROPPED_ANNOTATIONS
    }
    annotations.update({DEPLOYMENT_ANNOTATION: rsd.name, TAG_ANNOTATION: tag_})
    live_annotations = (live or {}).get("metadata", {}).get("annotations") or {}
    automatic = rsd.spec.knative is None or not rsd.spec.knative.tag
    if current and automatic:
        annotations[POD_TEMPLATE_ANNOTATION] = template_json(rsd.spec.template)
    elif POD_TEMPLATE_ANNOTATION in live_annotations:
        annotations[POD_TEMPLATE_ANNOTATION] = live_annotations[POD_TEMPLATE_ANNOTATION]
    if endpoint:
        annotations[ENDPOINT_ANNOTATION] = endpoint
    if deployment_id is not None:
        annotations[DEPLOYMENT_ID_ANNOTATION] = deployment_id
    if remove_at is not None:
        annotations[REMOVE_AT_ANNOTATION] = remove_at
    labels = {
        **(rsd.metadata.labels or {}),
        TEMPLATE_HASH_LABEL: tag_,
        OWNED_BY_LABEL: rsd.name,
        MANAGED_BY_LABEL: MANAGED_BY,
    }
    return with_desired_hash(
        {
            "apiVersion": SERVING,
            "kind": "Configuration",
            "metadata": {
                "name": name,
                "namespace": rsd.namespace,
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [owner_reference(rsd)],
            },
            "spec": {"template": revision},
        }
    )


def route(
    rsd: RestateDeployment, name: str, tag_: str, config: Mapping[str, Any]
) -> dict[str, Any]:
    """Cluster-local, all traffic to the Configuration's latest ready Revision; owned by the
    (live) Configuration, so it can only be built once that exists."""
    meta = config["metadata"]
    owner = {
        "apiVersion": SERVING,
        "kind": "Configuration",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
    }
    return with_desired_hash(
        {
            "apiVersion": SERVING,
            "kind": "Route",
            "metadata": {
                "name": name,
                "namespace": rsd.namespace,
                "labels": {
                    VISIBILITY_LABEL: "cluster-local",
                    TEMPLATE_HASH_LABEL: tag_,
                    OWNED_BY_LABEL: rsd.name,
                    MANAGED_BY_LABEL: MANAGED_BY,
                },
                "ownerReferences": [owner],
            },
            "spec": {
                "traffic": [{"configurationName": name, "latestRevision": True, "percent": 100}]
            },
        }
    )


# -- what Knative reports --------------------------------------------------------------------


def _ready(obj: Mapping[str, Any] | None) -> bool:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def route_url(route_: Mapping[str, Any] | None) -> str | None:
    url = ((route_ or {}).get("status") or {}).get("url")
    return str(url) if url else None


def latest_revision(config: Mapping[str, Any] | None) -> str | None:
    status = (config or {}).get("status") or {}
    name = status.get("latestReadyRevisionName") or status.get("latestCreatedRevisionName")
    return str(name) if name else None


def not_serving(
    config: Mapping[str, Any] | None,
    route_: Mapping[str, Any] | None,
    revisions: Mapping[str, Mapping[str, Any]],
) -> tuple[str, str] | None:
    """Upstream's wait gates, in order: (reason, message) of the first not passed, None once
    the Route serves the Configuration's latest Revision at a URL."""
    if config is None:
        return "ConfigurationNotReady", "Creating the Knative Configuration"
    meta, status = config.get("metadata") or {}, config.get("status") or {}
    if status.get("observedGeneration") != meta.get("generation"):
        return "ConfigurationNotReady", "Knative has not seen the Configuration's spec yet"
    created = status.get("latestCreatedRevisionName")
    if not created:
        return "ConfigurationNotReady", "Knative has not created a Revision yet"
    revision = revisions.get(created)
    if revision is None:
        return "ConfigurationNotReady", f"Revision {created} not seen yet"
    if not _ready(revision):
        return "ConfigurationNotReady", f"Revision {created} not Ready yet"
    if route_ is None:
        return "RouteNotReady", "Creating the Knative Route"
    traffic = ((route_.get("status") or {}).get("traffic")) or []
    if not _ready(route_) or not any(t.get("revisionName") == created for t in traffic):
        return "RouteNotReady", f"The Route does not serve Revision {created} yet"
    if route_url(route_) is None:
        return "RouteNotReady", "The Route has no URL yet"
    return None
