"""The baseline: bare Temporal doing the same number of activities and timers, with no-op activities.

The shape mirrors an engagement (a parent that waits for the session, then one child per action), and the
counts come from a real engagement's history in the same run, so the comparison is "our engine" against
"Temporal itself" for the same amount of orchestration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio import activity, workflow


class Shape(BaseModel):
    session_delay_s: float
    parent_activities: int
    parent_timers: int
    children: int
    child_activities: int
    child_timers: int
    child_duration_s: float


@activity.defn(name="bare_noop")
async def bare_noop(step: int) -> int:
    return step


@workflow.defn
class BareChild:
    @workflow.run
    async def run(self, shape: Shape) -> int:
        done = 0
        per_timer = shape.child_duration_s / max(1, shape.child_timers)
        timers = shape.child_timers
        for i in range(max(shape.child_activities, timers)):
            if i < timers:
                # A check-in: its timer, then the send (a no-op that notes when it ran).
                await workflow.sleep(per_timer)
                await workflow.execute_activity(bare_checkin, f"{workflow.info().workflow_id}/{i}",
                                                start_to_close_timeout=timedelta(seconds=30))
                done += 1
            elif i < shape.child_activities:
                done += await workflow.execute_activity(bare_noop, 1, start_to_close_timeout=timedelta(seconds=30))
        return done


@workflow.defn
class BareEngagement:
    @workflow.run
    async def run(self, shape: Shape) -> int:
        if shape.session_delay_s > 0:
            await workflow.sleep(shape.session_delay_s)
        for _ in range(max(0, shape.parent_timers - 1)):
            await workflow.sleep(0.01)
        done = 0
        for _ in range(shape.parent_activities):
            done += await workflow.execute_activity(bare_noop, 1, start_to_close_timeout=timedelta(seconds=30))
        info = workflow.info()
        results = await asyncio.gather(*(
            workflow.execute_child_workflow(BareChild.run, shape, id=f"{info.workflow_id}/c{i}")
            for i in range(shape.children)))
        return done + sum(results)


# --- the burst baseline of bench/scale.py ---------------------------------------------------------------------


class BareCheckIn(BaseModel):
    parent_id: str
    key: str
    due_at: datetime


class BareScaleInput(BaseModel):
    children: int
    due_at: datetime


@activity.defn(name="bare_checkin")
async def bare_checkin(key: str) -> None:
    """The no-op send: it only notes when it ran (bench/bare_worker.py), as the outbox notes when ours went out."""
    note = _burst_note
    if note is not None:
        note(key)


_burst_note: Callable[[str], object] | None = None


def note_checkins_with(note: Callable[[str], object]) -> None:
    global _burst_note
    _burst_note = note


@workflow.defn
class BareFollowThrough:
    """What a check-in costs at the least, with one workflow per action: the timer fires, one activity sends,
    the parent is told by a signal; then it waits for the next one, as ours does."""

    @workflow.run
    async def run(self, inp: BareCheckIn) -> None:
        await workflow.sleep(max(timedelta(milliseconds=1), inp.due_at - workflow.now()))
        await workflow.execute_activity(bare_checkin, inp.key, start_to_close_timeout=timedelta(seconds=30))
        await workflow.get_external_workflow_handle(inp.parent_id).signal(BareScaleEngagement.told, inp.key)
        await workflow.sleep(timedelta(days=1))


@activity.defn(name="bare_checkins")
async def bare_checkins(keys: list[str]) -> None:
    """The batched no-op send: every key of one engagement's check-ins noted at once."""
    for key in keys:
        await bare_checkin(key)


@workflow.defn
class BareBatchedEngagement:
    """The least a check-in costs with one workflow per *engagement* (the design issue 18 names as the way to
    halve a burst, not built): one timer for all of its actions' check-ins that fall due together, one activity
    sending them all, then it waits for the next ones. Measured beside bare one-workflow-per-action, it says
    what that design could gain at best on the same server."""

    @workflow.run
    async def run(self, inp: BareScaleInput) -> None:
        parent_id = workflow.info().workflow_id
        await workflow.sleep(max(timedelta(milliseconds=1), inp.due_at - workflow.now()))
        await workflow.execute_activity(bare_checkins, [f"{parent_id}/c{i}" for i in range(inp.children)],
                                        start_to_close_timeout=timedelta(seconds=30))
        await workflow.sleep(timedelta(days=1))


@workflow.defn
class BareScaleEngagement:
    """The parent: starts one follow-through per action and counts what they tell it."""

    def __init__(self) -> None:
        self.told_keys = 0

    @workflow.signal
    def told(self, key: str) -> None:
        self.told_keys += 1

    @workflow.run
    async def run(self, inp: BareScaleInput) -> None:
        parent_id = workflow.info().workflow_id
        await asyncio.gather(*(
            workflow.start_child_workflow(
                BareFollowThrough.run, BareCheckIn(parent_id=parent_id, key=f"{parent_id}/c{i}", due_at=inp.due_at),
                id=f"{parent_id}/c{i}")
            for i in range(inp.children)))
        await workflow.sleep(timedelta(days=1))
