"""A real Kubernetes node joined to the local control plane: real containers, real pods.

Everything runs inside the node's own network namespace, which has a veth to the root
namespace (node IP 10.250.0.2/30, root end 10.250.0.1/30) and **no default route**: pods
reach each other, the node's own addresses and nothing else. In that namespace run, as plain
processes started through ``nsenter --net`` (not ``ip netns exec``, whose private mount
namespace would hide the kubelet's mounts from containerd):

- containerd (Debian's, v2 config schema) with runc and the CNI bridge plugin, a private
  root/state/socket, no registry mirrors, the locally built pause image as sandbox image;
  the images of e2e/images.py are imported into it (``ctr -n k8s.io images import``);
- the kubelet, with a ``system:node:<name>`` certificate, tainted
  ``restate.dev/real-node=true:NoSchedule`` and labelled ``restate.dev/real-node=true`` so
  only pods that choose the node land there (the kwok nodes stay for the fast tier);
- kube-proxy in iptables mode, so ClusterIPs work from pods, the ``kubernetes`` Service
  included (its EndpointSlice points at the API bridge below);
- CoreDNS (slim build, no ``forward``) bound to the cluster DNS address 10.96.0.10, which
  lives on the node namespace's loopback;
- kube-router as NetworkPolicy firewall only (no routing, no service proxy).

local-path-provisioner runs as a host process (StorageClass ``local-path``, volumes are
directories under the node's work dir); volume *growth* of those claims stays emulated by
e2e/fake_storage.py at the API level (local-path has no resizer).

The API server listens on 127.0.0.1 in the root namespace. Two socat processes bridge it into
the node namespace through a unix socket, so the node's 127.0.0.1:<port> and
10.250.0.2:<port> reach it (the latter is the ``kubernetes`` Service's endpoint).

Every process is stopped by its PID; the namespace, mounts, cgroups and run dirs it created
are removed by ``stop()``, also at interpreter exit. A component that cannot start raises
ControlPlaneError naming it.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from e2e.controlplane import SERVICE_CIDR, ControlPlane, ControlPlaneError
from e2e.images import ImageSet, build_all, versions
from e2e.kubehttp import KubeHTTPError
from e2e.procs import ManagedProcess

E2E_DIR = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("RESTATE_OP_CACHE", Path.home() / ".cache" / "restate-op"))
NODE_NAME = "restate-real-node"
NODE_IP = "10.250.0.2"
"""The first node's IP; a second node started while one runs gets 10.250.1.2, and so on."""
POD_SUBNET = "10.244.200.0/24"
"""The real node's pods; inside the cluster's pod range, clear of the kwok nodes' /20s."""
CLUSTER_DNS_IP = "10.96.0.10"
PRIVATE_PROBE_IP = "192.168.250.1"
"""A private-range address inside the node's namespace (on its loopback), for egress tests."""
REAL_NODE_LABEL = "restate.dev/real-node"
REAL_NODE_TAINT = {"key": REAL_NODE_LABEL, "value": "true", "effect": "NoSchedule"}
REAL_NODE_TOLERATION = {
    "key": REAL_NODE_LABEL,
    "operator": "Equal",
    "value": "true",
    "effect": "NoSchedule",
}
REAL_NODE_SELECTOR = {REAL_NODE_LABEL: "true"}
LOCAL_PATH_CLASS = "local-path"
LOCAL_PATH_PROVISIONER = "rancher.io/local-path"
LOCAL_PATH_NAMESPACE = "local-path-storage"
CNI_BIN_DIR = Path("/usr/lib/cni")
# Paths the runtimes and CNI use at fixed places whatever their config says; removed on stop
# when this node created them.
FIXED_RUN_DIRS = (
    Path("/run/containerd"),
    Path("/var/lib/cni"),
    Path("/var/log/containers"),
    Path("/run/runc"),
)
CGROUP_ROOT = Path("/sys/fs/cgroup")
_NODE_BINARIES = ("kubelet", "kube-proxy", "coredns", "local-path-provisioner", "kube-router")
_DEB_TOOLS = ("containerd", "ctr", "runc", "socat", "nsenter", "iptables", "ipset", "conntrack")


@dataclass(frozen=True)
class NodeBinaries:
    """The real node's executables (kubelet etc. from the Go build cache, the rest Debian's)."""

    paths: dict[str, Path]

    @classmethod
    def locate(cls) -> NodeBinaries:
        """Run `build-binaries.sh node` (a no-op when cached) and find every tool."""
        proc = subprocess.run(
            ["bash", str(E2E_DIR / "build-binaries.sh"), "node"],
            capture_output=True,
            text=True,
            check=False,
            timeout=3600,
        )
        if proc.returncode != 0:
            raise ControlPlaneError(
                "build-binaries.sh node", f"failed ({proc.returncode})", proc.stderr[-3000:]
            )
        dirs = [Path(line) for line in proc.stdout.splitlines() if line.strip()]
        found: dict[str, Path] = {}
        for name in _NODE_BINARIES:
            for d in dirs:
                if (d / name).is_file():
                    found[name] = d / name
                    break
            else:
                raise ControlPlaneError(name, f"binary not built (looked in {dirs})")
        for name in _DEB_TOOLS:
            where = shutil.which(name)
            if where is None:
                raise ControlPlaneError(
                    name, "not installed (scripts/bootstrap installs the Debian packages)"
                )
            found[name] = Path(where)
        pins = versions()
        for package, pin in (
            ("containerd", "CONTAINERD_DEBIAN_VERSION"),
            ("runc", "RUNC_DEBIAN_VERSION"),
            ("podman", "PODMAN_DEBIAN_VERSION"),
        ):
            installed = _run(
                package, ["dpkg-query", "-W", "-f=${Version}", package], check=False
            ).strip()
            if pin in pins and not installed.startswith(pins[pin]):
                raise ControlPlaneError(
                    package,
                    f"Debian package version {installed or 'none'} does not match "
                    f"{pin}={pins[pin]} in e2e/versions.env",
                )
        for plugin in ("bridge", "host-local", "portmap", "loopback"):
            if not (CNI_BIN_DIR / plugin).is_file():
                raise ControlPlaneError(
                    f"cni-{plugin}", f"missing in {CNI_BIN_DIR} (containernetworking-plugins)"
                )
        return cls(found)

    def __getitem__(self, name: str) -> Path:
        """The path of `name`."""
        return self.paths[name]


def _run(component: str, argv: Sequence[str], *, check: bool = True) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=300)
    if check and proc.returncode != 0:
        raise ControlPlaneError(
            component, f"`{' '.join(argv)}` failed ({proc.returncode})", proc.stderr[-2000:]
        )
    return proc.stdout


def _http_status(url: str, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except (OSError, http.client.HTTPException, ValueError):
        return None


_LIVE: weakref.WeakSet[RealNode] = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:
    for node in list(_LIVE):
        with contextlib.suppress(Exception):
            node.stop()


class RealNode:
    """One real node (kubelet + containerd + CNI + kube-proxy + CoreDNS + kube-router).

    Use after the ControlPlane has started; ``stop()`` before the plane stops (it deletes the
    node's pods through the API first).
    """

    def __init__(
        self,
        plane: ControlPlane,
        *,
        images: ImageSet | None = None,
        name: str = NODE_NAME,
        start_timeout: float = 120.0,
        keep_work_dir: bool = False,
    ) -> None:
        """Configure; `start()` builds what is missing and starts everything."""
        self.plane = plane
        self.name = name
        self.start_timeout = start_timeout
        self.keep_work_dir = keep_work_dir
        self._images = images
        self.tag = f"rop{os.getpid() % 100000}"
        self.netns = f"{self.tag}-node"
        self.netns_file = Path("/run/netns") / self.netns
        self.node_ip = NODE_IP
        """The node's InternalIP (its veth end); chosen by start() among free /30s."""
        self.host_ip = "10.250.0.1"
        self.work_dir = Path()
        self.timings: dict[str, float] = {}
        self._procs: dict[str, ManagedProcess] = {}
        self._created_dirs: list[Path] = []
        self._lock = threading.RLock()
        self._started = False
        self._netns_made = False
        self._bins: NodeBinaries | None = None

    # ---- public ------------------------------------------------------------------------

    @property
    def images(self) -> ImageSet:
        """The images loaded into the node's containerd (built on first access)."""
        if self._images is None:
            self._images = build_all()
        return self._images

    @property
    def containerd_socket(self) -> Path:
        """containerd's private socket."""
        return self.work_dir / "containerd.sock"

    def log_path(self, component: str) -> Path:
        """Where `component` logs."""
        return self.work_dir / f"{component}.log"

    def pids(self) -> dict[str, int]:
        """PIDs of the running components."""
        return {n: p.pid for n, p in self._procs.items() if p.pid is not None and p.alive()}

    def in_netns(self, *argv: str) -> list[str]:
        """`argv` run inside the node's network namespace (same mount namespace)."""
        return ["nsenter", f"--net={self.netns_file}", "--", *argv]

    def ctr(self, *args: str) -> str:
        """Run `ctr` against the node's containerd (namespace k8s.io)."""
        return _run(
            "ctr",
            [str(self._b["ctr"]), "--address", str(self.containerd_socket), "-n", "k8s.io", *args],
        )

    def start_probe_listener(self, port: int) -> None:
        """A TCP listener on PRIVATE_PROBE_IP:port inside the node namespace (egress tests).

        It answers every connection with one line and closes it; stopped with the node.
        """
        name = f"probe-listener-{port}"
        if name in self._procs and self._procs[name].alive():
            return
        proc = self._spawn(
            name,
            [
                str(self._b["socat"]),
                f"TCP-LISTEN:{port},bind={PRIVATE_PROBE_IP},fork,reuseaddr",
                "SYSTEM:echo probe",
            ],
        )

        def listening() -> bool:
            return bool(self._ns("ss", "-Hltn", f"sport = :{port}").strip())

        self._wait(proc.name, listening, timeout=10)

    def __enter__(self) -> RealNode:
        """Start on entering a `with` block."""
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        """Stop on leaving it."""
        self.stop()

    def start(self) -> None:
        """Start every component in order; on failure stop what started and raise."""
        with self._lock:
            if self._started:
                return
            t0 = time.monotonic()
            self._phase("locate-binaries", self._locate)
            self._phase("images", lambda: self.images)
            self.work_dir = Path(tempfile.mkdtemp(prefix="restate-op-node-"))
            self.work_dir.chmod(0o755)
            for d in FIXED_RUN_DIRS:
                if not d.exists():
                    self._created_dirs.append(d)
            _LIVE.add(self)
            self._started = True
            try:
                self._phase("netns", self._make_netns)
                self._phase("api-bridge", self._start_api_bridge)
                self._phase("containerd", self._start_containerd)
                self._phase("image-import", self._import_images)
                self._phase("cluster-objects", self._install_cluster_objects)
                self._phase("kubelet", self._start_kubelet)
                self._phase("kube-proxy", self._start_kube_proxy)
                self._phase("coredns", self._start_coredns)
                self._phase("kube-router", self._start_kube_router)
                self._phase("local-path-provisioner", self._start_local_path)
                self._phase("node-ready", self._wait_node_ready)
            except BaseException as err:
                self.keep_work_dir = True
                self.stop()
                if isinstance(err, ControlPlaneError):
                    err.add_note(f"real node work dir (logs): {self.work_dir}")
                raise
            self.timings["total"] = time.monotonic() - t0

    def stop(self) -> None:
        """Delete the node's pods, stop every process by PID, remove netns/mounts/cgroups."""
        with self._lock:
            if not self._started:
                return
            with contextlib.suppress(Exception):
                self._delete_node_pods()
            for name in ("local-path-provisioner", "kube-router", "coredns", "kube-proxy"):
                self._stop_proc(name)
            self._stop_proc("kubelet")
            with contextlib.suppress(Exception):
                self._kill_containers()
            self._stop_proc("containerd")
            self._kill_shims()
            for name in list(self._procs):
                self._stop_proc(name)
            self._unmount_all()
            if self._netns_made:
                _run("netns", ["ip", "netns", "del", self.netns], check=False)
                _run("netns", ["ip", "link", "del", f"{self.tag}h"], check=False)
                self._netns_made = False
            self._remove_cgroups()
            for d in self._created_dirs:
                shutil.rmtree(d, ignore_errors=True)
            self._created_dirs.clear()
            with contextlib.suppress(Exception):
                self._remove_cluster_objects()
            if not self.keep_work_dir:
                shutil.rmtree(self.work_dir, ignore_errors=True)
            self._started = False
            _LIVE.discard(self)

    # ---- internals ---------------------------------------------------------------------

    @property
    def _b(self) -> NodeBinaries:
        assert self._bins is not None
        return self._bins

    def _locate(self) -> None:
        self._bins = NodeBinaries.locate()

    def _phase(self, name: str, fn: Callable[[], object]) -> None:
        t = time.monotonic()
        try:
            fn()
        except ControlPlaneError:
            raise
        except Exception as err:
            proc = self._procs.get(name)
            raise ControlPlaneError(
                name, f"failed: {err}", proc.log_tail(30) if proc is not None else ""
            ) from err
        self.timings[name] = time.monotonic() - t

    def _spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        netns: bool = True,
        env: dict[str, str] | None = None,
    ) -> ManagedProcess:
        full = self.in_netns(*argv) if netns else list(argv)
        proc = ManagedProcess(name, full, self.log_path(name), env=env, cwd=self.work_dir)
        self._procs[name] = proc
        try:
            proc.start()
        except OSError as err:
            raise ControlPlaneError(name, f"could not be executed: {err}") from err
        return proc

    def _stop_proc(self, name: str) -> None:
        proc = self._procs.pop(name, None)
        if proc is not None:
            proc.stop(timeout=15.0)

    def _wait(self, name: str, probe: Callable[[], bool], timeout: float | None = None) -> None:
        proc = self._procs.get(name)
        limit = timeout or self.start_timeout
        deadline = time.monotonic() + limit
        while True:
            if proc is not None and (code := proc.exit_code()) is not None:
                raise ControlPlaneError(name, f"exited with code {code}", proc.log_tail())
            with contextlib.suppress(Exception):
                if probe():
                    return
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    name,
                    f"not ready after {limit:.0f}s",
                    proc.log_tail() if proc is not None else "",
                )
            time.sleep(0.2)

    def _ns(self, *argv: str) -> str:
        return _run("netns", self.in_netns(*argv))

    def _pick_subnet(self) -> None:
        """The first 10.250.X.0/30 no other interface of the root namespace uses."""
        used = _run("netns", ["ip", "-4", "-o", "addr", "show"])
        for x in range(256):
            if f" 10.250.{x}." not in used:
                self.host_ip, self.node_ip = f"10.250.{x}.1", f"10.250.{x}.2"
                return
        raise ControlPlaneError("netns", "no free 10.250.X.0/30 for the node's veth")

    def _make_netns(self) -> None:
        host, node = f"{self.tag}h", f"{self.tag}n"
        self._pick_subnet()
        _run("netns", ["ip", "netns", "del", self.netns], check=False)
        _run("netns", ["ip", "netns", "add", self.netns])
        self._netns_made = True
        _run("netns", ["ip", "link", "add", host, "type", "veth", "peer", "name", node])
        _run("netns", ["ip", "link", "set", node, "netns", self.netns])
        for dev in (host,):
            _run("netns", ["sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1"], check=False)
        _run("netns", ["ip", "addr", "add", f"{self.host_ip}/30", "dev", host])
        _run("netns", ["ip", "link", "set", host, "up"])
        for cmd in (
            ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
            ["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
            ["ip", "link", "set", "lo", "up"],
            ["ip", "addr", "add", f"{self.node_ip}/30", "dev", node],
            ["ip", "link", "set", node, "up"],
            ["ip", "addr", "add", f"{CLUSTER_DNS_IP}/32", "dev", "lo"],
            ["ip", "addr", "add", f"{PRIVATE_PROBE_IP}/32", "dev", "lo"],
            # No default route, no forwarding out: pods only reach node-local addresses.
            ["sysctl", "-qw", "net.ipv4.ip_forward=1"],
        ):
            self._ns(*cmd)
        routes = self._ns("ip", "route", "show", "default")
        if routes.strip():
            raise ControlPlaneError("netns", f"node namespace has a default route: {routes}")
        # Forwarding is on inside the namespace (Service DNAT to pods across the bridge), but
        # nothing is forwarded out of the veth: a pod's packet to the root namespace's end
        # would get replies routed out of the machine (the root has no route to pods).
        self._ns("iptables", "-w", "-I", "FORWARD", "1", "-o", node, "-j", "REJECT")
        self._ns("sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1")

    def _start_api_bridge(self) -> None:
        port = self.plane.ports.apiserver
        sock = self.work_dir / "api.sock"
        self._spawn(
            "api-bridge-root",
            [
                str(self._b["socat"]),
                f"UNIX-LISTEN:{sock},fork,mode=600",
                f"TCP:127.0.0.1:{port}",
            ],
            netns=False,
        )
        self._wait("api-bridge-root", sock.exists, timeout=10)
        proc = self._spawn(
            "api-bridge-node",
            [
                str(self._b["socat"]),
                f"TCP-LISTEN:{port},bind=0.0.0.0,fork,reuseaddr",
                f"UNIX-CONNECT:{sock}",
            ],
        )

        def listening() -> bool:
            out = self._ns("ss", "-Hltn", f"sport = :{port}")
            return bool(out.strip())

        self._wait(proc.name, listening, timeout=10)

    def _start_containerd(self) -> None:
        w = self.work_dir
        for d in ("containerd-root", "containerd-state", "cni-conf", "cni-ipam", "certs.d", "runc"):
            (w / d).mkdir()
        (w / "cni-conf" / "10-restate-op.conflist").write_text(
            json.dumps(
                {
                    "cniVersion": "0.4.0",
                    "name": "restate-op",
                    "plugins": [
                        {
                            "type": "bridge",
                            "bridge": f"{self.tag}br",
                            "isGateway": True,
                            "ipMasq": False,
                            "hairpinMode": True,
                            "ipam": {
                                "type": "host-local",
                                "ranges": [[{"subnet": POD_SUBNET}]],
                                "routes": [{"dst": "0.0.0.0/0"}],
                                "dataDir": str(w / "cni-ipam"),
                            },
                        },
                        {"type": "portmap", "capabilities": {"portMappings": True}},
                    ],
                },
                indent=2,
            )
        )
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        config = f"""version = 2
root = "{w / "containerd-root"}"
state = "{w / "containerd-state"}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{self.containerd_socket}"

[ttrpc]
  address = "{self.containerd_socket}.ttrpc"

[metrics]
  address = ""

[{cri}]
  sandbox_image = "{self.images.pause.ref}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  # Pod network namespaces under the state dir (not /run/netns), removed with it.
  netns_mounts_under_state_dir = true
  max_container_log_line_size = 16384

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = "{w / "runc"}"

[{cri}.cni]
  bin_dir = "{CNI_BIN_DIR}"
  conf_dir = "{w / "cni-conf"}"

[{cri}.registry]
  config_path = "{w / "certs.d"}"
"""
        (w / "containerd.toml").write_text(config)
        proc = self._spawn(
            "containerd", [str(self._b["containerd"]), "--config", str(w / "containerd.toml")]
        )

        def up() -> bool:
            if not self.containerd_socket.exists():
                return False
            self.ctr("version")
            return True

        self._wait(proc.name, up, timeout=30)

    def _import_images(self) -> None:
        for img in self.images.all():
            t = time.monotonic()
            self.ctr("images", "import", str(img.archive))
            names = self.ctr("images", "ls", "-q").split()
            if img.ref not in names:
                # An OCI archive may name the image by its tag annotation only.
                candidates = [n for n in names if n.endswith(":" + img.ref.rsplit(":", 1)[1])]
                if not candidates:
                    raise ControlPlaneError(
                        "image-import", f"{img.ref} not in containerd after import: {names}"
                    )
                self.ctr("images", "tag", "--force", candidates[0], img.ref)
            self.timings[f"import-{img.role}"] = time.monotonic() - t

    def _install_cluster_objects(self) -> None:
        client = self.plane.admin_client()
        try:
            # The `kubernetes` Service's endpoint: the API bridge on the node IP (the API
            # server itself runs with --endpoint-reconciler-type=none).
            path = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
            client.delete(f"{path}/kubernetes")
            client.create(
                path,
                {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "name": "kubernetes",
                        "namespace": "default",
                        "labels": {
                            "kubernetes.io/service-name": "kubernetes",
                            "endpointslice.kubernetes.io/managed-by": "realnode.e2e.restate.dev",
                        },
                    },
                    "addressType": "IPv4",
                    "endpoints": [{"addresses": [self.node_ip], "conditions": {"ready": True}}],
                    "ports": [
                        {"name": "https", "port": self.plane.ports.apiserver, "protocol": "TCP"}
                    ],
                },
            )
            sc_path = "/apis/storage.k8s.io/v1/storageclasses"
            client.create(
                sc_path,
                {
                    "apiVersion": "storage.k8s.io/v1",
                    "kind": "StorageClass",
                    "metadata": {"name": LOCAL_PATH_CLASS},
                    "provisioner": LOCAL_PATH_PROVISIONER,
                    "reclaimPolicy": "Delete",
                    "volumeBindingMode": "WaitForFirstConsumer",
                    # Growth is emulated by e2e/fake_storage.py (local-path has no resizer).
                    "allowVolumeExpansion": True,
                },
            )
            client.create(
                "/api/v1/namespaces",
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": LOCAL_PATH_NAMESPACE},
                },
            )
            client.create(
                f"/api/v1/namespaces/{LOCAL_PATH_NAMESPACE}/serviceaccounts",
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": "local-path-provisioner"},
                },
            )
        finally:
            client.close()

    def _start_kubelet(self) -> None:
        w = self.work_dir
        kubeconfig = self.plane.issue_kubeconfig(
            f"kubelet-{self.name}", f"system:node:{self.name}", ("system:nodes",)
        )
        (w / "resolv.conf").write_text(f"nameserver {CLUSTER_DNS_IP}\noptions ndots:5\n")
        for d in ("kubelet", "pod-logs", "kubelet-pki"):
            (w / d).mkdir()
        config: dict[str, Any] = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "address": self.node_ip,
            "port": 10250,
            "readOnlyPort": 0,
            "healthzBindAddress": self.node_ip,
            "healthzPort": 10248,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(self.plane.ca_cert)},
            },
            "authorization": {"mode": "Webhook"},
            "clusterDomain": "cluster.local",
            "clusterDNS": [CLUSTER_DNS_IP],
            "resolvConf": str(w / "resolv.conf"),
            "podLogsDir": str(w / "pod-logs"),
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "registerWithTaints": [REAL_NODE_TAINT],
            "evictionHard": {
                "memory.available": "1%",
                "nodefs.available": "1%",
                "nodefs.inodesFree": "1%",
                "imagefs.available": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": False,
            "failSwapOn": False,
            "rotateCertificates": False,
            "serverTLSBootstrap": False,
            "nodeStatusUpdateFrequency": "5s",
            "maxPods": 60,
            "staticPodPath": "",
        }
        (w / "kubelet.yaml").write_text(yaml.safe_dump(config))
        proc = self._spawn(
            "kubelet",
            [
                str(self._b["kubelet"]),
                f"--config={w / 'kubelet.yaml'}",
                f"--kubeconfig={kubeconfig}",
                f"--node-ip={self.node_ip}",
                f"--hostname-override={self.name}",
                f"--root-dir={w / 'kubelet'}",
                f"--cert-dir={w / 'kubelet-pki'}",
                f"--node-labels={REAL_NODE_LABEL}=true",
                "--v=1",
            ],
        )
        self._wait(proc.name, lambda: _http_status(f"http://{self.node_ip}:10248/healthz") == 200)

    def _start_kube_proxy(self) -> None:
        w = self.work_dir
        kubeconfig = self.plane.issue_kubeconfig("kube-proxy", "system:kube-proxy")
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(kubeconfig)},
            "mode": "iptables",
            "clusterCIDR": POD_SUBNET,
            "hostnameOverride": self.name,
            "bindAddress": self.node_ip,
            "healthzBindAddress": f"{self.node_ip}:10256",
            "metricsBindAddress": f"{self.node_ip}:10249",
            "nodePortAddresses": [f"{self.node_ip}/32"],
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
            },
            "iptables": {"syncPeriod": "10s", "minSyncPeriod": "500ms"},
        }
        (w / "kube-proxy.yaml").write_text(yaml.safe_dump(config))
        proc = self._spawn(
            "kube-proxy", [str(self._b["kube-proxy"]), f"--config={w / 'kube-proxy.yaml'}"]
        )
        self._wait(
            proc.name, lambda: _http_status(f"http://{self.node_ip}:10256/healthz") in (200, 503)
        )

    def _start_coredns(self) -> None:
        w = self.work_dir
        corefile = w / "Corefile"
        corefile.write_text(
            f""".:53 {{
    bind {CLUSTER_DNS_IP}
    errors
    ready {self.node_ip}:8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {self.plane.kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    cache 5
}}
"""
        )
        proc = self._spawn("coredns", [str(self._b["coredns"]), "-conf", str(corefile)])
        self._wait(proc.name, lambda: _http_status(f"http://{self.node_ip}:8181/ready") == 200)

    def _start_kube_router(self) -> None:
        proc = self._spawn(
            "kube-router",
            [
                str(self._b["kube-router"]),
                "--run-firewall=true",
                "--run-router=false",
                "--run-service-proxy=false",
                "--enable-cni=false",
                "--enable-ipv6=false",
                f"--kubeconfig={self.plane.kubeconfig}",
                f"--hostname-override={self.name}",
                "--metrics-port=0",
                "--health-port=20244",
                "--iptables-sync-period=10s",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
            ],
        )
        self._wait(proc.name, lambda: _http_status(f"http://{self.node_ip}:20244/healthz") == 200)

    def _start_local_path(self) -> None:
        w = self.work_dir
        (w / "local-path").mkdir()
        client = self.plane.admin_client()
        try:
            client.create(
                f"/api/v1/namespaces/{LOCAL_PATH_NAMESPACE}/configmaps",
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "local-path-config"},
                    "data": {
                        "config.json": json.dumps(
                            {
                                "nodePathMap": [
                                    {
                                        "node": "DEFAULT_PATH_FOR_NON_LISTED_NODES",
                                        "paths": [str(w / "local-path")],
                                    }
                                ]
                            }
                        ),
                        "setup": '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n',
                        "teardown": '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n',
                        "helperPod.yaml": yaml.safe_dump(
                            {
                                "apiVersion": "v1",
                                "kind": "Pod",
                                "metadata": {"name": "helper-pod"},
                                "spec": {
                                    "containers": [
                                        {
                                            "name": "helper-pod",
                                            "image": self.images.busybox.ref,
                                            "imagePullPolicy": "Never",
                                        }
                                    ]
                                },
                            }
                        ),
                    },
                },
                exist_ok=False,
            )
        finally:
            client.close()
        (w / "local-path-config.json").write_text(
            json.dumps(
                {
                    "nodePathMap": [
                        {
                            "node": "DEFAULT_PATH_FOR_NON_LISTED_NODES",
                            "paths": [str(w / "local-path")],
                        }
                    ]
                }
            )
        )
        proc = self._spawn(
            "local-path-provisioner",
            [
                str(self._b["local-path-provisioner"]),
                "--debug",
                "start",
                f"--kubeconfig={self.plane.kubeconfig}",
                f"--namespace={LOCAL_PATH_NAMESPACE}",
                f"--config={w / 'local-path-config.json'}",
                f"--provisioner-name={LOCAL_PATH_PROVISIONER}",
                "--configmap-name=local-path-config",
                "--service-account-name=local-path-provisioner",
                f"--helper-image={self.images.busybox.ref}",
            ],
            netns=False,
        )
        started = time.monotonic()
        self._wait(proc.name, lambda: time.monotonic() - started > 1.0, timeout=30)

    def _wait_node_ready(self) -> None:
        client = self.plane.admin_client()

        def ready() -> bool:
            try:
                node = client.get(f"/api/v1/nodes/{self.name}")
            except (OSError, KubeHTTPError, http.client.HTTPException):
                return False
            conditions = node.get("status", {}).get("conditions", [])
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

        try:
            self._wait("kubelet", ready)
        finally:
            client.close()

    # ---- teardown ----------------------------------------------------------------------

    def _delete_node_pods(self, wait: float = 20.0) -> None:
        """Delete the node's pods and give the kubelet time to tear their sandboxes down."""
        client = self.plane.admin_client(timeout=5.0)
        selector = {"fieldSelector": f"spec.nodeName={self.name}"}
        try:
            pods = client.get("/api/v1/pods", selector)
            for pod in pods.get("items", []):
                meta = pod["metadata"]
                with contextlib.suppress(Exception):
                    client.request(
                        "DELETE",
                        f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                        {"gracePeriodSeconds": 0},
                    )
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                with contextlib.suppress(Exception):
                    if not client.get("/api/v1/pods", selector).get("items"):
                        break
                time.sleep(0.5)
            # The kubelet stops the sandboxes (CNI DEL) just after the pods are gone.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.containerd_socket.exists():
                with contextlib.suppress(Exception):
                    if not self.ctr("tasks", "ls", "-q").split():
                        break
                time.sleep(0.5)
        finally:
            client.close()

    def _remove_cluster_objects(self) -> None:
        """The Node and what _install_cluster_objects made, so later tests see a plain plane."""
        client = self.plane.admin_client(timeout=5.0)
        try:
            for path in (
                f"/api/v1/nodes/{self.name}",
                "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes",
                f"/apis/storage.k8s.io/v1/storageclasses/{LOCAL_PATH_CLASS}",
                f"/api/v1/namespaces/{LOCAL_PATH_NAMESPACE}",
            ):
                with contextlib.suppress(Exception):
                    client.delete(path)
        finally:
            client.close()

    def _kill_containers(self) -> None:
        if not self.containerd_socket.exists():
            return
        for cid in self.ctr("tasks", "ls", "-q").split():
            with contextlib.suppress(ControlPlaneError):
                self.ctr("tasks", "kill", "-s", "SIGKILL", cid)
        time.sleep(0.5)
        for cid in self.ctr("tasks", "ls", "-q").split():
            with contextlib.suppress(ControlPlaneError):
                self.ctr("tasks", "rm", "-f", cid)
        for cid in self.ctr("containers", "ls", "-q").split():
            with contextlib.suppress(ControlPlaneError):
                self.ctr("containers", "rm", cid)

    def _kill_shims(self) -> None:
        """containerd-shim processes outlive containerd; kill ours (found by our socket)."""
        marker = str(self.containerd_socket)
        for proc_dir in Path("/proc").iterdir():
            if not proc_dir.name.isdigit():
                continue
            try:
                cmdline = (proc_dir / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if (
                cmdline
                and b"containerd-shim" in cmdline[0]
                and marker.encode() in b" ".join(cmdline)
            ):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(proc_dir.name), signal.SIGKILL)

    def _unmount_all(self) -> None:
        if not str(self.work_dir) or self.work_dir == Path():
            return
        prefix = str(self.work_dir) + "/"
        for _ in range(5):
            mounts = [
                line.split()[4]
                for line in Path("/proc/self/mountinfo").read_text().splitlines()
                if line.split()[4].startswith(prefix) or line.split()[4] == str(self.work_dir)
            ]
            if not mounts:
                return
            for mnt in sorted(set(mounts), key=len, reverse=True):
                subprocess.run(["umount", "-l", mnt], capture_output=True, check=False)

    def _remove_cgroups(self) -> None:
        """Remove the kubelet's `kubepods` trees (deepest first) in every hierarchy."""
        if not CGROUP_ROOT.is_dir():
            return
        for hierarchy in CGROUP_ROOT.iterdir():
            tree = hierarchy / "kubepods"
            if not tree.is_dir():
                continue
            dirs = sorted(
                (p for p in tree.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
            )
            for d in [*dirs, tree]:
                with contextlib.suppress(OSError):
                    d.rmdir()


def main() -> int:
    """`python -m e2e.realnode`: a control plane with one real node, until Ctrl-C."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with ControlPlane(keep_work_dir=True) as cp:
        node = RealNode(cp, keep_work_dir=True)
        try:
            node.start()
            print(f"kubeconfig: {cp.kubeconfig}", flush=True)
            print(f"node logs:  {node.work_dir}", flush=True)
            print(", ".join(f"{k}={v:.1f}s" for k, v in node.timings.items()), flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
        finally:
            node.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
