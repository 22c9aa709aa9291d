"""RestateCloudEnvironment end to end on the fast tier: the operator (``--restate-deployments
true``) on the local control plane (kwok pods), with Restate Cloud's admin API played by a
stand-in on 127.0.0.1 that checks the bearer token (``e2e.restate_admin_standin``).

What it proves: an RCE gets its tunnel Deployment, Service and (above one replica)
PodDisruptionBudget in the operator's namespace and is Ready from the Deployment's status; a
missing Secret is Degraded naming it and Ready once it appears; invalid fields are refused by
the API server; a RestateDeployment with ``register.cloud`` registers its tunnel URL with
the bearer token; a rotated token reaches it at once (no resync); ``tunnelMode:
in-process`` injects the RESTATE_INPROC_* variables and refuses a template that sets one.

Nothing here contacts any address but 127.0.0.1: the tunnel client image is only referenced
(kwok runs no container) and the tunnel URLs registered are never called.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.operator_fixtures import OPERATOR_NAMESPACE, HasKubeconfig
from e2e.operator_process import REPO, Kubectl, OperatorProcess, wait_for
from e2e.restate_admin_standin import StandIn, StandInServer
from restate_op.api.deployment import RestateDeployment
from restate_op.deployment_identity import version_hash, versioned_name

UPSTREAM = REPO / "tests" / "fixtures" / "restatedeployment-upstream.yaml"
WAIT = 90.0
ENVIRONMENT = "env_201e2e"
REGION = "eu"
TOKEN = "first-token"
TEMPLATE = "/cloud/{environment}/{region}"


@pytest.fixture(scope="module")
def cloud() -> Iterator[StandInServer]:
    with StandInServer(base_path=f"/cloud/201e2e/{REGION}", token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def cloud_operator(
    kube: HasKubeconfig,
    kubectl: Kubectl,
    restate_crd: None,
    cloud: StandInServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    for crd in ("restatedeployments", "restatecloudenvironments"):
        kubectl.run("apply", "--server-side", "-f", str(REPO / "crd" / f"{crd}.yaml"))
        kubectl.wait_established(f"{crd}.restate.dev")
    proc = OperatorProcess(
        kube.kubeconfig,
        tmp_path_factory.mktemp("operator"),
        args=[
            "--restate-deployments",
            "true",
            "--lease-name",
            "e2e-rce",
            "--cloud-admin-url-template",
            cloud.origin + TEMPLATE,
        ],
    ).start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        code = proc.stop()
        print(f"operator exited with {code}; log: {proc.log_path}")


pytestmark = pytest.mark.usefixtures("cloud_operator")


def secret(kubectl: Kubectl, name: str, token: str) -> None:
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": OPERATOR_NAMESPACE},
            "data": {"token": base64.b64encode(f"{token}\n".encode()).decode()},
        }
    )


def rce(name: str, secret_name: str, **tunnel: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "restate.dev/v1beta1",
        "kind": "RestateCloudEnvironment",
        "metadata": {"name": name},
        "spec": {
            "environmentId": ENVIRONMENT,
            "region": REGION,
            "signingPublicKey": "publickeyv1_e2e",
            "authentication": {"secret": {"name": secret_name, "key": "token"}},
            "tunnel": {"image": "e2e.invalid/tunnel-client:0", **tunnel},
        },
    }
    return obj


def status(kubectl: Kubectl, name: str) -> dict[str, Any]:
    return (kubectl.get("rce", name) or {}).get("status") or {}


def condition(kubectl: Kubectl, name: str, ctype: str) -> dict[str, Any]:
    found = status(kubectl, name).get("conditions") or []
    return next((c for c in found if c["type"] == ctype), {})


@pytest.fixture
def rce_name(kubectl: Kubectl) -> Iterator[str]:
    name = f"e2e-{secrets.token_hex(3)}"
    yield name
    kubectl.run("delete", "rce", name, "--ignore-not-found", "--wait=false", check=False)
    kubectl.run(
        "delete",
        "secret",
        f"{name}-token",
        "-n",
        OPERATOR_NAMESPACE,
        "--ignore-not-found",
        check=False,
    )


def test_the_tunnel_is_created_in_the_operator_namespace_and_ready(
    kubectl: Kubectl, rce_name: str
) -> None:
    secret(kubectl, f"{rce_name}-token", TOKEN)
    kubectl.apply(rce(rce_name, f"{rce_name}-token", replicas=2))
    tunnel = f"tunnel-{rce_name}"
    wait_for(
        lambda: condition(kubectl, rce_name, "Ready").get("status") == "True",
        WAIT,
        what=f"RCE {rce_name} Ready",
    )
    deployment = kubectl.get("deployment", tunnel, OPERATOR_NAMESPACE)
    assert deployment is not None
    assert deployment["metadata"]["ownerReferences"][0]["name"] == rce_name
    assert (deployment["status"].get("availableReplicas") or 0) >= 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["image"] == "e2e.invalid/tunnel-client:0"
    assert kubectl.get("service", tunnel, OPERATOR_NAMESPACE) is not None
    pdb = kubectl.get("pdb", tunnel, OPERATOR_NAMESPACE)
    assert pdb is not None and pdb["spec"]["maxUnavailable"] == 1
    found = status(kubectl, rce_name)
    assert found["phase"] == "Ready" and found["tunnel"] == tunnel
    assert condition(kubectl, rce_name, "Degraded")["status"] == "False"
    columns = kubectl.run("get", "rce", rce_name).stdout
    assert ENVIRONMENT in columns and "Ready" in columns

    # One replica: the budget goes.
    kubectl.merge_patch("rce", rce_name, {"spec": {"tunnel": {"replicas": 1}}})
    wait_for(
        lambda: kubectl.get("pdb", tunnel, OPERATOR_NAMESPACE) is None, WAIT, what="PDB removed"
    )


def test_a_missing_secret_is_degraded_naming_it_until_it_appears(
    kubectl: Kubectl, rce_name: str
) -> None:
    kubectl.apply(rce(rce_name, f"{rce_name}-token"))
    wait_for(
        lambda: condition(kubectl, rce_name, "Degraded").get("status") == "True",
        WAIT,
        what=f"RCE {rce_name} Degraded",
    )
    degraded = condition(kubectl, rce_name, "Degraded")
    assert degraded["reason"] == "SecretNotFound"
    assert f"Secret {rce_name}-token in namespace {OPERATOR_NAMESPACE}" in degraded["message"]
    secret(kubectl, f"{rce_name}-token", TOKEN)
    wait_for(
        lambda: condition(kubectl, rce_name, "Ready").get("status") == "True",
        WAIT,
        what="Ready once the Secret exists",
    )


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("environmentId", "env 201", "environmentId must be"),
        ("region", "EU", "region must be"),
        ("signingPublicKey", "key_abc", "signingPublicKey must begin with publickeyv1_"),
    ],
)
def test_invalid_fields_are_refused_by_the_api_server(
    kubectl: Kubectl, field: str, value: str, words: str
) -> None:
    obj = rce(f"e2e-bad-{secrets.token_hex(2)}", "unused")
    obj["spec"][field] = value
    refused = kubectl.apply(obj, check=False)
    assert refused.returncode != 0 and words in refused.stderr, refused.stderr


def test_a_name_longer_than_56_is_refused(kubectl: Kubectl) -> None:
    refused = kubectl.apply(rce("e" * 57, "unused"), check=False)
    assert refused.returncode != 0 and "at most 56 characters" in refused.stderr


def rsd(namespace: str, environment: str, **restate: Any) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(Path(UPSTREAM).read_text())
    raw["metadata"] = {"name": "greeter", "namespace": namespace}
    raw["spec"]["restate"] = {"register": {"cloud": environment}, **restate}
    return raw


def version_of(raw: dict[str, Any]) -> str:
    spec = RestateDeployment.model_validate(raw).spec
    return versioned_name(raw["metadata"]["name"], version_hash(spec))


def rsd_status(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    return (kubectl.get("rsd", "greeter", namespace) or {}).get("status") or {}


def test_register_cloud_uses_the_bearer_token_and_a_rotation_reaches_it_at_once(
    kubectl: Kubectl, namespace: str, rce_name: str, cloud: StandInServer
) -> None:
    standin: StandIn = cloud.state
    secret(kubectl, f"{rce_name}-token", TOKEN)
    kubectl.apply(rce(rce_name, f"{rce_name}-token"))
    uid = wait_for(lambda: (kubectl.get("rce", rce_name) or {}).get("metadata", {}).get("uid"), 30)
    raw = rsd(namespace, rce_name)
    version = version_of(raw)
    kubectl.apply(raw)
    wait_for(
        lambda: rsd_status(kubectl, namespace).get("latestVersion") == version,
        WAIT,
        what=f"{version} latest",
    )
    uri = (
        f"https://tunnel.{REGION}.restate.cloud:9080/201e2e/{uid}/http/"
        f"{version}.{namespace}.svc.cluster.local/9080/"
    )
    posts = [r for r in standin.seen("POST", "/deployments") if r.body["uri"] == uri]
    assert posts and posts[0].body == {"uri": uri, "use_http_11": False, "force": False}
    assert all(r.authorization == f"Bearer {TOKEN}" for r in posts)

    # Rotation: the stand-in takes only the new token from now on; the Secret changes and
    # the next read of Restate's view (a new version here) uses it without waiting 5 min.
    standin.token = "second-token"
    secret(kubectl, f"{rce_name}-token", "second-token")
    v2_raw = rsd(namespace, rce_name)
    v2_raw["spec"]["template"]["spec"]["containers"][0]["image"] = "example/greeter:v2"
    v2 = version_of(v2_raw)
    kubectl.apply(v2_raw)
    wait_for(
        lambda: rsd_status(kubectl, namespace).get("latestVersion") == v2,
        WAIT,
        what=f"{v2} latest with the rotated token",
    )
    seen = standin.seen("POST", "/deployments")
    assert seen[-1].authorization == "Bearer second-token"


def test_a_missing_environment_waits_and_in_process_conflicts_are_refused(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl.apply(rsd(namespace, "e2e-no-such-env"))
    wait_for(
        lambda: any(
            v.get("reason") == "CloudEnvironmentNotFound"
            for v in rsd_status(kubectl, namespace).get("versions") or []
        ),
        WAIT,
        what="CloudEnvironmentNotFound",
    )
    raw = rsd(namespace, "e2e-no-such-env", tunnelMode="in-process")
    raw["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "RESTATE_INPROC_TUNNEL_NAME", "value": "mine"}
    ]
    kubectl.apply(raw)

    def refused() -> bool:
        ready: dict[str, Any] = next(
            (
                c
                for c in rsd_status(kubectl, namespace).get("conditions") or []
                if c["type"] == "Ready"
            ),
            {},
        )
        return ready.get("reason") == "InvalidRestateConfig"

    wait_for(refused, WAIT, what="InvalidRestateConfig")
    assert "RESTATE_INPROC_TUNNEL_NAME" in rsd_status(kubectl, namespace)["message"]


def test_in_process_injects_the_variables(kubectl: Kubectl, namespace: str, rce_name: str) -> None:
    secret(kubectl, f"{rce_name}-token", TOKEN)
    kubectl.apply(rce(rce_name, f"{rce_name}-token"))
    raw = rsd(namespace, rce_name, tunnelMode="in-process")
    version = version_of(raw)
    kubectl.apply(raw)
    rs = wait_for(lambda: kubectl.get("replicaset", version, namespace), WAIT, what="ReplicaSet")
    env = {
        e["name"]: e.get("value")
        for e in rs["spec"]["template"]["spec"]["containers"][0].get("env") or []
    }
    assert env["RESTATE_INPROC_TUNNEL_NAME"] == version
    assert env["RESTATE_INPROC_ENVIRONMENT_ID"] == ENVIRONMENT
    assert env["RESTATE_INPROC_CLOUD_REGION"] == REGION
    assert env["RESTATE_INPROC_SIGNING_PUBLIC_KEY"] == "publickeyv1_e2e"
