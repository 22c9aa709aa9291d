"""The StatefulSet: shape, environment, volumes, probes and pod security."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from restate_op.api.models import RestateCluster
from restate_op.children.restate_config import config_map_name
from restate_op.children.statefulset import desired_statefulset, pvc_names
from restate_op.settings import OperatorSettings
from tests.children.helpers import (
    empty_fields,
    env_map,
    load_fixture,
    make_cluster,
    restricted_violations,
)

SETTINGS = OperatorSettings()
SELECTOR = {"app.kubernetes.io/name": "restate", "app.kubernetes.io/instance": "restate-test"}
DEFAULT_ENV_ORDER = [
    "POD_NAME",
    "POD_ZONE",
    "POD_REGION",
    "RESTATE_LOG_FORMAT",
    "RESTATE_CLUSTER_NAME",
    "RESTATE_BASE_DIR",
    "RUST_BACKTRACE",
    "RUST_LIB_BACKTRACE",
    "RESTATE_CONFIG",
    "RESTATE_ADVERTISED_ADDRESS",
    "RESTATE_NODE_NAME",
]


def build(
    spec: dict[str, Any] | None = None,
    settings: OperatorSettings = SETTINGS,
    pod_annotations: dict[str, str] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    return desired_statefulset(make_cluster(spec, **kwargs), settings, pod_annotations)


def pod(sts: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = sts["spec"]["template"]["spec"]
    return spec


def restate(sts: dict[str, Any]) -> dict[str, Any]:
    [container] = pod(sts)["containers"]
    assert container["name"] == "restate"
    return dict(container)


def env_names(sts: dict[str, Any]) -> list[str]:
    return [e["name"] for e in restate(sts)["env"]]


# --- shape ---------------------------------------------------------------------------------


def test_statefulset_shape() -> None:
    sts = build()
    assert sts["apiVersion"] == "apps/v1"
    assert sts["kind"] == "StatefulSet"
    assert sts["metadata"]["name"] == "restate"
    assert sts["metadata"]["namespace"] == "restate-test"
    spec = sts["spec"]
    assert spec["replicas"] == 1
    assert spec["selector"] == {"matchLabels": SELECTOR}
    assert spec["serviceName"] == "restate-cluster"
    assert spec["podManagementPolicy"] == "Parallel"
    assert set(spec) == {
        "replicas",
        "selector",
        "serviceName",
        "podManagementPolicy",
        "updateStrategy",
        "template",
        "volumeClaimTemplates",
    }
    assert empty_fields(sts) == []


def test_pod_defaults() -> None:
    spec = pod(build())
    assert spec["serviceAccountName"] == "restate"
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert spec["terminationGracePeriodSeconds"] == 60
    assert "initContainers" not in spec
    for absent in ("dnsPolicy", "tolerations", "affinity", "nodeSelector", "imagePullSecrets"):
        assert absent not in spec


def test_replicas_follow_the_spec() -> None:
    assert build({"compute": {"replicas": 3}})["spec"]["replicas"] == 3
    assert build({"compute": {"replicas": 0}})["spec"]["replicas"] == 0


def test_output_is_deterministic() -> None:
    spec = {"compute": {"labels": {"b": "1", "a": "2"}, "annotations": {"z": "1", "y": "2"}}}
    first, second = build(spec), build(spec)
    assert json.dumps(first) == json.dumps(second)
    template = first["spec"]["template"]["metadata"]
    assert list(template["labels"]) == sorted(template["labels"])
    assert list(template["annotations"]) == sorted(template["annotations"])


# --- container -----------------------------------------------------------------------------


def test_restate_container() -> None:
    container = restate(build())
    assert container["image"] == "restatedev/restate:0.8.0"
    assert [(p["name"], p["containerPort"]) for p in container["ports"]] == [
        ("ingress", 8080),
        ("admin", 9070),
        ("node", 5122),
    ]
    for absent in ("command", "args", "resources", "lifecycle", "imagePullPolicy"):
        assert absent not in container


def test_container_pass_through() -> None:
    lifecycle = {"preStop": {"exec": {"command": ["sleep", "5"]}}}
    resources = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}
    container = restate(
        build(
            {
                "compute": {
                    "imagePullPolicy": "Always",
                    "command": ["/usr/local/bin/restate-server"],
                    "args": ["--node-name", "x"],
                    "lifecycle": lifecycle,
                    "resources": resources,
                }
            }
        )
    )
    assert container["imagePullPolicy"] == "Always"
    assert container["command"] == ["/usr/local/bin/restate-server"]
    assert container["args"] == ["--node-name", "x"]
    assert container["lifecycle"] == lifecycle
    assert container["resources"] == resources


def test_pod_pass_through() -> None:
    tolerations = [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]
    term = {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["restate"]}]}
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
        }
    }
    spread = [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]
    dns_config = {"options": [{"name": "ndots", "value": "2"}]}
    spec = pod(
        build(
            {
                "compute": {
                    "dnsPolicy": "None",
                    "dnsConfig": dns_config,
                    "tolerations": tolerations,
                    "nodeSelector": {"pool": "restate"},
                    "affinity": affinity,
                    "topologySpreadConstraints": spread,
                    "priorityClassName": "high",
                    "imagePullSecrets": [{"name": "regcred"}],
                    "terminationGracePeriodSeconds": 120,
                }
            }
        )
    )
    assert spec["dnsPolicy"] == "None"
    assert spec["dnsConfig"] == dns_config
    assert spec["tolerations"] == tolerations
    assert spec["nodeSelector"] == {"pool": "restate"}
    assert spec["affinity"] == affinity
    assert spec["topologySpreadConstraints"] == spread
    assert spec["priorityClassName"] == "high"
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert spec["terminationGracePeriodSeconds"] == 120


def test_zero_grace_period_is_kept() -> None:
    assert (
        pod(build({"compute": {"terminationGracePeriodSeconds": 0}}))[
            "terminationGracePeriodSeconds"
        ]
        == 0
    )


# --- environment ---------------------------------------------------------------------------


def test_default_env_order_and_values() -> None:
    sts = build()
    assert env_names(sts) == DEFAULT_ENV_ORDER
    env = env_map(restate(sts))
    assert env["POD_NAME"] == {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}
    assert env["POD_ZONE"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['topology.kubernetes.io/zone']"
    )
    assert env["POD_REGION"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['topology.kubernetes.io/region']"
    )
    assert env["RESTATE_LOG_FORMAT"] == "json"
    assert env["RESTATE_CLUSTER_NAME"] == "restate-test"
    assert env["RESTATE_BASE_DIR"] == "/restate-data"
    assert env["RUST_BACKTRACE"] == "1"
    assert env["RUST_LIB_BACKTRACE"] == "0"
    assert env["RESTATE_CONFIG"] == "/config/config.toml"
    assert env["RESTATE_ADVERTISED_ADDRESS"] == (
        "http://$(POD_NAME).restate-cluster.restate-test.svc.cluster.local:5122"
    )
    assert env["RESTATE_NODE_NAME"] == "$(POD_NAME)"


def test_advertised_address_uses_the_cluster_dns() -> None:
    env = env_map(restate(build(settings=OperatorSettings(cluster_dns="k8s.example"))))
    assert env["RESTATE_ADVERTISED_ADDRESS"] == (
        "http://$(POD_NAME).restate-cluster.restate-test.svc.k8s.example:5122"
    )


def test_cluster_name_override() -> None:
    env = env_map(restate(build({"clusterName": "prod"})))
    assert env["RESTATE_CLUSTER_NAME"] == "prod"


def test_user_env_overrides_defaults_by_name_and_comes_after_them() -> None:
    user = [
        {"name": "RESTATE_LOG_FORMAT", "value": "pretty"},
        {"name": "RESTATE_LOCATION", "value": "eu.$(POD_ZONE)"},
        {"name": "POD_NAME", "value": "fixed"},
    ]
    sts = build({"compute": {"env": user}})
    names = env_names(sts)
    expected_defaults = [
        n for n in DEFAULT_ENV_ORDER if n not in ("RESTATE_LOG_FORMAT", "POD_NAME")
    ]
    assert names == [*expected_defaults, "RESTATE_LOG_FORMAT", "RESTATE_LOCATION", "POD_NAME"]
    assert restate(sts)["env"][-3:] == user
    assert len(names) == len(set(names))


def test_user_env_value_from_is_verbatim() -> None:
    user = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    assert restate(build({"compute": {"env": user}}))["env"][-1] == user[0]


def test_multi_node_gets_auto_provision_off_and_metadata_addresses() -> None:
    env = env_map(restate(build({"compute": {"replicas": 3}})))
    assert env["RESTATE_AUTO_PROVISION"] == "false"
    assert json.loads(env["RESTATE_METADATA_CLIENT__ADDRESSES"]) == [
        "http://restate-cluster.restate-test.svc.cluster.local:5122"
    ]
    assert env["RESTATE_METADATA_CLIENT__ADDRESSES"] == (
        '["http://restate-cluster.restate-test.svc.cluster.local:5122"]'
    )
    names = env_names(build({"compute": {"replicas": 3}}))
    assert names == [
        *DEFAULT_ENV_ORDER,
        "RESTATE_AUTO_PROVISION",
        "RESTATE_METADATA_CLIENT__ADDRESSES",
    ]


def test_single_node_with_explicit_auto_provision() -> None:
    env = env_map(restate(build({"cluster": {"autoProvision": True}})))
    assert env["RESTATE_AUTO_PROVISION"] == "false"
    assert "RESTATE_METADATA_CLIENT__ADDRESSES" in env


def test_single_node_self_provisions() -> None:
    env = env_map(restate(build()))
    assert "RESTATE_AUTO_PROVISION" not in env
    assert "RESTATE_METADATA_CLIENT__ADDRESSES" not in env


def test_multi_node_managed_by_the_user() -> None:
    sts = build({"compute": {"replicas": 3}, "cluster": {"autoProvision": False}})
    env = env_map(restate(sts))
    assert "RESTATE_AUTO_PROVISION" not in env
    assert "RESTATE_METADATA_CLIENT__ADDRESSES" in env  # still several nodes to connect


def test_metadata_client_from_config_suppresses_the_default() -> None:
    config = '[metadata-client]\ntype = "object-store"\npath = "s3://b/m"\n'
    env = env_map(restate(build({"compute": {"replicas": 3}, "config": config})))
    assert "RESTATE_METADATA_CLIENT__ADDRESSES" not in env
    assert env["RESTATE_AUTO_PROVISION"] == "false"


def test_metadata_client_from_env_suppresses_the_default() -> None:
    user = [{"name": "RESTATE_METADATA_CLIENT__TYPE", "value": "object-store"}]
    names = env_names(build({"compute": {"replicas": 3, "env": user}}))
    assert "RESTATE_METADATA_CLIENT__ADDRESSES" not in names


def test_user_auto_provision_env_replaces_ours() -> None:
    user = [{"name": "RESTATE_AUTO_PROVISION", "value": "FALSE"}]
    sts = build({"compute": {"replicas": 3, "env": user}, "cluster": {"autoProvision": True}})
    assert [e for e in restate(sts)["env"] if e["name"] == "RESTATE_AUTO_PROVISION"] == user


# --- labels and annotations ----------------------------------------------------------------


def test_pod_labels_merge_with_operator_labels_winning() -> None:
    sts = build(
        {"compute": {"labels": {"app.kubernetes.io/name": "x", "tier": "data"}}},
        labels={"team": "a", "tier": "cluster"},
    )
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert labels == {
        "app.kubernetes.io/instance": "restate-test",
        "app.kubernetes.io/managed-by": "restate-operator",
        "app.kubernetes.io/name": "restate",
        "team": "a",
        "tier": "cluster",
    }
    # Selector and claim labels never include user labels (they are immutable).
    assert sts["spec"]["selector"]["matchLabels"] == SELECTOR
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["labels"] == SELECTOR
    assert sts["metadata"]["labels"]["team"] == "a"


def test_pod_annotations_merge_with_operator_annotations_winning() -> None:
    sts = build(
        {"compute": {"annotations": {"a": "user", "restate.dev/aws-security-groups": "user"}}},
        pod_annotations={"restate.dev/aws-security-groups": "sg-1"},
    )
    assert sts["spec"]["template"]["metadata"]["annotations"] == {
        "a": "user",
        "restate.dev/aws-security-groups": "sg-1",
    }


def test_no_pod_annotations_when_none_apply() -> None:
    assert "annotations" not in build()["spec"]["template"]["metadata"]


def test_cluster_annotations_do_not_reach_the_pods() -> None:
    sts = build(annotations={"kubectl.kubernetes.io/last-applied-configuration": "{}"})
    assert "annotations" not in sts["spec"]["template"]["metadata"]
    assert "annotations" not in sts["metadata"]


# --- volumes -------------------------------------------------------------------------------


def test_operator_volumes_and_mounts() -> None:
    sts = build({"config": "a = 1\n"})
    assert pod(sts)["volumes"] == [
        {"name": "tmp", "emptyDir": {}},
        {"name": "config", "configMap": {"name": config_map_name("a = 1\n")}},
    ]
    assert restate(sts)["volumeMounts"] == [
        {"name": "storage", "mountPath": "/restate-data"},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "config", "mountPath": "/config", "readOnly": True},
    ]


def test_claim_template() -> None:
    sts = build(
        {
            "storage": {
                "storageRequestBytes": 10_000_000_000,
                "storageClassName": "gp3",
                "volumeAttributesClassName": "fast",
            }
        }
    )
    assert sts["spec"]["volumeClaimTemplates"] == [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "storage", "labels": SELECTOR},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "gp3",
                "volumeAttributesClassName": "fast",
                "resources": {"requests": {"storage": "10000000000"}},
            },
        }
    ]


def test_claim_template_without_classes() -> None:
    claim = build()["spec"]["volumeClaimTemplates"][0]["spec"]
    assert set(claim) == {"accessModes", "resources"}


def test_extra_volumes_and_mounts_are_appended() -> None:
    volume = {"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}}
    mount = {"name": "cache", "mountPath": "/cache"}
    sts = build({"compute": {"extraVolumes": [volume], "extraVolumeMounts": [mount]}})
    assert pod(sts)["volumes"][-1] == volume
    assert restate(sts)["volumeMounts"][-1] == mount


def test_pvc_names() -> None:
    assert pvc_names(make_cluster({"compute": {"replicas": 3}})) == [
        "storage-restate-0",
        "storage-restate-1",
        "storage-restate-2",
    ]
    assert pvc_names(make_cluster({"compute": {"replicas": 0}})) == []


# --- sidecars ------------------------------------------------------------------------------


def test_sidecars_become_native_sidecars() -> None:
    sidecar = {"name": "log", "image": "fluent-bit", "restartPolicy": "OnFailure"}
    spec = pod(build({"compute": {"sidecars": [sidecar]}}))
    [init] = spec["initContainers"]
    assert init["name"] == "log"
    assert init["image"] == "fluent-bit"
    assert init["restartPolicy"] == "Always"
    assert init["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    # The cluster's own spec is not modified by the builder.
    cluster = make_cluster({"compute": {"sidecars": [sidecar]}})
    desired_statefulset(cluster, SETTINGS)
    assert cluster.spec.compute.sidecars == [sidecar]


def test_sidecar_security_settings_are_kept() -> None:
    sidecar = {
        "name": "s",
        "image": "a",
        "securityContext": {
            "readOnlyRootFilesystem": True,
            "capabilities": {"add": ["NET_BIND_SERVICE"]},
        },
    }
    [init] = pod(build({"compute": {"sidecars": [sidecar]}}))["initContainers"]
    assert init["securityContext"] == {
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
    }


# --- signing key ---------------------------------------------------------------------------


def test_signing_key_from_secret() -> None:
    key = {"version": "v1", "secret": {"secretName": "signing", "key": "key.pem"}}
    sts = build({"security": {"requestSigningPrivateKey": key}})
    assert pod(sts)["volumes"][-1] == {
        "name": "signing-key",
        "secret": {
            "secretName": "signing",
            "items": [{"key": "key.pem", "path": "private.pem", "mode": 0o400}],
        },
    }
    assert restate(sts)["volumeMounts"][-1] == {
        "name": "signing-key",
        "mountPath": "/signing-key",
        "readOnly": True,
    }
    assert restate(sts)["env"][-1] == {
        "name": "RESTATE_REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE",
        "value": "/signing-key/private.pem",
    }


def test_signing_key_from_secret_provider() -> None:
    key = {
        "version": "v1",
        "secretProvider": {"provider": "aws", "parameters": {"objects": "x"}, "path": "keys/p.pem"},
    }
    sts = build({"security": {"requestSigningPrivateKey": key}})
    assert pod(sts)["volumes"][-1] == {
        "name": "signing-key",
        "csi": {
            "driver": "secrets-store.csi.k8s.io",
            "readOnly": True,
            "volumeAttributes": {"secretProviderClass": "request-signing-key-v1"},
        },
    }
    env = env_map(restate(sts))
    assert env["RESTATE_REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE"] == "/signing-key/keys/p.pem"


# --- trusted CA certificates ---------------------------------------------------------------

CERTS = [
    {"secretName": "corp-ca", "key": "root.crt"},
    {"secretName": "other-ca", "key": "ca.pem"},
    {"secretName": "corp-ca", "key": "intermediate.crt"},
]


def test_trusted_ca_certs() -> None:
    sts = build({"security": {"trustedCaCerts": CERTS}})
    spec = pod(sts)
    [init] = spec["initContainers"]
    assert init["name"] == "combine-ca-certs"
    assert init["image"] == "restatedev/restate:0.8.0"
    assert init["command"][:2] == ["/bin/sh", "-c"]
    assert init["command"][4:] == [
        "/trusted-ca-certs/ca-0.crt",
        "/trusted-ca-certs/ca-1.crt",
        "/trusted-ca-certs/ca-2.crt",
    ]
    script = init["command"][2]
    assert "/etc/ssl/certs/ca-certificates.crt" in script
    assert "/combined-certs/ca-certificates.crt" in script
    assert "corp-ca" not in script  # user text never reaches the shell

    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["trusted-ca-certs"]["projected"]["sources"] == [
        {
            "secret": {
                "name": "corp-ca",
                "items": [
                    {"key": "root.crt", "path": "ca-0.crt"},
                    {"key": "intermediate.crt", "path": "ca-2.crt"},
                ],
            }
        },
        {"secret": {"name": "other-ca", "items": [{"key": "ca.pem", "path": "ca-1.crt"}]}},
    ]
    assert volumes["combined-certs"] == {"name": "combined-certs", "emptyDir": {}}
    assert {"name": "combined-certs", "mountPath": "/combined-certs", "readOnly": True} in (
        restate(sts)["volumeMounts"]
    )
    assert restate(sts)["env"][-1] == {
        "name": "SSL_CERT_FILE",
        "value": "/combined-certs/ca-certificates.crt",
    }
    expected = hashlib.sha256(
        b"corp-ca:root.crt,other-ca:ca.pem,corp-ca:intermediate.crt,"
    ).hexdigest()
    annotations = sts["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"restate.dev/trusted-ca-certs": expected}


def test_ca_init_container_runs_before_sidecars() -> None:
    sidecar = {"name": "s", "image": "a"}
    spec = pod(
        build({"security": {"trustedCaCerts": CERTS[:1]}, "compute": {"sidecars": [sidecar]}})
    )
    assert [c["name"] for c in spec["initContainers"]] == ["combine-ca-certs", "s"]


def test_env_tail_order_with_signing_key_and_certs() -> None:
    key = {"version": "v1", "secret": {"secretName": "s", "key": "k"}}
    user = [{"name": "X", "value": "1"}]
    sts = build(
        {
            "compute": {"env": user},
            "security": {"requestSigningPrivateKey": key, "trustedCaCerts": CERTS[:1]},
        }
    )
    assert env_names(sts)[-3:] == [
        "X",
        "RESTATE_REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE",
        "SSL_CERT_FILE",
    ]


# --- readiness -----------------------------------------------------------------------------


def test_readiness_probe_on_admin() -> None:
    assert restate(build())["readinessProbe"] == {
        "httpGet": {"path": "/health", "port": 9070},
        "periodSeconds": 5,
        "failureThreshold": 3,
    }


def test_readiness_probe_on_node_port_without_admin_role() -> None:
    probe = restate(build({"config": 'roles = ["worker", "log-server"]'}))["readinessProbe"]
    assert probe["httpGet"] == {"path": "/health", "port": 5122}
    assert "initialDelaySeconds" not in probe


def test_readiness_probe_on_ingress_without_admin_role() -> None:
    probe = restate(build({"config": 'roles = ["worker", "http-ingress"]'}))["readinessProbe"]
    assert probe["httpGet"] == {"path": "/restate/health", "port": 8080}


# --- pod security --------------------------------------------------------------------------


def test_pod_and_container_security_contexts() -> None:
    sts = build()
    assert pod(sts)["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 3000,
        "fsGroup": 2000,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert restate(sts)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
    }


EVERYTHING: dict[str, Any] = {
    "compute": {
        "sidecars": [{"name": "log", "image": "fluent-bit"}],
        "extraVolumes": [{"name": "cache", "emptyDir": {}}],
        "extraVolumeMounts": [{"name": "cache", "mountPath": "/cache"}],
    },
    "security": {
        "trustedCaCerts": CERTS,
        "requestSigningPrivateKey": {"version": "v1", "secret": {"secretName": "s", "key": "k"}},
    },
}


@pytest.mark.parametrize(
    "cluster",
    [
        make_cluster(),
        make_cluster(EVERYTHING),
        make_cluster(
            {
                "security": {
                    "requestSigningPrivateKey": {
                        "version": "v1",
                        "secretProvider": {"provider": "vault", "path": "k"},
                    }
                }
            }
        ),
        load_fixture("full.yaml"),
    ],
)
def test_every_container_passes_restricted_pod_security(cluster: RestateCluster) -> None:
    sts = desired_statefulset(cluster, SETTINGS)
    assert restricted_violations(pod(sts)) == []
    assert empty_fields(sts) == []


def test_the_restricted_checker_is_not_vacuous() -> None:
    bad = {
        "securityContext": {"runAsUser": 0},
        "containers": [{"name": "c", "securityContext": {"privileged": True}}],
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
    }
    found = restricted_violations(bad)
    assert any("privileged" in p for p in found)
    assert any("runAsNonRoot" in p for p in found)
    assert any("seccomp" in p for p in found)
    assert any("volume h" in p for p in found)
