"""`engage preview`: what an engagement would send and do, computed by the real workflows.

The workflows run unchanged on the time-skipping server; only the activities differ: these record what they
are asked to do instead of doing it, so months of follow-through are computed in seconds, and nothing real
is sent. The consultant confirms the recommended format and schedules the earliest possible session; the
owners never answer, which shows every reminder and escalation the engagement could produce.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta

from temporalio import activity
from temporalio.worker import Worker

from adapters.email.render import render
from adapters.engagement_client import SkippedClock, start_engagement_workflow, walk_to_follow_through
from domain.schedule import local_label
from schemas.events import AppendBatch, Appended
from schemas.messages import CalendarRemoval, CalendarUpsert, OutboundMessage, SendResult
from schemas.outcomes import Outcomes
from schemas.scoping import Scoping
from schemas.updates import ScheduleSession
from schemas.views import EngagementStatus, Preview, PreviewItem
from workflows.registry import WORKFLOWS


class RecordingActivities:
    """The activities of the worker, by name, recording instead of acting."""

    def __init__(self, client_timezone: str) -> None:
        self.client_timezone = client_timezone
        self.items: list[PreviewItem] = []

    def _now(self) -> datetime:
        return activity.info().current_attempt_scheduled_time

    @activity.defn(name="append_events")
    async def append_events(self, batch: AppendBatch) -> Appended:
        return Appended(seqs=list(range(1, len(batch.events) + 1)), at=self._now())

    @activity.defn(name="send_message")
    async def send_message(self, message: OutboundMessage) -> SendResult:
        at = self._now()
        subject, _, _ = render(message)
        self.items.append(PreviewItem(
            at=at, local_time=local_label(at, message.to.timezone or self.client_timezone), kind=message.kind.value,
            recipient=message.to.email, subject=subject, action_id=message.action_id))
        return SendResult(message_id=message.key, delivered_now=True, at=at)

    @activity.defn(name="send_messages")
    async def send_messages(self, messages: list[OutboundMessage]) -> list[SendResult]:
        return [await self.send_message(m) for m in messages]

    @activity.defn(name="upsert_calendar_entry")
    async def upsert_calendar_entry(self, request: CalendarUpsert) -> None:
        at = self._now()
        entry = request.entry
        what = entry.all_day.isoformat() if entry.all_day else (
            local_label(entry.starts_at, entry.timezone) if entry.starts_at else "")
        self.items.append(PreviewItem(at=at, local_time=local_label(at, self.client_timezone), kind="calendar",
                                      subject=f"{entry.summary} ({what}, sequence {entry.sequence})"))

    @activity.defn(name="remove_calendar_entry")
    async def remove_calendar_entry(self, request: CalendarRemoval) -> None:
        at = self._now()
        self.items.append(PreviewItem(at=at, local_time=local_label(at, self.client_timezone),
                                      kind="calendar", subject=f"remove {request.uid}"))


def first_session_day(scoping: Scoping, today: date) -> date:
    day = max(scoping.constraints.earliest, today + timedelta(days=1))
    if day > scoping.constraints.latest:
        raise ValueError(f"constraints.latest ({scoping.constraints.latest}) is in the past: nothing to preview")
    return day


async def preview(scoping: Scoping, outcomes: Outcomes | None) -> Preview:
    from devstack.timeskipping import quiet_runtime, start_time_skipping

    env = await start_time_skipping(quiet_runtime())
    recording = RecordingActivities(scoping.timezone)
    engagement_id = scoping.id or "preview"
    task_queue = f"preview-{uuid.uuid4().hex[:8]}"
    try:
        async with Worker(env.client, task_queue=task_queue,
                          workflows=WORKFLOWS,
                          activities=[recording.append_events, recording.send_message, recording.send_messages,
                                      recording.upsert_calendar_entry, recording.remove_calendar_entry]):
            handle = await start_engagement_workflow(env.client, scoping, engagement_id=engagement_id,
                                                     workflow_id=f"preview/{engagement_id}", task_queue=task_queue)
            now = await env.get_current_time()
            # Without outcomes the preview ends at the session: nothing after it is known yet.
            walked = await walk_to_follow_through(
                handle, outcomes, ScheduleSession(on=first_session_day(scoping, now.date()), at=time(9, 0)),
                clock=SkippedClock(env), after_start=timedelta(minutes=1) if outcomes else timedelta(0))
            plan = walked.plan
            horizon_end = None
            if outcomes is not None:
                final: EngagementStatus = await handle.result()
                horizon_end = final.horizon_end
            return Preview(engagement_id=engagement_id, format=walked.recommendation.format.value,
                           session_starts_at=plan.starts_at, horizon_end=horizon_end,
                           items=sorted(recording.items, key=lambda i: i.at))
    finally:
        await env.shutdown()
