"""Starting an engagement (cli/starting.py): an id is used once, for good, and a cadence is at least an hour
unless a setting says otherwise. Through the real `engage start`, against the dev server, Postgres and a worker.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from adapters.temporal import engagement_workflow_id
from cli.starting import cadence_error
from devstack.process import free_port
from domain.format import recommend
from schemas.events import EngagementStarted, NewEvent
from schemas.inputs import EngagementInput
from schemas.scoping import Scoping
from schemas.settings import Settings
from schemas.views import StartResult
from store.events import EngagementAlreadyStarted, append, read_log
from store.migrate import migration_files
from tests.conftest import unique_id
from tests.test_cli import CLIENT_TZ, bad_input, clean_env, engage, ok, scoping_data, worker_env, write_yaml


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def start_env(dev_env: WorkflowEnvironment, settings: Settings,
                    pool: asyncpg.Pool) -> AsyncIterator[dict[str, str]]:
    """`engage` pointed at the dev server, the test database and a worker; the default minimum cadence."""
    async with worker_env(dev_env, settings, pool) as env:
        yield env


def scoping_file(folder: Path, engagement_id: str, cadence: str = "14d", horizon: str = "90d") -> Path:
    data = scoping_data(engagement_id, datetime.now(CLIENT_TZ).date())
    data["follow_through"] = {"cadence": cadence, "horizon": horizon}
    return write_yaml(folder / f"{engagement_id}-{uuid.uuid4().hex[:4]}.yaml", data)


async def wait_for(what: str, condition: Any, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not {what} after {timeout} s")
        await asyncio.sleep(0.1)


async def delete_as_retention_does(client: Client, engagement_id: str) -> None:
    """Temporal's retention deletes a closed workflow and its history; the log in Postgres stays. Deleted while
    it runs (Temporal terminates it first): the same end, at once, where the dev server takes about 30 s to
    delete an execution that had already closed."""
    handle = client.get_workflow_handle(engagement_workflow_id(engagement_id))
    await client.workflow_service.delete_workflow_execution(DeleteWorkflowExecutionRequest(
        namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=handle.id)))

    async def gone() -> bool:
        try:
            await handle.describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return True
            raise
        return False

    await wait_for(f"{handle.id} deleted", gone)


def refused_id(line: str, engagement_id: str) -> None:
    assert engagement_id in line and "id:" in line and "scoping file" in line, line


# --- an id is used once --------------------------------------------------------------------------------------


async def test_the_id_of_a_deleted_engagement_is_refused_by_start_and_by_the_store(
        start_env: dict[str, str], dev_env: WorkflowEnvironment, pool: asyncpg.Pool, tmp_path: Path) -> None:
    eid = unique_id("reused")
    path = scoping_file(tmp_path, eid)
    StartResult.model_validate_json((await ok(start_env, "start", str(path), "--json")).out)

    async def logged() -> bool:  # up to where it waits for the consultant: nothing more is on its way
        return any(getattr(e.event, "phase", None) == "format_choice" for e in await read_log(pool, eid))

    await wait_for(f"{eid} logged", logged)
    await delete_as_retention_does(dev_env.client, eid)
    log_before = await read_log(pool, eid)

    # Only the log remembers the id now: `engage start` refuses it, naming it and how to choose another.
    refused_id(bad_input(await engage(start_env, "start", str(path))), eid)
    refused_id(bad_input(await engage(start_env, "start", str(path), "--json")), eid)
    with pytest.raises(RPCError):  # nothing was started
        await dev_env.client.get_workflow_handle(engagement_workflow_id(eid)).describe()
    assert await read_log(pool, eid) == log_before

    # The store: a second start under another key is refused; the same start again (a retry) is a no-op.
    [first] = [e for e in log_before if e.event.type == "engagement_started"]
    assert isinstance(first.event, EngagementStarted)
    again = NewEvent(key=f"{eid}/started-again", occurred_at=datetime.now(UTC), event=first.event)
    with pytest.raises(EngagementAlreadyStarted, match=eid):
        await append(pool, eid, [again])
    retry = NewEvent(key=first.key, occurred_at=first.occurred_at, event=first.event)
    assert await append(pool, eid, [retry]) == [first.seq]
    assert await read_log(pool, eid) == log_before


async def test_an_id_temporal_still_holds_is_refused_running_or_closed(
        start_env: dict[str, str], dev_env: WorkflowEnvironment, pool: asyncpg.Pool, tmp_path: Path) -> None:
    """No log yet (no worker on its queue), so Temporal's own refusal (REJECT_DUPLICATE) is what answers."""
    eid = unique_id("held")
    scoping = Scoping.model_validate({**scoping_data(eid, datetime.now(CLIENT_TZ).date()),
                                      "follow_through": {"cadence": "14d", "horizon": "90d"}})
    handle = await dev_env.client.start_workflow(
        "EngagementWorkflow", EngagementInput(engagement_id=eid, scoping=scoping), id=engagement_workflow_id(eid),
        task_queue=f"nobody-{uuid.uuid4().hex[:6]}")
    path = scoping_file(tmp_path, eid)
    refused_id(bad_input(await engage(start_env, "start", str(path))), eid)  # running
    await handle.terminate(reason="test")
    refused_id(bad_input(await engage(start_env, "start", str(path))), eid)  # closed
    assert await read_log(pool, eid) == []


async def test_a_new_id_starts_and_the_same_id_at_once_again_is_refused(
        start_env: dict[str, str], dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    eid = unique_id("twice")
    path = scoping_file(tmp_path, eid)
    first, second = await asyncio.gather(engage(start_env, "start", str(path)),
                                         engage(start_env, "start", str(path)))
    assert sorted((first.code, second.code)) == [0, 2], (first, second)
    refused_id(bad_input(first if first.code else second), eid)
    await dev_env.client.get_workflow_handle(engagement_workflow_id(eid)).terminate(reason="test over")


async def test_the_index_holds_one_start_per_log(pool: asyncpg.Pool) -> None:
    definition = await pool.fetchval(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'events_one_engagement_started'")
    assert definition is not None and "UNIQUE" in definition and "engagement_started" in definition


# --- a minimum cadence -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cadence", ["0.0001s", "30m", "59m"])
async def test_a_cadence_under_an_hour_is_refused_before_any_service(cadence: str, tmp_path: Path) -> None:
    nowhere = clean_env(ENGAGE_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
                        ENGAGE_DATABASE_URL=f"postgresql://engage@127.0.0.1:{free_port()}/engage")
    path = scoping_file(tmp_path, unique_id("fast"), cadence=cadence)
    # Exit 2, not 3: refused before Temporal or Postgres (nothing listens there) is contacted.
    bad_input(await engage(nowhere, "start", str(path)), "follow_through.cadence", cadence, "1h",
              "ENGAGE_MIN_CADENCE")
    # `recommend` starts nothing: it answers, and warns with the same reason.
    advised = await engage(nowhere, "recommend", str(path), "--json")
    assert advised.code == 0, str(advised)
    [warning] = advised.err.strip().splitlines()
    assert warning.startswith("warning: follow_through.cadence") and "engage start" in warning, warning


async def test_a_cadence_of_an_hour_starts(start_env: dict[str, str], dev_env: WorkflowEnvironment,
                                           tmp_path: Path) -> None:
    eid = unique_id("hourly")
    await ok(start_env, "start", str(scoping_file(tmp_path, eid, cadence="1h")))
    await dev_env.client.get_workflow_handle(engagement_workflow_id(eid)).terminate(reason="test over")


async def test_the_setting_lets_a_demo_cadence_through(start_env: dict[str, str], dev_env: WorkflowEnvironment,
                                                       tmp_path: Path) -> None:
    eid = unique_id("demo-cadence")
    path = scoping_file(tmp_path, eid, cadence="8s", horizon="45s")
    bad_input(await engage(start_env, "start", str(path)), "follow_through.cadence", "8s")
    await ok({**start_env, "ENGAGE_MIN_CADENCE": "8s"}, "start", str(path))
    await dev_env.client.get_workflow_handle(engagement_workflow_id(eid)).terminate(reason="test over")


def test_the_message_names_the_field_the_minimum_and_the_setting() -> None:
    data = scoping_data("x", datetime.now(CLIENT_TZ).date())
    data["follow_through"] = {"cadence": "0.0001s", "horizon": "1d"}
    scoping = Scoping.model_validate(data)  # the model itself accepts it: replays must never fail on it
    assert recommend(scoping) is not None
    error = cadence_error(scoping, Settings(_env_file=None))  # type: ignore[call-arg]
    assert error is not None
    assert error.startswith("follow_through.cadence: 0.0001s is shorter than the minimum of 1h"), error
    assert "ENGAGE_MIN_CADENCE" in error
    lowered = Settings(_env_file=None, min_cadence=timedelta(seconds=8))  # type: ignore[call-arg]
    scoping.follow_through.cadence = timedelta(seconds=8)
    assert cadence_error(scoping, lowered) is None


async def test_logs_started_twice_before_the_migration_are_left_out_of_its_index(pool: asyncpg.Pool) -> None:
    """A database that met the old bug holds logs with two starts; the log is append-only, so the migration
    leaves those ids out of the index instead of failing (in a scratch schema, rolled back)."""
    files = dict(migration_files())
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute("CREATE SCHEMA scratch_0005; SET LOCAL search_path TO scratch_0005")
            await conn.execute(files["0001_events_and_read_models.sql"])
            insert = ("INSERT INTO events (engagement_id, seq, key, type, payload, occurred_at)"
                      " VALUES ($1, $2, $3, 'engagement_started', '{}', now())")
            await conn.executemany(insert, [("old", 1, "old/started"), ("old", 2, "old/started-again"),
                                            ("fine", 1, "fine/started")])
            await conn.execute(files["0005_one_start_per_engagement.sql"])
            await conn.execute(insert, "old", 3, "old/a-third")  # left out: `engage start` refuses it instead
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.execute(insert, "fine", 2, "fine/started-again")
        finally:
            await transaction.rollback()
