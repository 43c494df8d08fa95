"""Radicale, a real CalDAV server, with its collections in the data directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from devstack.process import spawn, stop, wait_for_port


class RadicaleServer:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 20.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        storage = self.data_dir / "caldav"
        storage.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable, "-m", "radicale",
            "--server-hosts", f"127.0.0.1:{self.port}",
            "--storage-filesystem-folder", str(storage),
            # Loopback only, single user: any name and password is accepted, each user owns its calendars.
            "--auth-type", "none",
            "--rights-type", "owner_only",
            "--logging-level", "warning",
        ]
        self.proc = spawn(args, log_path=self.data_dir / "logs" / "radicale.log")

    def wait_ready(self, timeout: float = 20.0) -> None:
        wait_for_port(self.port, timeout, proc=self.proc, what="Radicale")

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None
