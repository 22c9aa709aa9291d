"""Run what the operator generated as real Restate nodes: the conformance layer.

The local control plane has no kubelet (kwok only pretends pods run), so this module plays
the kubelet's part for Restate: it reads the StatefulSet, Services and ConfigMap the
operator actually applied for a RestateCluster (with kubectl), and turns each pod
``restate-<i>`` into one restate-server process inside a loopback-only network namespace.

What is taken from the generated objects, unchanged:

* the restate container's ``env``, resolved as the kubelet resolves it: downward-API
  ``fieldRef``s (``metadata.name`` is the pod name; ``metadata.labels[...]`` comes from the
  pod, and for ``topology.kubernetes.io/zone``/``region`` from its node when the pod lacks
  it, as Kubernetes' PodTopologyLabels admission copies them at binding), ``configMapKeyRef``
  and ``secretKeyRef`` from the namespace, then ``$(VAR)`` references expanded against the
  variables defined before them (``$$`` escapes, unknown references stay as written);
* the ConfigMap's ``config.toml`` (the file behind the ``config`` volume);
* the ports, readiness probe, pod DNS names and Services.

The only rewrites, each because a process is not a pod:

* ``RESTATE_CONFIG`` points at a copy of the ConfigMap's file (the container would see it
  at its mount path, ``/config/config.toml``);
* ``RESTATE_BASE_DIR`` is a per-pod directory standing in for the pod's data volume (kept
  across restarts of the pod, as a PVC is);
* addresses: every pod gets its own loopback IP ``127.0.0.<base + ordinal>`` and binds it
  with ``RESTATE_BIND_IP`` (all pods share one namespace, so they could not all bind
  ``[::]:9070``); ``status.podIP`` resolves to that IP; when the configuration or env sets a
  ``bind-address`` explicitly, it is moved to the pod's IP on the same port.

DNS: each pod's names (``<pod>.restate-cluster.<ns>.svc.<domain>`` and the forms the pod's
search path ``<ns>.svc.<domain> svc.<domain> <domain>`` completes, e.g.
``<pod>.restate-cluster``) map to its IP, and every Service name of the namespace
(``restate-cluster.<ns>.svc.<domain>`` etc.) maps to all pods, through
/etc/netns/<ns>/hosts. Restate resolves a name with several addresses to all of them and
tries the next when one refuses (checked: a fresh node joins through
``restate-cluster.<ns>...`` while the pod behind the first address is down). A
ClusterIP Service's virtual IP is approximated by the same list of pod IPs. Short names
that two loaded clusters would share are left out (ambiguous in one hosts file).

Not supported (the generated pods never need them in these tests): volumes other than the
data and config ones (signing keys, CA bundles), ``envFrom``, service links.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e.operator_process import REPO, Kubectl
from e2e.polling import poll
from e2e.restate_netns import (
    LoopbackNetns,
    NetnsError,
    RestateBinaries,
    RestateNode,
    loopback_address,
)
from e2e.restate_schema_probe import DumpResult, restate_error

CONTAINER = "restate"
STATEFULSET = "restate"
CONFIG_VOLUME = "config"
DATA_VOLUME = "storage"
CONFIG_FILE = "config.toml"
ZONE_LABELS = ("topology.kubernetes.io/zone", "topology.kubernetes.io/region")
FIRST_ADDRESS = 10
"""Pod ``restate-<i>`` of the first cluster loaded gets 127.0.0.(10 + i)."""

_LABEL_REF = re.compile(r"^metadata\.(labels|annotations)\['(?P<key>[^']+)'\]$")
_ORDINAL = re.compile(r"-(\d+)$")


class ConformanceError(RuntimeError):
    """The generated objects cannot be run as they are (unsupported or inconsistent)."""


# --------------------------------------------------------------------------------------------
# The kubelet's environment resolution


def expand(value: str, defined: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion (k8s.io/kubernetes third_party/forked/golang/expansion).

    ``$(NAME)`` becomes the value of a variable defined earlier, ``$$`` becomes ``$``; an
    unknown reference, an unclosed ``$(`` and any other ``$`` are kept as written.
    """
    out: list[str] = []
    i = 0
    while i < len(value):
        char = value[i]
        if char != "$" or i + 1 >= len(value):
            out.append(char)
            i += 1
            continue
        nxt = value[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = value.find(")", i + 2)
            if close < 0:
                out.append("$(")
                i += 2
            else:
                name = value[i + 2 : close]
                out.append(defined.get(name, f"$({name})"))
                i = close + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


@dataclass(frozen=True)
class PodContext:
    """What the downward API and key references of one pod resolve against."""

    name: str
    namespace: str
    ip: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    node_name: str = ""
    node_labels: Mapping[str, str] = field(default_factory=dict)
    service_account: str = ""
    uid: str = ""


def field_ref(path: str, pod: PodContext) -> str:
    """The value of a downward-API ``fieldRef`` for ``pod`` (kubelet semantics)."""
    simple = {
        "metadata.name": pod.name,
        "metadata.namespace": pod.namespace,
        "metadata.uid": pod.uid,
        "spec.nodeName": pod.node_name,
        "spec.serviceAccountName": pod.service_account,
        "status.podIP": pod.ip,
        "status.podIPs": pod.ip,
    }
    if path in simple:
        return simple[path]
    match = _LABEL_REF.match(path)
    if match is None:
        raise ConformanceError(f"unsupported fieldRef {path!r}")
    key = match["key"]
    if match[1] == "annotations":
        return pod.annotations.get(key, "")
    if key in pod.labels:
        return pod.labels[key]
    return pod.node_labels.get(key, "") if key in ZONE_LABELS else ""


KeyLookup = Callable[[str, str, str], str | None]
"""(kind "configmap"/"secret", object name, key) -> value, None when missing."""


def resolve_env(
    env: Sequence[Mapping[str, Any]], pod: PodContext, lookup: KeyLookup | None = None
) -> dict[str, str]:
    """A container's ``env`` list as the process sees it, in the kubelet's order."""
    resolved: dict[str, str] = {}
    for entry in env:
        name = entry["name"]
        source = entry.get("valueFrom")
        if source is None:
            resolved[name] = expand(entry.get("value", ""), resolved)
            continue
        value: str | None
        if "fieldRef" in source:
            value = field_ref(source["fieldRef"]["fieldPath"], pod)
        elif "configMapKeyRef" in source or "secretKeyRef" in source:
            kind = "configmap" if "configMapKeyRef" in source else "secret"
            ref = source["configMapKeyRef" if kind == "configmap" else "secretKeyRef"]
            value = lookup(kind, ref["name"], ref["key"]) if lookup is not None else None
            if value is None:
                if ref.get("optional"):
                    continue
                raise ConformanceError(f"{name}: {kind} {ref['name']}/{ref['key']} not found")
        else:
            raise ConformanceError(f"{name}: unsupported valueFrom {sorted(source)}")
        resolved[name] = value
    return resolved


# --------------------------------------------------------------------------------------------
# What the operator generated


@dataclass
class GeneratedCluster:
    """The operator's objects for one RestateCluster, as read back from the API server."""

    namespace: str
    statefulset: dict[str, Any]
    config_text: str
    services: list[dict[str, Any]]
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    lookup: KeyLookup | None = None
    cluster_domain: str = "cluster.local"

    @classmethod
    def read(
        cls, kubectl: Kubectl, cluster: str, *, cluster_domain: str = "cluster.local"
    ) -> GeneratedCluster:
        """Read the StatefulSet, its ConfigMap, the Services, pods and their nodes."""
        namespace = cluster  # the operator keeps a cluster's children in a namespace of its name
        sts = kubectl.get("statefulset", STATEFULSET, namespace)
        if sts is None:
            raise ConformanceError(f"no StatefulSet {STATEFULSET} in namespace {namespace}")
        volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"].get("volumes", [])}
        cm_name = volumes[CONFIG_VOLUME]["configMap"]["name"]
        config_map = kubectl.get("configmap", cm_name, namespace)
        if config_map is None:
            raise ConformanceError(f"ConfigMap {cm_name} is missing")
        services = kubectl.json("get", "service", "-n", namespace)["items"]
        pods = {
            p["metadata"]["name"]: p for p in kubectl.json("get", "pods", "-n", namespace)["items"]
        }
        nodes: dict[str, dict[str, Any]] = {}
        for pod in pods.values():
            node_name = pod.get("spec", {}).get("nodeName")
            if node_name and node_name not in nodes:
                node = kubectl.get("node", node_name)
                if node is not None:
                    nodes[node_name] = node

        def lookup(kind: str, name: str, key: str) -> str | None:
            obj = kubectl.get(kind, name, namespace)
            if obj is None:
                return None
            if kind == "secret":
                data = obj.get("data", {})
                return base64.b64decode(data[key]).decode() if key in data else None
            value = obj.get("data", {}).get(key)
            return value if isinstance(value, str) else None

        return cls(
            namespace=namespace,
            statefulset=sts,
            config_text=config_map.get("data", {}).get(CONFIG_FILE, ""),
            services=services,
            pods=pods,
            nodes=nodes,
            lookup=lookup,
            cluster_domain=cluster_domain,
        )

    # ---- the pod template -------------------------------------------------------------------

    @property
    def pod_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.statefulset["spec"]["template"]["spec"]
        return spec

    @property
    def container(self) -> dict[str, Any]:
        for container in self.pod_spec["containers"]:
            if container["name"] == CONTAINER:
                return dict(container)
        raise ConformanceError(f"no container {CONTAINER!r} in the StatefulSet")

    @property
    def replicas(self) -> int:
        return int(self.statefulset["spec"].get("replicas", 1))

    @property
    def pod_names(self) -> list[str]:
        """The pods the StatefulSet asks for: ``restate-0`` ... ``restate-<replicas-1>``."""
        return [f"{self.statefulset['metadata']['name']}-{i}" for i in range(self.replicas)]

    @property
    def service_name(self) -> str:
        """The governing (headless) Service that gives pods their DNS names."""
        return str(self.statefulset["spec"]["serviceName"])

    @property
    def readiness_probe(self) -> dict[str, Any]:
        probe: dict[str, Any] = self.container.get("readinessProbe", {})
        return probe

    def mount_path(self, volume: str) -> str:
        """Where the restate container mounts ``volume``."""
        for mount in self.container.get("volumeMounts", []):
            if mount["name"] == volume:
                return str(mount["mountPath"])
        raise ConformanceError(f"volume {volume!r} is not mounted in the restate container")

    def port(self, port: int | str) -> int:
        """A probe's port: a number, or the name of a container port."""
        if isinstance(port, int):
            return port
        for entry in self.container.get("ports", []):
            if entry.get("name") == port:
                return int(entry["containerPort"])
        raise ConformanceError(f"no container port named {port!r}")

    def pod_context(self, pod_name: str, ip: str) -> PodContext:
        """The downward-API view of pod ``pod_name`` (live pod if it exists, else template)."""
        live = self.pods.get(pod_name, {})
        template_meta = self.statefulset["spec"]["template"].get("metadata", {})
        meta = live.get("metadata", template_meta)
        node_name = live.get("spec", {}).get("nodeName", "") or ""
        node = self.nodes.get(node_name, {})
        return PodContext(
            name=pod_name,
            namespace=self.namespace,
            ip=ip,
            labels=meta.get("labels", {}) or {},
            annotations=meta.get("annotations", {}) or {},
            node_name=node_name,
            node_labels=node.get("metadata", {}).get("labels", {}) or {},
            service_account=str(self.pod_spec.get("serviceAccountName", "")),
            uid=str(meta.get("uid", "")),
        )

    def resolved_env(self, pod_name: str, ip: str) -> dict[str, str]:
        """The restate container's environment in pod ``pod_name``, before any rewrite."""
        if self.container.get("envFrom"):
            raise ConformanceError("envFrom is not supported")
        if self.pod_spec.get("enableServiceLinks", True):
            raise ConformanceError("service links would add variables; the operator disables them")
        return resolve_env(
            self.container.get("env", []), self.pod_context(pod_name, ip), self.lookup
        )

    # ---- DNS ------------------------------------------------------------------------------

    def _qualified(self, name: str) -> list[str]:
        """``name.<ns>.svc.<domain>`` and what the pod's search path completes to it."""
        ns, domain = self.namespace, self.cluster_domain
        return [
            f"{name}.{ns}.svc.{domain}",
            f"{name}.{ns}.svc",
            f"{name}.{ns}",
            name,
        ]

    def pod_dns_names(self, pod_name: str) -> list[str]:
        """The names that resolve to pod ``pod_name`` alone."""
        return self._qualified(f"{pod_name}.{self.service_name}")

    def service_dns_names(self) -> list[str]:
        """The names that resolve to every pod (each Service of the namespace)."""
        return [n for svc in self.services for n in self._qualified(svc["metadata"]["name"])]


# --------------------------------------------------------------------------------------------
# Running it


@dataclass
class PodProcess:
    """One generated pod as a restate-server process."""

    name: str
    ip: str
    generated: GeneratedCluster
    node: RestateNode

    @property
    def fqdn(self) -> str:
        return self.generated.pod_dns_names(self.name)[0]

    @property
    def env(self) -> Mapping[str, str]:
        return self.node.env


class ConformanceRunner:
    """Runs generated pods in one LoopbackNetns; one runner per test, closed with the netns."""

    def __init__(self, netns: LoopbackNetns, binaries: RestateBinaries, work_dir: Path) -> None:
        self.netns = netns
        self.binaries = binaries
        self.work_dir = work_dir
        self.pods: dict[tuple[str, str], PodProcess] = {}
        self._clusters: dict[str, GeneratedCluster] = {}
        self._bases: dict[str, int] = {}

    # ---- loading --------------------------------------------------------------------------

    def load(self, generated: GeneratedCluster) -> list[PodProcess]:
        """(Re)load a cluster's generated objects: write config files, map names, make pods.

        Loading again after the operator changed the StatefulSet (e.g. scaled it) keeps
        each existing pod's data directory and running process; new pods are added, and the
        next ``start`` of any pod uses the new environment and configuration.
        """
        ns = generated.namespace
        if ns not in self._bases:
            self._bases[ns] = FIRST_ADDRESS + 20 * len(self._bases)
        self._clusters[ns] = generated
        pods = []
        for name in generated.pod_names:
            ip = self.pod_ip(ns, name)
            env = self._process_env(generated, name, ip)
            existing = self.pods.get((ns, name))
            process = existing.node.process if existing is not None else None
            node = RestateNode(
                netns=self.netns,
                binaries=self.binaries,
                name=f"{ns}-{name}",
                host=generated.pod_dns_names(name)[0],
                base_dir=self._pod_dir(ns, name) / "data",
                env=env,
                process=process,
            )
            pod = PodProcess(name=name, ip=ip, generated=generated, node=node)
            self.pods[(ns, name)] = pod
            pods.append(pod)
        self._write_hosts()
        return pods

    def pod_ip(self, namespace: str, pod_name: str) -> str:
        match = _ORDINAL.search(pod_name)
        if match is None:
            raise ConformanceError(f"{pod_name} is not a StatefulSet pod name")
        return loopback_address(self._bases[namespace] + int(match[1]))

    def _pod_dir(self, namespace: str, pod_name: str) -> Path:
        path = self.work_dir / namespace / pod_name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _process_env(self, generated: GeneratedCluster, pod_name: str, ip: str) -> dict[str, str]:
        """The resolved env with the rewrites of the module docstring, and nothing else."""
        env = generated.resolved_env(pod_name, ip)
        pod_dir = self._pod_dir(generated.namespace, pod_name)
        config_dir = pod_dir / "config"
        config_dir.mkdir(exist_ok=True)
        (config_dir / CONFIG_FILE).write_text(generated.config_text)
        config_mount = generated.mount_path(CONFIG_VOLUME)
        data_mount = generated.mount_path(DATA_VOLUME)
        config_path = env.get("RESTATE_CONFIG")
        if config_path is not None:
            if not config_path.startswith(config_mount.rstrip("/") + "/"):
                raise ConformanceError(f"RESTATE_CONFIG={config_path} is not under {config_mount}")
            env["RESTATE_CONFIG"] = str(config_dir / os.path.relpath(config_path, config_mount))
        base_dir = env.get("RESTATE_BASE_DIR")
        if base_dir != data_mount:
            raise ConformanceError(
                f"RESTATE_BASE_DIR={base_dir} is not the data volume {data_mount}"
            )
        env["RESTATE_BASE_DIR"] = str(pod_dir / "data")
        env["RESTATE_BIND_IP"] = ip
        env.update(_bind_address_moves(generated.config_text, env, ip))
        # What the container runtime sets besides the container's own env.
        env.setdefault("HOSTNAME", pod_name)
        return env

    def _write_hosts(self) -> None:
        mapping: dict[str, list[str]] = {}
        owners: dict[str, set[str]] = {}
        for (ns, name), pod in sorted(self.pods.items(), key=lambda i: i[1].ip):
            generated = self._clusters[ns]
            if name not in generated.pod_names:
                continue
            for host in generated.pod_dns_names(name):
                mapping.setdefault(host, []).append(pod.ip)
                owners.setdefault(host, set()).add(ns)
            for host in generated.service_dns_names():
                mapping.setdefault(host, []).append(pod.ip)
                owners.setdefault(host, set()).add(ns)
        self.netns.set_hosts({host: ips for host, ips in mapping.items() if len(owners[host]) == 1})

    # ---- processes ----------------------------------------------------------------------

    def pod(self, namespace: str, name: str) -> PodProcess:
        return self.pods[(namespace, name)]

    def cluster_pods(self, namespace: str) -> list[PodProcess]:
        generated = self._clusters[namespace]
        return [self.pods[(namespace, name)] for name in generated.pod_names]

    def start(self, pods: Iterable[PodProcess]) -> None:
        for pod in pods:
            if pod.node.alive():
                raise ConformanceError(f"{pod.name} is already running")
            pod.node.start()

    def kill(self, pod: PodProcess) -> None:
        """SIGKILL, as a node crash or a force-deleted pod; the data directory stays."""
        if pod.node.process is not None:
            pod.node.process.stop(timeout=10, sig=signal.SIGKILL)

    def kill_all(self) -> None:
        """SIGKILL every pod process at once (test teardown: the data is thrown away, and a
        cluster shutting down node by node spends its shutdown timeout waiting on peers)."""
        running = [p.node.process for p in self.pods.values() if p.node.alive()]
        for process in running:
            if process is not None and process.popen is not None:
                process.popen.send_signal(signal.SIGKILL)
        for process in running:
            if process is not None:
                process.stop(timeout=10, sig=signal.SIGKILL)

    def wait_fabric(self, pods: Iterable[PodProcess], timeout: float = 60) -> None:
        for pod in pods:
            pod.node.wait_node_port(timeout)

    def wait_healthy(self, pods: Iterable[PodProcess], timeout: float = 90) -> None:
        for pod in pods:
            pod.node.wait_healthy(timeout)

    def readiness(self, pod: PodProcess, timeout: float = 1.0) -> int:
        """Run the generated readinessProbe once, as the kubelet does: the HTTP status, 0
        when there is no answer (refused, reset or over ``timeoutSeconds``)."""
        probe = pod.generated.readiness_probe.get("httpGet")
        if probe is None:
            raise ConformanceError("the readiness probe is not an httpGet probe")
        if probe.get("scheme", "HTTP") != "HTTP" or probe.get("host"):
            raise ConformanceError(f"unsupported httpGet probe {probe}")
        port = pod.generated.port(probe["port"])
        seconds = float(pod.generated.readiness_probe.get("timeoutSeconds", timeout))
        url = f"http://{pod.ip}:{port}{probe.get('path', '/')}"
        try:
            return self.netns.http("GET", url, timeout=seconds).status
        except OSError:
            return 0

    def wait_ready(self, pod: PodProcess, timeout: float = 90) -> None:
        """Until the generated readinessProbe succeeds (2xx/3xx) on the pod's process."""

        def passing() -> int:
            status = self.readiness(pod)
            if not 200 <= status < 400 and not pod.node.alive():
                raise NetnsError(f"{pod.name} exited:\n{pod.node.log_tail()}")
            return status

        def timed_out(message: str) -> TimeoutError:
            return TimeoutError(
                f"{pod.name}: readiness probe {pod.generated.readiness_probe} not passing "
                f"({message})\n{pod.node.log_tail()}"
            )

        poll(
            passing,
            within=timeout,
            what="a 2xx/3xx status",
            interval=0.2,
            done=lambda status: 200 <= status < 400,
            fail=timed_out,
        )

    # ---- one-shot commands in the namespace ---------------------------------------------

    def dump_config(self, pod: PodProcess, config_text: str | None = None) -> DumpResult:
        """``restate-server --dump-config`` with the pod's exact environment.

        ``config_text`` replaces the generated file's content (to try a configuration the
        operator would be given next); the environment stays the pod's.
        """
        env = dict(pod.env)
        if config_text is not None:
            path = self._pod_dir(pod.generated.namespace, pod.name) / "candidate.toml"
            path.write_text(config_text)
            env["RESTATE_CONFIG"] = str(path)
        result = self.netns.run(
            [str(self.binaries.server), "--dump-config"],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
            cwd=pod.node.base_dir.parent,
        )
        if result.returncode == 0:
            return DumpResult(True, result.stdout, "")
        return DumpResult(False, result.stdout, restate_error(result.stderr))

    def python(
        self, code: str, *args: str, timeout: float = 90
    ) -> subprocess.CompletedProcess[str]:
        """Run ``code`` with the repository's Python inside the namespace (names resolve
        through its hosts file, sockets see only loopback)."""
        return self.netns.run(
            [sys.executable, "-c", code, *args],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO)},
            timeout=timeout,
            cwd=REPO,
        )

    def provision(self, target: str) -> dict[str, Any]:
        """``restate_op.provisioning.provision_cluster(target)`` run inside the namespace."""
        code = (
            "import asyncio, dataclasses, json, sys\n"
            "from restate_op.provisioning import provision_cluster\n"
            "result = asyncio.run(provision_cluster(sys.argv[1]))\n"
            "print(json.dumps(dataclasses.asdict(result)))\n"
        )
        result = self.python(code, target)
        if result.returncode != 0:
            raise ConformanceError(f"provision_cluster crashed:\n{result.stderr[-3000:]}")
        outcome: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        return outcome


def _bind_address_moves(config_text: str, env: Mapping[str, str], ip: str) -> dict[str, str]:
    """Explicit ``bind-address`` settings moved to the pod's IP (same port)."""
    try:
        doc = tomllib.loads(config_text)
    except tomllib.TOMLDecodeError:
        doc = {}
    moves: dict[str, str] = {}
    for section, variable in (
        (None, "RESTATE_BIND_ADDRESS"),
        ("admin", "RESTATE_ADMIN__BIND_ADDRESS"),
        ("ingress", "RESTATE_INGRESS__BIND_ADDRESS"),
    ):
        table = doc if section is None else doc.get(section, {})
        value = env.get(variable) or (
            table.get("bind-address") if isinstance(table, dict) else None
        )
        if isinstance(value, str) and ":" in value:
            moves[variable] = f"{ip}:{value.rsplit(':', 1)[1]}"
    return moves
