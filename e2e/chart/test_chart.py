"""The Helm chart, rendered and linted by the real helm binary (built by e2e/build-binaries.sh).

Snapshots of ``helm template`` live in ``e2e/chart/snapshots``; ``UPDATE_SNAPSHOTS=1``
rewrites them (and the generated ``templates/_rbac.tpl``) instead of comparing.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from restate_op import rbac
from restate_op.api.crd_builder import custom_resource_definition
from restate_op.generate import CRD_KINDS
from restate_op.machine import STATES_FILE
from restate_op.settings import OperatorSettings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "restate-operator-helm"
CRDS_CHART = ROOT / "charts" / "restate-operator-crds"
HERE = Path(__file__).resolve().parent
SNAPSHOTS = HERE / "snapshots"
VALUES_ALL = HERE / "values-all.yaml"
RELEASE, NAMESPACE = "restate-operator", "restate-operator"
UPDATE = os.environ.get("UPDATE_SNAPSHOTS") == "1"

Manifest = dict[str, Any]


@functools.cache
def helm_binary() -> Path:
    """The pinned helm, located (or built) by ``e2e/build-binaries.sh helm``; fails loudly."""
    versions = (ROOT / "e2e" / "versions.env").read_text()
    match = re.search(r"^HELM_VERSION=(\S+)$", versions, re.MULTILINE)
    assert match, "HELM_VERSION missing from e2e/versions.env"
    wanted = f"helm-{match.group(1)}"
    proc = subprocess.run(
        ["bash", str(ROOT / "e2e" / "build-binaries.sh"), "helm"],
        capture_output=True,
        text=True,
        check=False,
    )
    dirs = [Path(line) for line in proc.stdout.splitlines() if line.endswith(wanted)]
    if proc.returncode != 0 or not dirs or not (dirs[0] / "helm").is_file():
        pytest.fail(
            f"no {wanted} binary: `bash e2e/build-binaries.sh helm` exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}",
            pytrace=False,
        )
    return dirs[0] / "helm"


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


def helm(*args: str) -> Run:
    proc = subprocess.run(
        [str(helm_binary()), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        # No kubeconfig, repository or cache of the user's: rendering is offline and local.
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": "/nonexistent/home",
            "HELM_CACHE_HOME": "/nonexistent/helm-cache",
            "HELM_CONFIG_HOME": "/nonexistent/helm-config",
            "HELM_DATA_HOME": "/nonexistent/helm-data",
            "KUBECONFIG": "/nonexistent/kubeconfig",
        },
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


@functools.cache
def template_text(*args: str) -> str:
    """``helm template`` of the chart with extra arguments; fails with helm's message."""
    run = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args)
    if run.returncode != 0:
        pytest.fail(f"helm template {shlex.join(args)} failed:\n{run.stderr}", pytrace=False)
    return run.stdout


def documents(text: str) -> list[tuple[str, str]]:
    """``(source template, document text)`` for each document helm rendered."""
    docs = []
    for chunk in re.split(r"^---\n", text, flags=re.MULTILINE):
        match = re.match(r"# Source: (\S+)\n", chunk)
        if match:
            docs.append((match.group(1), chunk))
    return docs


def render(*args: str) -> list[Manifest]:
    return [yaml.safe_load(doc) for _, doc in documents(template_text(*args))]


def one(manifests: Sequence[Manifest], kind: str) -> Manifest:
    found = [m for m in manifests if m["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def operator_container(manifests: Sequence[Manifest]) -> Manifest:
    containers = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: Manifest = containers[0]
    return container


def env_of(container: Manifest) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def check_snapshot(name: str, actual: str) -> None:
    path = SNAPSHOTS / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        return
    expected = path.read_text() if path.exists() else ""
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                str(path.relative_to(ROOT)),
                "rendered",
            )
        )
        pytest.fail(
            f"{path.name} is out of date; if the change is intended, re-run with "
            f"UPDATE_SNAPSHOTS=1 and review the diff:\n{diff}",
            pytrace=False,
        )


# -- generated RBAC helpers -----------------------------------------------------------


def test_rbac_template_is_generated_from_rbac_module() -> None:
    path = rbac.CHART_RBAC_TEMPLATE
    wanted = rbac.chart_rbac_template()
    if UPDATE:
        path.write_text(wanted)
    assert path.read_text() == wanted, (
        "charts/restate-operator-helm/templates/_rbac.tpl is stale: re-run with "
        "UPDATE_SNAPSHOTS=1 (it is generated from restate_op/rbac.py)"
    )


# -- lint ------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [None, VALUES_ALL], ids=["default", "all"])
@pytest.mark.parametrize("strict", [False, True], ids=["lint", "strict"])
def test_helm_lint_is_clean(values: Path | None, strict: bool) -> None:
    args = ["lint", str(CHART), "--namespace", NAMESPACE]
    if strict:
        args.append("--strict")
    if values:
        args += ["--values", str(values)]
    run = helm(*args)
    assert run.returncode == 0, run.stdout + run.stderr
    findings = [line for line in run.stdout.splitlines() if re.match(r"\[(WARNING|ERROR)\]", line)]
    assert not findings, run.stdout


# -- snapshots -------------------------------------------------------------------------


def _without_crds(text: str) -> str:
    """The rendering minus the generated CRDs (checked by ``generate --check`` instead)."""
    return "".join(
        f"---\n{doc}"
        for source, doc in documents(text)
        if "/charts/restate-operator-crds/" not in source
    )


@pytest.mark.parametrize(
    ("name", "args"),
    [("default.yaml", ()), ("all.yaml", ("--values", str(VALUES_ALL)))],
    ids=["default", "all"],
)
def test_template_snapshot(name: str, args: tuple[str, ...]) -> None:
    check_snapshot(name, _without_crds(template_text(*args)))


def test_values_all_sets_every_knob() -> None:
    """values-all.yaml covers every leaf of values.yaml, so its snapshot exercises each one."""

    def leaves(tree: Any, prefix: str = "") -> set[str]:
        if isinstance(tree, dict) and tree:
            return {leaf for k, v in tree.items() for leaf in leaves(v, f"{prefix}{k}.")}
        return {prefix.rstrip(".")}

    defaults = leaves(yaml.safe_load((CHART / "values.yaml").read_text()))
    everything = yaml.safe_load(VALUES_ALL.read_text())
    covered = leaves(everything)
    missing = {
        key
        for key in defaults
        if key not in covered and not any(c.startswith(f"{key}.") for c in covered)
    }
    assert not missing, f"values-all.yaml does not set {sorted(missing)}"


# -- RBAC ------------------------------------------------------------------------------


def test_cluster_role_is_exactly_the_operators_rules() -> None:
    manifests = render()
    assert one(manifests, "ClusterRole")["rules"] == rbac.CLUSTER_RULES
    binding = one(manifests, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == one(manifests, "ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "restate-operator", "namespace": NAMESPACE}
    ]


def test_pod_identity_flag_adds_exactly_its_rule_and_env() -> None:
    manifests = render("--set", "awsPodIdentityAssociationCluster=prod-eks")
    assert one(manifests, "ClusterRole")["rules"] == [*rbac.CLUSTER_RULES, rbac.PIA_RULE]
    assert env_of(operator_container(manifests))["AWS_POD_IDENTITY_ASSOCIATION_CLUSTER"] == (
        "prod-eks"
    )
    assert "AWS_POD_IDENTITY_ASSOCIATION_CLUSTER" not in env_of(operator_container(render()))


def test_workload_identity_flag_adds_exactly_its_rule_and_env() -> None:
    manifests = render("--set", "gcpWorkloadIdentity=true")
    assert one(manifests, "ClusterRole")["rules"] == [
        *rbac.CLUSTER_RULES,
        rbac.WORKLOAD_IDENTITY_RULE,
    ]
    assert env_of(operator_container(manifests))["GCP_WORKLOAD_IDENTITY"] == "true"
    assert "GCP_WORKLOAD_IDENTITY" not in env_of(operator_container(render()))
    assert rbac.WORKLOAD_IDENTITY_RULE not in one(render(), "ClusterRole")["rules"]


def test_rbac_is_least_privilege() -> None:
    """No wildcards, no update outside leases/finalizers, no secrets, no delete on data."""
    rules = [*rbac.CLUSTER_RULES, rbac.PIA_RULE, rbac.WORKLOAD_IDENTITY_RULE, *rbac.LEASE_RULES]
    for rule in rules:
        assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"], rule
        assert "secrets" not in rule["resources"], rule
        if "update" in rule["verbs"]:
            assert rule["resources"] in (["leases"], ["restateclusters/finalizers"]), rule
        if set(rule["resources"]) & {"namespaces", "persistentvolumeclaims", "services"}:
            assert "delete" not in rule["verbs"], rule
    keys = [(r["apiGroups"], r["resources"]) for r in rbac.CLUSTER_RULES]
    assert keys == sorted(keys), "CLUSTER_RULES must stay sorted"
    assert len(set(map(str, keys))) == len(keys), "one rule per resource"


def test_leases_are_namespaced_to_the_release() -> None:
    manifests = render()
    role = one(manifests, "Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == rbac.LEASE_RULES
    binding = one(manifests, "RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    without = render("--set", "leaderElection.enabled=false")
    assert not [m for m in without if m["kind"] in ("Role", "RoleBinding")]
    assert env_of(operator_container(without))["LEADER_ELECT"] == "false"


def test_restate_deployments_add_the_cloud_tunnel_role_in_the_release_namespace_only() -> None:
    """Secrets and Deployments only in the release namespace, where the tunnels run; the
    RestateCloudEnvironment rules only with restateDeployments.enabled. Its CRD comes from
    the CRDs subchart with installCrds either way, as every kind's does."""
    off = render()
    assert not [m for m in off if m["metadata"]["name"].endswith("-cloud-tunnels")]
    assert "restatecloudenvironments" not in {
        res for r in one(off, "ClusterRole")["rules"] for res in r["resources"]
    }
    on = render("--set", "restateDeployments.enabled=true")
    roles = {m["metadata"]["name"]: m for m in on if m["kind"] == "Role"}
    [cloud] = [r for name, r in roles.items() if name.endswith("-cloud-tunnels")]
    assert cloud["metadata"]["namespace"] == NAMESPACE
    assert cloud["rules"] == rbac.CLOUD_TUNNEL_RULES
    [binding] = [
        m
        for m in on
        if m["kind"] == "RoleBinding" and m["roleRef"]["name"] == cloud["metadata"]["name"]
    ]
    assert binding["metadata"]["namespace"] == NAMESPACE
    cluster_rules = one(on, "ClusterRole")["rules"]
    assert not [r for r in cluster_rules if "secrets" in r["resources"]]
    assert {"restatecloudenvironments", "restatecloudenvironments/status"} <= {
        res for r in cluster_rules for res in r["resources"]
    }
    for rendered in (off, on):
        crds = {m["metadata"]["name"] for m in rendered if m["kind"] == "CustomResourceDefinition"}
        assert "restatecloudenvironments.restate.dev" in crds


# -- values validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ("replicaCont: 2\n", "additional properties 'replicaCont' not allowed"),
        ("image:\n  tag: v1\n", "additional properties 'tag' not allowed"),
        ("leaderElection:\n  enable: false\n", "additional properties 'enable' not allowed"),
        ("logging:\n  level: verbose\n", "/logging/level"),
        ("replicaCount: two\n", "/replicaCount"),
        ("clusterDns: 'cluster local'\n", "/clusterDns"),
    ],
    ids=["top-level-typo", "nested-typo", "leader-typo", "bad-level", "bad-type", "bad-dns"],
)
def test_bad_values_fail_with_a_schema_error(tmp_path: Path, values: str, message: str) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(values)
    run = helm("template", RELEASE, str(CHART), "--values", str(path))
    assert run.returncode != 0
    assert "values don't meet the specifications of the schema" in run.stderr, run.stderr
    assert message in run.stderr, run.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--set", "replicaCount=2", "--set", "leaderElection.enabled=false"),
            "replicaCount > 1 needs leaderElection.enabled=true",
        ),
        (
            ("--set", "leaderElection.renewPeriod=20"),
            "renewPeriod (20) must be less than leaderElection.leaseDuration (20)",
        ),
    ],
    ids=["replicas-without-lease", "renew-not-below-duration"],
)
def test_inconsistent_values_fail_clearly(args: tuple[str, ...], message: str) -> None:
    run = helm("template", RELEASE, str(CHART), *args)
    assert run.returncode != 0
    assert message in run.stderr, run.stderr


def test_legacy_env_filter_is_accepted_and_warned_about() -> None:
    """Values files written for the Rust operator's chart still install (NOTES.txt warns)."""
    manifests = render("--set", "logging.env_filter=info\\,restate=debug")
    assert "RUST_LOG" not in env_of(operator_container(manifests))
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    assert "if .Values.logging.env_filter" in notes and "is ignored" in notes


# -- CRDs ------------------------------------------------------------------------------


def _generated_crds() -> dict[str, Manifest]:
    return {
        kind.crd_name: custom_resource_definition(kind)
        for kind in CRD_KINDS  # every kind restate-op serves
    }


def test_every_crd_comes_from_the_crds_subchart_and_is_kept_by_default() -> None:
    docs = documents(template_text())
    crds = {
        m["metadata"]["name"]: (source, m)
        for source, m in ((s, yaml.safe_load(d)) for s, d in docs)
        if m["kind"] == "CustomResourceDefinition"
    }
    assert set(crds) == set(_generated_crds())
    for name, (source, crd) in crds.items():
        assert source.startswith("restate-operator-helm/charts/restate-operator-crds/templates/")
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert crd["spec"] == _generated_crds()[name]["spec"]


def test_install_crds_false_renders_no_crd() -> None:
    kinds = [m["kind"] for m in render("--set", "installCrds=false")]
    assert "CustomResourceDefinition" not in kinds
    assert "Deployment" in kinds


def test_the_crds_chart_alone_renders_exactly_the_crds_and_lints_clean() -> None:
    run = helm("template", "restate-operator-crds", str(CRDS_CHART))
    assert run.returncode == 0, run.stderr
    rendered = [yaml.safe_load(d) for _, d in documents(run.stdout)]
    assert {m["metadata"]["name"]: m["spec"] for m in rendered} == {
        name: crd["spec"] for name, crd in _generated_crds().items()
    }
    lint = helm("lint", str(CRDS_CHART), "--strict")
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_include_crds_renders_one_gitops_bundle() -> None:
    """``helm template --include-crds``: the CRDs before what uses them (Helm's install
    order), then the operator, in one stream a GitOps tool applies as it is; no hook, no
    test pod, nothing Helm-only."""
    objects = render("--include-crds")
    kinds = [m["kind"] for m in objects]
    crds = [i for i, kind in enumerate(kinds) if kind == "CustomResourceDefinition"]
    assert len(crds) == len(_generated_crds())
    assert max(crds) < kinds.index("ClusterRole") < kinds.index("Deployment"), kinds
    assert {"ClusterRoleBinding", "ServiceAccount", "Role", "RoleBinding"} <= set(kinds)
    for obj in objects:
        annotations = obj["metadata"].get("annotations") or {}
        assert not any(a.startswith("helm.sh/hook") for a in annotations), obj["metadata"]


# -- the operator's Deployment ---------------------------------------------------------


def test_operator_env_matches_the_command_line() -> None:
    """Every variable the chart sets is one ``python -m restate_op run`` reads."""
    read = set(OperatorSettings.environment_variables().values())
    env = env_of(operator_container(render()))
    assert list(env)[:2] == ["OPERATOR_NAMESPACE", "OPERATOR_POD_NAME"]
    assert env["OPERATOR_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    for name in set(env) - {"OPERATOR_POD_NAME"}:
        assert name in read, f"the chart sets {name}, which OperatorSettings ignores"
    assert env["OPERATOR_LABEL_NAME"] == "app.kubernetes.io/name"
    assert env["LEADER_ELECT"] == "true"
    assert (env["LEASE_DURATION"], env["LEASE_RENEW"], env["CONCURRENCY"]) == ("20", "8", "8")
    assert (env["CLUSTER_DNS"], env["CANARY_IMAGE"]) == ("cluster.local", "alpine:3.21")


def test_operator_pods_carry_the_label_the_operator_selects_itself_by() -> None:
    manifests = render("--values", str(VALUES_ALL))
    pod = one(manifests, "Deployment")["spec"]["template"]
    env = env_of(operator_container(manifests))
    assert pod["metadata"]["labels"][env["OPERATOR_LABEL_NAME"]] == env["OPERATOR_LABEL_VALUE"]
    service = one(manifests, "Service")
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["publishNotReadyAddresses"] is True


def test_restricted_security_context_and_probes() -> None:
    manifests = render()
    spec = one(manifests, "Deployment")["spec"]["template"]["spec"]
    container = operator_container(manifests)
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in spec["volumes"]


def test_image_tag_is_version_or_app_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    default = operator_container(render())["image"]
    assert default == f"ghcr.io/restate-op/restate-op:{chart['appVersion']}"
    pinned = operator_container(render("--set-string", "version=9.9.9"))["image"]
    assert pinned == "ghcr.io/restate-op/restate-op:9.9.9"


# -- the image (Dockerfile) agrees with the chart --------------------------------------


def dockerfile_final_stage() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of the Dockerfile's last stage, continuations joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            instructions.append((word.upper(), rest.strip()))
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def test_dockerfile_agrees_with_the_chart() -> None:
    stage = dockerfile_final_stage()
    values = {word: rest for word, rest in stage}
    manifests = render()
    container = operator_container(manifests)
    sc = container["securityContext"]

    assert values["USER"] == f"{sc['runAsUser']}:{sc['runAsGroup']}"
    assert values["EXPOSE"] == str(container["ports"][0]["containerPort"]) == "8080"
    assert container["ports"][0]["name"] == "http"
    assert json.loads(values["ENTRYPOINT"]) == ["python", "-m", "restate_op", "run"]
    assert "command" not in container and "args" not in container, (
        "the chart must leave the image's entrypoint (python -m restate_op run) in place"
    )
    assert env_of(container)["HTTP_PORT"] == values["EXPOSE"]


def test_dockerfile_places_the_state_machine_where_the_code_loads_it() -> None:
    stage = dockerfile_final_stage()
    env = " ".join(rest for word, rest in stage if word == "ENV")
    assert "PYTHONPATH=/app" in env and "PYTHONDONTWRITEBYTECODE=1" in env
    copies = [rest for word, rest in stage if word == "COPY"]
    assert "--from=builder /app /app" in copies
    builder = (ROOT / "Dockerfile").read_text()
    assert "COPY restate_op/ /app/restate_op/" in builder
    assert "COPY states/ /app/states/" in builder
    package_dir = ROOT / "restate_op"
    assert package_dir.parent / "states" / "restatecluster.yaml" == STATES_FILE, (
        "restate_op/machine.py moved the states file; update the Dockerfile"
    )
    assert "gcc" not in builder and "build-essential" not in builder
