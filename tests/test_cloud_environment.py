"""RestateCloudEnvironment: the API, the tunnel builders and the pure reconcile, state in,
state out."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from restate_op.api.cloud import RestateCloudEnvironment, spec_problems
from restate_op.api.cloud_crd import FINALIZER, restatecloudenvironment_crd
from restate_op.api.pkl import restatecloudenvironment_pkl
from restate_op.api.reference import reference_markdown
from restate_op.cloud_children import tunnel_deployment, tunnel_pdb, tunnel_service
from restate_op.cloud_decide import MACHINE, CloudObservation, conclude, decide, declared
from restate_op.effects import Apply, Delete, Emit, Outcome, RemoveFinalizer, WriteStatus
from restate_op.outcomes import child_conflict
from restate_op.settings import OperatorSettings
from tests.test_deployment_api import pruned_paths

NOW = 1_800_000_000.0
SETTINGS = OperatorSettings(operator_namespace="ops")


def raw(name: str = "prod", **tunnel: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "restate.dev/v1beta1",
        "kind": "RestateCloudEnvironment",
        "metadata": {
            "name": name,
            "uid": "rce-uid",
            "generation": 2,
            "labels": {"team": "a"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "x": "y"},
        },
        "spec": {
            "environmentId": "env_201abc",
            "region": "eu",
            "signingPublicKey": "publickeyv1_abc",
            "authentication": {"secret": {"name": "cloud-token", "key": "token"}},
        },
    }
    if tunnel:
        obj["spec"]["tunnel"] = tunnel
    return obj


SECRET = {"metadata": {"name": "cloud-token"}, "data": {"token": base64.b64encode(b"t").decode()}}


def model(obj: dict[str, Any]) -> RestateCloudEnvironment:
    return RestateCloudEnvironment.model_validate(obj)


def deployment(obj: dict[str, Any], available: int, *, generation: int = 1) -> dict[str, Any]:
    live = copy.deepcopy(tunnel_deployment(model(obj), SETTINGS))
    live["metadata"]["generation"] = generation
    live["status"] = {
        "observedGeneration": generation,
        "replicas": available,
        "updatedReplicas": available,
        "readyReplicas": available,
        "availableReplicas": available,
    }
    return live


def observe(
    obj: dict[str, Any],
    secret: dict[str, Any] | None = SECRET,
    deployment: dict[str, Any] | None = None,
    service: bool = False,
    pdb: dict[str, Any] | None = None,
) -> CloudObservation:
    rce = model(obj)
    return CloudObservation(
        rce=rce,
        raw=obj,
        secret=secret,
        deployment=deployment,
        service=tunnel_service(rce, SETTINGS) if service else None,
        pdb=pdb,
        settings=SETTINGS,
    )


def kinds(effects: Any) -> list[str]:
    return [e.kind for e in effects if isinstance(e, Apply)]


# -- the API -------------------------------------------------------------------------------


def test_the_crd_is_cluster_scoped_with_the_upstream_identity_status_and_columns() -> None:
    crd = restatecloudenvironment_crd()
    assert crd["spec"]["scope"] == "Cluster"
    assert crd["spec"]["names"]["shortNames"] == ["rce"]
    [version] = crd["spec"]["versions"]
    assert version["name"] == "v1beta1" and version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[:2] == ["Environment", "Region"] and "Age" in columns
    schema = version["schema"]["openAPIV3Schema"]
    spec = schema["properties"]["spec"]
    assert sorted(spec["required"]) == [
        "authentication",
        "environmentId",
        "region",
        "signingPublicKey",
    ]
    rules = [
        r["rule"]
        for f in ("environmentId", "region", "signingPublicKey")
        for r in spec["properties"][f]["x-kubernetes-validations"]
    ]
    assert any("publickeyv1_" in r for r in rules)
    assert "size(self.metadata.name) <= 56" in schema["x-kubernetes-validations"][0]["rule"]
    tunnel = spec["properties"]["tunnel"]["properties"]
    assert {
        "remoteProxy",
        "replicas",
        "image",
        "imagePullPolicy",
        "env",
        "resources",
        "dnsConfig",
        "dnsPolicy",
        "tolerations",
        "nodeSelector",
        "affinity",
    } <= set(tunnel)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("environmentId", "env 1", "environmentId"),
        ("region", "EU", "region"),
        ("region", "eu.", "region"),
        ("signingPublicKey", "abc", "publickeyv1_"),
    ],
)
def test_invalid_fields_are_named(field: str, value: str, words: str) -> None:
    obj = raw()
    obj["spec"][field] = value
    [problem] = spec_problems(model(obj).spec)
    assert words in problem


def test_valid_forms_pass_unprefixed_ids_and_byoc_regions_included() -> None:
    obj = raw()
    obj["spec"].update(environmentId="201abc", region="my-byoc.eu-west-1")
    rce = model(obj)
    assert spec_problems(rce.spec) == []
    assert rce.spec.prefixed_id == "env_201abc" and rce.spec.unprefixed_id == "201abc"


def test_the_secret_reference_is_required() -> None:
    obj = raw()
    del obj["spec"]["authentication"]
    with pytest.raises(ValidationError):
        model(obj)


# -- the builders --------------------------------------------------------------------------


def test_the_tunnel_deployment_is_upstreams_with_a_restricted_context_and_zone_spread() -> None:
    d = tunnel_deployment(model(raw()), SETTINGS)
    meta = d["metadata"]
    assert meta["name"] == "tunnel-prod" and meta["namespace"] == "ops"
    assert meta["labels"]["team"] == "a"
    assert meta["labels"]["app.kubernetes.io/name"] == "restate-cloud-tunnel-client"
    assert meta["labels"]["app.kubernetes.io/instance"] == "tunnel-prod"
    assert "kubectl.kubernetes.io/last-applied-configuration" not in meta["annotations"]
    assert meta["ownerReferences"][0]["uid"] == "rce-uid"
    pod = d["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["terminationGracePeriodSeconds"] == 310
    assert pod["securityContext"]["runAsUser"] == 1000
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    [c] = pod["containers"]
    assert c["image"] == SETTINGS.tunnel_client_default_image
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["RESTATE_TUNNEL_NAME"] == "rce-uid"
    assert env["RESTATE_ENVIRONMENT_ID"] == "env_201abc"
    assert env["RESTATE_BEARER_TOKEN_FILE"] == "/restate-bearer-token"
    assert env["RESTATE_REMOTE_PROXY"] == "false"
    assert [p["containerPort"] for p in c["ports"]] == [9090]
    assert c["volumeMounts"][0]["subPath"] == "bearer-token"
    assert pod["volumes"][0]["secret"] == {
        "secretName": "cloud-token",
        "items": [{"key": "token", "path": "bearer-token"}],
    }
    term = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term[0]["podAffinityTerm"]["topologyKey"] == "topology.kubernetes.io/zone"


def test_user_env_overrides_by_name_and_empty_affinity_disables_the_default() -> None:
    obj = raw(
        env=[{"name": "RUST_LOG", "value": "debug"}, {"name": "X", "value": "1"}],
        affinity={},
        image="example/tunnel:1",
        remoteProxy=True,
    )
    d = tunnel_deployment(model(obj), SETTINGS)
    pod = d["spec"]["template"]["spec"]
    [c] = pod["containers"]
    env = [(e["name"], e["value"]) for e in c["env"]]
    assert ("RUST_LOG", "debug") in env and ("RUST_LOG", "info") not in env
    assert env[-1] == ("X", "1")
    assert "affinity" not in pod and c["image"] == "example/tunnel:1"
    assert [p["containerPort"] for p in c["ports"]] == [9090, 8080, 9070]
    svc = tunnel_service(model(obj), SETTINGS)
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    assert (
        ports["admin"]["appProtocol"] == "kubernetes.io/h2c"
        and "appProtocol" not in ports["health"]
    )


def test_a_budget_only_above_one_replica() -> None:
    assert tunnel_pdb(model(raw()), SETTINGS) is None
    pdb = tunnel_pdb(model(raw(replicas=3)), SETTINGS)
    assert pdb is not None and pdb["spec"]["maxUnavailable"] == 1


# -- the reconcile -------------------------------------------------------------------------


def test_the_machine_matches_the_planners_and_the_rules() -> None:
    assert MACHINE.initial == "Pending"
    assert {s for s, _ in declared()} == {"Provisioning", "Ready", "Degraded"}


def test_a_new_environment_creates_its_tunnel_and_is_provisioning() -> None:
    obs = observe(raw(replicas=2))
    decision = decide(obs, NOW)
    assert decision.phase == "Provisioning" and decision.reason == "TunnelCreating"
    assert kinds(decision.effects) == ["Deployment", "Service", "PodDisruptionBudget"]
    assert all(e.refuse_foreign_of == "rce-uid" for e in decision.effects if isinstance(e, Apply))
    result = conclude(obs, decision, Outcome(), NOW)
    [write] = [e for e in result.effects if isinstance(e, WriteStatus)]
    assert write.status["phase"] == "Provisioning" and write.status["tunnel"] == "tunnel-prod"
    [event] = [e for e in result.effects if isinstance(e, Emit)]
    assert event.reason == "TunnelProvisioning"


def test_ready_from_the_deployment_status_and_then_no_write() -> None:
    obj = raw()
    obj["status"] = {"phase": "Provisioning"}
    rolling = observe(obj, deployment=deployment(obj, 0), service=True)
    decision = decide(rolling, NOW)
    assert decision.reason == "TunnelRollingOut" and decision.effects == ()
    ready = observe(obj, deployment=deployment(obj, 1), service=True)
    decision = decide(ready, NOW)
    assert decision.phase == "Ready" and decision.reason == "TunnelReady"
    [write] = [
        e for e in conclude(ready, decision, Outcome(), NOW).effects if isinstance(e, WriteStatus)
    ]
    conditions = {c["type"]: c["status"] for c in write.status["conditions"]}
    assert conditions == {"Ready": "True", "Degraded": "False"}
    assert write.status["readyReplicas"] == 1
    obj["status"] = write.status
    again = observe(obj, deployment=deployment(obj, 1), service=True)
    assert conclude(again, decide(again, NOW), Outcome(), NOW).effects == ()


def test_an_old_generation_is_still_rolling_out() -> None:
    obj = raw()
    stale = deployment(obj, 1, generation=3)
    stale["status"]["observedGeneration"] = 2
    assert decide(observe(obj, deployment=stale, service=True), NOW).reason == "TunnelRollingOut"


def test_a_stuck_rollout_is_degraded() -> None:
    obj = raw()
    stuck = deployment(obj, 0)
    stuck["status"]["conditions"] = [
        {
            "type": "Progressing",
            "status": "False",
            "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet has timed out progressing.",
        }
    ]
    decision = decide(observe(obj, deployment=stuck, service=True), NOW)
    assert decision.phase == "Degraded" and decision.reason == "TunnelNotProgressing"


@pytest.mark.parametrize(
    ("secret", "reason", "words"),
    [
        (None, "SecretNotFound", "Secret cloud-token in namespace ops"),
        ({"metadata": {"name": "cloud-token"}, "data": {}}, "SecretKeyNotFound", "no key 'token'"),
    ],
)
def test_a_missing_secret_or_key_is_degraded_naming_it_and_the_tunnel_still_applied(
    secret: dict[str, Any] | None, reason: str, words: str
) -> None:
    obs = observe(raw(), secret=secret)
    decision = decide(obs, NOW)
    assert decision.phase == "Degraded" and decision.reason == reason
    assert words in decision.message and "kubectl -n ops create secret" in decision.message
    assert kinds(decision.effects) == ["Deployment", "Service"]
    [write] = [
        e for e in conclude(obs, decision, Outcome(), NOW).effects if isinstance(e, WriteStatus)
    ]
    degraded = {c["type"]: c for c in write.status["conditions"]}["Degraded"]
    assert degraded["status"] == "True" and words in degraded["message"]


def test_an_invalid_spec_is_degraded_and_applies_nothing() -> None:
    obj = raw()
    obj["spec"]["signingPublicKey"] = "nope"
    decision = decide(observe(obj), NOW)
    assert decision.reason == "InvalidSpec" and decision.effects == ()
    assert "signingPublicKey" in decision.message


def test_scaling_to_one_removes_the_budget() -> None:
    obj = raw()
    pdb = tunnel_pdb(model(raw(replicas=2)), SETTINGS)
    decision = decide(observe(obj, deployment=deployment(obj, 1), service=True, pdb=pdb), NOW)
    assert [e for e in decision.effects if isinstance(e, Delete)] == [
        Delete("policy/v1", "PodDisruptionBudget", "ops", "tunnel-prod")
    ]


def test_a_foreign_object_of_the_tunnels_name_is_degraded_and_reported() -> None:
    """Returned, so the runtime logs it and retries with backoff: removing the foreign object
    (or granting a refused verb) heals the RCE without an edit of it."""
    obs = observe(raw())
    decision = decide(obs, NOW)
    conflict = child_conflict("Deployment exists")
    result = conclude(obs, decision, Outcome(error=conflict), NOW)
    assert result.error is conflict and conflict.retried
    [write] = [e for e in result.effects if isinstance(e, WriteStatus)]
    assert write.status["phase"] == "Degraded" and "exists" in write.status["message"]


def test_deletion_releases_upstreams_finalizer_only() -> None:
    obj = raw()
    obj["metadata"].update(deletionTimestamp="2027-01-01T00:00:00Z", finalizers=[FINALIZER])
    decision = decide(observe(obj), NOW)
    assert [type(e) for e in decision.effects] == [RemoveFinalizer]
    obj["metadata"]["finalizers"] = []
    assert decide(observe(obj), NOW).effects == ()


UPSTREAM_EXAMPLE = """
apiVersion: restate.dev/v1beta1
kind: RestateCloudEnvironment
metadata:
  name: my-env
spec:
  environmentId: env_201hy8f1ab2c3d4e5f6g7h8j9k
  region: us
  signingPublicKey: publickeyv1_abc123
  authentication:
    secret:
      name: my-env-token
      key: token
  tunnel:
    remoteProxy: true
    replicas: 3
    imagePullPolicy: IfNotPresent
    env:
      - name: RUST_LOG
        value: debug
    resources:
      requests: {cpu: 500m, memory: 512Mi}
    dnsPolicy: ClusterFirst
    tolerations:
      - key: dedicated
        operator: Equal
        value: restate
        effect: NoSchedule
    nodeSelector: {pool: tunnels}
    affinity: {}
"""


def test_an_upstream_manifest_validates_and_nothing_is_pruned() -> None:
    obj = yaml.safe_load(UPSTREAM_EXAMPLE)
    rce = model(obj)
    assert rce.spec.tunnel_spec.desired_replicas == 3
    schema = restatecloudenvironment_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert pruned_paths(obj, schema) == []


def test_pkl_and_reference_cover_the_environment() -> None:
    pkl = restatecloudenvironment_pkl()
    assert "module RestateCloudEnvironment" in pkl and "environmentId: String" in pkl
    reference = reference_markdown()
    assert "# RestateCloudEnvironment field reference" in reference
    assert "`spec.tunnel.remoteProxy`" in reference
    assert "--cloud-admin-url-template" in reference
