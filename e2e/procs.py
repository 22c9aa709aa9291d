"""Child processes that are started, logged and stopped by PID, never by name.

Shared by the control plane and the Restate network-namespace helpers: every component's
output goes to its own log file (appended across restarts) so that a failure can show the
tail of exactly that log.
"""

from __future__ import annotations

import contextlib
import random
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

_RANDOM = random.SystemRandom()


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on `host` right now, below the ephemeral range.

    Components bind their ports a few seconds after we pick them. Ports from the kernel's
    ephemeral range (32768+) could meanwhile be taken by some outgoing connection, so pick
    at random from 20000-32767 first and fall back to a kernel-chosen port.
    """
    for _ in range(50):
        port = _RANDOM.randrange(20000, 32768)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        chosen: int = s.getsockname()[1]
        return chosen


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct free ports (see `free_port`)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port(host)
        if port not in ports:
            ports.append(port)
    return ports


def tail(text: str, lines: int = 40) -> str:
    """The last `lines` lines of `text`."""
    return "\n".join(text.splitlines()[-lines:])


class ManagedProcess:
    """One child process with its output appended to a log file; stopped by PID only."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        """Remember how to start the process; `start()` actually spawns it."""
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """PID of the running process, or None before start / after stop."""
        return self.popen.pid if self.popen is not None else None

    def start(self) -> None:
        """Spawn the process; output goes to the log file (appended, so restarts keep history)."""
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} starting: {self.argv}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
            )

    def exit_code(self) -> int | None:
        """The exit code if the process has ended, else None (also None if never started)."""
        return self.popen.poll() if self.popen is not None else None

    def alive(self) -> bool:
        """Whether the process was started and is still running."""
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
        """Send `sig` (SIGTERM by default), wait up to `timeout`, then SIGKILL. Idempotent."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.popen.kill()
                self.popen.wait(10)
        self.popen = None

    def log_tail(self, lines: int = 40) -> str:
        """Last `lines` lines of the log, for error messages."""
        try:
            return tail(self.log_path.read_text(errors="replace"), lines)
        except FileNotFoundError:
            return "(no log written)"
