"""Interning cached objects' strings keeps them equal and shares the copies."""

from __future__ import annotations

import json
from typing import Any

from restate_op.kube.compact import MAX_INTERNED_LENGTH, compact

OBJ: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "restate", "labels": {"app.kubernetes.io/name": "restate"}},
    "spec": {"ports": [{"name": "admin", "port": 9070, "protocol": "TCP"}], "x": None},
    "data": {"config.toml": "x" * (MAX_INTERNED_LENGTH + 1), "flag": True, "ratio": 0.5},
}


def test_compact_objects_equal_the_originals() -> None:
    assert compact(json.loads(json.dumps(OBJ))) == OBJ


def test_separately_decoded_objects_share_keys_and_short_values() -> None:
    a = compact(json.loads(json.dumps(OBJ)))
    b = compact(json.loads(json.dumps(OBJ)))
    key_a = next(k for k in a["metadata"] if k == "labels")
    key_b = next(k for k in b["metadata"] if k == "labels")
    assert key_a is key_b
    assert a["spec"]["ports"][0]["protocol"] is b["spec"]["ports"][0]["protocol"]
    assert a["metadata"]["name"] is b["metadata"]["name"]
    # Long strings are left alone: they are rarely repeated.
    assert a["data"]["config.toml"] is not b["data"]["config.toml"]
