"""Error translation, the transient/permanent split, Retry-After, and retries."""

from __future__ import annotations

import email.utils
import json
from typing import Any

import httpx
import kr8s
import pytest
import tenacity

from restate_op.kube.errors import (
    MAX_RETRY_AFTER,
    AlreadyExists,
    ApiUnreachable,
    Conflict,
    Gone,
    KubeError,
    NotFound,
    from_status,
    is_transient,
    parse_retry_after,
    retry_after,
    translate,
    wait_retry_after,
    with_retries,
)


def status_body(code: int, reason: str, message: str = "boom", **details: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def response(code: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    content = b"" if body is None else json.dumps(body).encode()
    request = httpx.Request("GET", "https://k8s/api/v1/pods")
    return httpx.Response(code, content=content, headers=headers, request=request)


def server_error(code: int, body: Any = None, headers: dict[str, str] | None = None) -> Exception:
    resp = response(code, body, headers)
    return kr8s.ServerError("x", status=body, response=resp)


@pytest.mark.parametrize(
    ("code", "reason", "cls", "transient"),
    [
        (400, "BadRequest", KubeError, False),
        (401, "Unauthorized", KubeError, False),
        (403, "Forbidden", KubeError, False),
        (404, "NotFound", NotFound, False),
        (408, "Timeout", KubeError, True),
        (409, "Conflict", Conflict, True),
        (409, "AlreadyExists", AlreadyExists, True),
        (410, "Expired", Gone, False),
        (422, "Invalid", KubeError, False),
        (429, "TooManyRequests", KubeError, True),
        (500, "InternalError", KubeError, True),
        (501, "NotImplemented", KubeError, False),
        (502, "BadGateway", KubeError, True),
        (503, "ServiceUnavailable", KubeError, True),
        (504, "Timeout", KubeError, True),
    ],
)
def test_classification(code: int, reason: str, cls: type[KubeError], transient: bool) -> None:
    exc = server_error(code, status_body(code, reason, "it broke"))
    error = translate(exc)
    assert type(error) is cls
    assert error is not None
    assert error.status == code
    assert error.reason == reason
    assert error.message == "it broke"
    assert is_transient(exc) is transient
    assert is_transient(error) is transient


def test_5xx_without_status_body() -> None:
    resp = response(503)
    error = translate(kr8s.ServerError("Server error '503'", status="503", response=resp))
    assert error is not None
    assert error.status == 503
    assert error.transient


def test_kr8s_key_error_leak_is_translated() -> None:
    """kr8s raises KeyError (from the HTTPStatusError) when a 4xx JSON body has no message."""
    resp = response(409, {"kind": "Status", "code": 409})
    cause = httpx.HTTPStatusError("409", request=resp.request, response=resp)
    leaked = KeyError("message")
    leaked.__cause__ = cause
    error = translate(leaked)
    assert isinstance(error, Conflict)
    assert is_transient(leaked)


@pytest.mark.parametrize(
    "exc",
    [
        kr8s.APITimeoutError("timeout"),
        httpx.ConnectError("refused"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("peer closed"),
        httpx.ReadTimeout("slow"),
        ConnectionResetError("reset"),
        TimeoutError(),
    ],
)
def test_transport_errors_are_transient(exc: Exception) -> None:
    assert is_transient(exc)
    if not isinstance(exc, TimeoutError):
        assert isinstance(translate(exc), ApiUnreachable)


def test_foreign_errors_are_permanent_and_untranslated() -> None:
    assert translate(ValueError("x")) is None
    assert not is_transient(ValueError("x"))
    assert not is_transient(KeyError("x"))


def test_watch_error_event_status_without_http_code() -> None:
    error = from_status(None, status_body(410, "Expired", "too old resource version"))
    assert isinstance(error, Gone)
    assert error.status == 410
    assert "too old" in str(error)


def test_retry_after_sources() -> None:
    header = server_error(429, status_body(429, "TooManyRequests"), {"Retry-After": "7"})
    assert retry_after(header) == 7.0
    details = server_error(429, status_body(429, "TooManyRequests", retryAfterSeconds=3))
    assert retry_after(details) == 3.0
    assert retry_after(server_error(500, status_body(500, "InternalError"))) is None
    assert retry_after(ValueError()) is None


def test_parse_retry_after() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after(" 5 ") == 5.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(30.0)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


def _state_after(exc: BaseException, attempt: int = 1) -> tenacity.RetryCallState:
    state = tenacity.RetryCallState(tenacity.AsyncRetrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    future: tenacity.Future = tenacity.Future(attempt)
    future.set_exception(exc)
    state.outcome = future
    return state


def test_wait_honours_retry_after_but_caps_it() -> None:
    wait = wait_retry_after(tenacity.wait_fixed(0.5))
    plain = server_error(503, status_body(503, "ServiceUnavailable"))
    assert wait(_state_after(plain)) == 0.5
    asked = server_error(429, status_body(429, "TooManyRequests"), {"Retry-After": "4"})
    assert wait(_state_after(asked)) == 4.0
    huge = server_error(429, status_body(429, "TooManyRequests"), {"Retry-After": "100000"})
    assert wait(_state_after(huge)) == MAX_RETRY_AFTER


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    wait = wait_retry_after(tenacity.wait_exponential_jitter(multiplier=0.5, max=30, jitter=0.5))
    exc = server_error(503, status_body(503, "ServiceUnavailable"))
    for attempt, base in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (10, 30.0)]:
        delay = wait(_state_after(exc, attempt))
        assert base <= delay <= base + 0.5


class Flaky:
    """Fails with the given exceptions, then returns ``"ok"``."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0
        self.seen: list[tuple[Any, ...]] = []

    async def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        self.seen.append((args, kwargs))
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


async def test_with_retries_retries_transient_then_succeeds() -> None:
    fn = Flaky(
        server_error(503, status_body(503, "ServiceUnavailable")),
        httpx.ConnectError("refused"),
        server_error(409, status_body(409, "Conflict")),
    )
    result = await with_retries(fn, "a", 1, initial=0.001, maximum=0.01, jitter=0.0, flag=True)
    assert result == "ok"
    assert fn.calls == 4
    assert fn.seen[-1] == (("a", 1), {"flag": True})


async def test_with_retries_reraises_permanent_at_once() -> None:
    fn = Flaky(server_error(422, status_body(422, "Invalid")))
    with pytest.raises(KubeError) as caught:
        await with_retries(fn, initial=0.001, jitter=0.0)
    assert caught.value.status == 422
    assert fn.calls == 1


async def test_with_retries_gives_up_with_the_last_error() -> None:
    fn = Flaky(*[server_error(500, status_body(500, "InternalError")) for _ in range(10)])
    with pytest.raises(KubeError) as caught:
        await with_retries(fn, attempts=3, initial=0.001, maximum=0.001, jitter=0.0)
    assert caught.value.status == 500
    assert fn.calls == 3
