"""RestateDeployment ``register.cloud`` and ``tunnelMode: in-process``, state in, state out:
the admin URL and bearer token from the RestateCloudEnvironment and its Secret, tunnel URLs
per version, the RESTATE_INPROC_* variables, and what is refused."""

from __future__ import annotations

import base64
import copy
from typing import Any

from restate_op.api.deployment import RestateDeployment
from restate_op.cloud_identity import CloudAccess, cloud_access
from restate_op.deployment_decide import conclude, decide
from restate_op.deployment_observe import DeploymentObservation, RestateView
from restate_op.effects import Outcome, QueryRestate, RegisterDeployment, WriteStatus
from restate_op.settings import OperatorSettings
from tests.test_deployment_decide import NOW, applied, live, of, rsd_raw

SETTINGS = OperatorSettings(cloud_admin_url_template="http://127.0.0.1:9/{environment}/{region}")
ADMIN = "http://127.0.0.1:9/201abc/eu"
TOKEN = "s3cret-token"


def rce(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "restate.dev/v1beta1",
        "kind": "RestateCloudEnvironment",
        "metadata": {"name": "prod", "uid": "rce-uid", "generation": 1},
        "spec": {
            "environmentId": "env_201abc",
            "region": "eu",
            "signingPublicKey": "publickeyv1_abc",
            "authentication": {"secret": {"name": "cloud-token", "key": "token"}},
            **spec,
        },
    }


def secret(value: str | None = f"  {TOKEN}\n") -> dict[str, Any]:
    data = {} if value is None else {"token": base64.b64encode(value.encode()).decode()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cloud-token"}, "data": data}


def cloud_rsd(**restate: Any) -> dict[str, Any]:
    return rsd_raw(restate={"register": {"cloud": "prod"}, **restate})


def observe(
    raw: dict[str, Any],
    access: CloudAccess,
    replica_sets: tuple[dict[str, Any], ...] = (),
    restate: RestateView | None = None,
) -> DeploymentObservation:
    return DeploymentObservation(
        rsd=RestateDeployment.model_validate(raw),
        raw=raw,
        replica_sets=replica_sets,
        cloud=access,
        restate=restate,
        settings=SETTINGS,
    )


def access(env: dict[str, Any] | None = None, token: dict[str, Any] | None = None) -> CloudAccess:
    return cloud_access("prod", env if env is not None else rce(), token, SETTINGS)


def test_the_admin_url_and_trimmed_token_come_from_the_environment_and_its_secret() -> None:
    found = access(token=secret())
    assert found.usable and found.admin_url == ADMIN and found.token == TOKEN
    assert TOKEN not in repr(found)
    default = cloud_access("prod", rce(), secret(), OperatorSettings())
    assert default.admin_url == "https://201abc.env.eu.restate.cloud:9070"


def test_an_external_version_registers_its_tunnel_url_with_the_bearer_token() -> None:
    raw = cloud_rsd(servicePath="/api")
    obs = observe(raw, access(token=secret()))
    [rs] = applied(decide(obs, NOW).effects, "ReplicaSet")
    name = rs["metadata"]["name"]
    ready = observe(raw, access(token=secret()), (live(rs, "t1"),), RestateView(ADMIN, NOW))
    decision = decide(ready, NOW)
    [register] = of(decision.effects, RegisterDeployment)
    assert register.admin_url == ADMIN and register.token == TOKEN
    assert register.uri == (
        f"https://tunnel.eu.restate.cloud:9080/201abc/rce-uid/http/"
        f"{name}.default.svc.cluster.local/9080/api"
    )
    [query] = of(decision.effects, QueryRestate)
    assert query.token == TOKEN and query.admin_url == ADMIN
    assert TOKEN not in repr(register) and TOKEN not in repr(query)


def test_in_process_injects_the_variables_and_registers_the_in_process_url() -> None:
    raw = cloud_rsd(tunnelMode="in-process")
    decision = decide(observe(raw, access(token=secret())), NOW)
    [rs] = applied(decision.effects, "ReplicaSet")
    name = rs["metadata"]["name"]
    env = {e["name"]: e["value"] for e in rs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["RESTATE_INPROC_TUNNEL_NAME"] == name
    assert env["RESTATE_INPROC_ENVIRONMENT_ID"] == "env_201abc"
    assert env["RESTATE_INPROC_CLOUD_REGION"] == "eu"
    assert env["RESTATE_INPROC_SIGNING_PUBLIC_KEY"] == "publickeyv1_abc"
    ready = observe(raw, access(token=secret()), (live(rs, "t1"),), RestateView(ADMIN, NOW))
    [register] = of(decide(ready, NOW).effects, RegisterDeployment)
    assert (
        register.uri == f"https://tunnel.eu.restate.cloud:9080/201abc/{name}/http/in-process/9080/"
    )


def test_a_user_set_inproc_variable_is_refused_and_nothing_is_applied() -> None:
    raw = cloud_rsd(tunnelMode="in-process")
    raw = copy.deepcopy(raw)
    container = raw["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "RESTATE_INPROC_CLOUD_REGION", "value": "us"}]
    obs = observe(raw, access(token=secret()))
    decision = decide(obs, NOW)
    assert decision.reason == "InvalidRestateConfig" and decision.effects == ()
    assert "RESTATE_INPROC_CLOUD_REGION" in decision.message
    [write] = of(conclude(obs, decision, Outcome(), NOW).effects, WriteStatus)
    ready = {c["type"]: c for c in write.status["conditions"]}["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "InvalidRestateConfig"


def test_a_service_path_escaping_the_tunnel_and_a_tunnel_mode_without_cloud_are_refused() -> None:
    decision = decide(observe(cloud_rsd(servicePath="/a/../../x"), access(token=secret())), NOW)
    assert decision.reason == "InvalidRestateConfig" and "servicePath" in decision.message
    raw = rsd_raw(restate={"register": {"url": "http://x:9070"}, "tunnelMode": "in-process"})
    decision = decide(observe(raw, access(token=secret())), NOW)
    assert decision.reason == "InvalidRestateConfig" and "register.cloud" in decision.message


def test_registration_waits_for_the_environment_its_secret_and_its_key() -> None:
    raw = cloud_rsd()
    cases = [
        (cloud_access("prod", None, None, SETTINGS), "CloudEnvironmentNotFound", "does not exist"),
        (access(token=None), "CloudEnvironmentNotReady", "Secret cloud-token"),
        (access(token=secret(None)), "CloudEnvironmentNotReady", "no key 'token'"),
        (access(rce(region="EU!"), secret()), "CloudEnvironmentNotReady", "spec.region"),
    ]
    for found, reason, words in cases:
        [rs] = applied(decide(observe(raw, found), NOW).effects, "ReplicaSet")
        decision = decide(observe(raw, found, (live(rs, "t1"),), RestateView(ADMIN, NOW)), NOW)
        assert decision.phase == "Starting" and decision.reason == reason, found
        assert words in decision.message
        assert not of(decision.effects, RegisterDeployment)
        assert not of(decision.effects, QueryRestate)


def test_a_rotated_token_is_used_by_the_next_reconcile() -> None:
    raw = cloud_rsd()
    [rs] = applied(decide(observe(raw, access(token=secret())), NOW).effects, "ReplicaSet")
    rotated = access(token=secret("new-token"))
    decision = decide(observe(raw, rotated, (live(rs, "t1"),), RestateView(ADMIN, NOW)), NOW)
    [register] = of(decision.effects, RegisterDeployment)
    assert register.token == "new-token"


def test_deleting_after_the_environment_is_gone_releases_the_finalizer() -> None:
    raw = cloud_rsd()
    raw["metadata"]["deletionTimestamp"] = "2027-01-15T08:00:00Z"
    decision = decide(observe(raw, cloud_access("prod", None, None, SETTINGS)), NOW)
    assert decision.released and decision.phase == "Retired"
