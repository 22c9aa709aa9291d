"""The shared poller (e2e/polling.py) and metrics reader (e2e/metrics.py); no cluster needed."""

from __future__ import annotations

import itertools

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from e2e.harness import eventually
from e2e.metrics import samples_in
from e2e.operator_process import wait_for
from e2e.polling import TimedOut, apoll, given, poll


def test_poll_returns_the_first_value_that_is_done() -> None:
    counter = itertools.count()
    assert (
        poll(lambda: next(counter), within=5, what="3", interval=0.01, done=lambda n: n >= 3) == 3
    )


def test_poll_retries_the_listed_exceptions_and_reports_the_last_one() -> None:
    def probe() -> int:
        raise ConnectionError("refused")

    with pytest.raises(TimedOut, match=r"waiting for the server; last: ConnectionError: refused"):
        poll(probe, within=0.1, what="the server", interval=0.01, retry_on=(OSError,))


def test_poll_stops_at_once_on_any_other_exception() -> None:
    calls = []

    def probe() -> int:
        calls.append(1)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        poll(probe, within=5, what="x", interval=0.01, retry_on=(OSError,))
    assert len(calls) == 1


def test_poll_reports_the_last_value_and_can_raise_another_type() -> None:
    with pytest.raises(TimeoutError, match=r"timed out after 0s waiting for y; last: \(1, 2\)"):
        poll(
            lambda: (1, 2),
            within=0.05,
            what="y",
            interval=0.01,
            done=lambda _: False,
            fail=TimeoutError,
        )


async def test_apoll_with_its_own_sleep() -> None:
    slept: list[float] = []
    counter = itertools.count()

    async def probe() -> int:
        return next(counter)

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    assert (
        await apoll(probe, within=5, what="2", interval=0.5, done=lambda n: n == 2, sleep=sleep)
        == 2
    )
    assert slept == [0.5, 0.5]


async def test_eventually_takes_zero_but_not_none_or_false() -> None:
    values = iter([None, False, 0])

    async def probe() -> int | None:
        return next(values)

    assert await eventually(probe, within=5, what="zero", interval=0.01) == 0
    assert given(0) and given("") and not given(None) and not given(False)


async def test_a_lambda_returning_a_coroutine_is_awaited_not_taken_as_an_answer() -> None:
    answers = iter([False, False, True])
    asked: list[bool] = []

    async def served(kind: str) -> bool:
        asked.append(answer := next(answers))
        return answer and kind == "Widget"

    assert await eventually(lambda: served("Widget"), within=5, what="it", interval=0.01) is True
    assert asked == [False, False, True]


async def test_eventually_counts_exceptions_as_not_yet() -> None:
    async def probe() -> bool:
        raise RuntimeError("restarting")

    with pytest.raises(AssertionError, match="waiting for the API; last: RuntimeError: restarting"):
        await eventually(probe, within=0.1, what="the API", interval=0.01)


def test_wait_for_passes_exceptions_through() -> None:
    def exited() -> bool:
        raise AssertionError("operator exited")

    with pytest.raises(AssertionError, match="operator exited"):
        wait_for(exited, 5, 0.01, "ready")
    with pytest.raises(AssertionError, match="timed out after 0s waiting for ready"):
        wait_for(lambda: 0, 0.05, 0.01, "ready")


def test_samples_in_reads_prometheus_client_text() -> None:
    registry = CollectorRegistry()
    requests = Counter("restate_operator_api_requests", "", ["verb", "kind"], registry=registry)
    requests.labels("apply", "StatefulSet").inc(3)
    requests.labels("get", 'odd "kind"').inc()
    Gauge("restate_operator_leader", "", registry=registry).set(1)
    text = generate_latest(registry).decode()

    found = samples_in(text, "restate_operator_api_requests_total")
    assert sorted(found, key=lambda s: s[0]["verb"]) == [
        ({"verb": "apply", "kind": "StatefulSet"}, 3.0),
        ({"verb": "get", "kind": 'odd "kind"'}, 1.0),
    ]
    assert samples_in(text, "restate_operator_leader") == [({}, 1.0)]
    assert samples_in(text, "restate_operator_api_requests") == []
    assert samples_in("", "restate_operator_leader") == []
