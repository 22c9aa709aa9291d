"""The objects of a RestateDeployment's versions, as desired manifests: pure builders.

Per version a ReplicaSet and a ClusterIP Service named ``<rsd>-<hash>``; per
RestateDeployment a stable Service ``<rsd>`` that selects the version Restate routes new
invocations to (upstream #132 asks for it: ingress, blue/green, plain HTTP on the same
pods). Everything is server-side applied by the executor with the operator's field
manager; each manifest carries its own hash (``restate_op.diff``) so an unchanged one is not
sent.

The current version's ReplicaSet is built from the spec. An older version's is rebuilt from
its live ReplicaSet (its template is no longer in the spec), keeping every field the
operator applied before -- a server-side apply that left one out would delete it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from restate_op.api.deployment import RestateDeployment
from restate_op.api.deployment_crd import API_VERSION, FINALIZER, KIND
from restate_op.children.constants import MANAGED_BY, MANAGED_BY_LABEL
from restate_op.cloud_identity import with_env
from restate_op.deployment_identity import ENDPOINT_PORT, PORT_NAME, target_port, template_json
from restate_op.deployment_observe import (
    ALLOW_LABEL_PREFIX,
    DEPLOYMENT_ID_ANNOTATION,
    ENDPOINT_ANNOTATION,
    LATEST_LABEL,
    OWNED_BY_LABEL,
    POD_TEMPLATE_ANNOTATION,
    REMOVE_AT_ANNOTATION,
    TEMPLATE_HASH_LABEL,
)
from restate_op.diff import with_desired_hash


def owner_reference(rsd: RestateDeployment) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": rsd.name,
        "uid": rsd.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _object_labels(rsd: RestateDeployment, hash_: str, latest: bool) -> dict[str, str]:
    labels = {
        TEMPLATE_HASH_LABEL: hash_,
        OWNED_BY_LABEL: rsd.name,
        MANAGED_BY_LABEL: MANAGED_BY,
    }
    if latest:
        labels[LATEST_LABEL] = "true"
    return labels


def _pod_labels(rsd: RestateDeployment, hash_: str) -> dict[str, str]:
    template = rsd.spec.template
    labels = dict((template.metadata.labels if template.metadata else None) or {})
    labels[TEMPLATE_HASH_LABEL] = hash_
    cluster = rsd.spec.restate.register.cluster
    if cluster is not None:
        # restate-op's (and upstream's) cluster NetworkPolicies admit pods with this label.
        labels[f"{ALLOW_LABEL_PREFIX}{cluster}"] = "true"
    return labels


def replica_set(
    rsd: RestateDeployment,
    name: str,
    hash_: str,
    replicas: int,
    *,
    current: bool,
    live: Mapping[str, Any] | None,
    latest: bool,
    deployment_id: str | None,
    remove_at: str | None,
    endpoint: str,
    inject_env: Mapping[str, str] | None = None,
) -> dict[str, Any] | None:
    """The version's ReplicaSet; None for an old version whose ReplicaSet is gone.

    ``inject_env``: variables added to every container of the current version's pods (the
    in-process tunnel's ``RESTATE_INPROC_*``).
    """
    annotations: dict[str, str] = {}
    if current:
        template = rsd.spec.template
        pod_labels = _pod_labels(rsd, hash_)
        pod_meta: dict[str, Any] = {"labels": pod_labels}
        if template.metadata is not None and template.metadata.annotations:
            pod_meta["annotations"] = dict(template.metadata.annotations)
        pod_spec = with_env(template.spec, inject_env) if inject_env else dict(template.spec)
        pod_template: dict[str, Any] = {"metadata": pod_meta, "spec": pod_spec}
        selector: dict[str, Any] = {"matchLabels": pod_labels}
        if rsd.spec.selector is not None and rsd.spec.selector.match_expressions:
            selector["matchExpressions"] = [
                e.to_kube() for e in rsd.spec.selector.match_expressions
            ]
        annotations[POD_TEMPLATE_ANNOTATION] = template_json(template)
        min_ready = rsd.spec.min_ready_seconds
    elif live is not None:
        spec = live.get("spec") or {}
        pod_template = dict(spec.get("template") or {})
        pod_labels = dict((pod_template.get("metadata") or {}).get("labels") or {})
        selector = dict(spec.get("selector") or {})
        live_annotations = live.get("metadata", {}).get("annotations") or {}
        for kept in (POD_TEMPLATE_ANNOTATION,):
            if kept in live_annotations:
                annotations[kept] = live_annotations[kept]
        min_ready = spec.get("minReadySeconds")
    else:
        return None
    if live is not None:
        # The selector of a ReplicaSet is immutable: the version keeps the one it was made with.
        selector = dict((live.get("spec") or {}).get("selector") or selector)
    annotations[ENDPOINT_ANNOTATION] = endpoint
    if deployment_id is not None:
        annotations[DEPLOYMENT_ID_ANNOTATION] = deployment_id
    if remove_at is not None:
        annotations[REMOVE_AT_ANNOTATION] = remove_at
    labels = {**pod_labels, **_object_labels(rsd, hash_, latest)}
    body: dict[str, Any] = {"replicas": replicas, "selector": selector, "template": pod_template}
    if min_ready is not None:
        body["minReadySeconds"] = min_ready
    return with_desired_hash(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": rsd.namespace,
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [owner_reference(rsd)],
            },
            "spec": body,
        }
    )


def match_labels(rs: Mapping[str, Any]) -> dict[str, str]:
    """What a Service selecting the pods of ``rs`` (a manifest or a live object) uses."""
    found = (rs.get("spec") or {}).get("selector", {}).get("matchLabels") or {}
    return dict(found)


def _pod_spec(rs: Mapping[str, Any]) -> Mapping[str, Any]:
    spec: Mapping[str, Any] = (rs.get("spec") or {}).get("template", {}).get("spec") or {}
    return spec


def service(
    rsd: RestateDeployment, name: str, rs: Mapping[str, Any], labels: Mapping[str, str]
) -> dict[str, Any]:
    """A ClusterIP Service on port 9080 in front of the pods of ``rs``.

    Owned by the RestateDeployment (not by the ReplicaSet, whose uid a first apply does not
    know yet); the version's Service is deleted together with its ReplicaSet.
    """
    return with_desired_hash(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": name,
                "namespace": rsd.namespace,
                "labels": dict(labels),
                "ownerReferences": [owner_reference(rsd)],
            },
            "spec": {
                "type": "ClusterIP",
                "selector": match_labels(rs),
                "ports": [
                    {
                        "name": PORT_NAME,
                        "port": ENDPOINT_PORT,
                        "targetPort": target_port(_pod_spec(rs)),
                        "protocol": "TCP",
                    }
                ],
            },
        }
    )


def version_service(
    rsd: RestateDeployment, name: str, hash_: str, rs: Mapping[str, Any], latest: bool
) -> dict[str, Any]:
    return service(rsd, name, rs, _object_labels(rsd, hash_, latest))


def stable_service(rsd: RestateDeployment, rs: Mapping[str, Any]) -> dict[str, Any]:
    """``<rsd>``: always the version Restate routes new invocations to."""
    return service(rsd, rsd.name, rs, {OWNED_BY_LABEL: rsd.name, MANAGED_BY_LABEL: MANAGED_BY})


def pod_latest_label(pod: Mapping[str, Any], latest: bool) -> dict[str, Any]:
    """A metadata-only apply that sets (or, applied empty, releases) restate.dev/latest.

    Pods are labelled directly: a ReplicaSet never relabels the pods it already runs.
    """
    meta = pod["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": meta["name"],
            "namespace": meta.get("namespace"),
            "labels": {LATEST_LABEL: "true"} if latest else {},
        },
    }


def finalizer_manifest(rsd: RestateDeployment) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": rsd.name, "namespace": rsd.namespace, "finalizers": [FINALIZER]},
    }


def autoscaler(rsd: RestateDeployment, name: str, hash_: str) -> dict[str, Any]:
    """The per-version HPA of a draining version (upstream §1.7): the user's
    ``spec.autoscaling`` with ``scaleTargetRef`` set to the version's ReplicaSet and
    ``minReplicas`` at least 1 (a draining version still has invocations to finish)."""
    spec = dict(rsd.spec.autoscaling or {})
    spec["scaleTargetRef"] = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name}
    spec["minReplicas"] = max(int(spec.get("minReplicas") or 1), 1)
    return with_desired_hash(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {
                "name": name,
                "namespace": rsd.namespace,
                "labels": _object_labels(rsd, hash_, latest=False),
                "ownerReferences": [owner_reference(rsd)],
            },
            "spec": spec,
        }
    )
