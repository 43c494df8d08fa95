"""`engage dev` through the real command: ready fast, every part answers, Ctrl-C leaves nothing behind,
a second start finds the first one's data, a taken port is a clear error."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import asyncpg
import psutil
import pytest

from devstack.process import free_port, port_is_free
from devstack.temporal import TemporalDevServer

ENGAGE = str(Path(sys.executable).parent / "engage")
EXAMPLES = Path(__file__).parent.parent / "examples"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    env.update(extra)
    return env


class Dev:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.ports = {name: free_port()
                      for name in ("temporal", "ui", "postgres", "smtp", "caldav", "inbound", "web")}
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    @property
    def cli_env(self) -> dict[str, str]:
        return clean_env(
            ENGAGE_TEMPORAL_ADDRESS=f"127.0.0.1:{self.ports['temporal']}",
            ENGAGE_DATABASE_URL=f"postgresql://engage@127.0.0.1:{self.ports['postgres']}/engage",
        )

    def args(self) -> list[str]:
        args = [ENGAGE, "dev", "--data-dir", str(self.data_dir)]
        for name, port in self.ports.items():
            args += [f"--{name}-port", str(port)]
        return args

    def start(self, timeout: float = 90) -> float:
        began = time.monotonic()
        self.proc = subprocess.Popen(self.args(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=clean_env(), start_new_session=True)
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"engage dev exited early:\n{''.join(self.output)}")
            self.output.append(line)
            if line.startswith("ready"):
                return time.monotonic() - began
            if time.monotonic() - began > timeout:
                raise AssertionError(f"engage dev not ready after {timeout} s:\n{''.join(self.output)}")

    def children(self) -> list[psutil.Process]:
        assert self.proc is not None
        return psutil.Process(self.proc.pid).children(recursive=True)

    def interrupt(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(60)


def cli(dev: Dev, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ENGAGE, *args], capture_output=True, text=True, env=dev.cli_env, timeout=60)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dev") / "var"


def test_dev_stack_runs_stops_cleanly_and_keeps_its_data(data_dir: Path) -> None:
    dev = Dev(data_dir)
    first = dev.start()
    try:
        out = "".join(dev.output)
        for part in ("Temporal", "Temporal UI", "Postgres", "SMTP sink", "CalDAV", "Worker"):
            assert part in out, out
        with urllib.request.urlopen(f"http://127.0.0.1:{dev.ports['ui']}/", timeout=5) as response:
            assert response.status == 200

        async def postgres_and_mail() -> None:
            conn = await asyncpg.connect(dev.cli_env["ENGAGE_DATABASE_URL"])
            assert await conn.fetchval("SELECT count(*) FROM schema_migrations") >= 1
            await conn.close()
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = "a@x.example", "b@x.example", "sink check"
            msg.set_content("hello")
            await aiosmtplib.send(msg, hostname="127.0.0.1", port=dev.ports["smtp"])

        asyncio.run(postgres_and_mail())
        deadline = time.monotonic() + 5
        while not list((data_dir / "mail").glob("*.eml")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(b"sink check" in p.read_bytes() for p in (data_dir / "mail").glob("*.eml"))

        started = cli(dev, "start", str(EXAMPLES / "scoping.yaml"), "--json")
        assert started.returncode == 0, started.stderr
        children = dev.children()
        assert len(children) >= 4  # temporal, postgres, radicale, worker (and whatever they spawn)
    finally:
        code = dev.interrupt()
    assert code == 0, "".join(dev.output)
    time.sleep(0.5)
    assert not [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE], "no child left"
    busy = [name for name, port in dev.ports.items() if not port_is_free(port)]
    assert not busy, f"ports still held: {busy}"

    # A second start sees the engagement of the first, in Temporal and in Postgres.
    again = Dev(data_dir)
    again.ports = dev.ports
    second = again.start()
    try:
        status = cli(again, "status", "acme-2027-q1", "--json")
        assert status.returncode == 0, status.stderr
        assert '"engagement_id":"acme-2027-q1"' in status.stdout
        listed = cli(again, "list", "--json")
        assert "acme-2027-q1" in listed.stdout, listed.stdout + listed.stderr
    finally:
        assert again.interrupt() == 0
    print(f"engage dev ready in {first:.1f} s (first start), {second:.1f} s (warm)")
    # The figure printed above is the measure; the bound only catches a warm start that hangs or redoes the
    # first start's work. A tight wall-clock bound failed under xdist on 2 cores (13.4 s in a CI run).
    assert second <= max(30.0, first), f"a warm start took {second:.1f} s (the first {first:.1f} s)"


def test_a_taken_port_is_one_clear_line_and_exit_3(tmp_path: Path) -> None:
    dev = Dev(tmp_path / "var")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", dev.ports["temporal"]))
        taken.listen()
        result = subprocess.run(dev.args(), capture_output=True, text=True, env=clean_env(), timeout=60)
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(dev.ports["temporal"]) in lines[0] and "--temporal-port" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_a_throwaway_temporal_server_that_lost_its_port_to_another_process_starts_again_elsewhere(
        tmp_path: Path) -> None:
    """The lost race of a CI run (session 10): a port Temporal was to bind was taken first. A benchmark's or a
    test's server starts again; `engage dev`'s keeps the port its user named and says which one is taken. The
    internal ports the server picks itself cannot be taken on purpose; its front-end port shows the same path
    (the same log line, the same relaunch)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        held = int(taken.getsockname()[1])
        kept = TemporalDevServer(tmp_path / "kept", held, free_port(), persistent=False)
        with pytest.raises(RuntimeError, match=f"port {held} is taken"):
            kept.start()
        kept.stop()
        moved = TemporalDevServer(tmp_path / "moved", held, free_port(), persistent=False,
                                  ports_are_free_to_change=True)
        try:
            moved.start()
            assert moved.port != held
            with socket.create_connection(("127.0.0.1", moved.port), timeout=5):
                pass
            assert moved.proc is not None and moved.proc.poll() is None
        finally:
            moved.stop()


def test_postgres_unreachable_is_exit_3_naming_the_setting() -> None:
    port = free_port()
    result = subprocess.run([ENGAGE, "list"], capture_output=True, text=True, timeout=60,
                            env=clean_env(ENGAGE_DATABASE_URL=f"postgresql://engage@127.0.0.1:{port}/engage"))
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "ENGAGE_DATABASE_URL" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_temporal_unreachable_is_exit_3_naming_the_command_that_starts_it() -> None:
    port = free_port()
    result = subprocess.run([ENGAGE, "status", "acme"], capture_output=True, text=True, timeout=60,
                            env=clean_env(ENGAGE_TEMPORAL_ADDRESS=f"127.0.0.1:{port}"))
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Temporal" in lines[0] and "engage dev" in lines[0], result.stderr
