"""The thin layer over kr8s: the only code that talks HTTP to the Kubernetes API server.

- :mod:`~restate_op.kube.resources`: the kinds the operator uses and their URLs.
- :mod:`~restate_op.kube.client`: :class:`KubeClient` (get, list, watch, server-side apply,
  merge patch, delete with preconditions, discovery), counted per verb and kind.
- :mod:`~restate_op.kube.errors`: typed errors, the transient/permanent split, retries.
- :mod:`~restate_op.kube.informer`: list+watch caches with change callbacks.
- :mod:`~restate_op.kube.workqueue`: a de-duplicating, rate-limited work queue.
- :mod:`~restate_op.kube.lease`: leader election on a Lease.
- :mod:`~restate_op.kube.events`: Events with series for repeats.
"""

from restate_op.kube.client import KubeClient
from restate_op.kube.errors import (
    AlreadyExists,
    ApiUnreachable,
    Conflict,
    Gone,
    KubeError,
    NotFound,
    is_transient,
    with_retries,
)
from restate_op.kube.events import EventRecorder
from restate_op.kube.informer import Informer
from restate_op.kube.lease import LeaderElector
from restate_op.kube.resources import Kind, kind_for, kind_of
from restate_op.kube.workqueue import WorkQueue

__all__ = [
    "AlreadyExists",
    "ApiUnreachable",
    "Conflict",
    "EventRecorder",
    "Gone",
    "Informer",
    "Kind",
    "KubeClient",
    "KubeError",
    "LeaderElector",
    "NotFound",
    "WorkQueue",
    "is_transient",
    "kind_for",
    "kind_of",
    "with_retries",
]
