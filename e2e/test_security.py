"""Let nobody in: restricted pods, the NetworkPolicy fence as stored, least privilege, no leaks.

One operator serves the module, and it runs the way the chart runs it: as a ServiceAccount
bound to exactly the rules of ``restate_op.rbac`` (ClusterRole plus the Lease Role), with a
real bearer token, at debug log level, with a secret in its own environment. Every test below
therefore also proves those rules are enough, and the last one that nothing secret reached
its log.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from e2e.fault_tools import delete_cluster, requests_by
from e2e.netpol_eval import Endpoint, pod
from e2e.netpol_expectations import Fence, failures, total_checks
from e2e.operator_fixtures import OPERATOR_NAMESPACE, cluster_manifest, condition, wait_phase
from e2e.operator_process import Kubectl, OperatorProcess, wait_for
from restate_op import rbac

SERVICE_ACCOUNT = "restate-operator-e2e"
OPERATOR_ENV_SECRET = f"op-env-secret-{secrets.token_hex(8)}"
SIGNING_KEY = (
    f"-----BEGIN PRIVATE KEY-----\nsigning-{secrets.token_hex(16)}\n-----END PRIVATE KEY-----\n"
)
CA_CERT = f"-----BEGIN CERTIFICATE-----\nca-{secrets.token_hex(16)}\n-----END CERTIFICATE-----\n"
SPEC_ENV_SECRET = f"sk-live-{secrets.token_hex(12)}"


def _rbac_objects() -> list[dict[str, Any]]:
    subject = [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": OPERATOR_NAMESPACE}]
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": SERVICE_ACCOUNT, "namespace": OPERATOR_NAMESPACE},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": SERVICE_ACCOUNT},
            "rules": rbac.CLUSTER_RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": SERVICE_ACCOUNT},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": SERVICE_ACCOUNT,
            },
            "subjects": subject,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": SERVICE_ACCOUNT, "namespace": OPERATOR_NAMESPACE},
            "rules": rbac.LEASE_RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": SERVICE_ACCOUNT, "namespace": OPERATOR_NAMESPACE},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": SERVICE_ACCOUNT,
            },
            "subjects": subject,
        },
    ]


@pytest.fixture(scope="module")
def operator_token(kubectl: Kubectl, restate_crd: None) -> Iterator[str]:
    for obj in _rbac_objects():
        kubectl.apply(obj)
    token = kubectl.run(
        "create", "token", SERVICE_ACCOUNT, "-n", OPERATOR_NAMESPACE, "--duration=1h"
    ).stdout.strip()
    assert token.count(".") == 2, "a JWT"
    yield token


@pytest.fixture(scope="module")
def rbac_operator(
    kubectl: Kubectl, operator_token: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator as the chart's ServiceAccount: token auth, exactly the generated rules."""
    workdir = tmp_path_factory.mktemp("rbac-operator")
    admin = yaml.safe_load(kubectl.kubeconfig.read_text())
    cluster = admin["clusters"][0]["cluster"]
    kubeconfig = workdir / "token.kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "sa",
                "clusters": [{"name": "sa", "cluster": cluster}],
                "users": [{"name": "sa", "user": {"token": operator_token}}],
                "contexts": [{"name": "sa", "context": {"cluster": "sa", "user": "sa"}}],
            }
        )
    )
    kubeconfig.chmod(0o600)
    proc = OperatorProcess(
        kubeconfig,
        workdir,
        name="rbac-operator",
        args=["--lease-name", "security-e2e", "--log-level", "DEBUG"],
        env={"AWS_SECRET_ACCESS_KEY": OPERATOR_ENV_SECRET},
    ).start()
    try:
        proc.wait_ready(90)
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def secured_cluster(kubectl: Kubectl, rbac_operator: OperatorProcess) -> Iterator[str]:
    """A two-node cluster with a signing key, a trusted CA, a sidecar, peers and egress rules,
    in the Namespace the operator creates for it (and labels restricted)."""
    name = f"sec-{secrets.token_hex(2)}"
    manifest = cluster_manifest(
        name,
        cluster={"autoProvision": False},
        security={
            "networkPeers": {
                "ingress": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}],
                "admin": [],
                "node": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                        },
                        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
                    }
                ],
            },
            "networkEgressRules": [
                {"to": [{"ipBlock": {"cidr": "10.1.0.0/16"}}], "ports": [{"port": 5432}]}
            ],
            "awsPodIdentityAssociationRoleArn": "arn:aws:iam::123456789012:role/restate",
            "requestSigningPrivateKey": {
                "version": "v1",
                "secret": {"secretName": "signing-key", "key": "private.pem"},
            },
            "trustedCaCerts": [{"secretName": "corp-ca", "key": "ca.crt"}],
        },
    )
    compute = manifest["spec"]["compute"]
    compute["replicas"] = 2
    compute["sidecars"] = [{"name": "log-shipper", "image": "busybox:1.36"}]
    compute["env"] = [
        {"name": "PAYMENT_API_KEY", "value": SPEC_ENV_SECRET},
        {
            "name": "DB_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "db", "key": "password", "optional": True}},
        },
    ]
    kubectl.apply(manifest)
    try:
        wait_for(lambda: kubectl.get("namespace", name), 60, what=f"namespace {name}")
        for secret, key, value in (
            ("signing-key", "private.pem", SIGNING_KEY),
            ("corp-ca", "ca.crt", CA_CERT),
        ):
            kubectl.run(
                "create", "secret", "generic", secret, "-n", name, f"--from-literal={key}={value}"
            )
        wait_phase(kubectl, name, "Ready", timeout=120)
        yield name
    finally:
        delete_cluster(kubectl, name)


# -- restricted Pod Security ----------------------------------------------------------------


def test_every_pod_is_admitted_under_the_restricted_standard(
    kubectl: Kubectl, secured_cluster: str
) -> None:
    name = secured_cluster
    labels = kubectl.json("get", "namespace", name)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    pods = kubectl.json("get", "pods", "-n", name, "-l", "app.kubernetes.io/name=restate")
    assert len(pods["items"]) == 2, "both pods passed admission"
    for item in pods["items"]:
        spec = item["spec"]
        assert [c["name"] for c in spec["initContainers"]] != [], "CA bundle and sidecar"
        # The real admission plugin checks the same pod again: nothing to warn about.
        copy = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"probe-{item['metadata']['name']}", "namespace": name},
            "spec": {k: v for k, v in spec.items() if k != "nodeName"},
        }
        probe = kubectl.apply(copy, "--dry-run=server", check=False)
        assert probe.returncode == 0 and "violate" not in probe.stderr, probe.stderr
    events = kubectl.json("get", "events", "-n", name, "--field-selector", "reason=FailedCreate")[
        "items"
    ]
    assert events == [], [e["message"] for e in events]


@pytest.mark.parametrize(
    "container",
    [
        {"securityContext": {"privileged": True}},
        {"securityContext": {"allowPrivilegeEscalation": True}},
        {},  # no securityContext at all: runs as root, keeps capabilities
    ],
    ids=["privileged", "privilege-escalation", "defaults"],
)
def test_a_non_compliant_pod_is_refused_in_the_cluster_namespace(
    kubectl: Kubectl, secured_cluster: str, container: dict[str, Any]
) -> None:
    """Negative control: the namespace really enforces restricted."""
    intruder = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"intruder-{secrets.token_hex(3)}", "namespace": secured_cluster},
        "spec": {"containers": [{"name": "sh", "image": "busybox:1.36", **container}]},
    }
    refused = kubectl.run("create", "-f", "-", stdin=json.dumps(intruder), check=False)
    assert refused.returncode != 0
    assert "violates PodSecurity" in refused.stderr and "restricted" in refused.stderr


# -- the fence as the API server stores it ------------------------------------------------


def _restate_pods(kubectl: Kubectl, name: str) -> list[Endpoint]:
    items = kubectl.json("get", "pods", "-n", name, "-l", "app.kubernetes.io/name=restate")
    return [
        pod(
            p["metadata"]["name"],
            name,
            p["status"].get("podIP") or f"10.244.99.{i}",
            p["metadata"]["labels"],
            p["spec"]["containers"],
        )
        for i, p in enumerate(items["items"])
    ]


def test_stored_network_policies_let_through_exactly_what_the_rules_say(
    kubectl: Kubectl, secured_cluster: str
) -> None:
    name = secured_cluster
    policies = kubectl.json("get", "networkpolicies", "-n", name)["items"]
    namespaces = {
        n["metadata"]["name"]: {k: v for k, v in n["metadata"].get("labels", {}).items()}
        for n in kubectl.json("get", "namespaces")["items"]
        if n["metadata"]["name"] in (name, "kube-system", OPERATOR_NAMESPACE)
    }
    restate = _restate_pods(kubectl, name)
    assert len(restate) == 2
    fence = Fence(
        name,
        ingress=frozenset({"client-a"}),
        admin="everybody",
        node=frozenset({"prometheus"}),
        pod_identity=True,
        egress_open=frozenset({("db", 5432, "TCP")}),
        egress_closed=frozenset({("db", 5433, "TCP")}),
    )
    wrong = failures(policies, namespaces, fence, restate)
    assert not wrong, f"{len(wrong)} of {total_checks(fence, restate)} checks:\n" + "\n".join(wrong)
    print(
        f"\n[netpol] {total_checks(fence, restate)} connections checked twice "
        f"against {len(policies)} stored policies"
    )


def test_disabling_policies_opens_the_fence_and_enabling_closes_it(
    kubectl: Kubectl, rbac_operator: OperatorProcess
) -> None:
    name = f"sec-open-{secrets.token_hex(2)}"
    kubectl.apply(cluster_manifest(name, security={"disableNetworkPolicies": True}))
    try:
        wait_phase(kubectl, name, "Ready", timeout=90)
        assert kubectl.json("get", "networkpolicies", "-n", name)["items"] == []
        restate = _restate_pods(kubectl, name)
        assert failures([], {name: {}}, Fence(name, enabled=False), restate) == []
        kubectl.merge_patch("rsc", name, {"spec": {"security": {"disableNetworkPolicies": False}}})
        wait_phase(kubectl, name, "Ready", timeout=90)
        policies = kubectl.json("get", "networkpolicies", "-n", name)["items"]
        assert failures(policies, {name: {}}, Fence(name), restate) == []
    finally:
        delete_cluster(kubectl, name)


# -- least privilege and secrets ----------------------------------------------------------


def _can(kubectl: Kubectl, verb: str, resource: str, namespace: str = "default") -> bool:
    who = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{SERVICE_ACCOUNT}"
    answer = kubectl.run(
        "auth", "can-i", verb, resource, "-n", namespace, f"--as={who}", check=False
    )
    return answer.stdout.strip() == "yes"


def test_the_operator_account_may_do_what_it_needs_and_no_more(
    kubectl: Kubectl, operator_token: str
) -> None:
    assert _can(kubectl, "patch", "statefulsets.apps")
    assert _can(kubectl, "watch", "restateclusters.restate.dev")
    assert _can(kubectl, "update", "leases.coordination.k8s.io", OPERATOR_NAMESPACE)
    for verb, resource in (
        ("get", "secrets"),
        ("list", "secrets"),
        ("delete", "persistentvolumeclaims"),
        ("delete", "namespaces"),
        ("create", "pods"),
        ("patch", "restateclusters.restate.dev"),
        ("update", "leases.coordination.k8s.io"),
        ("*", "*"),
    ):
        assert not _can(kubectl, verb, resource), f"the operator may {verb} {resource}"


def test_the_operator_never_reads_secrets_nor_logs_them(
    kubectl: Kubectl, rbac_operator: OperatorProcess, operator_token: str, secured_cluster: str
) -> None:
    cluster = kubectl.json("get", "restatecluster", secured_cluster)
    assert condition(cluster, "Ready")["status"] == "True"
    for verb in ("get", "list", "watch"):
        assert requests_by(rbac_operator, verb, "Secret") == 0
    logs = rbac_operator.logs()
    assert "Forbidden" not in logs and " 403" not in logs, "the generated RBAC was not enough"
    sts = kubectl.json("get", "statefulset", "restate", "-n", secured_cluster)
    exposed = {
        "the bearer token": operator_token,
        "the token's signature": operator_token.rsplit(".", 1)[-1],
        "the signing key": SIGNING_KEY.splitlines()[1],
        "the signing key (base64)": base64.b64encode(SIGNING_KEY.encode()).decode()[:40],
        "the CA certificate": CA_CERT.splitlines()[1],
        "the operator's secret environment": OPERATOR_ENV_SECRET,
        "a secret-looking env value of the spec": SPEC_ENV_SECRET,
    }
    outputs = {
        "log": logs,
        "metrics": rbac_operator.http("/metrics")[1],
        "readiness": rbac_operator.http("/readyz")[1],
    }
    leaks = [
        f"{what} in the {where}"
        for what, secret in exposed.items()
        for where, text in outputs.items()
        if secret in text
    ]
    assert not leaks, leaks
    assert sts["spec"]["template"]["spec"]["volumes"], "the Secrets are only referenced"
    assert len(logs.splitlines()) > 20, "the log has content"
