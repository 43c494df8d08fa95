"""Real parts on free loopback ports, started once per test session, and the test tiers.

Temporal (time-skipping server and dev server), Postgres (embedded, or ENGAGE_TEST_DATABASE_URL), the SMTP
sink and Radicale. Tests isolate themselves by engagement id, not by fresh servers. Under pytest-xdist each
worker is a session of its own: its own servers on its own ports, its own temporary directory.

Tiers (markers registered in pyproject.toml): `fast` is `make check`, pure tests and the workflows on the
time-skipping server with recording activities, seconds in all; `slow` is the rest, real servers,
subprocesses and browsers, run by `make test` with the fast ones.
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

# The fast tier, by module: nothing in these starts a real server (a test among them that asks for one of
# SERVER_FIXTURES is slow all the same). A new test module is slow until it is named here.
FAST_MODULES = {
    "test_agenda_views", "test_escaping", "test_ics", "test_mail_auth", "test_preview", "test_replay",
    "test_reply_reading", "test_typed_boundary", "test_workflows_fast",
}
FAST_PREFIXES = ("test_domain_",)
SERVER_FIXTURES = {"database_url", "pool", "settings", "mail_sink", "radicale", "dev_env", "tmp_root"}
# Tests of fast modules that take seconds each, left to `make test` to keep `make check` under a minute.
SLOW_TESTS = (
    "test_ics.py::test_vtimezone_transitions_are_zoneinfos[",  # two years of transitions in each of 14 zones
    "test_replay.py::test_recorded_history_replays[v",  # the histories of older code (v1_...): patches kept
)


def fast_module(name: str) -> bool:
    return name in FAST_MODULES or name.startswith(FAST_PREFIXES)


def is_fast(item: pytest.Item) -> bool:
    return (fast_module(item.path.stem) and not item.nodeid.rpartition("/")[2].startswith(SLOW_TESTS)
            and not SERVER_FIXTURES & set(getattr(item, "fixturenames", ())))


# Under `--dist loadgroup` (make test) the tests of one group run one after another on one worker. "heavy": the
# chaos run, the benchmarks and the demo, each its own stack of servers and workers, never two at once (the demo
# beside the chaos run took over its 240 s in a CI run; alone it takes 80 s). "timing": the tests
# that hold the machine to a wall-clock limit (an SMTP greeting within 1 s, a warm `engage dev` start within 10 s,
# 90 days of follow-through within 120 s) never run beside each other.
XDIST_GROUPS = {
    "test_chaos": "heavy", "test_bench": "heavy", "test_demo": "heavy",
    "test_inbound_abuse": "timing", "test_dev_stack": "timing", "test_lifecycle": "timing",
}


# The chaos run waits up to 1,200 s for bench/chaos.py and the quick benchmark up to 900 s (asyncio.wait_for, which
# kills the run and reports its log): the suite's 300 s (pyproject.toml) would cut them first on a loaded machine
# and leave the run behind, orphaned.
TIMEOUTS = {"test_chaos": 1260, "test_bench": 960}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.fast if is_fast(item) else pytest.mark.slow)
        group = XDIST_GROUPS.get(item.path.stem)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
        if item.path.stem in TIMEOUTS:
            item.add_marker(pytest.mark.timeout(TIMEOUTS[item.path.stem]))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """`-m fast` does not import the slow modules at all (playwright, the benchmarks ...): seconds saved."""
    if (config.getoption("markexpr") == "fast" and collection_path.suffix == ".py"
            and collection_path.name.startswith("test_") and not fast_module(collection_path.stem)):
        return True
    return None


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
    for attempt in (1, 2, 3):
        try:
            env = await WorkflowEnvironment.start_local(
                data_converter=pydantic_data_converter,
                dev_server_existing_path=shutil.which("temporal", path=str(BIN)) or "temporal",
                search_attributes=ALL_KEYS,
                dev_server_extra_args=["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma",
                                       "synchronous=normal"],
            )
            break
        except RuntimeError:
            # The dev server picks its internal ports itself and can lose one to a parallel test's server
            # (devstack/temporal.py `wait_ready`): start it again rather than fail a whole worker's tests.
            if attempt == 3:
                raise
    yield env
    await env.shutdown()


def unique_id(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
