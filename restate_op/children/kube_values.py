"""Spec values the operator copies into children that the API server would refuse there.

The CRD takes annotations, labels and resource quantities as plain strings; the API server
only checks them when the operator applies the Service, ServiceAccount or StatefulSet that
carries them, and its refusal names the child's field, not the spec's. Checked here first,
the Degraded message names the spec field and says how to fix it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from restate_op.api.models import RestateCluster
from restate_op.quantity import InvalidQuantity, parse_quantity
from restate_op.validation import INVALID_CONFIG, SpecProblem

_NAME: Final = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN: Final = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_LABEL_VALUE: Final = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
#: The API server's limit on all annotations of one object together.
ANNOTATIONS_LIMIT: Final = 256 * 1024


def key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid label or annotation key (``[prefix/]name``), if it is not."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return f"the prefix {prefix!r} must be a lowercase DNS subdomain"
    if not name or len(name) > 63 or not _NAME.match(name):
        return (
            "the name part must be 1-63 letters, digits, '-', '_' or '.', starting and "
            "ending with a letter or digit"
        )
    return None


def _problem(field: str, message: str) -> SpecProblem:
    return SpecProblem(INVALID_CONFIG, field, f"{field}: {message}")


def _check_map(field: str, values: Mapping[str, str] | None, labels: bool) -> list[SpecProblem]:
    problems = []
    for key, value in (values or {}).items():
        why = key_problem(key)
        if why is not None:
            problems.append(_problem(field, f"key {key!r} is not valid: {why}."))
        elif labels and (len(value) > 63 or not _LABEL_VALUE.match(value)):
            problems.append(
                _problem(
                    f"{field}[{key}]",
                    f"{value!r} is not a valid label value: at most 63 letters, digits, '-', "
                    "'_' or '.', starting and ending with a letter or digit.",
                )
            )
    if not labels and sum(len(k) + len(v) for k, v in (values or {}).items()) > ANNOTATIONS_LIMIT:
        problems.append(_problem(field, "is larger than the 256 KiB Kubernetes allows."))
    return problems


def _check_resources(cluster: RestateCluster) -> list[SpecProblem]:
    resources = cluster.spec.compute.resources
    if resources is None:
        return []
    problems = []
    for section, values in (("requests", resources.requests), ("limits", resources.limits)):
        for name, value in (values or {}).items():
            field = f"spec.compute.resources.{section}.{name}"
            try:
                if isinstance(value, str) and value != value.strip():
                    raise InvalidQuantity(value)
                parse_quantity(value)
            except InvalidQuantity:
                problems.append(
                    _problem(field, f"{value!r} is not a quantity; write e.g. 500m, 2 or 4Gi.")
                )
    return problems


def check_kube_values(cluster: RestateCluster) -> list[SpecProblem]:
    """Every annotation, label and quantity of the spec that a child could not carry."""
    compute = cluster.spec.compute
    security = cluster.spec.security_or_default
    return [
        *_check_map("spec.compute.annotations", compute.annotations, labels=False),
        *_check_map("spec.compute.labels", compute.labels, labels=True),
        *_check_map("spec.security.serviceAnnotations", security.service_annotations, False),
        *_check_map(
            "spec.security.serviceAccountAnnotations", security.service_account_annotations, False
        ),
        *_check_resources(cluster),
    ]


def check_storage_class(
    cluster: RestateCluster,
    storage_classes: Mapping[str, object],
    pvcs: tuple[Mapping[str, Any], ...],
) -> list[SpecProblem]:
    """A named StorageClass that does not exist leaves every volume Pending for ever.

    Reported only while no volume of the cluster is bound: a running cluster whose class was
    deleted afterwards keeps its volumes and must stay manageable.
    """
    name = cluster.spec.storage.storage_class_name
    if not name or name in storage_classes:
        return []
    if any((pvc.get("status") or {}).get("phase") == "Bound" for pvc in pvcs):
        return []
    return [
        SpecProblem(
            "StorageClassNotFound",
            "spec.storage.storageClassName",
            f"spec.storage.storageClassName: StorageClass {name} does not exist, so no volume "
            f"can be provisioned; create StorageClass {name} (the field cannot be changed "
            "once set, so otherwise re-create the RestateCluster with an existing class).",
        )
    ]
