"""Shared pieces of the workflow tests: a worker with the real activities, scoping and outcomes builders."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import yaml
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflow.v1 import WorkflowExecutionInfo
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import build_activities
from adapters.engagement_client import (
    EngagementHandle,
    SkippedClock,
    start_engagement_workflow,
    walk_to_follow_through,
)
from schemas.outcomes import Outcomes
from schemas.recommendation import EngagementFormat
from schemas.scoping import Scoping
from schemas.settings import Settings
from schemas.updates import ChooseFormat, ScheduleSession
from schemas.views import SessionPlan
from store.events import read_log
from workflows.engagement import EngagementWorkflow
from workflows.registry import WORKFLOWS
from workflows.search_attributes import NEXT_CHECKIN_AT

EXAMPLES = Path(__file__).parent.parent / "examples"
HISTORIES = Path(__file__).parent / "histories"


async def _described(env: WorkflowEnvironment, workflow_id: str) -> WorkflowExecutionInfo:
    # The raw call: the SDK's describe() cannot decode the time-skipping server's unset datetime attribute.
    described = await env.client.workflow_service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
        namespace=env.client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)))
    return described.workflow_execution_info


async def execution_status(env: WorkflowEnvironment, workflow_id: str) -> int:
    return (await _described(env, workflow_id)).status


async def next_checkin_attribute(env: WorkflowEnvironment, workflow_id: str) -> datetime | None:
    """The workflow's `NextCheckInAt` search attribute, None when unset."""
    payload = (await _described(env, workflow_id)).search_attributes.indexed_fields.get(NEXT_CHECKIN_AT.name)
    if payload is None or payload.data in (b"", b"null"):
        return None
    return datetime.fromisoformat(json.loads(payload.data))


@contextlib.asynccontextmanager
async def running_worker(client: Client, settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[str]:
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=task_queue,
                      workflows=WORKFLOWS,
                      activities=build_activities(settings, pool)):
        yield task_queue


def scoping(engagement_id: str, **follow_through: Any) -> Scoping:
    data = yaml.safe_load((EXAMPLES / "scoping.yaml").read_text())
    data["id"] = engagement_id
    data["follow_through"] = {**data.get("follow_through", {}), **follow_through}
    return Scoping.model_validate(data)


def outcomes(*actions: dict[str, Any]) -> Outcomes:
    return Outcomes.model_validate({"decisions": ["Consolidate the two sales teams by Q2"],
                                    "dot_votes": [{"option": "Expand to the Nordics", "votes": 7}],
                                    "actions": list(actions)})


def action(action_id: str, owner: str, email: str, tz: str, due: date, baseline: float, target: float,
           direction: str = "increase") -> dict[str, Any]:
    return {"id": action_id, "title": f"Action {action_id}", "due": due.isoformat(),
            "owner": {"name": owner, "email": email, "timezone": tz},
            "metric": {"name": f"Metric {action_id}", "unit": "units", "baseline": baseline, "target": target,
                       "direction": direction}}


async def start(client: Client, task_queue: str, s: Scoping) -> EngagementHandle:
    return await start_engagement_workflow(client, s, task_queue=task_queue)


@contextlib.asynccontextmanager
async def started(client: Client, settings: Settings, pool: asyncpg.Pool, s: Scoping
                  ) -> AsyncIterator[EngagementHandle]:
    """The engagement of `s`, started on a worker with the real activities that runs until the block ends."""
    async with running_worker(client, settings, pool) as task_queue:
        yield await start(client, task_queue, s)


async def scheduled(handle: EngagementHandle, session: ScheduleSession) -> SessionPlan:
    """The combined format chosen and `session` scheduled, as `engage choose` and `engage schedule` do: the
    invitations go out, and the session has not begun."""
    await handle.execute_update(EngagementWorkflow.choose_format, ChooseFormat(format=EngagementFormat.combined))
    return await handle.execute_update(EngagementWorkflow.schedule_session, session)


async def run_histories(client: Client, workflow_id: str, first_run_id: str | None = None) -> list[WorkflowHistory]:
    """Every run of a workflow, first to last, following continue-as-new."""
    histories = []
    run_id = first_run_id
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        last = history.events[-1]
        if not last.HasField("workflow_execution_continued_as_new_event_attributes"):
            return histories
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id


async def child_histories(client: Client, parent: WorkflowHistory) -> dict[str, list[WorkflowHistory]]:
    children = {}
    for event in parent.events:
        if event.HasField("child_workflow_execution_started_event_attributes"):
            attrs = event.child_workflow_execution_started_event_attributes
            children[attrs.workflow_execution.workflow_id] = await run_histories(
                client, attrs.workflow_execution.workflow_id, attrs.workflow_execution.run_id)
    return children


async def save_history(handle: WorkflowHandle, name: str) -> None:
    """Keep the histories (the engagement and every run of its follow-throughs) for the replay test in
    tests/histories/, only when asked: ENGAGE_RECORD_HISTORIES=1."""
    import os

    if os.environ.get("ENGAGE_RECORD_HISTORIES") != "1":
        return
    HISTORIES.mkdir(exist_ok=True)
    parent = await handle.fetch_history()
    _write(HISTORIES / f"{name}.json", parent)
    for child_id, runs in (await child_histories(handle._client, parent)).items():
        action_id = child_id.rsplit("/", 1)[-1]
        for number, history in enumerate(runs, start=1):
            _write(HISTORIES / f"{name}.{action_id}.run{number}.json", history)


def _write(path: Path, history: WorkflowHistory) -> None:
    # The workflow id is part of what replay checks (child ids derive from it), so it travels with the events.
    path.write_text(json.dumps({"workflow_id": history.workflow_id, "history": json.loads(history.to_json())}))


def load_history(path: Path) -> WorkflowHistory:
    data = json.loads(path.read_text())
    return WorkflowHistory.from_json(data["workflow_id"], data["history"])


def local(at: datetime, tz: str) -> datetime:
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo(tz))


def until(now: datetime, target: datetime) -> timedelta:
    return max(target - now, timedelta(0))


async def into_follow_through(env: WorkflowEnvironment, handle: EngagementHandle, on: date,
                              after_start: timedelta, *actions: dict[str, Any]) -> SessionPlan:
    """The usual way to follow-through: the combined format, a session on `on`, and its outcomes `after_start`
    once it has begun (the environment's clock skipped to then)."""
    walked = await walk_to_follow_through(handle, outcomes(*actions), ScheduleSession(on=on),
                                          format=EngagementFormat.combined, clock=SkippedClock(env),
                                          after_start=after_start)
    return walked.plan


async def snapshot(handle: WorkflowHandle, pool: asyncpg.Pool, engagement_id: str) -> tuple[dict[str, Any], int]:
    """What an input that must change nothing must leave alone: the engagement's status and its log's length."""
    status = await handle.query(EngagementWorkflow.status)
    return status.model_dump(), len(await read_log(pool, engagement_id))
