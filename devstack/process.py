"""Child processes of the dev stack: started in their own session, stopped in order, never left behind."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


class PortInUse(RuntimeError):
    def __init__(self, port: int, part: str, option: str) -> None:
        super().__init__(f"port {port} ({part}) is already in use on 127.0.0.1; choose another with {option}")
        self.port = port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# Ports this process has handed out. The kernel may offer a port again as soon as its probe socket closes, so
# two parts of one stack could be given the same one: a CI run's Radicale lost its port to the Temporal UI
# and the benchmark waited on a CalDAV server that had never started.
_ISSUED: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` now, and never one this process has handed out before."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in _ISSUED:
            _ISSUED.add(port)
            return port


def wait_for_port(port: int, timeout: float, host: str = "127.0.0.1", proc: subprocess.Popen | None = None,
                  what: str = "service") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before it was ready")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on {host}:{port} within {timeout:.0f} s")


def _die_with_parent() -> None:
    # If the supervisor is killed outright, the kernel sends SIGTERM to this child: nothing is left behind.
    # The "parent" is the thread that spawned the child, so spawn only from a thread that lives as long.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def spawn(args: Sequence[str], *, log_path: Path, env: dict[str, str] | None = None, user: str | None = None,
          cwd: Path | None = None) -> subprocess.Popen:
    """Start a child in its own session (Ctrl-C in the terminal reaches only the supervisor, which then
    stops the children in order), with its output in a log file."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - owned by the child for its whole life
    try:
        return subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
            user=user,
            preexec_fn=_die_with_parent,
        )
    finally:
        log.close()


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
    """Ask a child to stop, wait, and kill it if it does not."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        proc.send_signal(sig)
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)
