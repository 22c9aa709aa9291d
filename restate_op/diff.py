"""Is a live object already what we would apply?

A reconcile that finds nothing to change must write nothing, so before each server-side apply
the desired manifest is compared with the live object. The live object carries server defaults
and other managers' fields, so the test is containment: every field we set has the same value
live. Fields we *stopped* setting are caught by the hash annotation (see ``desired_hash``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from restate_op.quantity import InvalidQuantity, parse_quantity

DESIRED_HASH_ANNOTATION = "restate.dev/desired-hash"


def desired_hash(manifest: dict[str, Any]) -> str:
    """A stable hash of a desired manifest (without the hash annotation itself)."""
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def with_desired_hash(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with its own hash recorded in an annotation."""
    digest = desired_hash(manifest)
    metadata = dict(manifest.get("metadata", {}))
    metadata["annotations"] = {**metadata.get("annotations", {}), DESIRED_HASH_ANNOTATION: digest}
    return {**manifest, "metadata": metadata}


def contains(live: Any, desired: Any) -> bool:
    """Whether ``live`` holds every field of ``desired`` with an equal value.

    Maps are compared key by key (extra live keys are fine: server defaults); lists element by
    element with equal length (order is meaningful in pod specs); scalars by value, with
    quantities compared numerically and ints equal to their decimal strings.
    """
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        # An empty list is stored as an absent field (omitempty): the same value.
        return all(contains(live[k], v) if k in live else v == [] for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            return False
        return all(contains(lv, dv) for lv, dv in zip(live, desired, strict=True))
    return _same_scalar(live, desired)


def _same_scalar(live: Any, desired: Any) -> bool:
    if live == desired and type(live) is type(desired):
        return True
    if isinstance(live, bool) or isinstance(desired, bool):
        return False
    if isinstance(live, str | int | float) and isinstance(desired, str | int | float):
        try:
            return parse_quantity(live) == parse_quantity(desired)
        except InvalidQuantity:
            return False
    return False


def up_to_date(live: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    """Whether applying ``desired`` (hash-annotated) over ``live`` would change nothing."""
    return live is not None and contains(live, desired)
