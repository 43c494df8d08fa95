"""`engage dev`: the whole embedded stack in the foreground, everything real, on loopback.

Parts start in parallel where they can, each is waited for until it answers, one line per part is printed,
and on Ctrl-C or SIGTERM every child is stopped in order (worker first, Postgres last).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from devstack.mailsink import MailSink
from devstack.postgres import EmbeddedPostgres
from devstack.process import PortInUse, port_is_free, spawn, stop, wait_for_port
from devstack.radicale import RadicaleServer
from devstack.temporal import TemporalDevServer
from schemas.settings import DEV_PORTS


@dataclass
class Ports:
    temporal: int = DEV_PORTS["temporal"]
    ui: int = DEV_PORTS["ui"]
    postgres: int = DEV_PORTS["postgres"]
    smtp: int = DEV_PORTS["smtp"]
    caldav: int = DEV_PORTS["caldav"]
    inbound: int = DEV_PORTS["inbound"]
    web: int = DEV_PORTS["web"]

    def check_free(self, skip: set[str]) -> None:
        for part, port, option in (
            ("Temporal", self.temporal, "--temporal-port"),
            ("Temporal UI", self.ui, "--ui-port"),
            ("Postgres", self.postgres, "--postgres-port"),
            ("SMTP sink", self.smtp, "--smtp-port"),
            ("CalDAV", self.caldav, "--caldav-port"),
            ("Inbound mail", self.inbound, "--inbound-port"),
            ("Check-in page", self.web, "--web-port"),
        ):
            if part not in skip and not port_is_free(port):
                raise PortInUse(port, part, option)


Echo = Callable[[str, str], None]


@dataclass
class DevStack:
    data_dir: Path
    ports: Ports = field(default_factory=Ports)
    echo: Echo = lambda part, address: print(f"{part:<12} {address}", flush=True)  # noqa: E731
    # Set in the environment, these point at real external services and the embedded part is not started.
    external_database: str | None = field(default_factory=lambda: os.environ.get("ENGAGE_DATABASE_URL"))
    external_smtp: str | None = field(default_factory=lambda: os.environ.get("ENGAGE_SMTP_URL"))
    external_caldav: str | None = field(default_factory=lambda: os.environ.get("ENGAGE_CALDAV_URL"))

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.temporal = TemporalDevServer(self.data_dir, self.ports.temporal, self.ports.ui)
        self.postgres = None if self.external_database else EmbeddedPostgres(self.data_dir, self.ports.postgres)
        self.mail = None if self.external_smtp else MailSink(self.data_dir / "mail", self.ports.smtp)
        self.radicale = None if self.external_caldav else RadicaleServer(self.data_dir, self.ports.caldav)
        self.worker: subprocess.Popen | None = None
        self.inbound: subprocess.Popen | None = None
        self.web: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        """The settings every process of this stack (worker, CLI) needs to find its parts."""
        return {
            "ENGAGE_TEMPORAL_ADDRESS": self.temporal.address,
            "ENGAGE_DATABASE_URL": self.external_database or (self.postgres.url if self.postgres else ""),
            "ENGAGE_SMTP_URL": self.external_smtp or (self.mail.url if self.mail else ""),
            "ENGAGE_CALDAV_URL": self.external_caldav or (self.radicale.url if self.radicale else ""),
            # The links in check-in mails lead to this stack's check-in page, unless a proxy is in front of it.
            "ENGAGE_PUBLIC_URL": os.environ.get("ENGAGE_PUBLIC_URL") or self.web_url,
            # Lets the worker, `engage inbox` and `engage web` run with the development reply secret.
            "ENGAGE_DEV_STACK": "1",
        }

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.web}"

    def start(self) -> None:
        skip = {"Postgres"} if self.postgres is None else set()
        skip |= {"SMTP sink"} if self.mail is None else set()
        skip |= {"CalDAV"} if self.radicale is None else set()
        self.ports.check_free(skip)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Launched from this thread (a child dies with the thread that started it), then waited for together.
        parts = [p for p in (self.temporal, self.postgres, self.radicale) if p is not None]
        for part in parts:
            part.launch()
        if self.mail:
            self.mail.start()
        with ThreadPoolExecutor(max_workers=len(parts)) as pool:
            futures: list[Future[object]] = [pool.submit(part.wait_ready) for part in parts]
            for future in futures:
                future.result()
        self.echo("Temporal", f"{self.temporal.address} (namespace default)")
        self.echo("Temporal UI", self.temporal.ui_url)
        self.echo("Postgres", self.env["ENGAGE_DATABASE_URL"] if self.postgres else "external (ENGAGE_DATABASE_URL)")
        self.echo("SMTP sink", f"{self.mail.url} -> {self.mail.folder}" if self.mail else "external (ENGAGE_SMTP_URL)")
        self.echo("CalDAV", self.radicale.url if self.radicale else "external (ENGAGE_CALDAV_URL)")
        # `engage inbox` and `engage web` in processes of their own, so a slow reply or page never holds up the
        # worker, and the other way round; owners open the links of check-in mails on the page.
        self.inbound = self._spawn_engage("inbox", "inbound", ENGAGE_INBOUND_HOST="127.0.0.1",
                                          ENGAGE_INBOUND_PORT=str(self.ports.inbound))
        self.web = self._spawn_engage("web", "web", ENGAGE_WEB_HOST="127.0.0.1", ENGAGE_WEB_PORT=str(self.ports.web))
        self._start_worker()
        self.echo("Worker", f"task queue {os.environ.get('ENGAGE_TASK_QUEUE', 'engage')}")
        self._wait_listening(self.inbound, self.ports.inbound, "the inbound mail server", "inbound")
        domain = os.environ.get("ENGAGE_INBOUND_DOMAIN", "engage.localhost")
        self.echo("Inbound mail", f"smtp://127.0.0.1:{self.ports.inbound} (checkin+TOKEN@{domain})")
        self._wait_listening(self.web, self.ports.web, "the check-in page", "web")
        self.echo("Check-in page", f"{self.web_url} (links: {self.env['ENGAGE_PUBLIC_URL']}/a/TOKEN)")

    def _spawn_engage(self, command: str, log: str, **env: str) -> subprocess.Popen:
        """`engage <command>` in its own process, its JSON log lines in logs/<log>.log."""
        return spawn([sys.executable, "-m", "cli.main", command], log_path=self.data_dir / "logs" / f"{log}.log",
                     env={**self.env, "ENGAGE_LOG_FORMAT": "json", **env})

    def _wait_listening(self, proc: subprocess.Popen | None, port: int, what: str, log: str,
                        timeout: float = 60.0) -> None:
        assert proc is not None
        try:
            wait_for_port(port, timeout, proc=proc, what=what)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; see {self.data_dir / 'logs' / f'{log}.log'}") from exc

    def _start_worker(self, timeout: float = 60.0) -> None:
        ready = self.data_dir / "worker.ready"
        ready.unlink(missing_ok=True)
        self.worker = spawn(
            [sys.executable, "-m", "worker", "--ready-file", str(ready)],
            log_path=self.data_dir / "logs" / "worker.log",
            env={**self.env, "ENGAGE_LOG_FORMAT": "json"},
        )
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if self.worker.poll() is not None:
                raise RuntimeError(
                    f"the worker exited with code {self.worker.returncode}; see {self.data_dir / 'logs/worker.log'}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError("the worker did not become ready")
            time.sleep(0.05)

    def stop(self) -> None:
        # Inbound mail, the check-in page and the worker first (they finish what they started), then the services
        # they used.
        if self.inbound is not None:
            stop(self.inbound, signal.SIGTERM, timeout=10)
            self.inbound = None
        if self.web is not None:
            stop(self.web, signal.SIGTERM, timeout=10)
            self.web = None
        if self.worker is not None:
            stop(self.worker, signal.SIGTERM, timeout=20)
            self.worker = None
        if self.radicale:
            self.radicale.stop()
        if self.mail:
            try:
                self.mail.stop()
            except (AssertionError, RuntimeError):
                pass  # never started
        self.temporal.stop()
        if self.postgres:
            self.postgres.stop()


def run_foreground(stack: DevStack) -> None:
    """Start the stack, then block until Ctrl-C or SIGTERM, then stop everything."""
    stopping = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stopping.set()

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        stack.start()
        print("ready: Ctrl-C stops every part", flush=True)
        while not stopping.is_set():
            if stack.worker is not None and stack.worker.poll() is not None:
                print(f"the worker exited with code {stack.worker.returncode}; stopping", file=sys.stderr)
                break
            if stack.web is not None and stack.web.poll() is not None:
                print(f"the check-in page exited with code {stack.web.returncode}; stopping", file=sys.stderr)
                break
            if stack.inbound is not None and stack.inbound.poll() is not None:
                print(f"the inbound mail server exited with code {stack.inbound.returncode}; stopping",
                      file=sys.stderr)
                break
            stopping.wait(0.5)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        stack.stop()
