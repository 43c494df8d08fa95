"""Real parts on free loopback ports, started once per test session.

Temporal (time-skipping server and dev server), Postgres (embedded, or ENGAGE_TEST_DATABASE_URL), the SMTP
sink and Radicale. Tests isolate themselves by engagement id, not by fresh servers.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from devstack.mailsink import MailSink
from devstack.postgres import EmbeddedPostgres
from devstack.process import free_port
from devstack.radicale import RadicaleServer
from devstack.timeskipping import start_time_skipping
from schemas.settings import Settings
from store.db import create_pool
from store.migrate import migrate
from workflows.search_attributes import ALL_KEYS

BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engage")


@pytest.fixture(scope="session")
def database_url(tmp_root: Path) -> Iterator[str]:
    external = os.environ.get("ENGAGE_TEST_DATABASE_URL")
    if external:
        yield external
        return
    server = EmbeddedPostgres(tmp_root / "pg", free_port(), durable=False)
    (tmp_root / "pg").mkdir()
    url = server.start()
    yield url
    server.stop()


@pytest.fixture(scope="session")
def mail_sink(tmp_root: Path) -> Iterator[MailSink]:
    sink = MailSink(tmp_root / "mail", free_port())
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def radicale(tmp_root: Path) -> Iterator[RadicaleServer]:
    server = RadicaleServer(tmp_root / "radicale", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def settings(database_url: str, mail_sink: MailSink, radicale: RadicaleServer) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        smtp_url=mail_sink.url,
        caldav_url=radicale.url,
        task_queue=f"engage-test-{uuid.uuid4().hex[:6]}",
        dev_stack=True,  # the development reply secret, as `engage dev` (production_secret_error)
        min_cadence=timedelta(seconds=1),  # the tests' cadences of seconds, allowed by saying so (cli/starting.py)
    )


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings)
    await migrate(pool)
    yield pool
    await pool.close()


@pytest_asyncio.fixture(loop_scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A fresh server per test: its clock starts at today, so tests can name absolute dates."""
    env = await start_time_skipping()
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=shutil.which("temporal", path=str(BIN)) or "temporal",
        search_attributes=ALL_KEYS,
        dev_server_extra_args=["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"],
    )
    yield env
    await env.shutdown()


def unique_id(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
