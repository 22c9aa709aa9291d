"""Typed API errors, the transient/permanent split, and retries with backoff.

The state machine needs one question answered for every failed API call: *will the same
request succeed if we simply try again later?* Timeouts, dropped connections, optimistic
concurrency conflicts (409), throttling (429) and server-side hiccups (5xx) are transient;
everything else (bad request, forbidden, not found, invalid) is permanent and should surface
as ``Degraded`` instead of being retried until the end of time.

kr8s raises a mix of ``kr8s.ServerError`` (with the httpx response attached),
``kr8s.APITimeoutError`` and raw httpx transport errors; :func:`translate` turns all of them
into one :class:`KubeError` hierarchy that callers can match on.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, ParamSpec, TypeVar

import httpx
import kr8s
import tenacity
from tenacity.wait import wait_base

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

#: HTTP status codes after which the same request may well succeed.
TRANSIENT_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
#: What the API server says (with a 500) when a server-side apply body does not fit the
#: object's schema: ``failed to create typed patch object (ns/name; apps/v1,
#: Kind=StatefulSet): .spec.template.spec.affinity.nodeAffinty: field not declared in schema``.
TYPED_PATCH_FAILURE = "failed to create typed patch object"
_TYPED_PATCH_FIELD = re.compile(r"(?:^|, )(\.[^\s:,]+): ")
#: Upper bound on a server-requested delay, so a bogus Retry-After cannot park a reconcile.
MAX_RETRY_AFTER = 60.0


class KubeError(Exception):
    """An API request failed.

    Attributes:
        status: HTTP status code, or ``None`` when no response arrived (timeout, connection).
        reason: the ``reason`` of the Kubernetes Status (``NotFound``, ``Conflict``,
            ``AlreadyExists``, ``Invalid``, ``Expired``...), or a short local reason.
        message: the human message of the Status.
        retry_after: seconds the server asked us to wait (``Retry-After`` header or
            ``details.retryAfterSeconds``), if any.
        body: the decoded Status object, when the server sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str = "",
        retry_after: float | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        self.body = body

    @property
    def invalid(self) -> bool:
        """The request body itself is wrong: the same request can never succeed.

        A 422 (``Invalid``), or the 500 a server-side apply gets when its body does not fit
        the object's schema (an unknown or mistyped field): a 5xx that is the request's
        fault, not the server's.
        """
        return self.status == 422 or (self.status == 500 and TYPED_PATCH_FAILURE in self.message)

    @property
    def transient(self) -> bool:
        """Whether retrying the same request later may succeed."""
        return (self.status is None or self.status in TRANSIENT_STATUS) and not self.invalid

    @property
    def fields(self) -> list[str]:
        """The field paths the API server named as wrong (``spec.template.spec.affinity``)."""
        causes = ((self.body or {}).get("details") or {}).get("causes") or []
        named = [str(c["field"]) for c in causes if isinstance(c, dict) and c.get("field")]
        if not named and TYPED_PATCH_FAILURE in self.message:
            _, _, rest = self.message.partition("): ")
            named = [m.lstrip(".") for m in _TYPED_PATCH_FIELD.findall(rest)]
        return list(dict.fromkeys(named))

    def __str__(self) -> str:
        code = "no response" if self.status is None else str(self.status)
        reason = f" {self.reason}" if self.reason else ""
        return f"{code}{reason}: {self.message}"


class ApiUnreachable(KubeError):
    """No response: connection refused or reset, TLS failure, or a timeout."""


class NotFound(KubeError):
    """404: the object (or the whole API, e.g. a CRD that is not installed) does not exist."""


class Conflict(KubeError):
    """409: optimistic-concurrency conflict, failed precondition, or lost field ownership."""


class AlreadyExists(Conflict):
    """409 with reason ``AlreadyExists``: a create found the name taken."""


class Gone(KubeError):
    """410: the resourceVersion is too old (compacted); a watcher must re-list."""


def _status_body(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = json.loads(response.content) if response.content else None
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Parse an HTTP ``Retry-After`` value (delta-seconds or an HTTP-date) into seconds.

    Returns ``None`` when absent or unparseable; never negative.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def from_status(
    status: int | None,
    body: dict[str, Any] | None,
    *,
    retry_after_header: str | None = None,
    fallback_message: str = "",
) -> KubeError:
    """Build the right :class:`KubeError` subclass from an HTTP code and a Status body.

    Watch streams report errors as ``{"type": "ERROR", "object": <Status>}`` with no HTTP
    code of their own, so the code may also come from the Status (``status`` is ``None``).
    """
    body = body or {}
    code = status if status is not None else body.get("code")
    code = code if isinstance(code, int) else None
    reason = str(body.get("reason") or "")
    message = str(body.get("message") or fallback_message or reason or f"HTTP {code}")
    retry_after = parse_retry_after(retry_after_header)
    details = body.get("details")
    if retry_after is None and isinstance(details, dict):
        seconds = details.get("retryAfterSeconds")
        if isinstance(seconds, int | float) and seconds >= 0:
            retry_after = float(seconds)
    cls: type[KubeError] = KubeError
    if code == 404:
        cls = NotFound
    elif code == 409:
        cls = AlreadyExists if reason == "AlreadyExists" else Conflict
    elif code == 410:
        cls = Gone
    elif code is None:
        cls = ApiUnreachable
    return cls(message, status=code, reason=reason, retry_after=retry_after, body=body or None)


def from_response(response: httpx.Response) -> KubeError:
    """Build a :class:`KubeError` from an error response."""
    return from_status(
        response.status_code,
        _status_body(response),
        retry_after_header=response.headers.get("Retry-After"),
        fallback_message=response.reason_phrase,
    )


def translate(exc: BaseException) -> KubeError | None:
    """Map an exception raised by kr8s/httpx to a :class:`KubeError`, or ``None`` if foreign.

    kr8s wraps 4xx/5xx in ``ServerError`` (keeping the response), turns httpx timeouts into
    ``APITimeoutError`` and lets other transport errors through untouched. For a 4xx whose
    JSON body lacks ``message`` it even leaks a ``KeyError`` chained to the status error, so
    the ``__cause__`` is consulted too.
    """
    if isinstance(exc, KubeError):
        return exc
    if isinstance(exc, kr8s.ServerError) and exc.response is not None:
        return from_response(exc.response)
    if isinstance(exc, httpx.HTTPStatusError):
        return from_response(exc.response)
    if isinstance(exc, kr8s.APITimeoutError | httpx.TimeoutException):
        return ApiUnreachable(str(exc) or "timed out", reason="Timeout")
    if isinstance(exc, httpx.TransportError | OSError):
        return ApiUnreachable(str(exc) or type(exc).__name__, reason=type(exc).__name__)
    if isinstance(exc, kr8s.ServerError):
        return KubeError(str(exc), reason="ServerError")
    if isinstance(exc, KeyError | TypeError) and isinstance(exc.__cause__, httpx.HTTPStatusError):
        return from_response(exc.__cause__.response)
    return None


def is_transient(exc: BaseException) -> bool:
    """Whether the failed operation may succeed if retried unchanged after a delay.

    Transient: timeouts and connection errors, 408, 409 (conflict, also ``AlreadyExists``,
    which in a level-triggered controller means our cache was stale), 429 and
    500/502/503/504. Everything else, including 410 (the caller must re-list, not retry),
    is permanent.
    """
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    error = translate(exc)
    return error is not None and error.transient


def retry_after(exc: BaseException) -> float | None:
    """The server-requested delay carried by ``exc``, if any."""
    error = translate(exc)
    return None if error is None else error.retry_after


class wait_retry_after(wait_base):  # noqa: N801 - tenacity's naming convention for waits
    """A tenacity wait that never waits less than the server's ``Retry-After``.

    Wraps another wait (exponential backoff with jitter by default) and takes the larger of
    the two, capped at :data:`MAX_RETRY_AFTER`.
    """

    def __init__(self, backoff: wait_base) -> None:
        self.backoff = backoff

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        delay = float(self.backoff(retry_state))
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        requested = retry_after(exc) if exc is not None else None
        if requested is not None:
            delay = max(delay, min(requested, MAX_RETRY_AFTER))
        return delay


def _log_retry(retry_state: tenacity.RetryCallState) -> None:
    outcome = retry_state.outcome
    exc = outcome.exception() if outcome is not None else None
    sleep = retry_state.next_action.sleep if retry_state.next_action else 0.0
    logger.info(
        "transient API error, retrying in %.1fs (attempt %d): %s",
        sleep,
        retry_state.attempt_number,
        exc,
    )


def retrying(
    *,
    attempts: int = 5,
    initial: float = 0.5,
    maximum: float = 30.0,
    jitter: float = 0.5,
) -> tenacity.AsyncRetrying:
    """A tenacity ``AsyncRetrying`` for transient API errors.

    Backoff is exponential from ``initial`` to ``maximum`` seconds plus up to ``jitter``
    seconds of random spread, never shorter than the server's ``Retry-After``. Permanent
    errors are re-raised at once; after the last attempt the last error is re-raised (not
    wrapped in ``RetryError``) so callers can classify it.
    """
    return tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception(is_transient),
        stop=tenacity.stop_after_attempt(attempts),
        wait=wait_retry_after(
            tenacity.wait_exponential_jitter(multiplier=initial, max=maximum, jitter=jitter)
        ),
        before_sleep=_log_retry,
        reraise=True,
    )


async def with_retries(
    fn: Callable[..., Awaitable[T]],
    *args: Any,
    attempts: int = 5,
    initial: float = 0.5,
    maximum: float = 30.0,
    jitter: float = 0.5,
    **kwargs: Any,
) -> T:
    """Call ``await fn(*args, **kwargs)``, retrying transient API errors with backoff.

    ``attempts``, ``initial``, ``maximum`` and ``jitter`` configure the retries (see
    :func:`retrying`); every other keyword goes to ``fn``.

    Example:
        >>> obj = await with_retries(client.apply, manifest, FIELD_MANAGER)
        >>> await with_retries(client.delete, STATEFUL_SET, "restate", ns,
        ...                    propagation_policy="Orphan", uid_precondition=uid)
    """
    retry = retrying(attempts=attempts, initial=initial, maximum=maximum, jitter=jitter)
    with _translated():
        async for attempt in retry:
            with attempt:
                return await fn(*args, **kwargs)
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Re-raise kr8s/httpx errors that escaped the retries as :class:`KubeError`."""
    try:
        yield
    except Exception as exc:
        error = translate(exc)
        if error is None or error is exc:
            raise
        raise error from exc
