"""History stays bounded: a year of weekly check-ins never grows one run past 2,000 events."""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg
from temporalio.testing import WorkflowEnvironment

from schemas.settings import Settings
from schemas.updates import SnoozeAction
from schemas.views import EngagementStatus
from tests.conftest import unique_id
from tests.lifecycle import (
    action,
    child_histories,
    into_follow_through,
    running_worker,
    save_history,
    scoping,
    start,
)
from workflows.engagement import EngagementWorkflow as EW

MAX_EVENTS = 2000


async def test_a_52_week_weekly_action_stays_under_2000_events_per_run(
        time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool) -> None:
    env = time_skipping_env
    eid = unique_id("year")
    async with running_worker(env.client, settings, pool) as tq:
        handle = await start(env.client, tq, scoping(eid, cadence="7d", horizon="364d", escalate_after_missed=2))
        await into_follow_through(env, handle, date(2027, 2, 15), timedelta(minutes=1),
            action("A1", "Ben Wu", "ben@acme.example", "Europe/Berlin", date(2028, 2, 1), 0, 100))
        await env.sleep(timedelta(days=20))
        snoozed = await handle.execute_update(EW.snooze_action, SnoozeAction(action_id="A1", days=3))
        assert snoozed.snoozes == 1
        final: EngagementStatus = await handle.result()
        await save_history(handle, "year_weekly")
        parent = await handle.fetch_history()
        children = await child_histories(env.client, parent)
        runs = children[f"{handle.id}/checkins"]
        own = children[f"{handle.id}/A1"]

    view = final.actions[0]
    assert view.closed_reason == "horizon"
    assert view.checkins_sent >= 50, "a year of weekly check-ins"
    sizes = [len(h.events) for h in runs]
    assert len(runs) >= 2, "the check-in loop continued as new at least once"
    assert max(sizes) <= MAX_EVENTS, sizes
    assert len(parent.events) <= MAX_EVENTS
    assert len(own) == 1 and len(own[0].events) <= MAX_EVENTS, "the action's own workflow: its changes only"
    print(f"52 weekly check-ins: {len(runs)} runs of {sizes} events; engagement {len(parent.events)} events")
