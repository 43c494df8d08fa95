"""The one typed client of an engagement's workflow: whatever outside workflows/ starts an engagement, asks for
its status or sends it an update does it through here or names the workflow, update or query by reference
(`EngagementWorkflow.choose_format`), never by a string, so a renamed update fails mypy instead of a run
(tests/test_typed_boundary.py keeps it so).

The consultant's walk to follow-through (choose the format, schedule the session, wait for it, record its
outcomes) is written here once, for `engage demo`, `engage preview`, the tests and the benchmarks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeAlias, TypeVar

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from adapters.temporal import checkin_loop_workflow_id, engagement_workflow_id, follow_through_workflow_id
from schemas.events import Phase
from schemas.inputs import EngagementInput
from schemas.outcomes import Outcomes
from schemas.recommendation import EngagementFormat, Recommendation
from schemas.scoping import Scoping
from schemas.updates import ChooseFormat, RecordOutcomes, ScheduleSession
from schemas.views import ActionView, EngagementStatus, SessionPlan
from workflows.checkin_loop import CheckInLoopWorkflow
from workflows.engagement import EngagementWorkflow
from workflows.follow_through import ActionFollowThroughWorkflow

R = TypeVar("R")
T = TypeVar("T")

EngagementHandle: TypeAlias = WorkflowHandle[EngagementWorkflow, EngagementStatus]
# An update of the engagement, by reference: `EngagementWorkflow.report_metric` is an Update[ActionView].
Update: TypeAlias = UpdateMethodMultiParam[[EngagementWorkflow, Any], R]

# Temporal statuses that say "not now" rather than "no": an answer waiting on one of them is tried again later.
TRANSIENT = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED,
             RPCStatusCode.ABORTED, RPCStatusCode.INTERNAL, RPCStatusCode.UNKNOWN, RPCStatusCode.CANCELLED)


def engagement_handle(client: Client, engagement_id: str) -> EngagementHandle:
    """The handle of a running (or ended) engagement, typed: its updates and query by reference."""
    return client.get_workflow_handle_for(EngagementWorkflow.run, engagement_workflow_id(engagement_id))


async def start_engagement_workflow(client: Client, scoping: Scoping, *, task_queue: str,
                                    engagement_id: str | None = None, workflow_id: str | None = None,
                                    **options: Any) -> EngagementHandle:
    """Start the workflow of `scoping` (its id unless `engagement_id`), with no checks: a real engagement starts
    through cli/starting.py, which checks the cadence and that the id is new. `options` go to `start_workflow`."""
    engagement_id = engagement_id or scoping.id
    assert engagement_id is not None, "an engagement needs an id: the scoping's or engagement_id"
    return await client.start_workflow(
        EngagementWorkflow.run, EngagementInput(engagement_id=engagement_id, scoping=scoping),
        id=workflow_id or engagement_workflow_id(engagement_id), task_queue=task_queue, **options)


async def engagement_status(client: Client, engagement_id: str, *,
                            only: str | None = None) -> EngagementStatus:
    """An engagement's status with each open action's current view.

    The engagement hears only what matters from its actions (values, snoozes, blocks, status changes, the
    close); the routine count of check-ins, reminders, misses and the next check-in live in its check-in loop
    (one query for every action), or, in engagements begun before the loop, in each action's own follow-through,
    queried for every action still open, or for the action `only` alone (the others keep the engagement's view):
    a query of a workflow out of the worker's cache replays its history."""
    status = await engagement_handle(client, engagement_id).query(EngagementWorkflow.status)
    if status.phase is not Phase.follow_through:
        return status
    looped = await _loop_views(client, engagement_id)
    if looped is not None:
        actions = [looped.get(v.action_id, v) if v.closed_reason is None else v for v in status.actions]
        return status.model_copy(update={"actions": actions})

    async def current(view: ActionView) -> ActionView:
        if view.closed_reason is not None or only not in (None, view.action_id):
            return view
        handle = client.get_workflow_handle_for(ActionFollowThroughWorkflow.run,
                                                follow_through_workflow_id(engagement_id, view.action_id))
        try:
            return await handle.query(ActionFollowThroughWorkflow.view)
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return view  # its follow-through is about to start: the engagement's plan is all there is
            raise

    actions = await asyncio.gather(*(current(v) for v in status.actions))
    return status.model_copy(update={"actions": list(actions)})


async def _loop_views(client: Client, engagement_id: str) -> dict[str, ActionView] | None:
    """Every action's view from the engagement's check-in loop; None when it has none (begun before the loop,
    or the loop about to start: each action's own workflow then answers)."""
    handle = client.get_workflow_handle_for(CheckInLoopWorkflow.run, checkin_loop_workflow_id(engagement_id))
    try:
        return {v.action_id: v for v in await handle.query(CheckInLoopWorkflow.views)}
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            return None
        raise


# ---------------------------------------------------------------------------------------------------------
# The walk to follow-through
# ---------------------------------------------------------------------------------------------------------


class Clock(Protocol):
    """The clock the walk waits on for the session: the wall clock, or the time-skipping server's."""

    async def now(self) -> datetime: ...

    async def sleep(self, duration: timedelta) -> None: ...


class WallClock:
    async def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, duration: timedelta) -> None:
        await asyncio.sleep(duration.total_seconds())


class _SkippingEnvironment(Protocol):
    async def get_current_time(self) -> datetime: ...

    async def sleep(self, duration: timedelta | float) -> None: ...


@dataclass(frozen=True)
class SkippedClock:
    """The clock of a time-skipping `WorkflowEnvironment`: a sleep skips the server's time ahead."""

    env: _SkippingEnvironment

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def sleep(self, duration: timedelta) -> None:
        await self.env.sleep(duration)


class Caller(Protocol):
    """How each client call of the walk is made: at once, or through a retry (bench/chaos.py: through restarts)."""

    def __call__(self, call: Callable[[], Awaitable[T]], what: str) -> Awaitable[T]: ...


async def _at_once(call: Callable[[], Awaitable[T]], what: str) -> T:
    return await call()


@dataclass(frozen=True)
class Walked:
    recommendation: Recommendation  # of the chosen format
    plan: SessionPlan  # the session as scheduled
    action_ids: list[str]  # the actions the outcomes started (none without outcomes)


async def walk_to_follow_through(
    handle: EngagementHandle,
    outcomes: Outcomes | None,
    session: ScheduleSession | Callable[[int], ScheduleSession],
    *,
    format: EngagementFormat | None = None,
    clock: Clock | None = None,
    after_start: timedelta = timedelta(seconds=0.2),
    scheduled: Callable[[SessionPlan], Awaitable[object]] | None = None,
    session_attempts: int = 1,
    outcomes_attempts: int = 1,
    retry_every: timedelta = timedelta(seconds=1),
    update_ids: str | None = None,
    call: Caller = _at_once,
) -> Walked:
    """The consultant's part from a started engagement to follow-through, as `engage choose`, `engage schedule`
    and `engage session record` do it.

    - `format`: the one chosen; the recommended one when None.
    - `session`: the session to schedule, or one per attempt (`session(0)`, `session(1)`, ...): a session that
      the workflow refuses as in the past (a busy machine delivered the update late) is asked for anew, up to
      `session_attempts` times.
    - `scheduled`: what the consultant does once the session is set (add pre-reads, say so).
    - The walk waits on `clock` (the wall clock by default) until `after_start` past the session's start, then
      records `outcomes`; with None it stops there. A workflow that has not seen its session begin yet refuses
      the outcomes: they are tried again every `retry_every`, up to `outcomes_attempts` times.
    - `update_ids`: a prefix for the updates' ids (`<prefix>choose`, `<prefix>schedule-<n>`,
      `<prefix>outcomes-<n>`), so a call retried by `call` is applied once; the SDK's own ids when None.
    """
    clock = clock or WallClock()

    def update_id(step: str) -> str | None:
        return None if update_ids is None else update_ids + step

    if format is None:
        format = (await call(lambda: handle.query(EngagementWorkflow.status),
                             f"{handle.id} status")).recommendation.format
    chosen = format
    recommendation = await call(lambda: handle.execute_update(
        EngagementWorkflow.choose_format, ChooseFormat(format=chosen), id=update_id("choose")),
        f"{handle.id} choose")

    plan: SessionPlan | None = None
    for attempt in range(session_attempts):
        asked = session(attempt) if callable(session) else session
        try:
            plan = await call(lambda n=attempt, s=asked: handle.execute_update(  # type: ignore[misc]
                EngagementWorkflow.schedule_session, s, id=update_id(f"schedule-{n}")), f"{handle.id} schedule")
            break
        except WorkflowUpdateFailedError as exc:
            if "in the past" not in str(exc.cause) or attempt + 1 == session_attempts:
                raise
    assert plan is not None
    if scheduled is not None:
        await scheduled(plan)
    await clock.sleep(max(plan.starts_at + after_start - await clock.now(), timedelta(0)))
    if outcomes is None:
        return Walked(recommendation=recommendation, plan=plan, action_ids=[])
    return Walked(recommendation=recommendation, plan=plan,
                  action_ids=await _record(handle, RecordOutcomes(outcomes=outcomes), clock, outcomes_attempts,
                                           retry_every, update_id, call))


async def _record(handle: EngagementHandle, outcomes: RecordOutcomes, clock: Clock, attempts: int,
                  retry_every: timedelta, update_id: Callable[[str], str | None], call: Caller) -> list[str]:
    for attempt in range(attempts):
        try:
            return await call(lambda n=attempt: handle.execute_update(  # type: ignore[misc]
                EngagementWorkflow.record_outcomes, outcomes, id=update_id(f"outcomes-{n}")),
                f"{handle.id} outcomes")
        except WorkflowUpdateFailedError:
            if attempt + 1 == attempts:
                raise
            # Refused because the workflow has not seen its session begin yet (its timer behind the clock on a
            # busy machine), or because an earlier attempt went through and its answer was lost: look, then go
            # on or try again.
            seen = await call(lambda: handle.query(EngagementWorkflow.status), f"{handle.id} status")
            if seen.phase not in (Phase.scheduling, Phase.pre_reads, Phase.session):
                return [a.action_id for a in seen.actions]
            await clock.sleep(retry_every)
    raise AssertionError("unreachable: attempts >= 1")
