"""The conformance layer's kubelet emulation, without a cluster or Restate.

Expansion cases are Kubernetes' own (third_party/forked/golang/expansion/expand_test.go).
"""

from __future__ import annotations

from typing import Any

import pytest

from e2e.conformance import ConformanceError, PodContext, expand, field_ref, resolve_env

DEFINED = {"VAR_A": "A", "VAR_B": "B", "VAR_C": "C", "VAR_REF": "$(VAR_A)", "VAR_EMPTY": ""}


@pytest.mark.parametrize(
    ("value", "expanded"),
    [
        ("$(VAR_A)", "A"),
        ("___$(VAR_B)___", "___B___"),
        ("$(VAR_A)-$(VAR_A)", "A-A"),
        ("$(VAR_A)$(VAR_B)$(VAR_C)", "ABC"),
        ("foo\\$(VAR_C)bar", "foo\\Cbar"),
        ("foo\\\\$(VAR_C)bar", "foo\\\\Cbar"),
        ("$(VAR_REF)", "$(VAR_A)"),  # no recursion
        ("$(VAR_EMPTY)", ""),
        ("$(UNKNOWN)", "$(UNKNOWN)"),
        ("f000-$$VAR_A", "f000-$VAR_A"),
        ("$$(VAR_A)", "$(VAR_A)"),
        ("$$$(VAR_A)", "$A"),
        ("$$$$(VAR_A)", "$$(VAR_A)"),
        ("$(VAR_A", "$(VAR_A"),
        ("$VAR_A", "$VAR_A"),
        ("$", "$"),
        ("$$", "$"),
        ("foo$", "foo$"),
        ("$()", "$()"),
        ("$($(VAR_A)", "$($(VAR_A)"),
        ("$(VAR_A)$", "A$"),
        ("", ""),
    ],
)
def test_expand_like_kubernetes(value: str, expanded: str) -> None:
    assert expand(value, DEFINED) == expanded


POD = PodContext(
    name="restate-1",
    namespace="ns",
    ip="127.0.0.11",
    labels={"app": "restate", "topology.kubernetes.io/region": "pod-region"},
    node_name="kwok-zone-b",
    node_labels={"topology.kubernetes.io/zone": "zone-b", "topology.kubernetes.io/region": "r"},
)


def _field(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def test_resolve_env_in_order_with_downward_api() -> None:
    env = [
        _field("POD_NAME", "metadata.name"),
        _field("POD_ZONE", "metadata.labels['topology.kubernetes.io/zone']"),
        _field("POD_REGION", "metadata.labels['topology.kubernetes.io/region']"),
        _field("APP", "metadata.labels['app']"),
        _field("MISSING", "metadata.labels['nope']"),
        {"name": "ADDR", "value": "http://$(POD_NAME).svc:5122"},
        {"name": "LATER", "value": "$(DEFINED_AFTER)"},
        {"name": "DEFINED_AFTER", "value": "x"},
        {"name": "LOCATION", "value": "region.$(POD_ZONE)"},
        _field("IP", "status.podIP"),
        {"name": "ADDR", "value": "$(ADDR)/again"},  # a redefinition sees the earlier value
    ]
    assert resolve_env(env, POD) == {
        "POD_NAME": "restate-1",
        "POD_ZONE": "zone-b",  # from the node: the pod has no zone label
        "POD_REGION": "pod-region",  # the pod's own label wins
        "APP": "restate",
        "MISSING": "",
        "ADDR": "http://restate-1.svc:5122/again",
        "LATER": "$(DEFINED_AFTER)",
        "DEFINED_AFTER": "x",
        "LOCATION": "region.zone-b",
        "IP": "127.0.0.11",
    }


def test_key_references_and_unsupported_sources() -> None:
    def lookup(kind: str, name: str, key: str) -> str | None:
        return {("configmap", "cm", "k"): "from-cm"}.get((kind, name, key))

    cm = {"name": "V", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}
    optional = {
        "name": "O",
        "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "optional": True}},
    }
    assert resolve_env([cm, optional], POD, lookup) == {"V": "from-cm"}
    with pytest.raises(ConformanceError):
        resolve_env(
            [{"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}], POD, lookup
        )
    with pytest.raises(ConformanceError):
        field_ref("status.hostIP", POD)
