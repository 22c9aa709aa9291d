from typing import Any

from restate_op.diff import DESIRED_HASH_ANNOTATION, contains, desired_hash, with_desired_hash


def test_live_with_server_defaults_contains_desired() -> None:
    desired = {"spec": {"ports": [{"port": 8080, "name": "ingress"}]}}
    live = {
        "spec": {
            "ports": [{"port": 8080, "name": "ingress", "protocol": "TCP"}],
            "clusterIP": "10.0.0.1",
        }
    }
    assert contains(live, desired)


def test_changed_value_or_list_length_is_a_difference() -> None:
    assert not contains({"a": {"b": 1}}, {"a": {"b": 2}})
    assert not contains({"a": [1, 2]}, {"a": [1]})
    assert not contains({"a": 1}, {"a": 1, "b": 2})


def test_quantities_compare_by_value() -> None:
    assert contains({"storage": "10G"}, {"storage": "10000000000"})
    assert contains({"storage": "2Gi"}, {"storage": 2147483648})
    assert not contains({"storage": "2G"}, {"storage": "2Gi"})


def test_digests_that_look_like_exponents_are_strings() -> None:
    # A hex digest such as "12e45678" parses as a huge number; it must compare as text.
    assert contains({"h": "12e45678"}, {"h": "12e45678"})
    assert not contains({"h": "12e45678"}, {"h": "12e45679"})


def test_booleans_are_not_numbers() -> None:
    assert not contains({"x": True}, {"x": 1})
    assert not contains({"x": "true"}, {"x": True})


def test_hash_annotation_is_stable_and_excludes_itself() -> None:
    manifest: dict[str, Any] = {
        "kind": "Service",
        "metadata": {"name": "restate", "annotations": {"a": "b"}},
    }
    annotated = with_desired_hash(manifest)
    assert annotated["metadata"]["annotations"][DESIRED_HASH_ANNOTATION] == desired_hash(manifest)
    assert annotated["metadata"]["annotations"]["a"] == "b"
    assert with_desired_hash(manifest) == annotated
    assert (
        "annotations" in manifest["metadata"]
        and DESIRED_HASH_ANNOTATION not in manifest["metadata"]["annotations"]
    )
