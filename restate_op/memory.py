"""What the operator keeps between reconciles in memory only."""

from __future__ import annotations

from typing import Any


class Memory:
    """What the operator keeps between reconciles in memory only (held statuses).

    Nothing in it is needed to carry on after a restart: a controller that finds it empty
    starts from the live objects, as a level-triggered reconcile does anyway.
    """

    def __init__(self) -> None:
        self._values: dict[tuple[str, str], Any] = {}

    def get(self, key: tuple[str, str]) -> Any:
        return self._values.get(key)

    def put(self, key: tuple[str, str], value: Any) -> None:
        self._values[key] = value

    def drop(self, key: tuple[str, str]) -> None:
        self._values.pop(key, None)
