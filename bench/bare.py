"""The baseline: bare Temporal doing the same number of activities and timers, with no-op activities.

The shape mirrors an engagement (a parent that waits for the session, then one child per action), and the
counts come from a real engagement's history in the same run, so the comparison is "our engine" against
"Temporal itself" for the same amount of orchestration.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

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
                await workflow.sleep(per_timer)
            if i < shape.child_activities:
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
