"""What both workflows do the same way: append events, send a message, with one set of activity options."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.calendar import CalendarActivities
    from activities.notify import NotifyActivities
    from activities.store import StoreActivities
    from schemas.events import AppendBatch, Event, NewEvent
    from schemas.messages import CalendarRemoval, CalendarUpsert, OutboundMessage, SendResult

# Transient I/O (SMTP or Postgres briefly down) retries with backoff, for as long as it takes.
IO_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                       maximum_interval=timedelta(seconds=30))
IO_TIMEOUT = timedelta(seconds=30)


def new_events(engagement_id: str, items: tuple[tuple[str, Event], ...]) -> list[NewEvent]:
    """Keys are `ENGAGEMENT/...` steps, never run ids, so a retried activity, a replay or a continue-as-new
    writes nothing twice."""
    now = workflow.now()
    return [NewEvent(key=f"{engagement_id}/{key}", occurred_at=now, event=event) for key, event in items]


async def record(engagement_id: str, *items: tuple[str, Event], summary: str | None = None) -> datetime | None:
    """Append events to the engagement's log; returns when the activity finished (None in older histories)."""
    batch = AppendBatch(engagement_id=engagement_id, events=new_events(engagement_id, items))
    appended = await workflow.execute_activity_method(
        StoreActivities.append_events, batch, start_to_close_timeout=IO_TIMEOUT, retry_policy=IO_RETRY,
        summary=summary or "Record " + ", ".join(e.type.replace("_", " ") for _, e in items),
    )
    return appended.at


async def send(message: OutboundMessage, *items: tuple[str, Event]) -> SendResult:
    """Send a message once; `items` are the step's own events, appended with its `message_sent` in the same
    activity. Not a local activity: one runs inside a workflow task that may fail and be retried on a history
    with more in it (a value that closed the action meanwhile), so it could send what the workflow never
    decided (measured: `bench/chaos.py` caught it)."""
    return await workflow.execute_activity_method(
        NotifyActivities.send_message, with_events(message, items), start_to_close_timeout=IO_TIMEOUT,
        retry_policy=IO_RETRY,
        summary=message.summary or f"Send {message.kind.value} to {message.to.email}",
    )


def with_events(message: OutboundMessage, items: tuple[tuple[str, Event], ...]) -> OutboundMessage:
    """`message` carrying its step's own events, appended with its `message_sent` by the activity that sends it."""
    if not items:
        return message
    return message.model_copy(update={"events": new_events(message.engagement_id, items)})


async def send_many(messages: list[OutboundMessage], summary: str) -> list[SendResult]:
    """Send several messages of one engagement in one activity (a check-in loop's round), each once, each with
    its own events; a result per message, in order."""
    return await workflow.execute_activity_method(
        NotifyActivities.send_messages, messages, start_to_close_timeout=IO_TIMEOUT * len(messages),
        retry_policy=IO_RETRY, summary=summary,
    )


async def put_on_calendar(request: CalendarUpsert, summary: str) -> None:
    """Store a calendar entry (the session, an action's due date) on the CalDAV server, by its UID."""
    await workflow.execute_activity_method(
        CalendarActivities.upsert_calendar_entry, request, start_to_close_timeout=IO_TIMEOUT, retry_policy=IO_RETRY,
        summary=summary)


async def take_off_calendar(request: CalendarRemoval, summary: str) -> None:
    """Remove a calendar entry from the CalDAV server, by its UID."""
    await workflow.execute_activity_method(
        CalendarActivities.remove_calendar_entry, request, start_to_close_timeout=IO_TIMEOUT, retry_policy=IO_RETRY,
        summary=summary)
