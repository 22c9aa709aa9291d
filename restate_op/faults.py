"""Fault injection for crash tests: exit abruptly at a named point.

``RESTATE_OP_CRASH_AT=<point>`` makes the process exit with ``os._exit`` (no clean-up, no
Lease release, like a kill -9) the first time the operator reaches that point. Off by
default; when off, ``fault_point`` is a single comparison.

A point name is one of the templates of :data:`FAULT_POINTS` with its placeholders filled
in, e.g. ``before-apply-StatefulSet/restate``. The switch selects a point exactly or by a
prefix that ends at a ``-`` or ``/`` boundary: ``before-apply`` selects every apply,
``before-apply-NetworkPolicy`` every NetworkPolicy apply, ``before-status-write`` every
status write whatever the phase.

Every point sits on a path that writes: a reconcile that finds everything converged passes
none of them, so a crash operator started next to converged clusters only crashes on the
cluster it is meant to.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from restate_op.logs import current_cluster

CRASH_EXIT_CODE = 86
CRASH_ENV = "RESTATE_OP_CRASH_AT"
_CRASH_AT = os.environ.get(CRASH_ENV) or None

#: Every fault point, as a template (``{placeholder}`` for the variable parts), and the state
#: a crash there leaves behind. ``tests/test_fault_points.py`` fails when a ``fault_point``
#: call uses a name that is not listed here, or a listed point is no longer called.
FAULT_POINTS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "before-apply-{kind}/{name}": (
            "Before the server-side apply of one child, in apply order (Namespace, "
            "NetworkPolicies, ServiceAccount, ConfigMap, Services, PodDisruptionBudget, "
            "StatefulSet, AWS objects): the children before it are written, it and the "
            "ones after it are missing or stale."
        ),
        "after-apply-children": (
            "Every child applied; the status does not say so yet (still the previous phase)."
        ),
        "before-delete-{kind}/{name}": (
            "Before pruning one child that is no longer desired (a ConfigMap of an old "
            "config, the PodDisruptionBudget after scaling to one, NetworkPolicies when "
            "disabled): the new children exist, the stale one too."
        ),
        "before-patch-pvc-{pvc}": (
            "Expansion: before growing one PVC; the PVCs before it (in name order) are "
            "already patched, the rest are not."
        ),
        "after-patch-pvcs": (
            "Expansion: every PVC patched, the StatefulSet still has the old claim template."
        ),
        "after-orphan-delete": (
            "Expansion: the StatefulSet is deleted with propagation Orphan and not "
            "re-created yet; its pods and PVCs run without an owner."
        ),
        "before-provision": (
            "Pod restate-0 runs and the ProvisionCluster call is about to be sent; "
            "status.provisioned is not set."
        ),
        "before-register-{version}": (
            "RestateDeployment: the version's pods are available and its registration with "
            "Restate's admin API is about to be sent; Restate does not know it yet."
        ),
        "before-deregister-{version}": (
            "RestateDeployment: a retired version is scaled to zero and about to be removed "
            "from Restate; Restate still lists it (a deregistration the next reconcile sends)."
        ),
        "before-remove-finalizer": (
            "RestateDeployment deletion: every registration is gone; the finalizer is about "
            "to be released, the object still exists."
        ),
        "before-remove-metadata-member-N{node}": (
            "Scale-down: the departing pod's node N{node} is still a metadata-server "
            "member and the RemoveNode call to the metadata leader is about to be sent; the "
            "StatefulSet still has the old replicas. The next operator reads Restate afresh "
            "and removes the member (once: a node no longer a member is never removed again)."
        ),
        "before-restart-pod-{pod}": (
            "Rolling update: the StatefulSet rolls OnDelete with the new template, Restate "
            "let the next pod go and its delete (with a uid precondition) is about to be "
            "sent; it and the pods after it still run the old template."
        ),
        "before-take-snapshots-{token}": (
            "Snapshot request {token}: nothing asked of Restate yet; status.snapshots does not "
            "answer the token."
        ),
        "after-take-snapshots-{token}": (
            "Snapshot request {token}: Restate took every partition's snapshot, the answer "
            "is only in the operator's memory (lost with it); status.snapshots does not answer "
            "the token, so the next operator takes the snapshots again."
        ),
        "before-status-write-{phase}": (
            "The actions of the reconcile are done; the status (phase {phase}) is about to be "
            "written. Passed only when the status changes."
        ),
        "after-status-write-{phase}": (
            "The status (phase {phase}) is written; the transition Event is not emitted yet."
        ),
    }
)

_PLACEHOLDER = re.compile(r"\{[a-z]+\}")


def point_pattern(template: str) -> re.Pattern[str]:
    """A regular expression matching every name of a :data:`FAULT_POINTS` template."""
    parts = _PLACEHOLDER.split(template)
    return re.compile("[^/]+".join(re.escape(p) for p in parts) + r"\Z")


def template_of(name: str) -> str | None:
    """The :data:`FAULT_POINTS` template a concrete point name belongs to, if any.

    Example:
        >>> template_of("before-apply-Service/restate")
        'before-apply-{kind}/{name}'
    """
    for template in FAULT_POINTS:
        if point_pattern(template).match(name):
            return template
    return None


def selects(switch: str, name: str) -> bool:
    """Whether ``RESTATE_OP_CRASH_AT=switch`` selects the point ``name``."""
    return name == switch or name.startswith((switch + "-", switch + "/"))


def fault_point(name: str) -> None:
    """Crash here if the fault-injection switch selects this point."""
    if _CRASH_AT is not None and selects(_CRASH_AT, name):
        cluster = current_cluster.get() or "-"
        sys.stderr.write(f"restate-op: injected crash at {name} (cluster {cluster})\n")
        sys.stderr.flush()
        os._exit(CRASH_EXIT_CODE)
