"""Why a reconcile failed, in three kinds, and what each kind means for the user and the queue.

In the spirit of kopf's ``TemporaryError`` / ``PermanentError``: the executor (the only code
doing I/O) turns every exception into one of these, once, at the place it happens
(``restate_op.executor.classify``); the rest of the operator never inspects a raw exception.

- ``TemporaryError``: the API server failed in a way that retrying may cure (timeouts, 409,
  429, 5xx) and the bounded retries inside the request ran out. Reported as an API outage,
  retried with the queue's backoff, never sooner than a ``Retry-After`` asked.
- ``PermanentError``: the request was refused for a reason the user must fix (a child the
  API server rejects, an object of the same name owned by someone else). Degraded with what to
  change; retried with growing backoff, because the cause may be outside the spec (someone
  deletes the foreign object), and at once on any change of the cluster.
- ``InvalidInput`` (a ``PermanentError``): the API server refused a child because of what
  the user wrote (a 422, or a server-side apply body that does not fit the schema). The same
  spec can never succeed, so it is not retried at all: Degraded naming the field, and the
  next reconcile is the next change (or the periodic resync).
- ``InternalError``: anything else is a bug in the operator (a ``KeyError`` in a template, a
  ``TypeError`` in a builder). Degraded with reason ``InternalError``, the exception type and a
  pointer to the log, where the traceback is; counted as ``Internal``, never called an outage.

``ERROR_CLASSES`` is the one table from kind to condition reason and metric label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


class ReconcileError(Exception):
    """A failed reconcile, as the user and the metrics see it."""

    #: The Degraded reason, unless the instance names a more precise one.
    default_reason: ClassVar[str] = "ApiError"
    #: Whether the queue retries the key with backoff (else it waits for a change).
    retried: ClassVar[bool] = True

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason

    @property
    def error_class(self) -> ErrorClass:
        return ERROR_CLASSES[type(self)]


class TemporaryError(ReconcileError):
    """The API server kept failing; retry later (not before ``retry_after``)."""

    default_reason = "ApiError"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(ReconcileError):
    """Refused for a reason the user must fix; the message says what to change."""

    default_reason = "ApplyRejected"


class InvalidInput(PermanentError):
    """A child refused for what the spec says; retrying the same spec cannot help."""

    retried = False


class InternalError(ReconcileError):
    """A bug in the operator."""

    default_reason = "InternalError"


@dataclass(frozen=True)
class ErrorClass:
    #: The label of ``restate_operator_reconciliation_errors_total{error=...}``.
    metric_label: str


ERROR_CLASSES: dict[type[ReconcileError], ErrorClass] = {
    TemporaryError: ErrorClass(metric_label="KubeTransient"),
    PermanentError: ErrorClass(metric_label="KubePermanent"),
    InvalidInput: ErrorClass(metric_label="KubePermanent"),
    InternalError: ErrorClass(metric_label="Internal"),
}


def child_conflict(message: str) -> PermanentError:
    """A child's name is taken by an object this RestateCluster does not control."""
    return PermanentError(message, reason="ChildConflict")


def internal_error(exc: BaseException) -> InternalError:
    """An exception no layer expected: a bug, reported as one."""
    return InternalError(
        f"Operator bug ({type(exc).__name__}: {exc}); see the operator log for the traceback"
    )
