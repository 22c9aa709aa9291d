"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok (fake nodes and pods) and a fake storage provisioner/resizer.

There is no Docker here, so kind cannot run; envtest-style planes (etcd + apiserver only) do
not garbage-collect, finish namespace deletion, create ServiceAccounts or schedule pods. This
module starts the real binaries (built from the Go module proxy by `build-binaries.sh`) as
plain processes on free loopback ports, so tests see genuine admission, validation, CEL,
garbage collection and scheduling. It is usable outside pytest (`python -m e2e.controlplane`,
or the operator's `dev` command):

    with ControlPlane() as cp:
        print(cp.kubeconfig)

All methods are synchronous and may block for seconds; from async code call them through
`asyncio.to_thread`.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import http.client
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from e2e.fake_storage import PROVISIONER
from e2e.kubehttp import JSON, Credentials, KubeHTTP, KubeHTTPError
from e2e.pki import CertificateAuthority, CertPair, service_account_keypair
from e2e.procs import ManagedProcess, free_ports, tail

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parent
KWOK_STAGES = E2E_DIR / "kwok-stages.yaml"
BIN_DIRS_ENV = "RESTATE_OP_BIN_DIRS"
"""Colon-separated directories holding prebuilt binaries; when set, build-binaries.sh is skipped."""

ZONES = ("zone-a", "zone-b", "zone-c")
NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
NODE_ALLOCATABLE = {"cpu": "1000", "memory": "4Ti", "pods": "10000", "ephemeral-storage": "1Ti"}
STANDARD_CLASS = "standard"
FIXED_CLASS = "fixed"


class ControlPlaneError(RuntimeError):
    """A component failed to start or to become healthy; names it and shows its log tail."""

    def __init__(self, component: str, problem: str, log_tail: str = "") -> None:
        """Build a message that can be read in a CI log without opening any file."""
        message = f"control plane component {component!r} {problem}"
        if log_tail:
            message += f"\n--- last lines of the {component} log ---\n{log_tail}"
        super().__init__(message)
        self.component = component
        self.problem = problem
        self.log_tail = log_tail


# --------------------------------------------------------------------------------------------
# Binaries


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of the control-plane executables."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    kwok: Path
    helm: Path | None = None

    _NAMES = (
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubectl",
        "kwok",
        "helm",
    )

    @classmethod
    def locate(cls, dirs: Sequence[Path] | None = None) -> Binaries:
        """Find the binaries in `dirs`, else in $RESTATE_OP_BIN_DIRS, else build them.

        Building means running e2e/build-binaries.sh, which is a quick no-op when the pinned
        versions are already cached (the first build takes many minutes on two cores).
        """
        if dirs is None:
            env = os.environ.get(BIN_DIRS_ENV)
            dirs = [Path(p) for p in env.split(os.pathsep) if p] if env else _run_build_script()
        found: dict[str, Path] = {}
        for name in cls._NAMES:
            for d in dirs:
                candidate = Path(d) / name
                if candidate.is_file() and os.access(candidate, os.X_OK):
                    found[name] = candidate.resolve()
                    break
        missing = [n for n in cls._NAMES if n not in found and n != "helm"]
        if missing:
            raise ControlPlaneError(
                missing[0],
                f"binary not found in {[str(d) for d in dirs]} (missing: {', '.join(missing)})",
            )
        return cls(
            etcd=found["etcd"],
            kube_apiserver=found["kube-apiserver"],
            kube_controller_manager=found["kube-controller-manager"],
            kube_scheduler=found["kube-scheduler"],
            kubectl=found["kubectl"],
            kwok=found["kwok"],
            helm=found.get("helm"),
        )


def _run_build_script() -> list[Path]:
    script = E2E_DIR / "build-binaries.sh"
    proc = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, check=False, timeout=3600
    )
    if proc.returncode != 0:
        raise ControlPlaneError(
            "build-binaries.sh", f"failed with exit code {proc.returncode}", tail(proc.stderr)
        )
    return [Path(line) for line in proc.stdout.splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------
# Health probes


def _http_ok(url: str, context: ssl.SSLContext | None = None, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return bool(response.status == 200)
    except (OSError, http.client.HTTPException, ValueError):
        return False


def _insecure_context() -> ssl.SSLContext:
    # kube-controller-manager and kube-scheduler serve /healthz with self-signed certificates.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def kubeconfig_dict(
    server: str, ca: CertPair, client: CertPair, user: str, cluster: str = "restate-op-e2e"
) -> dict[str, Any]:
    """A kubeconfig with everything embedded, so the file can be copied anywhere."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {"server": server, "certificate-authority-data": b64(ca.cert_pem())},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(client.cert_pem()),
                    "client-key-data": b64(client.key_pem()),
                },
            }
        ],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
        "preferences": {},
    }


# --------------------------------------------------------------------------------------------
# The control plane

_LIVE: weakref.WeakSet[ControlPlane] = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:
    # Last line of defence: an interpreter that exits without calling stop() must not leave
    # etcd or an API server behind.
    for cp in list(_LIVE):
        with contextlib.suppress(Exception):
            cp.stop()


@dataclass(frozen=True)
class Ports:
    """The loopback ports of one control plane (all distinct, chosen at construction)."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int

    @classmethod
    def pick(cls) -> Ports:
        """Choose six distinct free ports."""
        return cls(*free_ports(6))


class ControlPlane:
    """etcd -> kube-apiserver -> kube-controller-manager -> kube-scheduler -> kwok -> storage.

    Everything lives in `work_dir` (a fresh temporary directory unless given): PKI, etcd
    data, kubeconfigs and one `<component>.log` per process. After `start()` the cluster has
    three Ready fake nodes (one per zone `zone-a/b/c`), StorageClasses `standard` (default,
    expandable) and `fixed` (not expandable), and the `default` ServiceAccount exists.
    """

    def __init__(
        self,
        work_dir: Path | None = None,
        *,
        binaries: Binaries | None = None,
        zones: Sequence[str] = ZONES,
        start_timeout: float = 120.0,
        keep_work_dir: bool = False,
        etcd_quota_bytes: int = 2 * 1024**3,
    ) -> None:
        """Configure; nothing is started or built until `start()`.

        keep_work_dir: keep a temporary work dir (logs) after stop(), for post-mortems.
        """
        self._given_work_dir = work_dir
        self.work_dir: Path = work_dir if work_dir is not None else Path()
        self._binaries = binaries
        self.zones = tuple(zones)
        self.start_timeout = start_timeout
        self.keep_work_dir = keep_work_dir or work_dir is not None
        self.etcd_quota_bytes = etcd_quota_bytes
        self.ports = Ports.pick()
        """Loopback ports; picked again by start(), then fixed (the API server keeps its port)."""
        self.timings: dict[str, float] = {}
        """Seconds each start-up phase took (component name -> seconds; 'total' for all)."""
        self._procs: dict[str, ManagedProcess] = {}
        self._starters: dict[str, Callable[[], None]] = {}
        self._lock = threading.RLock()
        self._started = False
        self._ca: CertificateAuthority | None = None
        self._admin: CertPair | None = None

    # ---- public properties -------------------------------------------------------------

    @property
    def server(self) -> str:
        """The API server URL (https on 127.0.0.1)."""
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def kubeconfig(self) -> Path:
        """Path of the admin (system:masters) kubeconfig; valid after start()."""
        return self.work_dir / "admin.kubeconfig"

    @property
    def binaries(self) -> Binaries:
        """The executables in use (located, or built, on first access)."""
        if self._binaries is None:
            self._binaries = Binaries.locate()
        return self._binaries

    @property
    def node_names(self) -> list[str]:
        """Names of the fake nodes, one per zone."""
        return [f"kwok-{zone}" for zone in self.zones]

    def log_path(self, component: str) -> Path:
        """Where `component` (e.g. 'kube-apiserver') logs."""
        return self.work_dir / f"{component}.log"

    def pids(self) -> dict[str, int]:
        """PIDs of the running components, by name."""
        return {n: p.pid for n, p in self._procs.items() if p.pid is not None and p.alive()}

    @property
    def ca_cert(self) -> Path:
        """The cluster CA certificate (signs every server and client certificate)."""
        return self._ca_pair.cert

    def issue_kubeconfig(
        self, name: str, common_name: str, organizations: Sequence[str] = ()
    ) -> Path:
        """Issue a client certificate and write `<work_dir>/<name>.kubeconfig` for it.

        For components started next to the plane (the real node's kubelet as
        `system:node:<node>` in `system:nodes`, kube-proxy as `system:kube-proxy`, ...).
        """
        assert self._ca is not None, "start() first"
        pair = self._ca.issue(
            name, common_name=common_name, organizations=tuple(organizations), client=True
        )
        return self._write_kubeconfig(self.work_dir / f"{name}.kubeconfig", pair, common_name)

    def admin_client(self, timeout: float = 10.0) -> KubeHTTP:
        """A fresh stdlib client with admin credentials (for bootstrap and probes)."""
        return KubeHTTP(self._admin_credentials(), timeout=timeout)

    # ---- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        """Start on entering a `with` block."""
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        """Stop on leaving the `with` block, whatever happened inside it."""
        self.stop()

    def start(self) -> None:
        """Start every component in order and install the fixtures; raise ControlPlaneError.

        On failure everything already started is stopped again before the error propagates.
        """
        with self._lock:
            if self._started:
                return
            t0 = time.monotonic()
            binaries = self.binaries  # may build; not counted in the control-plane start time
            self.timings["locate-binaries"] = time.monotonic() - t0
            self.ports = Ports.pick()  # fresh: ports picked long ago may have been taken
            if self._given_work_dir is None:
                self.work_dir = Path(tempfile.mkdtemp(prefix="restate-op-cp-"))
            self.work_dir.mkdir(parents=True, exist_ok=True)
            _LIVE.add(self)
            self._started = True
            start = time.monotonic()
            try:
                self._phase("pki", self._write_pki)
                self._phase("etcd", lambda: self._start_etcd(binaries))
                self._phase("kube-apiserver", self.start_apiserver)
                self._phase("bootstrap", self._bootstrap)
                self._starters = {
                    "kube-controller-manager": lambda: self._start_kcm(binaries),
                    "kube-scheduler": lambda: self._start_scheduler(binaries),
                    "kwok": lambda: self._start_kwok(binaries),
                    "fake-storage": self._start_fake_storage,
                }
                for name, starter in self._starters.items():
                    self._phase(name, starter)
                self._phase("nodes-ready", self._wait_nodes_ready)
                self._phase("default-serviceaccount", self._wait_default_serviceaccount)
            except BaseException as err:
                # Keep the logs for a post-mortem and say where they are.
                self.keep_work_dir = True
                self.stop()
                if isinstance(err, ControlPlaneError):
                    err.add_note(f"control plane work dir (logs): {self.work_dir}")
                raise
            self.timings["total"] = time.monotonic() - start

    def stop(self) -> None:
        """Stop every process this object started, newest first, by PID. Idempotent."""
        with self._lock:
            for name in reversed(list(self._procs)):
                self._procs[name].stop(timeout=15.0)
            self._procs.clear()
            if self._started and not self.keep_work_dir:
                shutil.rmtree(self.work_dir, ignore_errors=True)
            self._started = False
            _LIVE.discard(self)

    # ---- fault injection -------------------------------------------------------------------

    def stop_apiserver(self, *, graceful: bool = True) -> None:
        """Stop kube-apiserver only (SIGTERM, or SIGKILL when not graceful); etcd keeps data."""
        with self._lock:
            proc = self._procs.get("kube-apiserver")
            if proc is not None:
                proc.stop(timeout=20.0, sig=signal.SIGTERM if graceful else signal.SIGKILL)

    def start_apiserver(self, *, restart_controllers: bool = True) -> None:
        """(Re)start kube-apiserver on the same port against the same etcd; wait for /readyz.

        A restarted API server serves requests a moment before its RBAC caches are synced,
        so kube-controller-manager and kube-scheduler (authorised by RBAC, unlike the
        system:masters clients) get 403s and their informers back off for up to 30 s, which
        would stall namespace set-up, garbage collection and scheduling in later tests. With
        `restart_controllers` (the default) both are restarted once the server is ready;
        they are stateless, so this only costs a second. Pass False to watch them recover on
        their own.
        """
        with self._lock:
            assert self._ca is not None, "start() first"
            proc = self._procs.get("kube-apiserver")
            if proc is not None and proc.alive():
                return
            proc = self._spawn("kube-apiserver", self._apiserver_argv())
            ctx = ssl.create_default_context(cafile=str(self._ca.pair.cert))
            ctx.load_cert_chain(str(self._admin_pair.cert), str(self._admin_pair.key))
            self._wait_healthy(proc, lambda: _http_ok(f"{self.server}/readyz", ctx))
            if restart_controllers:
                for name in ("kube-controller-manager", "kube-scheduler"):
                    if name in self._procs:
                        self.restart_component(name)

    def restart_apiserver(
        self, down_seconds: float = 0.0, *, graceful: bool = True, restart_controllers: bool = True
    ) -> None:
        """Stop kube-apiserver, keep it down for `down_seconds`, start it and wait for /readyz.

        See `start_apiserver` for `restart_controllers`.
        """
        self.stop_apiserver(graceful=graceful)
        time.sleep(down_seconds)
        self.start_apiserver(restart_controllers=restart_controllers)

    def restart_component(self, name: str) -> None:
        """Stop one component (e.g. 'kwok', 'kube-scheduler') and start it again, healthy.

        Same ports, same files; for fault tests and for recovering after API restarts.
        """
        with self._lock:
            if name == "kube-apiserver":
                self.restart_apiserver()
                return
            starter = self._starters.get(name)
            if starter is None:
                raise ValueError(f"unknown or not started component {name!r}")
            self._procs[name].stop(timeout=15.0)
            starter()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the API server answers /readyz (e.g. after a restart by someone else)."""
        ctx = ssl.create_default_context(cafile=str(self._ca_pair.cert))
        ctx.load_cert_chain(str(self._admin_pair.cert), str(self._admin_pair.key))
        deadline = time.monotonic() + timeout
        while not _http_ok(f"{self.server}/readyz", ctx):
            if time.monotonic() > deadline:
                raise ControlPlaneError("kube-apiserver", f"not ready after {timeout:.0f}s")
            time.sleep(0.2)

    # ---- internals -----------------------------------------------------------------------

    @property
    def _ca_pair(self) -> CertPair:
        assert self._ca is not None, "start() first"
        return self._ca.pair

    @property
    def _admin_pair(self) -> CertPair:
        assert self._admin is not None, "start() first"
        return self._admin

    def _admin_credentials(self) -> Credentials:
        return Credentials(
            self.server, self._ca_pair.cert, self._admin_pair.cert, self._admin_pair.key
        )

    def _phase(self, name: str, fn: Callable[[], None]) -> None:
        t = time.monotonic()
        try:
            fn()
        except ControlPlaneError:
            raise
        except Exception as err:
            # E.g. the API server refusing a bootstrap object: name the phase, show the server.
            api = self._procs.get("kube-apiserver")
            raise ControlPlaneError(
                name, f"failed: {err}", api.log_tail(20) if api is not None else ""
            ) from err
        self.timings[name] = time.monotonic() - t

    def _wait_healthy(
        self, proc: ManagedProcess, probe: Callable[[], bool], timeout: float | None = None
    ) -> None:
        deadline = time.monotonic() + (timeout or self.start_timeout)
        while True:
            code = proc.exit_code()
            if code is not None:
                raise ControlPlaneError(proc.name, f"exited with code {code}", proc.log_tail())
            if probe():
                return
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    proc.name,
                    f"not healthy after {timeout or self.start_timeout:.0f}s",
                    proc.log_tail(),
                )
            time.sleep(0.1)

    def _spawn(
        self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None
    ) -> ManagedProcess:
        proc = ManagedProcess(name, argv, self.log_path(name), env=env, cwd=self.work_dir)
        self._procs[name] = proc
        try:
            proc.start()
        except OSError as err:
            raise ControlPlaneError(name, f"could not be executed: {err}") from err
        return proc

    def _write_kubeconfig(self, path: Path, client: CertPair, user: str) -> Path:
        path.write_text(yaml.safe_dump(kubeconfig_dict(self.server, self._ca_pair, client, user)))
        path.chmod(0o600)
        return path

    def _write_pki(self) -> None:
        pki = self.work_dir / "pki"
        ca = CertificateAuthority(pki)
        self._ca = ca
        ca.issue(
            "apiserver",
            common_name="kube-apiserver",
            dns_names=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            ip_addresses=("127.0.0.1", "10.96.0.1"),
            server=True,
        )
        self._admin = ca.issue(
            "admin", common_name="kubernetes-admin", organizations=("system:masters",), client=True
        )
        kcm = ca.issue(
            "kube-controller-manager", common_name="system:kube-controller-manager", client=True
        )
        sched = ca.issue("kube-scheduler", common_name="system:kube-scheduler", client=True)
        # kwok and the fake storage controller act for many nodes/volumes: admin-equivalent.
        kwok = ca.issue(
            "kwok", common_name="kwok-controller", organizations=("system:masters",), client=True
        )
        ca.issue(
            "fake-storage",
            common_name="fake-storage",
            organizations=("system:masters",),
            client=True,
        )
        # The API server's client certificate towards kubelets (logs, exec, port-forward on
        # the real node, e2e/realnode.py).
        ca.issue(
            "apiserver-kubelet-client",
            common_name="kube-apiserver-kubelet-client",
            organizations=("system:masters",),
            client=True,
        )
        service_account_keypair(pki)
        self._write_kubeconfig(self.kubeconfig, self._admin, "admin")
        self._write_kubeconfig(
            self.work_dir / "kube-controller-manager.kubeconfig",
            kcm,
            "system:kube-controller-manager",
        )
        self._write_kubeconfig(
            self.work_dir / "kube-scheduler.kubeconfig", sched, "system:kube-scheduler"
        )
        self._write_kubeconfig(self.work_dir / "kwok.kubeconfig", kwok, "kwok-controller")

    def _start_etcd(self, binaries: Binaries) -> None:
        p = self.ports
        proc = self._spawn(
            "etcd",
            [
                str(binaries.etcd),
                "--name=e2e",
                f"--data-dir={self.work_dir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{p.etcd_client}",
                f"--advertise-client-urls=http://127.0.0.1:{p.etcd_client}",
                f"--listen-peer-urls=http://127.0.0.1:{p.etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{p.etcd_peer}",
                f"--initial-cluster=e2e=http://127.0.0.1:{p.etcd_peer}",
                "--unsafe-no-fsync=true",
                f"--quota-backend-bytes={self.etcd_quota_bytes}",
                "--auto-compaction-mode=periodic",
                "--auto-compaction-retention=5m",
                "--log-level=warn",
            ],
        )
        self._wait_healthy(proc, lambda: _http_ok(f"http://127.0.0.1:{p.etcd_client}/health"))

    def _apiserver_argv(self) -> list[str]:
        pki = self.work_dir / "pki"
        return [
            str(self.binaries.kube_apiserver),
            f"--etcd-servers=http://127.0.0.1:{self.ports.etcd_client}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.ports.apiserver}",
            f"--cert-dir={self.work_dir / 'apiserver-certs'}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            # Never the Hostname address: it would be looked up in the machine's resolver.
            "--kubelet-preferred-address-types=InternalIP",
            "--allow-privileged=true",
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            "--shutdown-watch-termination-grace-period=2s",
            # Admission plugins stay at their defaults (PodSecurity, ServiceAccount,
            # PersistentVolumeClaimResize, DefaultStorageClass, ... are all on by default).
            # OwnerReferencesPermissionEnforcement stays off: its RESTMapper learns a new CRD
            # only after ~30 s, which would stall every test that installs one; test_helm
            # emulates it with a ValidatingAdmissionPolicy instead.
        ]

    def _bootstrap(self) -> None:
        client = self.admin_client()
        try:
            self._install_storage(client)
            self._install_nodes(client)
        finally:
            client.close()

    def _install_storage(self, client: KubeHTTP) -> None:
        classes: list[JSON] = [
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {
                    "name": STANDARD_CLASS,
                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                },
                "provisioner": PROVISIONER,
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "Immediate",
                "allowVolumeExpansion": True,
            },
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": FIXED_CLASS},
                "provisioner": PROVISIONER,
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "Immediate",
            },
        ]
        for sc in classes:
            client.create("/apis/storage.k8s.io/v1/storageclasses", sc)
        # No attach step: otherwise the attach/detach machinery waits for VolumeAttachments.
        client.create(
            "/apis/storage.k8s.io/v1/csidrivers",
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "CSIDriver",
                "metadata": {"name": PROVISIONER},
                "spec": {"attachRequired": False, "podInfoOnMount": False},
            },
        )

    def _install_nodes(self, client: KubeHTTP) -> None:
        for i, (zone, name) in enumerate(zip(self.zones, self.node_names, strict=True)):
            pod_cidr = f"10.244.{i * 16}.0/20"
            node: JSON = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {
                        NODE_ANNOTATION[0]: NODE_ANNOTATION[1],
                        "node.alpha.kubernetes.io/ttl": "0",
                    },
                    "labels": {
                        "kubernetes.io/arch": "amd64",
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/role": "agent",
                        "node-role.kubernetes.io/agent": "",
                        "type": "kwok",
                        "topology.kubernetes.io/region": "local",
                        "topology.kubernetes.io/zone": zone,
                    },
                },
                "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]},
                "status": {
                    "allocatable": dict(NODE_ALLOCATABLE),
                    "capacity": dict(NODE_ALLOCATABLE),
                    # Loopback: whatever the API server ever dials for a node stays local.
                    "addresses": [
                        {"type": "InternalIP", "address": "127.0.0.1"},
                        {"type": "Hostname", "address": name},
                    ],
                },
            }
            client.create("/api/v1/nodes", node)

    def _start_kcm(self, binaries: Binaries) -> None:
        pki = self.work_dir / "pki"
        kubeconfig = self.work_dir / "kube-controller-manager.kubeconfig"
        proc = self._spawn(
            "kube-controller-manager",
            [
                str(binaries.kube_controller_manager),
                f"--kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports.controller_manager}",
                f"--cert-dir={self.work_dir / 'kcm-certs'}",
                "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}",
                f"--cluster-signing-key-file={pki / 'ca.key'}",
                "--use-service-account-credentials=true",
                "--controllers=*",
                # One instance only; without leader election an API-server outage longer than
                # the renew deadline cannot make it exit.
                "--leader-elect=false",
                "--kube-api-qps=100",
                "--kube-api-burst=200",
                "--node-monitor-period=5s",
                "--profiling=false",
            ],
        )
        self._wait_healthy(
            proc,
            lambda: _http_ok(
                f"https://127.0.0.1:{self.ports.controller_manager}/healthz", _insecure_context()
            ),
        )

    def _start_scheduler(self, binaries: Binaries) -> None:
        config = self.work_dir / "kube-scheduler.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kubescheduler.config.k8s.io/v1",
                    "kind": "KubeSchedulerConfiguration",
                    "clientConnection": {
                        "kubeconfig": str(self.work_dir / "kube-scheduler.kubeconfig"),
                        "qps": 100,
                        "burst": 200,
                    },
                    "leaderElection": {"leaderElect": False},
                }
            )
        )
        proc = self._spawn(
            "kube-scheduler",
            [
                str(binaries.kube_scheduler),
                f"--config={config}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports.scheduler}",
                f"--cert-dir={self.work_dir / 'scheduler-certs'}",
                "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
            ],
        )
        self._wait_healthy(
            proc,
            lambda: _http_ok(
                f"https://127.0.0.1:{self.ports.scheduler}/readyz", _insecure_context()
            ),
        )

    def _start_kwok(self, binaries: Binaries) -> None:
        proc = self._spawn(
            "kwok",
            [
                str(binaries.kwok),
                f"--kubeconfig={self.work_dir / 'kwok.kubeconfig'}",
                f"--config={KWOK_STAGES}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={'='.join(NODE_ANNOTATION)}",
                "--node-ip=127.0.0.1",
                f"--cidr={POD_CIDR}",
                f"--server-address=127.0.0.1:{self.ports.kwok}",
                "--node-lease-duration-seconds=40",
            ],
            # kwok reads ~/.kwok/kwok.yaml when it exists; point HOME away from the user's.
            env={**os.environ, "HOME": str(self.work_dir)},
        )
        self._wait_healthy(proc, lambda: _http_ok(f"http://127.0.0.1:{self.ports.kwok}/healthz"))

    def _start_fake_storage(self) -> None:
        pki = self.work_dir / "pki"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO_ROOT), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
        )
        proc = self._spawn(
            "fake-storage",
            [
                sys.executable,
                "-m",
                "e2e.fake_storage",
                f"--server={self.server}",
                f"--ca={pki / 'ca.crt'}",
                f"--cert={pki / 'fake-storage.crt'}",
                f"--key={pki / 'fake-storage.key'}",
                f"--provisioner={PROVISIONER}",
                # The real node's local-path volumes (e2e/realnode.py) grow by emulation too.
                "--resize-provisioner=rancher.io/local-path",
            ],
            env=env,
        )
        # It has no endpoint; being alive after a reconcile's worth of time is the signal.
        started = time.monotonic()
        self._wait_healthy(proc, lambda: time.monotonic() - started > 0.5)

    def _wait_nodes_ready(self) -> None:
        client = self.admin_client()
        proc = self._procs["kwok"]

        def ready() -> bool:
            try:
                nodes = client.get("/api/v1/nodes")["items"]
            except (OSError, KubeHTTPError, http.client.HTTPException):
                return False
            ours = {n["metadata"]["name"]: n for n in nodes}
            for name in self.node_names:
                node = ours.get(name)
                if node is None:
                    return False
                conditions = node.get("status", {}).get("conditions", [])
                if not any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                    return False
                # kube-controller-manager lifts the not-ready taint once it sees Ready.
                if node.get("spec", {}).get("taints"):
                    return False
            return True

        try:
            self._wait_healthy(proc, ready)
        finally:
            client.close()

    def _wait_default_serviceaccount(self) -> None:
        client = self.admin_client()
        proc = self._procs["kube-controller-manager"]

        def exists() -> bool:
            try:
                client.get("/api/v1/namespaces/default/serviceaccounts/default")
            except (OSError, KubeHTTPError, http.client.HTTPException):
                return False
            return True

        try:
            self._wait_healthy(proc, exists)
        finally:
            client.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m e2e.controlplane [--work-dir DIR]`: run a local cluster until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Run the local e2e control plane until Ctrl-C.")
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    cp = ControlPlane(work_dir=args.work_dir, keep_work_dir=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        cp.start()
        print(f"kubeconfig: {cp.kubeconfig}", flush=True)
        print(f"logs:       {cp.work_dir}", flush=True)
        print(
            "start-up:   " + ", ".join(f"{k}={v:.2f}s" for k, v in cp.timings.items()), flush=True
        )
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    except ControlPlaneError as err:
        print(err, file=sys.stderr)
        return 1
    finally:
        cp.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
