"""What a reconcile asks the world to do, as plain data.

A controller's ``decide`` returns these; ``restate_op.executor`` is the only code that carries
them out, and reports what it found as an ``Outcome``. Each kind of effect has its fault
points (``restate_op.faults``), so a crash test selects a point by the effect it precedes or
follows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from restate_op.outcomes import ReconcileError

EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class Apply:
    """Server-side apply of ``manifest`` with the operator's field manager.

    ``refuse_foreign_of``: before applying, make sure no object of that name exists that the
    owner with this uid does not control (``PermanentError`` ChildConflict if one does).
    ``replace_if_immutable``: a 422 (an immutable field changed, as in a Job's pod template)
    deletes the object instead; the next reconcile re-creates it.
    """

    manifest: Mapping[str, Any]
    refuse_foreign_of: str | None = None
    replace_if_immutable: bool = False

    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])


@dataclass(frozen=True)
class Delete:
    """Delete an object the operator no longer wants (background propagation)."""

    api_version: str
    kind: str
    namespace: str | None
    name: str


@dataclass(frozen=True)
class PatchClaimSize:
    """Raise a PersistentVolumeClaim's storage request (never lowered, never deleted)."""

    namespace: str
    name: str
    size_bytes: int


@dataclass(frozen=True)
class OrphanDelete:
    """Delete a StatefulSet but keep its pods and claims, only if it still has ``uid``."""

    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class Provision:
    """Provision the Restate cluster through ``target`` (the node port of a running pod)."""

    namespace: str
    target: str


@dataclass(frozen=True)
class Emit:
    """A Kubernetes Event about ``regarding`` (the object as read from the API server)."""

    regarding: Mapping[str, Any] = field(compare=False, repr=False)
    type: EventType = "Normal"
    reason: str = ""
    action: str = ""
    note: str = ""


@dataclass(frozen=True)
class WriteStatus:
    """Server-side apply of an object's status subresource."""

    api_version: str
    kind: str
    namespace: str | None
    name: str
    status: Mapping[str, Any]
    #: The phase the status records (names the status-write fault points).
    phase: str


@dataclass(frozen=True)
class Remember:
    """Keep ``value`` in the operator's memory under ``key`` (a status held back)."""

    key: tuple[str, str]
    value: Any = field(compare=False)


@dataclass(frozen=True)
class Forget:
    """Drop what the memory holds under ``key``."""

    key: tuple[str, str]


@dataclass(frozen=True)
class RemoveFinalizer:
    """Remove ``finalizer`` from an object, only if it still has ``uid`` (a JSON patch).

    Not a server-side apply: the finalizer may have been added by another manager (the
    upstream operator uses the same name), and an apply only releases entries it owns.
    """

    api_version: str
    kind: str
    namespace: str | None
    name: str
    uid: str
    finalizer: str


@dataclass(frozen=True)
class RegisterDeployment:
    """Register the endpoint ``uri`` with the Restate admin API at ``admin_url``.

    ``POST {admin_url}/deployments`` with ``{"uri", "use_http_11", "force"}``; ``force`` is
    sent explicitly either way (true when Restate already knows the endpoint and must route
    to it again, as on a rollback). The admin URL keeps its path: requests are made by
    appending to it, never by replacing it. The answer is reported per ``version`` in
    ``Outcome.registrations``; a 4xx is an answer (a rejection), not an error.
    """

    admin_url: str
    uri: str
    version: str
    use_http11: bool = False
    force: bool = False
    #: ``Authorization: Bearer`` (Restate Cloud); never logged.
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class DeregisterDeployment:
    """Remove deployment ``deployment_id`` from Restate (``DELETE .../deployments/{id}``).

    Sent only for a version Restate itself says nothing needs (not the latest of any
    service, no non-completed invocation pinned to it), so ``force`` is safe; a 404 is done.
    """

    admin_url: str
    deployment_id: str
    version: str
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class QueryRestate:
    """Read Restate's view (deployments, the latest per service, pinned invocations).

    The executor keeps the answer -- or the failure -- in memory under ``key`` as a
    ``restate_op.deployment_observe.RestateView``; the next observation reads it from there,
    so deciding stays pure and one answer serves every RestateDeployment of that Restate.
    """

    admin_url: str
    key: tuple[str, str]
    token: str | None = field(default=None, repr=False)
    #: The ``read_at`` of the view the decision saw (0.0: none), when any newer answer will
    #: do: RestateDeployments of one Restate falling due together then share one read.
    #: None after this reconcile registered or deregistered: only a read after that counts.
    unless_read_after: float | None = None


@dataclass(frozen=True)
class ReadClusterHealth:
    """Ask the cluster's nodes how Restate itself sees the cluster.

    ``targets``: (pod, node-port address) of every running pod. The executor keeps the
    answer (``restate_op.restate_health.RestateHealth``) in memory under ``key``; the next
    observation reads it from there, so judging it stays pure.
    """

    key: tuple[str, str]
    targets: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class PollClusterHealth:
    """Keep reading the cluster's health every ``every`` seconds on the executor's own clock
    (``every`` None: stop), waking the cluster's reconcile only when the answer changed.

    For Ready clusters. A periodic read riding a reconcile costs the reconcile too (the plan
    and diff of every child, several times the read); most reads say what the last one
    said, so only a changed answer is worth judging. The executor keeps this request in
    memory under ``key`` while it stands (the observation sees it: a reconcile that finds
    its wish standing emits nothing) and each answer under ``health``, as
    ``ReadClusterHealth`` does. Nothing of it survives a restart or a lost Lease: the next
    reconcile finds no poll standing and asks again.
    """

    key: tuple[str, str]
    health: tuple[str, str]
    targets: tuple[tuple[str, str], ...] = ()
    every: float | None = None


@dataclass(frozen=True)
class RemoveMetadataMember:
    """Remove node ``node_id`` from the Restate metadata cluster through its leader (the
    node port at ``leader``), before its pod goes; the cluster's health is read afresh next
    (``health_key``: the read in memory is dropped)."""

    leader: str
    node_id: int
    health_key: tuple[str, str]


@dataclass(frozen=True)
class TakeSnapshots:
    """Have Restate snapshot partitions ``0..partitions-1`` to its repository, through the
    node port at ``target`` (a node that joined), for the request ``token``.

    The executor keeps the answer (``restate_op.snapshots.SnapshotRun``) in memory under
    ``key``; the next observation reads it from there and ``conclude`` records it in
    ``status.snapshots``. A crash before that write takes the snapshots again (Restate just
    makes newer ones): harmless, so no fault point.
    """

    key: tuple[str, str]
    token: str
    target: str
    partitions: int


@dataclass(frozen=True)
class SwitchToOnDelete:
    """Set StatefulSet ``name``'s update strategy to ``OnDelete`` with a merge patch that
    also drops ``rollingUpdate``: a server-side apply cannot, as the API server defaulted
    ``rollingUpdate.partition`` for nobody and then refuses it beside ``OnDelete`` (a
    StatefulSet made before ordered rolls, by this operator or by upstream's)."""

    namespace: str
    name: str


@dataclass(frozen=True)
class RestartPod:
    """Delete pod ``name`` (only the one with ``uid``: a pod re-created since is left alone)
    so its StatefulSet re-creates it from the new template; Restate's view is read afresh
    next (``health_key``: the read in memory is dropped, it predates the restart)."""

    namespace: str
    name: str
    uid: str | None
    health_key: tuple[str, str]


Effect = (
    Apply
    | Delete
    | PatchClaimSize
    | OrphanDelete
    | Provision
    | Emit
    | WriteStatus
    | Remember
    | Forget
    | RemoveFinalizer
    | RegisterDeployment
    | DeregisterDeployment
    | QueryRestate
    | ReadClusterHealth
    | PollClusterHealth
    | RemoveMetadataMember
    | TakeSnapshots
    | RestartPod
    | SwitchToOnDelete
)


@dataclass(frozen=True)
class ProvisionResult:
    """Whether the Restate cluster is provisioned now, and what the node said."""

    provisioned: bool
    #: It was provisioned before this call (a second call, or by someone else).
    already: bool
    message: str


@dataclass(frozen=True)
class RegistrationResult:
    """What Restate answered to a ``RegisterDeployment``."""

    version: str
    #: Restate accepted it (2xx), and the id it gave the deployment.
    accepted: bool
    deployment_id: str | None = None
    #: A refusal (4xx): the HTTP status, Restate's error code (e.g. META0006) and its text.
    status: int | None = None
    code: str | None = None
    message: str = ""


@dataclass
class Outcome:
    """What carrying out a decision's effects found; input to the controller's ``conclude``."""

    #: The first failure; the effects after it were not carried out.
    error: ReconcileError | None = None
    #: The answer of a ``Provision``; None when none ran.
    provision: ProvisionResult | None = None
    #: The executor wants the key back this soon (a replaced immutable object).
    requeue_after: float | None = None
    #: Restate's answers to the ``RegisterDeployment`` effects that ran.
    registrations: list[RegistrationResult] = field(default_factory=list)

    def requeue(self, seconds: float) -> None:
        self.requeue_after = (
            seconds if self.requeue_after is None else min(self.requeue_after, seconds)
        )
