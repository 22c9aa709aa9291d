"""The operator's generated configuration runs real Restate, single- and multi-node.

Each test applies a RestateCluster to the local control plane, lets the real operator
process generate its children, reads them back and runs the pods as restate-server
processes in a loopback-only network namespace (e2e/conformance.py plays the kubelet).

Multi-node clusters with operator provisioning get a nodeSelector no node matches: their
pods stay Pending, so the operator - which runs outside the namespace - never dials the
pod names (its provisioning waits for restate-0 to run). The provisioning step itself runs
inside the namespace, against the address the operator would use. The nodeSelector changes
nothing in the generated environment or configuration.
"""

from __future__ import annotations

import concurrent.futures
import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.conformance import ConformanceRunner, GeneratedCluster, PodProcess
from e2e.operator_fixtures import cluster_manifest, condition, wait_phase
from e2e.operator_process import Kubectl, wait_for
from e2e.restate_netns import LoopbackNetns, RestateBinaries, restatectl
from e2e.restate_schema_probe import dump_config
from restate_op.api.models import RestateCluster
from restate_op.children.restate_schema import check_config
from restate_op.children.restate_schema_data import KEYS, RESTATE_VERSION
from restate_op.children.services import desired_cluster_service, desired_service
from restate_op.children.statefulset import desired_statefulset
from restate_op.node_address import node_address
from restate_op.settings import OperatorSettings

pytestmark = [pytest.mark.restate, pytest.mark.usefixtures("operator"), pytest.mark.timeout(300)]

IMAGE = "restatedev/restate:1.7.12"
PINNED = {"e2e.restate.dev/no-kubelet": "true"}
"""A nodeSelector no node matches (see the module docstring)."""
DOMAIN = "cluster.local"


# --------------------------------------------------------------------------------------------
# helpers


def apply_cluster(
    kubectl: Kubectl,
    name: str,
    *,
    replicas: int = 1,
    config: str | None = None,
    pinned: bool = False,
    **spec: Any,
) -> None:
    compute: dict[str, Any] = {"image": IMAGE, "replicas": replicas, **spec.pop("compute", {})}
    if pinned:
        compute["nodeSelector"] = PINNED
    if config is not None:
        spec["config"] = config
    kubectl.apply(cluster_manifest(name, compute=compute, **spec))


def delete_cluster(kubectl: Kubectl, name: str) -> None:
    kubectl.run("delete", "restatecluster", name, "--wait=false", check=False)


def wait_generated(
    kubectl: Kubectl, name: str, replicas: int, config: str | None = None, timeout: float = 90
) -> GeneratedCluster:
    """The operator's objects once they match the current spec (and all pods exist)."""

    def current() -> GeneratedCluster | None:
        rsc = kubectl.get("restatecluster", name)
        if (
            rsc is None
            or rsc.get("status", {}).get("observedGeneration") != (rsc["metadata"]["generation"])
        ):
            return None
        sts = kubectl.get("statefulset", "restate", name)
        if sts is None or sts["spec"]["replicas"] != replicas:
            return None
        generated = GeneratedCluster.read(kubectl, name, cluster_domain=DOMAIN)
        if config is not None and generated.config_text != config:
            return None
        if set(generated.pod_names) - set(generated.pods):
            return None
        return generated

    result: GeneratedCluster = wait_for(current, timeout, interval=0.5, what=f"{name} generated")
    return result


def dumped(runner: ConformanceRunner, pod: PodProcess) -> dict[str, Any]:
    result = runner.dump_config(pod)
    assert result.ok, f"restate-server refused the generated configuration: {result.error}"
    return tomllib.loads(result.stdout)


def probe_target(generated: GeneratedCluster) -> tuple[str, int | str]:
    get = generated.readiness_probe["httpGet"]
    assert get.get("scheme", "HTTP") == "HTTP"
    return get["path"], get["port"]


def http_json(runner: ConformanceRunner, url: str) -> Any:
    response = runner.netns.http("GET", url, timeout=5)
    assert response.status == 200, f"{url}: {response.status} {response.text()[:300]}"
    return json.loads(response.body)


def node_health(runner: ConformanceRunner, pod: PodProcess) -> dict[str, Any]:
    health: dict[str, Any] = http_json(runner, f"{pod.node.node_url}/health")
    return health


def nodes_list(runner: ConformanceRunner, pod: PodProcess) -> str:
    out = restatectl(runner.netns, runner.binaries, pod.node.node_url, "nodes", "list")
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture
def runner(
    netns: LoopbackNetns, restate_binaries: RestateBinaries, tmp_path: Path
) -> Iterator[ConformanceRunner]:
    runner = ConformanceRunner(netns, restate_binaries, tmp_path)
    yield runner
    runner.kill_all()


# --------------------------------------------------------------------------------------------
# --dump-config accepts what the operator generates


USER_CONFIG = (
    'roles = ["worker", "admin", "log-server", "metadata-server", "http-ingress"]\n'
    "default-num-partitions = 24\n"
    "default-replication = 2\n"
    "[metadata-client]\n"
    'addresses = ["http://restate-cluster:5122/"]\n'
)


@pytest.mark.parametrize(
    ("replicas", "config"),
    [(1, None), (3, None), (3, USER_CONFIG)],
    ids=["one", "three", "three-user-config"],
)
def test_restate_accepts_the_generated_configuration(
    kubectl: Kubectl, runner: ConformanceRunner, replicas: int, config: str | None
) -> None:
    name = f"conf-dump-{replicas}{'-user' if config else ''}"
    apply_cluster(kubectl, name, replicas=replicas, config=config, pinned=replicas > 1)
    try:
        generated = wait_generated(kubectl, name, replicas, config)
        pods = runner.load(generated)
        for pod in pods:
            effective = dumped(runner, pod)
            assert effective["cluster-name"] == name
            assert pod.env["RESTATE_NODE_NAME"] == pod.name
            assert pod.env["RESTATE_ADVERTISED_ADDRESS"] == (
                f"http://{pod.name}.restate-cluster.{name}.svc.{DOMAIN}:5122"
            )
            addresses = effective["metadata-client"]["addresses"]
            if config is not None:
                assert sorted(effective["roles"]) == sorted(tomllib.loads(config)["roles"])
                assert effective["default-replication"] == 2
                assert addresses == ["http://restate-cluster:5122/"]
                assert effective["auto-provision"] is False  # the operator provisions
            elif replicas > 1:
                assert addresses == [f"http://restate-cluster.{name}.svc.{DOMAIN}:5122/"]
                assert effective["auto-provision"] is False
            else:
                assert effective["auto-provision"] is True  # a single node provisions itself
        if config is not None:
            # The short Service name of the user's config resolves like in the pod.
            out = runner.netns.run(["getent", "ahosts", "restate-cluster"], check=True).stdout
            assert {line.split()[0] for line in out.splitlines()} == {p.ip for p in pods}
    finally:
        delete_cluster(kubectl, name)


# --------------------------------------------------------------------------------------------
# one node


def test_single_node_from_the_generated_pod_is_healthy(
    kubectl: Kubectl, runner: ConformanceRunner
) -> None:
    name = "conf-one"
    apply_cluster(kubectl, name)
    try:
        wait_phase(kubectl, name, "Ready", timeout=90)
        generated = wait_generated(kubectl, name, 1)
        [pod] = runner.load(generated)
        # Downward API: the pod's node is in a zone; the kubelet-style resolution found it.
        node = generated.nodes[generated.pods[pod.name]["spec"]["nodeName"]]
        assert pod.env["POD_ZONE"] == node["metadata"]["labels"]["topology.kubernetes.io/zone"]
        assert pod.env["POD_NAME"] == "restate-0"
        runner.start([pod])
        runner.wait_healthy([pod], timeout=60)
        assert runner.netns.http("GET", f"{pod.node.admin_url}/health").status == 200
        assert runner.netns.http("GET", f"{pod.node.ingress_url}/restate/health").status == 200
        assert probe_target(generated) == ("/health", 9070)
        assert runner.readiness(pod) == 200
        assert node_health(runner, pod)["status"] == "Alive"
    finally:
        delete_cluster(kubectl, name)


# --------------------------------------------------------------------------------------------
# three nodes, provisioned by the operator's step; a node restarts; the cluster grows


THREE = "conf-three"


@pytest.fixture(scope="module")
def three(
    kubectl: Kubectl, restate_binaries: RestateBinaries, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConformanceRunner]:
    """Three generated nodes of one RestateCluster (autoProvision: true) running; not
    provisioned yet (the first test that needs it does, through ``provisioned``)."""
    apply_cluster(kubectl, THREE, replicas=3, pinned=True, cluster={"autoProvision": True})
    try:
        with LoopbackNetns() as netns:
            runner = ConformanceRunner(netns, restate_binaries, tmp_path_factory.mktemp("three"))
            pods = runner.load(wait_generated(kubectl, THREE, 3))
            runner.start(pods)
            try:
                runner.wait_fabric(pods, timeout=60)
                yield runner
            finally:
                runner.kill_all()
    finally:
        delete_cluster(kubectl, THREE)


def provisioned(runner: ConformanceRunner) -> dict[str, Any]:
    """The operator's ProvisionCluster call, from inside the namespace, to the address the
    operator dials (restate-0 through the headless Service)."""
    return runner.provision(node_address(THREE, DOMAIN))


def test_three_nodes_form_one_cluster_provisioned_by_the_operator_step(
    three: ConformanceRunner,
) -> None:
    pods = three.cluster_pods(THREE)
    for pod in pods:
        # Operator provisioning: the generated env keeps nodes from provisioning themselves.
        assert pod.env["RESTATE_AUTO_PROVISION"] == "false"
        assert dumped(three, pod)["auto-provision"] is False
        # Not provisioned yet: the generated readiness probe does not pass.
        assert three.readiness(pod) == 0
        assert node_health(three, pod)["status"] == "StartingUp"

    assert node_address(THREE, DOMAIN) == f"restate-0.restate-cluster.{THREE}.svc.{DOMAIN}:5122"
    first = provisioned(three)
    assert first == {
        "provisioned": True,
        "already": False,
        "message": "Provisioned the Restate cluster",
    }
    three.wait_healthy(pods, timeout=90)
    second = provisioned(three)
    assert second["provisioned"] is True and second["already"] is True, second

    for pod in pods:
        three.wait_ready(pod, timeout=30)
        assert three.readiness(pod) == 200
    health = http_json(three, f"{pods[0].node.admin_url}/cluster-health")
    assert health["cluster_name"] == THREE
    assert len(health["metadata_cluster_health"]["members"]) == 3
    listed = nodes_list(three, pods[1])
    for pod in pods:
        assert pod.name in listed

    def status_lists_all() -> str | None:
        # restatectl's view of the cluster state catches up with the joins within seconds.
        out = restatectl(three.netns, three.binaries, pods[2].node.node_url, "status").stdout
        rows = [line.split() for line in out.splitlines()]
        alive = {row[1] for row in rows if len(row) > 2 and row[2] != "offline"}
        return out if alive >= {pod.name for pod in pods} else None

    wait_for(status_lists_all, 30, interval=0.5, what="restatectl status lists 3 live nodes")


def test_killed_node_restarts_with_the_same_config_and_rejoins(
    kubectl: Kubectl, three: ConformanceRunner
) -> None:
    provisioned(three)
    pods = three.cluster_pods(THREE)
    three.wait_healthy(pods, timeout=90)
    # restate-0 is the first address of restate-cluster.<ns>...: the others fail over.
    victim = pods[0]
    before = node_health(three, victim)["node_id"]  # "N<id>:<generation>"
    three.kill(victim)
    health = http_json(three, f"{pods[1].node.admin_url}/cluster-health")
    assert health["cluster_name"] == THREE

    # The pod comes back from the same (re-read) StatefulSet, with its data volume.
    [restarted, *_] = three.load(GeneratedCluster.read(kubectl, THREE, cluster_domain=DOMAIN))
    assert restarted.env == victim.env
    three.start([restarted])
    three.wait_healthy([restarted], timeout=90)
    three.wait_ready(restarted, timeout=30)
    after = node_health(three, restarted)["node_id"]
    node_id, generation = before.split(":")
    assert after.split(":")[0] == node_id, f"{before} -> {after}"
    assert int(after.split(":")[1]) > int(generation)
    listed = nodes_list(three, pods[2])
    assert sum(line.split()[2:3] == ["restate-0"] for line in listed.splitlines()) == 1, listed


def test_scaling_three_to_five_new_pods_join(kubectl: Kubectl, three: ConformanceRunner) -> None:
    provisioned(three)
    three.wait_healthy(three.cluster_pods(THREE), timeout=90)
    kubectl.merge_patch("rsc", THREE, {"spec": {"compute": {"replicas": 5}}})
    generated = wait_generated(kubectl, THREE, 5)
    pods = three.load(generated)
    new = [p for p in pods if p.name in ("restate-3", "restate-4")]
    assert len(new) == 2 and not any(p.node.alive() for p in new)
    for pod in new:
        assert pod.env["RESTATE_AUTO_PROVISION"] == "false"
        assert pod.env["RESTATE_METADATA_CLIENT__ADDRESSES"] == json.dumps(
            [f"http://restate-cluster.{THREE}.svc.{DOMAIN}:5122"]
        )
    # With restate-0 - the first address of restate-cluster.<ns>... - down, new nodes that
    # never saw the cluster still find it: Restate tries the Service name's other addresses.
    first = pods[0]
    three.kill(first)
    three.start(new)
    three.wait_healthy(new, timeout=90)
    for pod in new:
        three.wait_ready(pod, timeout=30)
        assert node_health(three, pod)["cluster_name"] == THREE
    three.start([first])
    three.wait_healthy([first], timeout=90)
    listed = nodes_list(three, pods[0])
    for pod in pods:
        assert pod.name in listed, listed
    health = http_json(three, f"{pods[4].node.admin_url}/cluster-health")
    assert health["cluster_name"] == THREE


# --------------------------------------------------------------------------------------------
# the readiness probe for every role layout the operator generates


def offline(
    spec: dict[str, Any], name: str
) -> tuple[GeneratedCluster, dict[str, Any], dict[str, Any]]:
    """What the operator's builders produce for ``spec`` (for layouts validate() refuses,
    which therefore never reach the API server)."""
    manifest = cluster_manifest(name, compute={"image": IMAGE, "replicas": 1}, **spec)
    manifest["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000"
    cluster = RestateCluster.model_validate(manifest)
    sts = desired_statefulset(cluster, OperatorSettings())
    services = [desired_service(cluster), desired_cluster_service(cluster)]
    generated = GeneratedCluster(
        namespace=name, statefulset=sts, config_text=spec.get("config", ""), services=services
    )
    return generated, sts, manifest


NO_INGRESS = 'roles = ["admin", "worker", "log-server", "metadata-server"]\n'
NO_ADMIN = 'roles = ["worker", "log-server", "metadata-server"]\n'
NO_METADATA = 'roles = ["admin", "worker", "log-server", "http-ingress"]\n'


ACCEPTED_LAYOUTS = {
    "conf-noingress": NO_INGRESS,
    "conf-noworker": 'roles = ["http-ingress", "admin", "metadata-server"]\n',
    "conf-nologserver": 'roles = ["admin", "worker", "metadata-server", "http-ingress"]\n',
}


def test_readiness_probe_passes_for_every_accepted_role_layout(
    kubectl: Kubectl, runner: ConformanceRunner
) -> None:
    # Default roles: see the single-node and three-node tests. Layouts with admin: admin probe.
    for layout, config in ACCEPTED_LAYOUTS.items():
        apply_cluster(kubectl, layout, config=config)
    name = "conf-noingress"
    # Joining another cluster without admin: allowed, probed on the ingress.
    joiner = "conf-joiner"
    join_config = (
        'roles = ["worker", "http-ingress"]\n'
        "[metadata-client]\n"
        f'addresses = ["http://restate-cluster.{name}.svc.{DOMAIN}:5122"]\n'
    )
    apply_cluster(
        kubectl,
        joiner,
        config=join_config,
        clusterName=name,
        compute={"env": [{"name": "RESTATE_NODE_NAME", "value": "joiner-$(POD_NAME)"}]},
    )
    try:
        for layout, config in ACCEPTED_LAYOUTS.items():
            generated = wait_generated(kubectl, layout, 1, config)
            assert probe_target(generated) == ("/health", 9070)
            [started] = runner.load(generated)
            runner.start([started])
        for layout in ACCEPTED_LAYOUTS:
            [started] = runner.cluster_pods(layout)
            runner.wait_ready(started, timeout=60)
            assert runner.readiness(started) == 200
            assert node_health(runner, started)["status"] == "Alive"
        [pod] = runner.cluster_pods(name)

        joining = wait_generated(kubectl, joiner, 1, join_config)
        assert probe_target(joining) == ("/restate/health", 8080)
        [member] = runner.load(joining)
        assert member.env["RESTATE_NODE_NAME"] == "joiner-restate-0"  # $(VAR) expanded
        runner.start([member])
        runner.wait_ready(member, timeout=60)
        assert runner.readiness(member) == 200
        assert node_health(runner, member)["status"] == "Alive"
        assert "joiner-restate-0" in nodes_list(runner, pod)
    finally:
        for layout in (*ACCEPTED_LAYOUTS, joiner):
            delete_cluster(kubectl, layout)


def test_role_layouts_that_cannot_work_are_refused(
    kubectl: Kubectl, runner: ConformanceRunner
) -> None:
    # Real Restate first: what these layouts do when they run anyway.
    no_admin, _, _ = offline({"config": NO_ADMIN}, "conf-noadmin")
    no_metadata, _, _ = offline({"config": NO_METADATA}, "conf-nometa")
    [admin_less] = runner.load(no_admin)
    [metadata_less] = runner.load(no_metadata)
    runner.start([admin_less, metadata_less])
    admin_less.node.wait_node_port(60)
    wait_for(lambda: node_health(runner, admin_less)["status"] == "Alive", 60, what="alive")
    with pytest.raises(OSError):  # nothing ever listens on the admin port
        runner.netns.http("GET", f"{admin_less.node.admin_url}/health", timeout=2)
    wait_for(lambda: not metadata_less.node.alive(), 30, what="metadata-less node exits")
    assert "metadata" in metadata_less.node.log_tail(200)

    # The operator refuses both before creating any pod.
    for name, config, words in (
        ("conf-noadmin", NO_ADMIN, "no admin role"),
        ("conf-nometa", NO_METADATA, "no metadata-server role"),
    ):
        apply_cluster(kubectl, name, config=config)
        try:
            cluster = wait_phase(kubectl, name, "Degraded", timeout=60, reason="InvalidConfig")
            assert words in condition(cluster, "Degraded")["message"]
            assert kubectl.get("statefulset", "restate", name) is None
        finally:
            delete_cluster(kubectl, name)


# --------------------------------------------------------------------------------------------
# configuration Restate refuses: Degraded with Restate's own words, before any pod rolls


BAD_CONFIGS = [
    "default-num-partitions = 70000\n",
    "[worker.invoker]\ninactivity-timeout = 5\n",
    'roles = ["admin", "worker", "metadata-server", "purple"]\n',
    'rocksdb-total-memory-size = "lots"\n',
    '[admin]\ndisable-web-ui = "no"\n',
]


def test_config_restate_refuses_is_degraded_with_restates_error(
    kubectl: Kubectl, runner: ConformanceRunner
) -> None:
    name = "conf-badconfig"
    good = "default-num-partitions = 12\n"
    apply_cluster(kubectl, name, config=good)
    try:
        wait_phase(kubectl, name, "Ready", timeout=90)
        generated = wait_generated(kubectl, name, 1, good)
        [pod] = runner.load(generated)
        sts_before = kubectl.get("statefulset", "restate", name)
        pods_before = {
            p["metadata"]["uid"] for p in kubectl.json("get", "pods", "-n", name)["items"]
        }
        assert sts_before is not None

        for bad in BAD_CONFIGS:
            restate = runner.dump_config(pod, bad)  # the pod's exact environment
            assert not restate.ok, bad
            kubectl.merge_patch("rsc", name, {"spec": {"config": bad}})
            cluster = wait_phase(kubectl, name, "Degraded", timeout=60, reason="InvalidConfig")
            message = condition(cluster, "Degraded")["message"]
            assert restate.error in message, f"Restate: {restate.error!r}\noperator: {message!r}"
            assert RESTATE_VERSION in message
            sts = kubectl.get("statefulset", "restate", name)
            assert sts is not None
            assert sts["metadata"]["generation"] == sts_before["metadata"]["generation"]
            assert sts["spec"]["template"] == sts_before["spec"]["template"]
            uids = {p["metadata"]["uid"] for p in kubectl.json("get", "pods", "-n", name)["items"]}
            assert uids == pods_before, "no pod was rolled"

        # Accepted by Restate in the pod, so accepted by the operator: a key the pod's env
        # sets (RESTATE_LOG_FORMAT replaces the file's value), and keys Restate ignores.
        for fine in ('log-format = "purple"\n', "no-such-key = 1\n[worker]\nno-such = 'x'\n"):
            assert runner.dump_config(pod, fine).ok
            kubectl.merge_patch("rsc", name, {"spec": {"config": fine}})
            wait_phase(kubectl, name, "Ready", timeout=90)
        # ... and only because of the env: without RESTATE_LOG_FORMAT Restate refuses it.
        purple = pod.node.base_dir.parent / "purple.toml"
        purple.write_text('log-format = "purple"\n')
        env = {k: v for k, v in pod.env.items() if k != "RESTATE_LOG_FORMAT"}
        shadowed = runner.netns.run(
            [str(runner.binaries.server), "--dump-config"],
            env={"PATH": "/usr/bin:/bin", **env, "RESTATE_CONFIG": str(purple)},
        )
        assert shadowed.returncode != 0 and "purple" in shadowed.stderr
    finally:
        delete_cluster(kubectl, name)


def _bad_value(rules: dict[str, str]) -> str | None:
    """A TOML literal the key's rules say Restate refuses (the first applicable one)."""
    expanded = {n: v for names, v in rules.items() for n in names.split(",")}
    string = expanded.get("string", "")
    if string.startswith("enum:"):
        return '"not-a-variant"'
    if string.startswith("bytes:"):
        return '"12 parsecs"'
    if "negative" in expanded:
        return "-3"
    if "huge" in expanded:
        return "9223372036854775807"
    for name, literal in (
        ("boolean", "true"),
        ("string", '"x y"'),
        ("integer", "42"),
        ("float", "2.5"),
        ("array", "[1]"),
        ("table", "{ a = 1 }"),
    ):
        if expanded.get(name, "").startswith("type:"):
            return literal
    if expanded.get("items-string", "").startswith("enum:"):
        return '["not-a-variant"]'
    return None


def test_schema_says_what_restate_says_for_every_key(
    netns: LoopbackNetns, restate_binaries: RestateBinaries, tmp_path: Path
) -> None:
    """The operator's rules against the binary: one refused value per key, same words."""
    version = netns.run([str(restate_binaries.server), "--version"], env={"PATH": "/usr/bin:/bin"})
    assert version.stdout.strip() == RESTATE_VERSION, (
        "regenerate: python -m e2e.restate_schema_probe"
    )
    cases: dict[str, str] = {}
    for key, rules in KEYS.items():
        literal = _bad_value(rules)
        if literal is not None:
            *table, leaf = key.split(".")
            header = f"[{'.'.join(table)}]\n" if table else ""
            cases[key] = f"{header}{leaf} = {literal}\n"
    assert len(cases) > 150
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(
            zip(
                cases,
                pool.map(
                    lambda text: dump_config(netns, restate_binaries.server, text, tmp_path),
                    cases.values(),
                ),
                strict=True,
            )
        )
    mismatches = []
    for key, text in cases.items():
        ours = check_config(tomllib.loads(text))
        restate = results[key]
        expected = [] if restate.ok else [(key, restate.error)]
        if ours != expected:
            mismatches.append(f"{text!r}: restate {expected} operator {ours}")
    assert not mismatches, "\n".join(mismatches)
