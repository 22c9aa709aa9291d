"""Configuration text, ConfigMap naming, auto-provisioning and spec validation."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from restate_op.children.config_map import desired_config_map
from restate_op.children.restate_config import (
    DEFAULT_ROLES,
    config_map_name,
    config_toml,
    effective_auto_provision,
    restate_roles,
)
from restate_op.validation import SpecProblem, validate
from tests.children.helpers import make_cluster


def expected_name(text: str) -> str:
    """The upstream naming, computed independently of the implementation."""
    digest = hashlib.sha256(text.encode()).digest()
    return "restate-config-" + format(int.from_bytes(digest[:4], "little"), "x")


# --- config text and ConfigMap -------------------------------------------------------------


def test_config_toml_is_verbatim_or_empty() -> None:
    text = "# keep me\nroles = [ 'admin' ]   \n\n"
    assert config_toml(make_cluster({"config": text})) == text
    assert config_toml(make_cluster()) == ""


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("", "restate-config-42c4b0e3"),  # sha256("") = e3b0c442...
        ('roles = ["admin"]\n', "restate-config-b1a1457b"),
        ("# 692\n", "restate-config-2abfc"),  # digest starts fc ab 02 00: no zero padding
    ],
)
def test_config_map_name_test_vectors(text: str, name: str) -> None:
    assert config_map_name(text) == name == expected_name(text)


@pytest.mark.parametrize("text", ["a = 1", "a = 1\n", "ü = 'ß'", "x" * 10000])
def test_config_map_name_matches_upstream_formula(text: str) -> None:
    assert config_map_name(text) == expected_name(text)


def test_config_map_holds_the_text_under_its_hash() -> None:
    text = "default-num-partitions = 24\n"
    cm = desired_config_map(make_cluster({"config": text}))
    assert cm["metadata"]["name"] == expected_name(text)
    assert cm["metadata"]["namespace"] == "restate-test"
    assert cm["data"] == {"config.toml": text}
    assert cm["immutable"] is True


def test_empty_config_still_gets_a_config_map() -> None:
    cm = desired_config_map(make_cluster())
    assert cm["data"] == {"config.toml": ""}
    assert cm["metadata"]["name"] == "restate-config-42c4b0e3"


# --- roles ---------------------------------------------------------------------------------


def test_roles_default_to_restate_defaults() -> None:
    assert restate_roles(make_cluster()) == list(DEFAULT_ROLES)
    assert restate_roles(make_cluster({"config": "not toml ["})) == list(DEFAULT_ROLES)


def test_roles_come_from_config() -> None:
    cluster = make_cluster({"config": 'roles = ["worker", "log-server"]'})
    assert restate_roles(cluster) == ["worker", "log-server"]


# --- effective auto-provision ---------------------------------------------------------------


def _ap(spec: dict[str, Any]) -> bool:
    return effective_auto_provision(make_cluster(spec))


def test_auto_provision_explicit_setting_wins() -> None:
    assert _ap({"cluster": {"autoProvision": True}}) is True
    assert _ap({"cluster": {"autoProvision": False}, "compute": {"replicas": 3}}) is False
    assert _ap({"cluster": {"autoProvision": True}, "config": "auto-provision = true"}) is True


def test_auto_provision_unset_follows_replicas() -> None:
    assert _ap({}) is False
    assert _ap({"compute": {"replicas": 1}}) is False
    assert _ap({"compute": {"replicas": 0}}) is False
    assert _ap({"compute": {"replicas": 3}}) is True
    assert _ap({"cluster": {}, "compute": {"replicas": 2}}) is True


def test_auto_provision_unset_defers_to_a_user_who_manages_it() -> None:
    three = {"compute": {"replicas": 3}}
    assert _ap({**three, "config": "auto-provision = false"}) is False
    assert _ap({**three, "config": "auto-provision = true"}) is False
    env = [{"name": "RESTATE_AUTO_PROVISION", "value": "false"}]
    assert _ap({"compute": {"replicas": 3, "env": env}}) is False
    # A table merely named like the key does not count; only the top-level option does.
    assert _ap({**three, "config": "[worker]\nauto-provision-x = 1"}) is True


# --- validate ------------------------------------------------------------------------------


def problems(spec: dict[str, Any]) -> list[SpecProblem]:
    return validate(make_cluster(spec))


def fields(spec: dict[str, Any]) -> list[str]:
    return [p.field for p in problems(spec)]


def test_valid_baseline_has_no_problems() -> None:
    assert problems({}) == []


def test_bad_toml_reports_the_parser_message() -> None:
    [problem] = problems({"config": "a = 1\nb = = 2\n"})
    assert problem.reason == "InvalidConfig"
    assert problem.field == "spec.config"
    assert "not valid TOML" in problem.message
    assert "(at line 2, column 5)" in problem.message  # tomllib's position is passed on
    assert problem.message.startswith("spec.config")


def test_problems_are_frozen_values() -> None:
    [problem] = problems({"config": "="})
    with pytest.raises(AttributeError):
        problem.reason = "x"  # type: ignore[misc]


def test_auto_provision_must_be_a_boolean() -> None:
    assert fields({"config": 'auto-provision = "false"'}) == ["spec.config"]


def test_roles_must_be_strings() -> None:
    assert fields({"config": "roles = [1, 2]"}) == ["spec.config"]


AP_ON: dict[str, Any] = {"cluster": {"autoProvision": True}}


def _env(value: str | None = None, value_from: dict[str, Any] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": "RESTATE_AUTO_PROVISION"}
    if value is not None:
        entry["value"] = value
    if value_from is not None:
        entry["valueFrom"] = value_from
    return entry


def test_auto_provision_env_true_contradicts_operator_provisioning() -> None:
    [problem] = problems({**AP_ON, "compute": {"env": [_env("true")]}})
    assert problem.field == "spec.compute.env"
    assert "RESTATE_AUTO_PROVISION" in problem.message
    assert '"false"' in problem.message


@pytest.mark.parametrize("value", ["false", "FALSE", "False", " false "])
def test_auto_provision_env_false_is_accepted_case_insensitively(value: str) -> None:
    assert problems({**AP_ON, "compute": {"env": [_env(value)]}}) == []


def test_auto_provision_env_empty_value_is_rejected() -> None:
    assert fields({**AP_ON, "compute": {"env": [_env("")]}}) == ["spec.compute.env"]


def test_auto_provision_env_value_from_falls_through_to_the_config() -> None:
    secret = {"secretKeyRef": {"name": "s", "key": "k"}}
    assert problems({**AP_ON, "compute": {"env": [_env(value_from=secret)]}}) == []
    with_true = {
        **AP_ON,
        "config": "auto-provision = true",
        "compute": {"env": [_env(value_from=secret)]},
    }
    assert fields(with_true) == ["spec.config"]


def test_auto_provision_config_true_contradicts_operator_provisioning() -> None:
    [problem] = problems({**AP_ON, "config": "auto-provision = true"})
    assert problem.field == "spec.config"
    assert "auto-provision = false" in problem.message


def test_auto_provision_env_and_config_both_wrong_give_two_problems() -> None:
    spec = {**AP_ON, "config": "auto-provision = true", "compute": {"env": [_env("yes")]}}
    assert sorted(fields(spec)) == ["spec.compute.env", "spec.config"]


def test_auto_provision_checks_apply_when_implied_by_replicas() -> None:
    # autoProvision unset, 3 replicas, but the user's env mentions it: the user manages it.
    spec = {"compute": {"replicas": 3, "env": [_env("true")]}}
    assert problems(spec) == []


def test_no_auto_provision_checks_when_operator_does_not_provision() -> None:
    spec = {"cluster": {"autoProvision": False}, "config": "auto-provision = true"}
    assert problems(spec) == []


def test_env_with_value_and_value_from() -> None:
    env = [{"name": "X", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    assert fields({"compute": {"env": env}}) == ["spec.compute.env[0]"]


@pytest.mark.parametrize("name", ["storage", "tmp", "config", "signing-key", "combined-certs"])
def test_extra_volume_name_collisions(name: str) -> None:
    [problem] = problems({"compute": {"extraVolumes": [{"name": name, "emptyDir": {}}]}})
    assert problem.field == "spec.compute.extraVolumes[0].name"
    assert "reserved" in problem.message


@pytest.mark.parametrize("path", ["/restate-data", "/tmp", "/config", "/config/", "/signing-key"])
def test_extra_volume_mount_path_collisions(path: str) -> None:
    spec = {
        "compute": {
            "extraVolumes": [{"name": "extra", "emptyDir": {}}],
            "extraVolumeMounts": [{"name": "extra", "mountPath": path}],
        }
    }
    [problem] = problems(spec)
    assert problem.field == "spec.compute.extraVolumeMounts[0].mountPath"
    assert "choose another path" in problem.message


def test_extra_volumes_that_fit() -> None:
    spec = {
        "compute": {
            "extraVolumes": [
                {"name": "cache", "emptyDir": {}},
                {"name": "creds", "secret": {"secretName": "c"}},
            ],
            "extraVolumeMounts": [
                {"name": "cache", "mountPath": "/cache"},
                {"name": "creds", "mountPath": "/creds", "readOnly": True},
                {"name": "storage", "mountPath": "/restate-data-view", "subPath": "x"},
            ],
        }
    }
    assert problems(spec) == []


def test_volume_mount_of_unknown_volume() -> None:
    spec = {"compute": {"extraVolumeMounts": [{"name": "nope", "mountPath": "/x"}]}}
    [problem] = problems(spec)
    assert problem.field == "spec.compute.extraVolumeMounts[0].name"
    assert "does not exist" in problem.message


def test_volume_mount_of_a_feature_volume_that_is_off() -> None:
    spec = {"compute": {"extraVolumeMounts": [{"name": "signing-key", "mountPath": "/x"}]}}
    assert fields(spec) == ["spec.compute.extraVolumeMounts[0].name"]


def test_duplicate_extra_volumes_and_mounts() -> None:
    spec = {
        "compute": {
            "extraVolumes": [{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}],
            "extraVolumeMounts": [
                {"name": "a", "mountPath": "/a"},
                {"name": "a", "mountPath": "/a/"},
            ],
        }
    }
    assert sorted(fields(spec)) == ["spec.compute.extraVolumeMounts", "spec.compute.extraVolumes"]


def test_volume_without_name_and_mount_without_path() -> None:
    spec = {
        "compute": {
            "extraVolumes": [{"emptyDir": {}}],
            "extraVolumeMounts": [{"name": "storage", "mountPath": "relative"}],
        }
    }
    assert sorted(fields(spec)) == [
        "spec.compute.extraVolumeMounts[0].mountPath",
        "spec.compute.extraVolumes[0].name",
    ]


def test_host_path_volume_is_not_allowed_in_a_restricted_namespace() -> None:
    spec = {"compute": {"extraVolumes": [{"name": "h", "hostPath": {"path": "/var"}}]}}
    [problem] = problems(spec)
    assert problem.field == "spec.compute.extraVolumes[0]"
    assert "hostPath" in problem.message


def test_sidecar_without_name() -> None:
    [problem] = problems({"compute": {"sidecars": [{"image": "busybox"}]}})
    assert problem.field == "spec.compute.sidecars[0].name"


def test_sidecar_name_collisions_and_duplicates() -> None:
    sidecars = [
        {"name": "restate", "image": "a"},
        {"name": "log", "image": "a"},
        {"name": "log", "image": "a"},
    ]
    assert sorted(fields({"compute": {"sidecars": sidecars}})) == [
        "spec.compute.sidecars",
        "spec.compute.sidecars[0].name",
    ]


def test_sidecar_that_breaks_restricted_pod_security() -> None:
    sidecar = {
        "name": "s",
        "image": "a",
        "securityContext": {"privileged": True, "capabilities": {"add": ["NET_ADMIN"]}},
        "ports": [{"containerPort": 9070}],
    }
    found = problems({"compute": {"sidecars": [sidecar]}})
    messages = " ".join(p.message for p in found)
    assert "privileged" in messages
    assert "NET_ADMIN" in messages
    assert "9070" in messages


def test_plain_sidecar_is_fine() -> None:
    sidecar = {"name": "s", "image": "a", "volumeMounts": [{"name": "tmp", "mountPath": "/t"}]}
    assert problems({"compute": {"sidecars": [sidecar]}}) == []


def test_sidecar_mount_of_unknown_volume() -> None:
    sidecar = {"name": "s", "image": "a", "volumeMounts": [{"name": "x", "mountPath": "/x"}]}
    assert fields({"compute": {"sidecars": [sidecar]}}) == [
        "spec.compute.sidecars[0].volumeMounts[0].name"
    ]


@pytest.mark.parametrize("name", ["", "has space", "-lead", "trail-", "a" * 64, "ü"])
def test_invalid_cluster_name(name: str) -> None:
    [problem] = problems({"clusterName": name})
    assert problem.field == "spec.clusterName"


@pytest.mark.parametrize("name", ["prod", "Prod_1", "a.b-c", "a" * 63])
def test_valid_cluster_name(name: str) -> None:
    assert problems({"clusterName": name}) == []


def test_security_group_ids() -> None:
    groups = ["sg-0123456789abcdef0", "sg-12345678", "sg-XYZ", "0123456789"]
    found = fields({"security": {"awsPodSecurityGroups": groups}})
    assert found == [
        "spec.security.awsPodSecurityGroups[2]",
        "spec.security.awsPodSecurityGroups[3]",
    ]


def test_role_arn() -> None:
    ok = "arn:aws:iam::123456789012:role/path/restate"
    assert problems({"security": {"awsPodIdentityAssociationRoleArn": ok}}) == []
    assert fields({"security": {"awsPodIdentityAssociationRoleArn": "restate-role"}}) == [
        "spec.security.awsPodIdentityAssociationRoleArn"
    ]


def test_network_peer_checks() -> None:
    peers = {
        "ingress": [
            {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}},
            {"ipBlock": {"cidr": "10.0.0.0/33"}},
            {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16", "10.0.0.0/8"]}},
            {},
            {"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}},
        ],
        "admin": [{"namespaceSelector": {}}],
    }
    assert fields({"security": {"networkPeers": peers}}) == [
        "spec.security.networkPeers.ingress[1].ipBlock.cidr",
        "spec.security.networkPeers.ingress[2].ipBlock.except[0]",
        "spec.security.networkPeers.ingress[2].ipBlock.except[1]",
        "spec.security.networkPeers.ingress[3]",
        "spec.security.networkPeers.ingress[4]",
    ]


def test_egress_rule_checks() -> None:
    rules = [
        {},
        {"to": [{"ipBlock": {"cidr": "fd00::/8"}}], "ports": [{"port": 8000, "endPort": 9000}]},
        {"ports": [{"port": "https", "endPort": 9000}]},
        {"ports": [{"port": 9000, "endPort": 8000}]},
    ]
    assert fields({"security": {"networkEgressRules": rules}}) == [
        "spec.security.networkEgressRules[2].ports[0].endPort",
        "spec.security.networkEgressRules[3].ports[0].endPort",
    ]


def test_signing_key_checks() -> None:
    good_secret = {"version": "v1", "secret": {"secretName": "key", "key": "private.pem"}}
    assert problems({"security": {"requestSigningPrivateKey": good_secret}}) == []
    bad_secret = {"version": "v1", "secret": {"secretName": "Key!", "key": "a/b"}}
    assert fields({"security": {"requestSigningPrivateKey": bad_secret}}) == [
        "spec.security.requestSigningPrivateKey.secret.secretName",
        "spec.security.requestSigningPrivateKey.secret.key",
    ]
    for path in ["/abs.pem", "../up.pem", ""]:
        provider = {
            "version": "v1",
            "secretProvider": {"provider": "aws", "path": path},
        }
        assert fields({"security": {"requestSigningPrivateKey": provider}}) == [
            "spec.security.requestSigningPrivateKey.secretProvider.path"
        ]


def test_trusted_ca_cert_refs() -> None:
    certs = [{"secretName": "ca", "key": "ca.crt"}, {"secretName": "ca", "key": "bad key"}]
    assert fields({"security": {"trustedCaCerts": certs}}) == [
        "spec.security.trustedCaCerts[1].key"
    ]


def test_blank_image() -> None:
    assert fields({"compute": {"image": " "}}) == ["spec.compute.image"]


def test_every_message_names_its_field() -> None:
    spec = {
        "config": "auto-provision = 1",
        "clusterName": "bad name",
        "compute": {"extraVolumes": [{"name": "tmp", "emptyDir": {}}]},
        "security": {"awsPodSecurityGroups": ["x"]},
    }
    found = problems(spec)
    assert len(found) == 4
    for problem in found:
        assert problem.message.startswith(problem.field)
        assert problem.reason == "InvalidConfig"


# --- role layouts (observed on restate-server 1.7) ------------------------------------------


def test_roles_without_admin_are_refused() -> None:
    [problem] = problems({"config": 'roles = ["worker", "log-server", "metadata-server"]\n'})
    assert problem.field == "spec.config"
    assert "no admin role" in problem.message and "9070" in problem.message


def test_roles_without_metadata_server_are_refused() -> None:
    [problem] = problems({"config": 'roles = ["admin", "worker", "log-server"]\n'})
    assert "no metadata-server role" in problem.message
    assert "[metadata-client]" in problem.message


def test_metadata_store_alias_counts_as_metadata_server() -> None:
    assert problems({"config": 'roles = ["admin", "worker", "metadata-store"]\n'}) == []


@pytest.mark.parametrize(
    "spec",
    [
        {"config": 'roles = ["worker"]\n[metadata-client]\naddresses = ["http://other:5122"]\n'},
        {
            "config": 'roles = ["worker", "http-ingress"]\n',
            "compute": {
                "env": [{"name": "RESTATE_METADATA_CLIENT__ADDRESSES", "value": '["http://x"]'}]
            },
        },
        {
            "config": 'roles = ["worker"]\n',
            "compute": {"env": [{"name": "RESTATE_ROLES", "value": '["admin"]'}]},
        },
    ],
)
def test_role_layout_is_the_users_when_metadata_client_or_roles_env_is_set(
    spec: dict[str, Any],
) -> None:
    assert problems(spec) == []


def test_layouts_with_admin_and_metadata_server_are_accepted() -> None:
    for roles in (
        '["admin", "worker", "log-server", "metadata-server"]',
        '["http-ingress", "admin", "metadata-server"]',
        '["admin", "worker", "metadata-server", "http-ingress"]',
    ):
        assert problems({"config": f"roles = {roles}\n"}) == []
