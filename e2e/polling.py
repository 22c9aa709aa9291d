"""Poll until something holds, or fail saying what was seen last: the one poller of e2e and bench.

:func:`poll` (sync) and :func:`apoll` (async) are tenacity's ``Retrying`` and ``AsyncRetrying``
with one policy: call ``probe`` every ``interval`` seconds until ``done(value)`` holds and
return that value; exceptions of the types in ``retry_on`` count as "not yet" (an API server
that is restarting), any other exception ends the poll at once. After ``within`` seconds the
poll raises :class:`TimedOut` (or ``fail``) with ``what`` and the last value or exception seen.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_delay,
    wait_fixed,
)

T = TypeVar("T")


class TimedOut(AssertionError):
    """A poll ran out of time (an AssertionError, so a test fails rather than errors)."""


def truthy(value: object) -> bool:
    return bool(value)


def given(value: object) -> bool:
    """Anything but ``None`` and ``False`` (so ``0`` and ``""`` are answers)."""
    return value is not None and value is not False


def _last(state: RetryCallState) -> str:
    outcome = state.outcome
    if outcome is None:
        return "nothing yet"
    if outcome.failed:
        err = outcome.exception()
        return f"{type(err).__name__}: {err}"
    return repr(outcome.result())


def _policy(
    *,
    within: float,
    what: str,
    interval: float,
    done: Callable[[Any], bool],
    retry_on: tuple[type[BaseException], ...],
    fail: Callable[[str], BaseException],
) -> dict[str, Any]:
    def timed_out(state: RetryCallState) -> Any:
        outcome = state.outcome
        cause = outcome.exception() if outcome is not None and outcome.failed else None
        error = fail(f"timed out after {within:.0f}s waiting for {what}; last: {_last(state)}")
        raise error from cause

    return {
        "stop": stop_after_delay(within),
        "wait": wait_fixed(interval),
        "retry": retry_if_exception_type(retry_on) | retry_if_result(lambda v: not done(v)),
        "retry_error_callback": timed_out,
    }


def poll(
    probe: Callable[[], T],
    *,
    within: float,
    what: str,
    interval: float = 0.25,
    done: Callable[[T], bool] = truthy,
    retry_on: tuple[type[BaseException], ...] = (),
    fail: Callable[[str], BaseException] = TimedOut,
) -> T:
    """Call ``probe()`` until ``done`` holds for its value; return that value."""
    policy = _policy(
        within=within, what=what, interval=interval, done=done, retry_on=retry_on, fail=fail
    )
    result: T = Retrying(**policy)(probe)
    return result


async def apoll(
    probe: Callable[[], Awaitable[T]],
    *,
    within: float,
    what: str,
    interval: float = 0.2,
    done: Callable[[T], bool] = truthy,
    retry_on: tuple[type[BaseException], ...] = (),
    fail: Callable[[str], BaseException] = TimedOut,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> T:
    """Await ``probe()`` until ``done`` holds for its value; return that value.

    ``sleep`` replaces ``asyncio.sleep`` between tries (to wake early on an event).
    """
    policy = _policy(
        within=within, what=what, interval=interval, done=done, retry_on=retry_on, fail=fail
    )
    if sleep is not None:
        policy["sleep"] = sleep

    async def attempt() -> T:
        # tenacity awaits only what a coroutine function returns: a lambda returning a
        # coroutine would hand back the coroutine itself, never awaited, as a truthy answer.
        value: Any = probe()
        if inspect.isawaitable(value):
            value = await value
        return cast(T, value)

    result: T = await AsyncRetrying(**policy)(attempt)
    return result
