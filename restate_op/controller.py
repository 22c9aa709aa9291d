"""The one shape every controller has, and the loop that drives it.

A controller is registered with the runtime as (its kind, what it watches and how those
events map to its keys, its ``observe``, its ``decide`` and its ``conclude``)::

    observe(key)                    -> observation | None   caches and memory only, no request
    decide(observation, now)        -> Decision             pure: the effects to carry out
    executor.run(decision.effects)  -> Outcome              the only I/O
    conclude(obs, decision, outcome, now) -> Conclusion     pure: status, Events, when again
    executor.run(conclusion.effects)

``restate_op.runtime.Reconcile`` is that loop; the runtime runs it for every key a worker
takes. A new kind is a new ``Controller`` (see ``restate_op.cluster_controller``), not a new
loop. Everything in this module is plain data and protocols: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from restate_op.effects import Effect, Outcome
from restate_op.kube.resources import Kind
from restate_op.machine import Transition
from restate_op.outcomes import ReconcileError
from restate_op.settings import Capabilities, OperatorSettings

ObsT = TypeVar("ObsT")


@dataclass(frozen=True)
class Decision:
    """What one reconcile does, decided without I/O."""

    #: The phase the reconcile moves to (or stays in), its reason and sentence.
    phase: str
    reason: str
    message: str
    #: The shortest way through the machine to where the observation points; the first
    #: transition is taken now (one step per reconcile, so every phase passed is recorded and
    #: announced), the rest by the reconciles that follow.
    path: tuple[Transition, ...] = ()
    effects: tuple[Effect, ...] = ()
    #: Look again this soon even if nothing changes (None: only on a watch event or resync).
    requeue_after: float | None = None


@dataclass(frozen=True)
class Conclusion:
    """What a reconcile reports once its effects ran."""

    effects: tuple[Effect, ...] = ()
    requeue_after: float | None = None
    #: The reconcile failed: retry with the queue's backoff (not before ``retry_after``).
    error: ReconcileError | None = None


@dataclass(frozen=True)
class Result:
    """What the runtime does next with the key."""

    requeue_after: float | None = None
    failed: bool = False
    #: With ``failed``: never retry sooner than this (the server's Retry-After).
    retry_after: float | None = None


class Caches(Protocol):
    """Read access to the informers' caches, shared by every controller."""

    def get(self, kind: Kind, namespace: str | None, name: str) -> Mapping[str, Any] | None: ...

    def list(
        self, kind: Kind, namespace: str | None = None, label_selector: str | None = None
    ) -> list[Mapping[str, Any]]: ...


@dataclass(frozen=True)
class Watch:
    """A kind a controller watches, and which of its keys an event of that kind concerns."""

    kind: Kind
    label_selector: str | None
    #: The controller keys an added, changed or deleted object maps to.
    keys: Callable[[Mapping[str, Any], Caches], Iterable[str]]
    #: Only this namespace (say, the operator's own, where Secrets must not be cached
    #: cluster-wide); None: every namespace.
    namespace: str | None = None
    #: Whether to watch at all, given what the cluster serves and the operator's flags.
    enabled: Callable[[Capabilities, OperatorSettings], bool] = field(
        default=lambda _capabilities, _settings: True
    )


@dataclass(frozen=True)
class RequiredApi:
    """An API the controller cannot run without; the operator waits for it (readiness 503)."""

    group_version: str
    plural: str
    #: Why it is needed, for the log line while waiting.
    why: str


class Controller(Protocol[ObsT]):
    """What the runtime needs of a controller; see the module docstring."""

    #: Short name, for logs and the work queue's keys.
    name: str
    #: The kind it reconciles; its objects' names are the keys.
    kind: Kind

    def watches(self) -> Sequence[Watch]: ...

    def required_apis(self, settings: OperatorSettings) -> Sequence[RequiredApi]: ...

    def observe(self, key: str) -> ObsT | None: ...

    def decide(self, obs: ObsT, now: float) -> Decision: ...

    def conclude(
        self, obs: ObsT, decision: Decision, outcome: Outcome, now: float
    ) -> Conclusion: ...

    def forget(self, key: str) -> Sequence[Effect]: ...

    def update_gauges(self) -> None: ...


def sooner(a: float | None, b: float | None) -> float | None:
    """The earlier of two optional delays."""
    if a is None or b is None:
        return a if b is None else b
    return min(a, b)
