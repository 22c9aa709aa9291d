"""The Helm chart on a real control plane, and its RBAC proven verb by verb.

- ``helm install`` creates the CRD, the RBAC, the Deployment and the Service;
- the operator, run out of cluster with a token of the chart's own ServiceAccount, takes the
  baseline example to Ready and grows its volume: the chart grants enough;
- for every verb of every rule in :mod:`restate_op.rbac` (the RestateDeployment rules of
  ``restateDeployments.enabled`` included: the ablation operators run with
  ``--restate-deployments true``) and of the Restate Cloud tunnel ``Role`` in the release
  namespace, the operator run under a role without just that verb is refused by the API
  server (a 403 naming verb and resource) and the behaviour needing it fails: the chart
  grants nothing the operator does not use;
- ``helm upgrade`` with a changed CRD schema changes the served schema;
- ``helm uninstall`` leaves the CRD and the RestateClusters.

Helm does not adopt objects it did not create unless they carry its ownership metadata. When
another module already applied the CRD (``kubectl apply --server-side``), the release is
given the CRD by exactly that metadata, as a user moving from ``kubectl apply`` to the chart
would do; on a fresh cluster (this module alone, or first) the release creates it.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e import rbac_cloud_scenarios as rce
from e2e import rbac_deployment_scenarios as rsd
from e2e.helm import Helm, kubeconfig_with_token, write_kubeconfig
from e2e.knative_standin import playing
from e2e.metrics import is_leader
from e2e.operator_fixtures import HasKubeconfig, cluster_manifest, condition, wait_phase
from e2e.operator_process import REPO, Kubectl, OperatorProcess, wait_for
from e2e.restate_admin_standin import StandInServer
from restate_op import rbac

CHART = REPO / "charts" / "restate-operator-helm"
CRD_FILE = REPO / "crd" / "restateclusters.yaml"
CRD = "restateclusters.restate.dev"
#: Every CRD the chart installs (through its restate-operator-crds subchart).
CRDS = (
    "restateclusters.restate.dev",
    "restatedeployments.restate.dev",
    "restatecloudenvironments.restate.dev",
)
RELEASE = "restate-operator"
# Not the test operators' `restate-operator`: the chart's Lease (restate-operator-leader in the
# release namespace) must not meet theirs.
RELEASE_NS = "restate-operator-e2e"
OPERATOR_SA = "restate-operator"  # the chart's nameOverride names everything it creates
APP_VERSION = str(yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"])
IMAGE = "e2e.invalid/restate-operator"  # kwok "runs" any image
VALUES: dict[str, Any] = {
    "image": {"repository": IMAGE},
    "installCrds": True,
    "leaderElection": {"enabled": True, "leaseDuration": 4, "renewPeriod": 1},
}
EKS_CLUSTER = "e2e-eks"
ROLE_ARN = "arn:aws:iam::123456789012:role/restate"
STAND_IN_CRDS = (
    REPO / "e2e" / "crds" / "aws-stand-ins.yaml",
    REPO / "e2e" / "crds" / "secrets-store-stand-in.yaml",
    REPO / "e2e" / "crds" / "config-connector-stand-in.yaml",
    REPO / "e2e" / "crds" / "knative-serving-stand-in.yaml",
)
GIB = 1024**3
#: How long one RBAC case may take to show its 403 (a repeated Event needs ~5 s).
CASE_SECONDS = 20.0

Rule = dict[str, list[str]]
#: (API group, resource, verb), e.g. ("apps", "statefulsets", "delete").
Triple = tuple[str, str, str]

#: What the chart grants with awsPodIdentityAssociationCluster, gcpWorkloadIdentity and
#: restateDeployments.enabled set: every rule the code has.
ALL_CLUSTER_RULES: list[Rule] = [
    *rbac.CLUSTER_RULES,
    rbac.PIA_RULE,
    rbac.WORKLOAD_IDENTITY_RULE,
    *rbac.DEPLOYMENT_RULES,
]
#: The second Role in the release namespace with restateDeployments.enabled (the chart's
#: ``<name>-cloud-tunnels``): the RestateCloudEnvironments' token Secrets and tunnel
#: Deployments. Its resources appear in no other rule, so a 403 on one names this Role.
TUNNEL_RULES: list[Rule] = rbac.CLOUD_TUNNEL_RULES


def lease(verb: str) -> Triple:
    return ("coordination.k8s.io", "leases", verb)


# -- helpers ---------------------------------------------------------------------------


def _helm_owned(obj: Mapping[str, Any]) -> bool:
    meta = obj["metadata"]
    annotations = meta.get("annotations") or {}
    return (
        (meta.get("labels") or {}).get("app.kubernetes.io/managed-by") == "Helm"
        and annotations.get("meta.helm.sh/release-name") == RELEASE
        and annotations.get("meta.helm.sh/release-namespace") == RELEASE_NS
    )


def _offer_crd_to_helm(kubectl: Kubectl) -> bool:
    """Give existing CRDs to the release (Helm refuses to adopt unlabelled objects)."""
    existing = [name for name in CRDS if kubectl.get("crd", name) is not None]
    for name in existing:
        kubectl.run("label", "crd", name, "app.kubernetes.io/managed-by=Helm", "--overwrite")
        kubectl.run(
            "annotate",
            "crd",
            name,
            f"meta.helm.sh/release-name={RELEASE}",
            f"meta.helm.sh/release-namespace={RELEASE_NS}",
            "--overwrite",
        )
    return CRD in existing


def _generated_crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CRD_FILE.read_text())
    return loaded


def _patch_spec(kubectl: Kubectl, name: str, spec: Mapping[str, Any]) -> None:
    kubectl.merge_patch("restatecluster", name, {"spec": spec})


def _delete_cluster(kubectl: Kubectl, name: str) -> None:
    kubectl.run("delete", "restatecluster", name, "--wait=false", "--ignore-not-found", check=False)


def _event_reasons(kubectl: Kubectl, name: str) -> list[str]:
    events = kubectl.json("get", "events", "-A", "--field-selector", f"involvedObject.name={name}")[
        "items"
    ]
    return [str(e["reason"]) for e in events]


def _token_kubeconfig(kubectl: Kubectl, service_account: str, path: Path) -> Path:
    """A kubeconfig authenticating as ``service_account`` with a TokenRequest token."""
    token = kubectl.run(
        "create", "token", service_account, "-n", RELEASE_NS, "--duration=3600s"
    ).stdout.strip()
    assert token, f"no token for {service_account}"
    return write_kubeconfig(path, kubeconfig_with_token(kubectl.kubeconfig, token, service_account))


_DENIED = re.compile(r'cannot (\w+) resource "([^"]+)" in API group "([^"]*)"')


def denials(log: str) -> set[Triple]:
    """Every (group, resource, verb) the API server refused, as the operator logged it."""
    found: set[Triple] = set()
    for line in log.splitlines():
        try:
            entry = json.loads(line)
            text = f"{entry.get('message', '')} {entry.get('exception', '')}"
        except (ValueError, AttributeError):
            text = line
        for verb, resource, group in _DENIED.findall(text):
            found.add((group, resource, verb))
    return found


def triples(rules: Sequence[Rule]) -> set[Triple]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def without(rules: Sequence[Rule], drop: Callable[[Triple], bool]) -> list[Rule]:
    """``rules`` minus the verbs ``drop`` selects (rules left without verbs disappear)."""
    kept: list[Rule] = []
    for rule in rules:
        (group,) = rule["apiGroups"]
        (resource,) = rule["resources"]
        verbs = [v for v in rule["verbs"] if not drop((group, resource, v))]
        if verbs:
            kept.append({**rule, "verbs": verbs})
    return kept


class Identity:
    """A ServiceAccount of its own in the release namespace, bound to rules the test picks."""

    def __init__(self, kubectl: Kubectl, name: str) -> None:
        self.kubectl = kubectl
        self.name = name
        self.user = f"system:serviceaccount:{RELEASE_NS}:{name}"
        self.role_name = f"e2e-{name}"
        self.tunnel_role_name = f"e2e-{name}-cloud-tunnels"

    def _subjects(self) -> list[dict[str, str]]:
        return [{"kind": "ServiceAccount", "name": self.name, "namespace": RELEASE_NS}]

    def _apply(self, *objects: Mapping[str, Any]) -> None:
        self.kubectl.run(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=e2e-rbac",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}),
        )

    def _cluster_role(self, rules: Sequence[Rule]) -> dict[str, Any]:
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": self.role_name},
            "rules": list(rules),
        }

    def _tunnel_role(self, rules: Sequence[Rule]) -> dict[str, Any]:
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": self.tunnel_role_name, "namespace": RELEASE_NS},
            "rules": list(rules),
        }

    def create(
        self,
        cluster_rules: Sequence[Rule],
        lease_rules: Sequence[Rule],
        tunnel_rules: Sequence[Rule] = TUNNEL_RULES,
    ) -> Identity:
        """Bound as the chart binds its ServiceAccount: a ClusterRole, and two Roles in the
        release namespace (the Lease's, the Restate Cloud tunnels')."""
        rbac_v1 = "rbac.authorization.k8s.io/v1"
        ref = {"apiGroup": "rbac.authorization.k8s.io", "name": self.role_name}
        namespaced = {"name": self.role_name, "namespace": RELEASE_NS}
        tunnel = {"name": self.tunnel_role_name, "namespace": RELEASE_NS}
        self._apply(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": self.name, "namespace": RELEASE_NS},
            },
            self._cluster_role(cluster_rules),
            {
                "apiVersion": rbac_v1,
                "kind": "ClusterRoleBinding",
                "metadata": {"name": self.role_name},
                "roleRef": {**ref, "kind": "ClusterRole"},
                "subjects": self._subjects(),
            },
            {"apiVersion": rbac_v1, "kind": "Role", "metadata": namespaced, "rules": lease_rules},
            {
                "apiVersion": rbac_v1,
                "kind": "RoleBinding",
                "metadata": namespaced,
                "roleRef": {**ref, "kind": "Role"},
                "subjects": self._subjects(),
            },
            self._tunnel_role(tunnel_rules),
            {
                "apiVersion": rbac_v1,
                "kind": "RoleBinding",
                "metadata": tunnel,
                "roleRef": {**ref, "name": self.tunnel_role_name, "kind": "Role"},
                "subjects": self._subjects(),
            },
        )
        return self

    def set_rules(self, cluster_rules: Sequence[Rule], tunnel_rules: Sequence[Rule]) -> None:
        """The ClusterRole's and the tunnel Role's rules (the Lease's are never ablated)."""
        self._apply(self._cluster_role(cluster_rules), self._tunnel_role(tunnel_rules))

    def can(self, triple: Triple) -> bool:
        """What the API server's authorizer says now (a SubjectAccessReview)."""
        group, resource, verb = triple
        plural, _, subresource = resource.partition("/")
        args = ["auth", "can-i", verb, f"{plural}.{group}" if group else plural]
        args += ["--as", self.user, "-n", RELEASE_NS]
        if subresource:
            args += ["--subresource", subresource]
        return self.kubectl.run(*args, check=False).stdout.strip() == "yes"

    def kubeconfig(self, path: Path) -> Path:
        return _token_kubeconfig(self.kubectl, self.name, path)

    def delete(self) -> None:
        self.kubectl.run(
            "delete",
            f"clusterrole/{self.role_name}",
            f"clusterrolebinding/{self.role_name}",
            "--ignore-not-found",
            "--wait=false",
            check=False,
        )
        self.kubectl.run(
            "delete",
            "-n",
            RELEASE_NS,
            f"serviceaccount/{self.name}",
            f"role/{self.role_name}",
            f"rolebinding/{self.role_name}",
            f"role/{self.tunnel_role_name}",
            f"rolebinding/{self.tunnel_role_name}",
            "--ignore-not-found",
            "--wait=false",
            check=False,
        )


def _operator_under(identity: Identity, workdir: Path, *args: str) -> OperatorProcess:
    """The operator run out of cluster exactly as ``identity`` (its token, nothing else)."""
    return OperatorProcess(
        identity.kubeconfig(workdir / f"{identity.name}.kubeconfig"),
        workdir,
        name=identity.name,
        args=[
            "--operator-namespace",
            RELEASE_NS,
            "--leader-elect",
            "true",
            "--aws-pod-identity-association-cluster",
            EKS_CLUSTER,
            "--gcp-workload-identity",
            "true",
            "--restate-deployments",
            "true",
            *args,
        ],
    )


# -- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def helm(kube: HasKubeconfig, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm.locate(kube.kubeconfig, tmp_path_factory.mktemp("helm-home"))


@dataclass(frozen=True)
class Release:
    #: The CRD was there before (applied by kubectl) and was handed over; else Helm created it.
    crd_adopted: bool


@pytest.fixture(scope="module")
def release(helm: Helm, kubectl: Kubectl) -> Iterator[Release]:
    """The chart installed into RELEASE_NS (a leftover release of a kept cluster goes first)."""
    helm.uninstall(RELEASE, RELEASE_NS, ignore_not_found=True)
    adopted = _offer_crd_to_helm(kubectl)
    helm.install(RELEASE, CHART, RELEASE_NS, VALUES)
    try:
        yield Release(crd_adopted=adopted)
    finally:
        helm.uninstall(RELEASE, RELEASE_NS, ignore_not_found=True)
        live = kubectl.get("crd", CRD)
        if live is None or live["spec"]["versions"] != _generated_crd()["spec"]["versions"]:
            # A test failed half-way through an upgrade: leave the real CRD to later modules.
            kubectl.run("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
        kubectl.run("delete", "namespace", RELEASE_NS, "--wait=false", check=False)


@pytest.fixture(scope="module")
def stand_in_crds(kubectl: Kubectl) -> Iterator[None]:
    """The optional APIs (Pod Identity, security groups, CSI secrets, Knative Serving), so
    their rules are used.

    Removed again afterwards when this module installed them: other modules test the
    operator without them. (The RestateDeployment and RestateCloudEnvironment CRDs come with
    the release.)
    """
    names = [
        doc["metadata"]["name"]
        for path in STAND_IN_CRDS
        for doc in yaml.safe_load_all(path.read_text())
    ]
    created = [name for name in names if kubectl.get("crd", name) is None]
    for path in STAND_IN_CRDS:
        kubectl.run("apply", "-f", str(path))
    for name in names:
        kubectl.wait_established(name)
    try:
        yield
    finally:
        if created:
            kubectl.run("delete", "crd", *created, "--wait=false", check=False)


# -- install ---------------------------------------------------------------------------


def test_install_creates_crd_rbac_deployment_and_service(
    release: Release, helm: Helm, kubectl: Kubectl
) -> None:
    status = helm.status(RELEASE, RELEASE_NS)
    assert status is not None and status["info"]["status"] == "deployed"

    # The CRD: the release's own (created, or adopted by its ownership metadata), kept on
    # uninstall, established, and exactly the generated schema.
    crd = kubectl.json("get", "crd", CRD)
    assert _helm_owned(crd), crd["metadata"]
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert condition(crd, "Established")["status"] == "True"
    assert crd["spec"]["versions"] == _generated_crd()["spec"]["versions"]
    print(f"CRD {'adopted' if release.crd_adopted else 'created'} by the release")

    # Every object of the release exists and is the release's.
    objects = helm.manifest(RELEASE, RELEASE_NS)
    assert sorted(o["kind"] for o in objects) == sorted(
        [
            "ClusterRole",
            "ClusterRoleBinding",
            *["CustomResourceDefinition"] * len(CRDS),  # one per kind, from the CRDs subchart
            "Deployment",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
        ]
    )
    for obj in objects:
        namespace = RELEASE_NS if obj["metadata"].get("namespace") else None
        live = kubectl.get(obj["kind"], obj["metadata"]["name"], namespace)
        assert live is not None and _helm_owned(live), (obj["kind"], obj["metadata"]["name"])

    deployment = kubectl.json("get", "deployment", OPERATOR_SA, "-n", RELEASE_NS)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == OPERATOR_SA
    (container,) = pod["containers"]
    assert container["image"] == f"{IMAGE}:{APP_VERSION}"
    env = {e["name"]: e for e in container["env"]}
    assert env["OPERATOR_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["LEADER_ELECT"]["value"] == "true"
    assert (env["LEASE_DURATION"]["value"], env["LEASE_RENEW"]["value"]) == ("4", "1")
    assert "AWS_POD_IDENTITY_ASSOCIATION_CLUSTER" not in env
    assert container["livenessProbe"]["httpGet"] == {
        "path": "/healthz",
        "port": "http",
        "scheme": "HTTP",
    }
    assert container["readinessProbe"]["httpGet"] == {
        "path": "/readyz",
        "port": "http",
        "scheme": "HTTP",
    }
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    # `helm install --wait` waited for it: kwok ran the pod.
    assert deployment["status"].get("availableReplicas") == 1

    service = kubectl.json("get", "service", OPERATOR_SA, "-n", RELEASE_NS)
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("http", 80, "http")
    ]
    assert kubectl.get("serviceaccount", OPERATOR_SA, RELEASE_NS) is not None

    # RBAC: exactly the rules restate_op.rbac lists, bound to the chart's ServiceAccount.
    subjects = [{"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": RELEASE_NS}]
    cluster_role = kubectl.json("get", "clusterrole", OPERATOR_SA)
    assert cluster_role["rules"] == rbac.CLUSTER_RULES, "no Pod Identity rule unless enabled"
    binding = kubectl.json("get", "clusterrolebinding", OPERATOR_SA)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": OPERATOR_SA,
    }
    assert binding["subjects"] == subjects
    lease_role = f"{OPERATOR_SA}-leader-election"
    role = kubectl.json("get", "role", lease_role, "-n", RELEASE_NS)
    assert role["rules"] == rbac.LEASE_RULES
    role_binding = kubectl.json("get", "rolebinding", lease_role, "-n", RELEASE_NS)
    assert role_binding["roleRef"]["name"] == lease_role and role_binding["subjects"] == subjects

    # The authorizer agrees: the Lease only in the release namespace, no Secrets anywhere.
    chart_sa = Identity(kubectl, OPERATOR_SA)
    assert chart_sa.can(("apps", "statefulsets", "delete"))
    assert chart_sa.can(lease("update"))
    assert not chart_sa.can(("", "secrets", "get"))
    other_ns = kubectl.run(
        "auth",
        "can-i",
        "update",
        "leases.coordination.k8s.io",
        "-n",
        "default",
        "--as",
        chart_sa.user,
        check=False,
    )
    assert other_ns.stdout.strip() == "no"


# -- the chart's identity is enough --------------------------------------------------


def test_operator_as_the_charts_service_account_reaches_ready_and_grows_storage(
    release: Release, kubectl: Kubectl, tmp_path: Path
) -> None:
    """Out of cluster, but exactly as the chart's pod would authenticate: its SA token."""
    name = "e2e-helm-identity"
    operator = OperatorProcess(
        _token_kubeconfig(kubectl, OPERATOR_SA, tmp_path / "chart-sa.kubeconfig"),
        tmp_path,
        name="chart-sa",
        args=["--operator-namespace", RELEASE_NS, "--leader-elect", "true"],
    ).start()
    try:
        operator.wait_ready()
        wait_for(lambda: is_leader(operator), 30, what="the chart-identity operator to lead")
        lease = kubectl.json("get", "lease", "restate-operator-leader", "-n", RELEASE_NS)
        assert lease["spec"].get("holderIdentity")

        kubectl.apply(cluster_manifest(name))
        ready = wait_phase(kubectl, name, "Ready", timeout=90)
        assert ready["status"]["storage"]["currentBytes"] == 2 * GIB
        sts_uid = kubectl.json("get", "statefulset", "restate", "-n", name)["metadata"]["uid"]

        _patch_spec(kubectl, name, {"storage": {"storageRequestBytes": 4 * GIB}})
        grown = wait_phase(kubectl, name, "Ready", timeout=90)
        assert grown["status"]["storage"]["currentBytes"] == 4 * GIB
        sts = kubectl.json("get", "statefulset", "restate", "-n", name)
        assert sts["metadata"]["uid"] != sts_uid, "orphan-deleted and re-created"
        reasons = _event_reasons(kubectl, name)
        assert {"Provisioning", "Ready", "VolumesResized", "StatefulSetRecreated"} <= set(
            reasons
        ), reasons

        log = operator.logs()
        assert "applied StatefulSet/restate" in log
        assert "Forbidden" not in log and " 403" not in log and not denials(log), log
    finally:
        operator.stop()
        _delete_cluster(kubectl, name)


# -- upgrade ---------------------------------------------------------------------------

NOTE_FIELD = "e2eUpgradeNote"


def _with_changed_schema(template: str) -> str:
    """The chart's CRD template with one more spec field and a printer column showing it."""
    assert "{{" not in template, "the CRDs subchart's templates are plain (installCrds gates it)"
    crd = yaml.safe_load(template)
    version = crd["spec"]["versions"][0]
    version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][NOTE_FIELD] = {
        "type": "string",
        "description": "Added by the e2e upgrade test.",
    }
    version["additionalPrinterColumns"].append(
        {"name": "Note", "type": "string", "jsonPath": f".spec.{NOTE_FIELD}"}
    )
    return yaml.safe_dump(crd, sort_keys=False)


def test_upgrade_with_a_changed_crd_schema_updates_the_crd(
    release: Release, helm: Helm, kubectl: Kubectl, tmp_path: Path
) -> None:
    changed = tmp_path / "chart"
    shutil.copytree(CHART, changed)
    template = changed / "charts" / "restate-operator-crds" / "templates" / "restateclusters.yaml"
    template.write_text(_with_changed_schema(template.read_text()))
    probe = cluster_manifest("e2e-helm-upgrade-probe")
    probe["spec"][NOTE_FIELD] = "hello"

    def dry_run() -> subprocess.CompletedProcess[str]:
        return kubectl.apply(probe, "--dry-run=server", check=False)

    refused = dry_run()
    assert refused.returncode != 0 and NOTE_FIELD in refused.stderr, refused
    revision = helm.status(RELEASE, RELEASE_NS)
    assert revision is not None

    helm.upgrade(RELEASE, changed, RELEASE_NS, VALUES)
    try:
        crd = kubectl.json("get", "crd", CRD)
        version = crd["spec"]["versions"][0]
        spec_schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
        assert spec_schema["properties"][NOTE_FIELD]["type"] == "string"
        assert version["additionalPrinterColumns"][-1]["name"] == "Note"
        assert _helm_owned(crd)
        # The API server serves the new schema: the new field is accepted and kept.
        accepted = wait_for(
            lambda: (r := dry_run()).returncode == 0 and r, 30, what="the new field accepted"
        )
        assert accepted
        echoed = json.loads(
            kubectl.run(
                "create", "--dry-run=server", "-o", "json", "-f", "-", stdin=json.dumps(probe)
            ).stdout
        )
        assert echoed["spec"][NOTE_FIELD] == "hello"
        upgraded = helm.status(RELEASE, RELEASE_NS)
        assert upgraded is not None and upgraded["version"] == revision["version"] + 1
    finally:
        # And back to the chart as it is: the real schema for everything after this test.
        helm.upgrade(RELEASE, CHART, RELEASE_NS, VALUES)
    restored = kubectl.json("get", "crd", CRD)
    assert restored["spec"]["versions"] == _generated_crd()["spec"]["versions"]
    wait_for(lambda: dry_run().returncode != 0, 30, what="the field refused again")


# -- every verb of every rule is needed ----------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """What makes the operator use a verb: ``setup`` runs with every rule, ``trigger`` not."""

    name: str
    trigger: Callable[[Kubectl, str], None]
    setup: Callable[[Kubectl, str], None] = lambda _kubectl, _name: None
    #: Run with every right back, whatever happened.
    cleanup: Callable[[Kubectl, str], None] = _delete_cluster


def _manifest(name: str, *, replicas: int = 1, **spec: Any) -> dict[str, Any]:
    manifest = cluster_manifest(name, **spec)
    manifest["spec"]["compute"]["replicas"] = replicas
    return manifest


def _apply(**spec: Any) -> Callable[[Kubectl, str], None]:
    replicas = int(spec.pop("replicas", 1))

    def create(kubectl: Kubectl, name: str) -> None:
        kubectl.apply(_manifest(name, replicas=replicas, **spec))

    return create


def _ready(**spec: Any) -> Callable[[Kubectl, str], None]:
    create = _apply(**spec)

    def setup(kubectl: Kubectl, name: str) -> None:
        create(kubectl, name)
        wait_phase(kubectl, name, "Ready", timeout=60)

    return setup


def _change(**spec: Any) -> Callable[[Kubectl, str], None]:
    return lambda kubectl, name: _patch_spec(kubectl, name, spec)


def _pia(kubectl: Kubectl, name: str) -> dict[str, Any]:
    found: dict[str, Any] = wait_for(
        lambda: kubectl.get("podidentityassociation", "restate", name),
        30,
        what="PodIdentityAssociation",
    )
    return found


def _ack_synced(kubectl: Kubectl, name: str) -> None:
    """Play the ACK controller: the association is synced."""
    _pia(kubectl, name)
    kubectl.merge_patch(
        "podidentityassociation",
        "restate",
        {"status": {"conditions": [{"type": "ACK.ResourceSynced", "status": "True"}]}},
        namespace=name,
        subresource="status",
    )


def _config_connector_ready(kubectl: Kubectl, name: str) -> None:
    """Play Config Connector: the IAM binding is made."""
    wait_for(
        lambda: kubectl.get("iampolicymember", "restate-workload-identity", name),
        30,
        what="IAMPolicyMember",
    )
    kubectl.merge_patch(
        "iampolicymember",
        "restate-workload-identity",
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        namespace=name,
        subresource="status",
    )


MULTI: dict[str, Any] = {"replicas": 2, "cluster": {"autoProvision": False}}
PIA: dict[str, Any] = {"security": {"awsPodIdentityAssociationRoleArn": ROLE_ARN}}
GSA = "restate-sa@e2e-project.iam.gserviceaccount.com"
WI: dict[str, Any] = {
    "security": {"serviceAccountAnnotations": {"iam.gke.io/gcp-service-account": GSA}}
}
SGP: dict[str, Any] = {"security": {"awsPodSecurityGroups": ["sg-0123456789abcdef0"]}}
SPC: dict[str, Any] = {
    "security": {
        "requestSigningPrivateKey": {
            "version": "v1",
            "secretProvider": {"provider": "aws", "parameters": {"objects": "x"}, "path": "k.pem"},
        }
    }
}


def _pia_created(kubectl: Kubectl, name: str) -> None:
    kubectl.apply(_manifest(name, **PIA))
    _pia(kubectl, name)


def _pia_ready(kubectl: Kubectl, name: str) -> None:
    _pia_created(kubectl, name)
    _ack_synced(kubectl, name)
    wait_phase(kubectl, name, "Ready", timeout=60)


FRESH = Scenario("a new cluster", _apply())
MULTI_NODE = Scenario("a new two-node cluster", _apply(**MULTI))
PROVISION = Scenario(
    "a cluster the operator provisions (fails: kwok runs no Restate)",
    _apply(cluster={"autoProvision": True}),
)
CONFIG = Scenario("a config change", _change(config="default-num-partitions = 12\n"), _ready())
NO_NETPOLS = Scenario(
    "network policies disabled", _change(security={"disableNetworkPolicies": True}), _ready()
)
SCALE_DOWN = Scenario("scaling two nodes to one", _change(compute={"replicas": 1}), _ready(**MULTI))
ROLL = Scenario(
    "an image change: the operator restarts the pod (OnDelete)",
    _change(compute={"image": "restatedev/restate:1.7.13"}),
    _ready(),
)
GROW = Scenario("storage growth", _change(storage={"storageRequestBytes": 4 * GIB}), _ready())
PIA_NEW = Scenario("a Pod Identity role", _apply(**PIA))
PIA_SYNCED = Scenario("the association synced: the canary Job", _ack_synced, _pia_created)
PIA_GONE = Scenario(
    "the Pod Identity role removed",
    _change(security={"awsPodIdentityAssociationRoleArn": None}),
    _pia_ready,
)


def _wi_ready(kubectl: Kubectl, name: str) -> None:
    kubectl.apply(_manifest(name, **WI))
    _config_connector_ready(kubectl, name)
    wait_phase(kubectl, name, "Ready", timeout=60)


WI_NEW = Scenario("a GKE service account annotation", _apply(**WI))
WI_GONE = Scenario(
    "the GKE service account annotation removed",
    _change(security={"serviceAccountAnnotations": None}),
    _wi_ready,
)
SGP_NEW = Scenario("security groups", _apply(**SGP))
SGP_GONE = Scenario(
    "security groups removed", _change(security={"awsPodSecurityGroups": None}), _ready(**SGP)
)
SPC_NEW = Scenario("a signing key from a secret store", _apply(**SPC))
SPC_GONE = Scenario(
    "the secret-store signing key removed",
    _change(security={"requestSigningPrivateKey": None}),
    _ready(**SPC),
)


RSD_NEW = Scenario("a new RestateDeployment", rsd.create(), cleanup=rsd.cleanup)
RSD_REGISTERED = Scenario(
    "a RestateDeployment registered: the latest label on its pods",
    rsd.latest(),
    cleanup=rsd.cleanup,
)
RSD_PRUNED = Scenario(
    "a new version with revisionHistoryLimit 0: the old one deleted",
    rsd.roll_out(pin_v1=False, **rsd.NO_HISTORY),
    rsd.latest(**rsd.NO_HISTORY),
    cleanup=rsd.cleanup,
)
RSD_DRAINING = Scenario(
    "a pinned old version draining under its own HPA",
    rsd.roll_out(pin_v1=True, **rsd.AUTOSCALING),
    rsd.latest(**rsd.AUTOSCALING),
    cleanup=rsd.cleanup,
)
RSD_DRAINED = Scenario(
    "the drained version retired: its HPA deleted",
    rsd.unpin_v1(**rsd.AUTOSCALING),
    rsd.draining_with_autoscaler,
    cleanup=rsd.cleanup,
)
KNATIVE_NEW = Scenario(
    "a new RestateDeployment in Knative mode", rsd.knative_create(), cleanup=rsd.cleanup
)
KNATIVE_NEW_TAG = Scenario(
    "a new Knative tag: its Route", rsd.knative_new_tag(), rsd.knative_latest(), rsd.cleanup
)
KNATIVE_PRUNED = Scenario(
    "a new Knative tag with revisionHistoryLimit 0: the old Configuration deleted",
    rsd.knative_new_tag(**rsd.NO_HISTORY),
    rsd.knative_latest(**rsd.NO_HISTORY),
    rsd.cleanup,
)
RSD_DELETED = Scenario(
    "a RestateDeployment deleted: the finalizer released", rsd.delete, rsd.latest(), rsd.cleanup
)


def _degraded(kubectl: Kubectl, name: str, _log: str) -> None:
    """The reconcile failed on the refusal: Degraded, and the condition says why."""
    cluster = wait_phase(kubectl, name, "Degraded", timeout=CASE_SECONDS, reason="ApplyRejected")
    assert "forbidden" in condition(cluster, "Degraded")["message"].lower()


def _no_status(kubectl: Kubectl, name: str, _log: str) -> None:
    """Nobody can read the cluster's state: it never gets one."""
    cluster = kubectl.get("restatecluster", name)
    assert cluster is not None and not cluster.get("status"), cluster


def _events_dropped(kubectl: Kubectl, name: str, log: str) -> None:
    """The cluster becomes Ready, but `kubectl describe` shows none of its transitions."""
    wait_phase(kubectl, name, "Ready", timeout=CASE_SECONDS)
    assert _event_reasons(kubectl, name) == []
    assert "dropped Normal event Provisioning" in log


def _series_dropped(_kubectl: Kubectl, _name: str, log: str) -> None:
    """A repeated Warning is not counted: the Event says it happened once."""
    assert "dropped Warning event ProvisioningFailed" in log


@dataclass(frozen=True)
class Case:
    group: str
    resource: str
    verb: str
    scenario: Scenario
    effect: Callable[[Kubectl, str, str], None] = _degraded

    @property
    def triple(self) -> Triple:
        return (self.group, self.resource, self.verb)

    @property
    def id(self) -> str:
        return f"{self.resource.replace('/', '-')}-{self.verb}"


def _own(group: str, resource: str, new: Scenario, gone: Scenario | None) -> list[Case]:
    cases = [Case(group, resource, "create", new), Case(group, resource, "patch", new)]
    if gone is not None:
        cases.append(Case(group, resource, "delete", gone))
    return cases


FORBIDDEN = rsd.ready_says_forbidden
RCE_NEW = Scenario(
    "a new RestateCloudEnvironment: its tunnel and status",
    rce.create,
    rce.secret_in(RELEASE_NS),
    rce.cleanup_in(RELEASE_NS),
)
RCE_DELETED = Scenario(
    "a RestateCloudEnvironment with upstream's finalizer deleted: the finalizer released",
    rce.delete,
    rce.finalized_and_ready(RELEASE_NS),
    rce.cleanup_in(RELEASE_NS),
)
RCE_FORBIDDEN = rce.degraded_says_forbidden
HPA = "horizontalpodautoscalers"

#: One case per write verb (list/watch and the Lease are proven at start-up, below).
CASES: list[Case] = [
    *_own("", "namespaces", FRESH, None),
    *_own("networking.k8s.io", "networkpolicies", FRESH, NO_NETPOLS),
    *_own("", "serviceaccounts", FRESH, None),
    *_own("", "configmaps", FRESH, CONFIG),
    *_own("", "services", FRESH, None),
    *_own("apps", "statefulsets", FRESH, GROW),
    *_own("policy", "poddisruptionbudgets", MULTI_NODE, SCALE_DOWN),
    *_own("eks.services.k8s.aws", "podidentityassociations", PIA_NEW, PIA_GONE),
    *_own("batch", "jobs", PIA_SYNCED, PIA_GONE),
    *_own("iam.cnrm.cloud.google.com", "iampolicymembers", WI_NEW, WI_GONE),
    *_own("secrets-store.csi.x-k8s.io", "secretproviderclasses", SPC_NEW, SPC_GONE),
    *_own("vpcresources.k8s.aws", "securitygrouppolicies", SGP_NEW, SGP_GONE),
    Case("", "persistentvolumeclaims", "patch", GROW),
    Case("", "pods", "delete", ROLL),
    Case("restate.dev", "restateclusters/status", "patch", FRESH, _no_status),
    Case("restate.dev", "restateclusters/finalizers", "update", FRESH),
    Case("events.k8s.io", "events", "create", FRESH, _events_dropped),
    Case("events.k8s.io", "events", "patch", PROVISION, _series_dropped),
    # rbac.DEPLOYMENT_PERMISSIONS (restateDeployments.enabled).
    Case("", "pods", "patch", RSD_REGISTERED, FORBIDDEN),
    Case("", "services", "delete", RSD_PRUNED, FORBIDDEN),
    Case("apps", "replicasets", "create", RSD_NEW, FORBIDDEN),
    Case("apps", "replicasets", "patch", RSD_NEW, FORBIDDEN),
    Case("apps", "replicasets", "delete", RSD_PRUNED, FORBIDDEN),
    Case("autoscaling", HPA, "create", RSD_DRAINING, FORBIDDEN),
    Case("autoscaling", HPA, "patch", RSD_DRAINING, FORBIDDEN),
    Case("autoscaling", HPA, "delete", RSD_DRAINED, FORBIDDEN),
    Case("serving.knative.dev", "configurations", "create", KNATIVE_NEW, FORBIDDEN),
    Case("serving.knative.dev", "configurations", "patch", KNATIVE_NEW, FORBIDDEN),
    Case("serving.knative.dev", "configurations", "delete", KNATIVE_PRUNED, FORBIDDEN),
    Case("serving.knative.dev", "routes", "create", KNATIVE_NEW_TAG, FORBIDDEN),
    Case("serving.knative.dev", "routes", "patch", KNATIVE_NEW_TAG, FORBIDDEN),
    Case("restate.dev", "restatedeployments", "get", RSD_DELETED, rsd.finalizer_kept),
    Case("restate.dev", "restatedeployments", "patch", RSD_NEW, FORBIDDEN),
    Case("restate.dev", "restatedeployments/status", "patch", RSD_NEW, rsd.no_status),
    Case("restate.dev", "restatedeployments/finalizers", "update", RSD_NEW, FORBIDDEN),
    Case("restate.dev", "restatecloudenvironments", "get", RCE_DELETED, rce.finalizer_kept),
    Case("restate.dev", "restatecloudenvironments", "patch", RCE_DELETED, rce.finalizer_kept),
    Case(
        "restate.dev",
        "restatecloudenvironments/status",
        "patch",
        RCE_NEW,
        rce.no_status_in(RELEASE_NS),
    ),
    Case("restate.dev", "restatecloudenvironments/finalizers", "update", RCE_NEW, RCE_FORBIDDEN),
    # rbac.CLOUD_TUNNEL_PERMISSIONS (the tunnel Role in the release namespace).
    Case("apps", "deployments", "create", RCE_NEW, RCE_FORBIDDEN),
    Case("apps", "deployments", "patch", RCE_NEW, RCE_FORBIDDEN),
]

Drop = Callable[[Triple], bool]


@dataclass(frozen=True)
class StartupRun:
    """What one start-up run takes away: from the ClusterRole and the tunnel Role (the
    informers' list/watch, the tunnel Role's Secrets and Deployments included), and from the
    Lease's Role."""

    informers: Drop = lambda _t: False
    lease: Drop = lambda _t: False


#: Start-up runs, several verbs at a time: informers and the elector are independent, each
#: request is made whatever else is refused.
STARTUP_RUNS: dict[str, StartupRun] = {
    "no-list": StartupRun(informers=lambda t: t[2] == "list"),
    "no-watch": StartupRun(informers=lambda t: t[2] == "watch", lease=lambda t: t[2] == "get"),
    "no-lease-create": StartupRun(lease=lambda t: t[2] == "create"),
    "no-lease-update": StartupRun(lease=lambda t: t[2] == "update"),
}


def _startup_expected(name: str) -> set[Triple]:
    run = STARTUP_RUNS[name]
    informed = triples(ALL_CLUSTER_RULES) | triples(TUNNEL_RULES)
    return {t for t in informed if run.informers(t)} | {
        t for t in triples(rbac.LEASE_RULES) if run.lease(t)
    }


def test_every_verb_of_every_rule_has_a_case() -> None:
    """A rule added to restate_op.rbac without a case here fails (and a stale case too)."""
    granted = triples(ALL_CLUSTER_RULES) | triples(rbac.LEASE_RULES) | triples(TUNNEL_RULES)
    proven = {c.triple for c in CASES} | {t for run in STARTUP_RUNS for t in _startup_expected(run)}
    assert len({c.triple for c in CASES}) == len(CASES), "duplicate cases"
    assert granted - proven == set(), "rules nobody proves are needed"
    assert proven - granted == set(), "cases for verbs the chart does not grant"


def _wait_refused(operator: OperatorProcess, expected: set[Triple], what: str) -> None:
    wait_for(lambda: expected <= denials(operator.logs()), 30, what=what)


def test_informers_and_leader_election_need_every_read_and_lease_verb(
    release: Release,
    stand_in_crds: None,
    kubectl: Kubectl,
    tmp_path: Path,
) -> None:
    """Four operators at once, each under a role missing some read or Lease verbs."""
    runs: dict[str, tuple[Identity, OperatorProcess]] = {}
    try:
        for name, run in STARTUP_RUNS.items():
            identity = Identity(kubectl, f"rbac-{name}").create(
                without(ALL_CLUSTER_RULES, run.informers),
                without(rbac.LEASE_RULES, run.lease),
                without(TUNNEL_RULES, run.informers),
            )
            lease = f"e2e-{name}-{secrets.token_hex(3)}"  # new: its create is exercised
            runs[name] = (identity, _operator_under(identity, tmp_path, "--lease-name", lease))
        for _, operator in runs.values():
            operator.start()
        for name, (_, operator) in runs.items():
            expected = _startup_expected(name)
            _wait_refused(operator, expected, what=f"{name}: 403s for {sorted(expected)}")
            assert denials(operator.logs()) == expected, name

        # And each run visibly fails: no caches, no leadership, or leadership lost.
        no_list = runs["no-list"][1]
        assert no_list.http("/readyz")[0] == 503, "caches never sync without list"
        assert not is_leader(runs["no-watch"][1]), "no Lease without get"
        assert not is_leader(runs["no-lease-create"][1]), "no Lease without create"
        lost = runs["no-lease-update"][1]
        wait_for(
            lambda: "lost the leader Lease" in lost.logs() and not is_leader(lost),
            20,
            what="the leader that cannot renew its Lease to step down",
        )
    finally:
        for identity, operator in runs.values():
            # Short: an operator whose caches never sync (no list) does not act on SIGTERM
            # yet, and is killed after this.
            operator.stop(timeout=5)
            identity.delete()


#: The OwnerReferencesPermissionEnforcement admission plugin (on in OpenShift, off by default
#: in kube-apiserver), emulated by a ValidatingAdmissionPolicy for the ablation identity
#: only: setting blockOwnerDeletion on an owner reference to a RestateCluster (or a
#: RestateDeployment, or a RestateCloudEnvironment) needs `update` on
#: restateclusters/finalizers (restatedeployments/..., restatecloudenvironments/...), asked of
#: the real authorizer.
OWNER_REFS_POLICY = "e2e-owner-references-permission-enforcement"
#: The owner kinds whose children carry blockOwnerDeletion, and their plurals.
OWNER_PLURALS = {
    "RestateCluster": "restateclusters",
    "RestateDeployment": "restatedeployments",
    "RestateCloudEnvironment": "restatecloudenvironments",
}


def _owner_references_enforcement(user: str) -> list[dict[str, Any]]:
    blocking = (
        "(has(object.metadata.ownerReferences) ? object.metadata.ownerReferences : [])"
        ".filter(r, has(r.blockOwnerDeletion) && r.blockOwnerDeletion"
        " && r.apiVersion.startsWith('restate.dev/')"
        f" && r.kind in {list(OWNER_PLURALS)}"
        " && (oldObject == null || !has(oldObject.metadata.ownerReferences)"
        " || !oldObject.metadata.ownerReferences.exists(o, o.uid == r.uid"
        " && has(o.blockOwnerDeletion) && o.blockOwnerDeletion)))"
    )
    plural = f"{json.dumps(OWNER_PLURALS)}[r.kind]"
    allowed = (
        f"variables.blocking.all(r, authorizer.group('restate.dev').resource({plural})"
        ".subresource('finalizers').name(r.name)"
        ".check('update').allowed())"
    )
    message = (
        "'cannot set blockOwnerDeletion if an ownerReference refers to a resource you can not "
        "set finalizers on: User \"' + request.userInfo.username + '\" cannot update resource "
        f"\"' + variables.blocking.map(r, {plural})[0] + '/finalizers\" in API group "
        '"restate.dev"\''
    )
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": OWNER_REFS_POLICY},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": ["*"],
                            "apiVersions": ["*"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": ["*"],
                        }
                    ]
                },
                "matchConditions": [
                    {
                        "name": "ablation-identity",
                        "expression": f"request.userInfo.username == '{user}'",
                    }
                ],
                # A message may not ask the authorizer: it names the first blocking owner's
                # kind (a child has one controller).
                "variables": [{"name": "blocking", "expression": blocking}],
                "validations": [
                    {"expression": allowed, "messageExpression": message, "reason": "Forbidden"}
                ],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": OWNER_REFS_POLICY},
            "spec": {"policyName": OWNER_REFS_POLICY, "validationActions": ["Deny"]},
        },
    ]


@dataclass
class Ablation:
    """One operator under its own identity; each case takes one verb away, then gives it back."""

    kubectl: Kubectl
    identity: Identity
    operator: OperatorProcess

    def _grant_all_but(self, drop: Triple | None, check: Triple) -> None:
        self.identity.set_rules(
            without(ALL_CLUSTER_RULES, lambda t: t == drop),
            without(TUNNEL_RULES, lambda t: t == drop),
        )
        # The authorizer, not the object, decides: wait until it answers as intended.
        granted = drop is None
        wait_for(
            lambda: self.identity.can(check) == granted,
            15,
            what=f"{check} {'granted' if granted else 'revoked'}",
        )

    def run(self, case: Case, name: str) -> None:
        try:
            case.scenario.setup(self.kubectl, name)
            self._grant_all_but(case.triple, check=case.triple)
            start = len(self.operator.logs())
            case.scenario.trigger(self.kubectl, name)
            wait_for(
                lambda: case.triple in denials(self.operator.logs()[start:]),
                CASE_SECONDS,
                interval=0.2,
                what=f"the API server to refuse {case.triple} ({case.scenario.name})",
            )
            case.effect(self.kubectl, name, self.operator.logs()[start:])
            refused = denials(self.operator.logs()[start:])
            assert refused == {case.triple}, f"other refusals: {refused - {case.triple}}"
        finally:
            self._grant_all_but(None, check=case.triple)
            case.scenario.cleanup(self.kubectl, name)


@pytest.fixture(scope="module")
def ablation(
    release: Release,
    stand_in_crds: None,
    kubectl: Kubectl,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Ablation]:
    identity = Identity(kubectl, "rbac-ablation").create(ALL_CLUSTER_RULES, rbac.LEASE_RULES)
    policy = _owner_references_enforcement(identity.user)
    kubectl.apply({"apiVersion": "v1", "kind": "List", "items": policy})
    workdir = tmp_path_factory.mktemp("ablation")
    operator = _operator_under(identity, workdir, "--lease-name", "e2e-rbac-ablation")
    standin = StandInServer().__enter__()
    rsd.STANDIN.state = standin.state
    knative = playing(kubectl, None, interval=1.0)
    knative.__enter__()
    operator.start()
    try:
        operator.wait_ready()
        wait_for(lambda: is_leader(operator), 30, what="the ablation operator to lead")
        yield Ablation(kubectl, identity, operator)
    finally:
        code = operator.stop()
        print(f"ablation operator exited with {code}; log: {operator.log_path}")
        knative.__exit__(None, None, None)
        standin.__exit__(None, None, None)
        rsd.STANDIN.state = None
        identity.delete()
        kubectl.run(
            "delete",
            f"validatingadmissionpolicybinding/{OWNER_REFS_POLICY}",
            f"validatingadmissionpolicy/{OWNER_REFS_POLICY}",
            "--ignore-not-found",
            check=False,
        )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_without_this_verb_the_operator_fails(ablation: Ablation, case: Case) -> None:
    name = f"e2e-rbac-{secrets.token_hex(2)}-{case.id}"[:63].rstrip("-")
    ablation.run(case, name)


# -- uninstall -------------------------------------------------------------------------


def test_uninstall_keeps_the_crd_and_existing_restateclusters(
    release: Release, helm: Helm, kubectl: Kubectl
) -> None:
    name = "e2e-helm-kept"
    kubectl.apply(cluster_manifest(name))
    try:
        uid = kubectl.json("get", "restatecluster", name)["metadata"]["uid"]
        objects = helm.manifest(RELEASE, RELEASE_NS)
        helm.uninstall(RELEASE, RELEASE_NS)
        assert helm.status(RELEASE, RELEASE_NS) is None

        crd = kubectl.get("crd", CRD)
        assert crd is not None and not crd["metadata"].get("deletionTimestamp")
        kept = kubectl.get("restatecluster", name)
        assert kept is not None and kept["metadata"]["uid"] == uid
        assert not kept["metadata"].get("deletionTimestamp")
        for obj in objects:
            if obj["kind"] == "CustomResourceDefinition":
                continue
            namespace = RELEASE_NS if obj["metadata"].get("namespace") else None
            assert kubectl.get(obj["kind"], obj["metadata"]["name"], namespace) is None, obj["kind"]
    finally:
        _delete_cluster(kubectl, name)


def test_restate_deployments_value_adds_flag_and_rules_only_when_enabled(helm: Helm) -> None:
    """restateDeployments.enabled (default false): the env that turns the controller on and
    the rules of rbac.DEPLOYMENT_PERMISSIONS after the default ones. The RestateDeployment and
    RestateCloudEnvironment CRDs come with installCrds either way (the CRDs subchart installs
    every kind, as upstream's does)."""

    def render(values: dict[str, Any] | None) -> dict[tuple[str, str], dict[str, Any]]:
        objects = helm.template(RELEASE, CHART, RELEASE_NS, values)
        return {(o["kind"], o["metadata"]["name"]): o for o in objects}

    def env(objects: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
        pod = objects[("Deployment", OPERATOR_SA)]["spec"]["template"]["spec"]
        return {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}

    off = render(None)
    assert off[("ClusterRole", OPERATOR_SA)]["rules"] == rbac.CLUSTER_RULES
    assert ("CustomResourceDefinition", "restatedeployments.restate.dev") in off
    assert ("CustomResourceDefinition", "restatecloudenvironments.restate.dev") in off
    assert "RESTATE_DEPLOYMENTS" not in env(off)
    no_crds = render({"installCrds": False})
    assert not [key for key in no_crds if key[0] == "CustomResourceDefinition"]

    on = render({"restateDeployments": {"enabled": True}})
    rules = on[("ClusterRole", OPERATOR_SA)]["rules"]
    assert rules == [*rbac.CLUSTER_RULES, *rbac.DEPLOYMENT_RULES]
    assert env(on)["RESTATE_DEPLOYMENTS"] == "true"
    for plural in ("restatedeployments", "restatecloudenvironments"):
        crd = on[("CustomResourceDefinition", f"{plural}.restate.dev")]
        generated = yaml.safe_load((REPO / "crd" / f"{plural}.yaml").read_text())
        assert crd["spec"] == generated["spec"]
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
