"""Run restate-server and restatectl only inside a loopback-only network namespace.

restate-server contacts a public host at every start-up and nothing turns that off, and the
machines that run these tests may send traffic to loopback only. So every Restate process is
started with `ip netns exec <ns>` in a namespace whose only interface is `lo`, and Python
code talks to it from a dedicated thread that has joined the same namespace with setns(2)
(network namespaces are per thread), so not even a test's HTTP probe can leave loopback.

Pod DNS names are mapped to 127.0.0.x through /etc/netns/<ns>/hosts, which `ip netns exec`
bind-mounts over /etc/hosts for the processes it starts; the Python side resolves names with
the same mapping and never asks DNS.

    with LoopbackNetns() as ns:
        ns.set_hosts({"restate-0.restate-cluster.ns.svc.cluster.local": "127.0.0.2"})
        nodes = start_cluster(ns, RestateBinaries.locate(), tmp_path, size=3)
        ns.run([str(bins.ctl), "-s", nodes[0].node_url, "provision", "--yes"])
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import http.client
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from e2e.polling import TimedOut, poll
from e2e.procs import ManagedProcess

E2E_DIR = Path(__file__).resolve().parent
IP = shutil.which("ip") or "/usr/sbin/ip"
RESTATE_BIN_DIR_ENV = "RESTATE_OP_RESTATE_BIN_DIR"
"""Directory holding restate-server and restatectl; when set, install-restate.sh is skipped."""

_CLONE_NEWNET = 0x40000000
NODE_PORT = 5122
ADMIN_PORT = 9070
INGRESS_PORT = 8080

SMALL_MEMORY_ENV: Mapping[str, str] = {"RESTATE_ROCKSDB_TOTAL_MEMORY_SIZE": "256MiB"}
"""Optional extra env that keeps a test node's memory small (the default is 2 GiB of RocksDB)."""

QUIET_LOG_ENV: Mapping[str, str] = {"RESTATE_LOG_DISABLE_ANSI_CODES": "true"}
"""Optional extra env that keeps log files free of terminal colour codes."""


class NetnsError(RuntimeError):
    """Creating, using or verifying the loopback-only namespace failed."""


def loopback_address(index: int) -> str:
    """The index-th loopback address: 1 -> 127.0.0.1, 2 -> 127.0.0.2, ... (up to 254)."""
    if not 1 <= index <= 254:
        raise ValueError(f"loopback index out of range: {index}")
    return f"127.0.0.{index}"


def _require_loopback(ip: str) -> None:
    if not ipaddress.ip_address(ip).is_loopback:
        raise NetnsError(f"{ip} is not a loopback address; only loopback may be used here")


# --------------------------------------------------------------------------------------------
# setns(2) for one thread


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _enter_netns(path: str) -> None:
    """Move the calling thread (only) into the network namespace at `path`, then verify it."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc().setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetnsError(f"setns({path}) failed: {os.strerror(err)}")
    finally:
        os.close(fd)
    names = sorted(name for _idx, name in socket.if_nameindex())
    if names != ["lo"]:
        raise NetnsError(f"namespace {path} has interfaces {names}, expected only lo")


@dataclass(frozen=True)
class HttpResponse:
    """What came back from an HTTP request made inside the namespace."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.body.decode(errors="replace")


# --------------------------------------------------------------------------------------------
# The namespace


class LoopbackNetns:
    """A named network namespace (`restate-<random>`) with `lo` up and nothing else.

    Use as a context manager, or call `create()` and `close()`. `close()` stops every
    process started through it, kills any other process still inside it (by PID), deletes
    the namespace and its /etc/netns/<name> directory.
    """

    def __init__(self, name: str | None = None, *, http_threads: int = 4) -> None:
        """Choose the name; nothing is created until `create()` / `with`."""
        self.name = name or f"restate-{secrets.token_hex(4)}"
        self._http_threads = http_threads
        self._created = False
        self._procs: list[ManagedProcess] = []
        self._hosts: dict[str, tuple[str, ...]] = {}
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        """The namespace's bind-mount path, as used by setns(2)."""
        return Path("/run/netns") / self.name

    @property
    def etc_dir(self) -> Path:
        """/etc/netns/<name>: files here replace /etc/<file> for processes started inside."""
        return Path("/etc/netns") / self.name

    # ---- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> LoopbackNetns:
        """Create on entering a `with` block."""
        self.create()
        return self

    def __exit__(self, *_exc: object) -> None:
        """Tear down on leaving the `with` block."""
        self.close()

    def create(self) -> None:
        """`ip netns add`, bring `lo` up, write hosts/resolv.conf, verify only `lo` exists."""
        if self._created:
            return
        _ip("netns", "add", self.name)
        self._created = True
        try:
            _ip("-n", self.name, "link", "set", "lo", "up")
            self.etc_dir.mkdir(parents=True, exist_ok=True)
            # Resolver pointed at loopback where nothing listens: lookups fail fast, locally.
            (self.etc_dir / "resolv.conf").write_text(
                "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
            )
            self._write_hosts()
            self.verify_loopback_only()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop everything inside and delete the namespace. Idempotent."""
        with self._lock:
            for proc in reversed(self._procs):
                proc.stop(timeout=15.0)
            self._procs.clear()
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = None
        if self._created:
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(TimedOut):
                poll(lambda: not self.pids(), within=10, what="no process left", interval=0.1)
            subprocess.run([IP, "netns", "del", self.name], check=False, capture_output=True)
            self._created = False
        shutil.rmtree(self.etc_dir, ignore_errors=True)

    def pids(self) -> list[int]:
        """PIDs of all processes currently in the namespace (`ip netns pids`)."""
        if not self._created:
            return []
        out = subprocess.run(
            [IP, "netns", "pids", self.name], capture_output=True, text=True, check=False
        ).stdout
        return [int(p) for p in out.split()]

    def verify_loopback_only(self) -> None:
        """Raise NetnsError unless `lo` is the one and only link in the namespace."""
        out = _ip("-n", self.name, "-o", "link", "show")
        links = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line]
        if links != ["lo"]:
            raise NetnsError(f"namespace {self.name} has links {links}, expected only lo")

    # ---- addresses and names ---------------------------------------------------------------

    def add_address(self, ip: str) -> None:
        """Add an explicit loopback address to `lo` (127/8 is already routed locally).

        Only needed when something must *see* the address on an interface; binding to any
        127.x address works without it.
        """
        _require_loopback(ip)
        if ip == "127.0.0.1":
            return
        result = subprocess.run(
            [IP, "-n", self.name, "addr", "add", f"{ip}/32", "dev", "lo"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 and "File exists" not in result.stderr:
            raise NetnsError(f"adding {ip} to lo failed: {result.stderr.strip()}")

    @property
    def hosts(self) -> Mapping[str, str]:
        """The current name -> loopback IP mapping (besides localhost); the first IP of each."""
        return {host: ips[0] for host, ips in self._hosts.items()}

    @property
    def host_addresses(self) -> Mapping[str, tuple[str, ...]]:
        """Every IP of every name, in the order the hosts file lists them."""
        return dict(self._hosts)

    def set_hosts(self, mapping: Mapping[str, str | Sequence[str]]) -> None:
        """Map host names (e.g. pod DNS names) to loopback IPs inside the namespace.

        Written in place into /etc/netns/<name>/hosts, which is the same inode that
        `ip netns exec` bind-mounts over /etc/hosts, so already running processes see
        changes too. Also used by this object's own HTTP helpers. Replaces the mapping.
        A name with several IPs (like a headless Service) gets one hosts line per IP;
        resolvers return them all, and this object's helpers use the first.
        """
        hosts = {
            host: (ips,) if isinstance(ips, str) else tuple(ips) for host, ips in mapping.items()
        }
        for host, ips in hosts.items():
            if not ips:
                raise NetnsError(f"{host!r} maps to no address")
            for ip in ips:
                _require_loopback(ip)
        self._hosts = hosts
        if self._created:
            self._write_hosts()

    def add_hosts(self, mapping: Mapping[str, str | Sequence[str]]) -> None:
        """Add to (or override part of) the name mapping."""
        self.set_hosts({**self._hosts, **mapping})

    def _write_hosts(self) -> None:
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        by_ip: dict[str, list[str]] = {}
        for host, ips in self._hosts.items():
            for ip in ips:
                by_ip.setdefault(ip, []).append(host)
        ordered = sorted(by_ip.items(), key=lambda item: ipaddress.ip_address(item[0]))
        lines += [f"{ip}\t{' '.join(names)}" for ip, names in ordered]
        path = self.etc_dir / "hosts"
        # Open without truncating-by-replace: keep the inode that bind mounts refer to.
        with path.open("a+") as f:
            f.seek(0)
            f.truncate()
            f.write("\n".join(lines) + "\n")

    def resolve(self, host: str) -> str:
        """Resolve `host` the way processes inside would, without ever asking DNS."""
        if host in ("localhost", "localhost.localdomain"):
            return "127.0.0.1"
        if host in self._hosts:
            return self._hosts[host][0]
        try:
            ip = str(ipaddress.ip_address(host.strip("[]")))
        except ValueError:
            raise NetnsError(f"{host!r} is not in this namespace's hosts mapping") from None
        _require_loopback(ip)
        return ip

    # ---- processes ---------------------------------------------------------------------------

    def command(self, argv: Sequence[str]) -> list[str]:
        """The argv that runs `argv` inside the namespace (`ip netns exec` execs, same PID)."""
        return [IP, "netns", "exec", self.name, *argv]

    def popen(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> ManagedProcess:
        """Start a long-running process inside; it is stopped by `close()` at the latest."""
        if not self._created:
            raise NetnsError("create() the namespace first")
        self.verify_loopback_only()
        proc = ManagedProcess(name, self.command(argv), log_path, env=env, cwd=cwd)
        proc.start()
        with self._lock:
            self._procs.append(proc)
        return proc

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        check: bool = False,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a short command inside and capture its output (text)."""
        if not self._created:
            raise NetnsError("create() the namespace first")
        self.verify_loopback_only()
        return subprocess.run(
            self.command(argv),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    async def arun(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        command_timeout: float = 60.0,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """`run()` without blocking the event loop (killed after `command_timeout`)."""
        return await asyncio.to_thread(
            self.run, argv, env=env, timeout=command_timeout, check=check
        )

    # ---- HTTP from Python ------------------------------------------------------------------

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if not self._created:
                raise NetnsError("create() the namespace first")
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self._http_threads,
                    thread_name_prefix=f"netns-{self.name}",
                    initializer=_enter_netns,
                    initargs=(str(self.path),),
                )
            return self._executor

    def call(self, fn: Callable[[], object]) -> object:
        """Run `fn` on a thread that lives inside the namespace (sockets it opens are there)."""
        return self._pool().submit(fn).result()

    def http(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
    ) -> HttpResponse:
        """Make one plain-HTTP request from inside the namespace; raises OSError if refused."""
        future = self._pool().submit(self._http, method, url, body, headers, timeout)
        return future.result()

    async def ahttp(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        request_timeout: float = 5.0,
    ) -> HttpResponse:
        """`http()` for async code: runs on the namespace's threads, awaits the result."""
        future = self._pool().submit(self._http, method, url, body, headers, request_timeout)
        return await asyncio.wrap_future(future)

    def _http(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: Mapping[str, str] | None,
        timeout: float,
    ) -> HttpResponse:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"only http://host:port/... URLs are supported: {url}")
        ip = self.resolve(parts.hostname)
        port = parts.port or 80
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        conn = http.client.HTTPConnection(ip, port, timeout=timeout)
        try:
            all_headers = {"Host": parts.netloc, **(headers or {})}
            conn.request(method, path, body=body, headers=all_headers)
            response = conn.getresponse()
            return HttpResponse(response.status, dict(response.getheaders()), response.read())
        finally:
            conn.close()

    def wait_http(
        self,
        url: str,
        *,
        status: int = 200,
        timeout: float = 60.0,
        alive: Callable[[], bool] | None = None,
    ) -> HttpResponse:
        """Poll `url` until it answers `status`; fail early when `alive()` turns false."""
        last = "no answer"

        def answer() -> HttpResponse | None:
            nonlocal last
            try:
                response = self.http("GET", url, timeout=2.0)
                if response.status == status:
                    return response
                last = f"HTTP {response.status}: {response.text()[:200]}"
            except (OSError, http.client.HTTPException) as err:
                last = repr(err)
            if alive is not None and not alive():
                raise NetnsError(f"{url}: process exited while waiting ({last})")
            return None

        def timed_out(_: str) -> TimeoutError:
            return TimeoutError(f"{url} did not answer {status} within {timeout:.0f}s: {last}")

        response = poll(answer, within=timeout, what=url, interval=0.1, fail=timed_out)
        assert response is not None
        return response


def _ip(*args: str) -> str:
    result = subprocess.run([IP, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


# --------------------------------------------------------------------------------------------
# Restate


@dataclass(frozen=True)
class RestateBinaries:
    """Paths of restate-server and restatectl."""

    server: Path
    ctl: Path

    @classmethod
    def locate(cls) -> RestateBinaries:
        """$RESTATE_OP_RESTATE_BIN_DIR, else install-restate.sh (a no-op once cached)."""
        directory = os.environ.get(RESTATE_BIN_DIR_ENV)
        if not directory:
            result = subprocess.run(
                ["bash", str(E2E_DIR / "install-restate.sh")],
                capture_output=True,
                text=True,
                check=False,
                timeout=1800,
            )
            if result.returncode != 0:
                raise RuntimeError(
                    f"install-restate.sh failed ({result.returncode}):\n{result.stderr[-3000:]}"
                )
            directory = result.stdout.strip().splitlines()[-1]
        server, ctl = Path(directory) / "restate-server", Path(directory) / "restatectl"
        for path in (server, ctl):
            if not os.access(path, os.X_OK):
                raise RuntimeError(f"{path} is missing or not executable")
        return cls(server=server, ctl=ctl)


def node_env(
    *,
    node_name: str,
    address: str,
    base_dir: Path,
    cluster_name: str = "e2e",
    metadata_addresses: Iterable[str] = (),
    auto_provision: bool = True,
    default_replication: int | None = None,
    node_port: int = NODE_PORT,
    admin_port: int = ADMIN_PORT,
    ingress_port: int = INGRESS_PORT,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The RESTATE_* environment for one node bound to `address` (a loopback IP).

    Only addressing, identity and provisioning are set; `extra` (e.g. SMALL_MEMORY_ENV) is
    opt-in, so an operator-generated environment can be used instead, unchanged.
    """
    _require_loopback(address)
    env = {
        "RESTATE_NODE_NAME": node_name,
        "RESTATE_CLUSTER_NAME": cluster_name,
        "RESTATE_BASE_DIR": str(base_dir),
        "RESTATE_AUTO_PROVISION": "true" if auto_provision else "false",
        "RESTATE_BIND_ADDRESS": f"{address}:{node_port}",
        "RESTATE_ADVERTISED_ADDRESS": f"http://{address}:{node_port}/",
        "RESTATE_ADMIN__BIND_ADDRESS": f"{address}:{admin_port}",
        "RESTATE_INGRESS__BIND_ADDRESS": f"{address}:{ingress_port}",
    }
    addresses = list(metadata_addresses)
    if addresses:
        env["RESTATE_METADATA_CLIENT__ADDRESSES"] = (
            "[" + ",".join(f'"{a}"' for a in addresses) + "]"
        )
    if default_replication is not None:
        env["RESTATE_DEFAULT_REPLICATION"] = str(default_replication)
    env.update(extra or {})
    return env


@dataclass
class RestateNode:
    """One restate-server process inside a LoopbackNetns.

    `env` is the complete RESTATE_* environment (see `node_env`); `host` is what URLs use
    (an IP, or a name mapped with `LoopbackNetns.set_hosts`).
    """

    netns: LoopbackNetns
    binaries: RestateBinaries
    name: str
    host: str
    base_dir: Path
    env: Mapping[str, str]
    config_file: Path | None = None
    node_port: int = NODE_PORT
    admin_port: int = ADMIN_PORT
    ingress_port: int = INGRESS_PORT
    base_env: Mapping[str, str] = field(
        default_factory=lambda: {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    )
    process: ManagedProcess | None = None

    @property
    def node_url(self) -> str:
        """The node-to-node (fabric) address, as restatectl wants it."""
        return f"http://{self.host}:{self.node_port}"

    @property
    def admin_url(self) -> str:
        """Base URL of the admin API."""
        return f"http://{self.host}:{self.admin_port}"

    @property
    def ingress_url(self) -> str:
        """Base URL of the HTTP ingress."""
        return f"http://{self.host}:{self.ingress_port}"

    @property
    def log_path(self) -> Path:
        """Where this node's stdout/stderr go."""
        return self.base_dir.parent / f"{self.name}.log"

    def start(self) -> None:
        """Start restate-server inside the namespace (returns at once; see wait_*)."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        argv = [str(self.binaries.server), "--no-logo"]
        if self.config_file is not None:
            argv += ["--config-file", str(self.config_file)]
        self.process = self.netns.popen(
            self.name,
            argv,
            self.log_path,
            env={**self.base_env, **self.env},
            cwd=self.base_dir,
        )

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`."""
        if self.process is not None:
            self.process.stop(timeout=timeout)

    def alive(self) -> bool:
        """Whether the process is running."""
        return self.process is not None and self.process.alive()

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of the node's log."""
        return self.process.log_tail(lines) if self.process else "(not started)"

    def wait_node_port(self, timeout: float = 60.0) -> None:
        """Wait until the fabric port serves /metrics (true before the cluster is provisioned)."""
        self._wait(f"{self.node_url}/metrics", timeout)

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Wait for admin /health and ingress /restate/health (needs a provisioned cluster)."""
        self._wait(f"{self.admin_url}/health", timeout)
        self._wait(f"{self.ingress_url}/restate/health", timeout)

    def _wait(self, url: str, timeout: float) -> None:
        try:
            self.netns.wait_http(url, timeout=timeout, alive=self.alive)
        except (NetnsError, TimeoutError) as err:
            raise NetnsError(
                f"restate node {self.name}: {err}\n--- last lines of {self.log_path} ---\n"
                + self.log_tail()
            ) from err


def start_cluster(
    netns: LoopbackNetns,
    binaries: RestateBinaries,
    work_dir: Path,
    *,
    size: int = 3,
    cluster_name: str = "e2e",
    first_address: int = 2,
    auto_provision: bool = False,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> list[RestateNode]:
    """Start `size` nodes on 127.0.0.<first_address>... with the standard ports.

    Each node gets its own base dir under `work_dir` and the metadata-client addresses of
    all nodes. Returns once every node's fabric port answers; with auto_provision false the
    cluster still has to be provisioned (restatectl provision) before admin/ingress serve.
    """
    addresses = [loopback_address(first_address + i) for i in range(size)]
    metadata = [f"http://{a}:{NODE_PORT}" for a in addresses]
    nodes = []
    for i, address in enumerate(addresses):
        name = f"node-{i + 1}"
        base = work_dir / name
        nodes.append(
            RestateNode(
                netns=netns,
                binaries=binaries,
                name=name,
                host=address,
                base_dir=base,
                env=node_env(
                    node_name=name,
                    address=address,
                    base_dir=base,
                    cluster_name=cluster_name,
                    metadata_addresses=metadata,
                    auto_provision=auto_provision,
                    extra=extra_env,
                ),
            )
        )
    for node in nodes:
        node.start()
    for node in nodes:
        node.wait_node_port(timeout)
    return nodes


def restatectl(
    netns: LoopbackNetns,
    binaries: RestateBinaries,
    address: str,
    *args: str,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Run `restatectl -s <address> <args>` inside the namespace with a minimal env."""
    return netns.run(
        [str(binaries.ctl), "-s", address, *args],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NO_COLOR": "1"},
        timeout=timeout,
    )
