"""An informer whose list is throttled waits as long as the server asks (Retry-After)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any, cast

from restate_op.kube.client import KubeClient, Obj
from restate_op.kube.errors import KubeError
from restate_op.kube.informer import Informer
from restate_op.kube.resources import CONFIG_MAP, Kind


class ThrottledOnce:
    """Answers the first list with 429 and ``Retry-After``, then an empty list; watches idle."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        self.lists: list[float] = []

    async def list(self, kind: Kind, *_args: Any, **_kwargs: Any) -> tuple[list[Obj], str]:
        self.lists.append(time.monotonic())
        if len(self.lists) == 1:
            raise KubeError(
                "slow down", status=429, reason="TooManyRequests", retry_after=self.retry_after
            )
        return [], "1"

    async def watch(self, *_args: Any, **_kwargs: Any) -> AsyncGenerator[tuple[str, Obj], None]:
        await asyncio.sleep(3600)
        yield "BOOKMARK", {}


async def test_a_throttled_list_is_retried_no_sooner_than_retry_after() -> None:
    client = ThrottledOnce(retry_after=0.6)
    informer = Informer(
        cast(KubeClient, client),
        CONFIG_MAP,
        min_interval=0.01,
        backoff_initial=0.05,
        backoff_max=0.1,
    )
    informer.start()
    try:
        await asyncio.wait_for(informer.wait_synced(), 5)
    finally:
        await informer.stop()
    first, second = client.lists[:2]
    assert second - first >= 0.6, f"re-listed after {second - first:.2f}s"
