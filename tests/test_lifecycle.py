"""The whole lifecycle on the time-skipping server, with the real store, SMTP sink and CalDAV server."""

from __future__ import annotations

import email
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from temporalio.api.enums.v1 import EventType, WorkflowExecutionStatus
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from adapters.calendar import CalendarStore
from adapters.engagement_client import engagement_status
from devstack.mailsink import MailSink
from schemas.events import MessageSent, Phase
from schemas.settings import Settings
from schemas.updates import (
    AcknowledgePreread,
    AddPreread,
    CancelEngagement,
    ChooseFormat,
    RecordOutcomes,
    ReportMetric,
    ScheduleSession,
    SnoozeAction,
)
from schemas.views import EngagementStatus
from store.events import read_log
from tests.conftest import unique_id
from tests.icalcheck import calendar_of, facts
from tests.lifecycle import (
    action,
    execution_status,
    into_follow_through,
    next_checkin_attribute,
    outcomes,
    save_history,
    scoping,
    started,
    until,
)
from workflows.engagement import EngagementWorkflow as EW

BERLIN = ZoneInfo("Europe/Berlin")


def at_local(day: date, hh: int, tz: str) -> datetime:
    return datetime.combine(day, dtime(hh), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def minute(at: datetime) -> datetime:
    """Send times are the timer's instant plus the few milliseconds the activity took to be scheduled."""
    return at.replace(second=0, microsecond=0)


def sink_messages(sink: MailSink, engagement_id: str) -> list[email.message.Message]:
    found = []
    for path in sink.messages():
        msg = email.message_from_bytes(path.read_bytes())
        if f"<{engagement_id}." in msg["Message-ID"]:
            found.append(msg)
    return found


async def test_engagement_from_start_to_closed(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool, mail_sink: MailSink
) -> None:
    env = time_skipping_env
    eid = unique_id("life")
    wall = time.monotonic()
    async with started(env.client, settings, pool,
                       scoping(eid, cadence="14d", horizon="90d", escalate_after_missed=2)) as handle:
        rec = await handle.execute_update(EW.choose_format, ChooseFormat(format="combined"))
        assert rec.format.value == "combined"
        plan = await handle.execute_update(EW.schedule_session, ScheduleSession(on=date(2027, 2, 11), at="09:00"))
        assert plan.starts_at == at_local(date(2027, 2, 11), 9, "Europe/Berlin")
        await handle.execute_update(
            EW.add_preread, AddPreread(title="Market memo", url="https://x.example/m", days_before=7)
        )
        await handle.execute_update(EW.acknowledge_preread, AcknowledgePreread(participant="ana@acme.example"))

        # The session starts; the consultant records three actions in three time zones.
        await env.sleep(until(await env.get_current_time(), plan.starts_at + timedelta(hours=1)))
        assert (await handle.query(EW.status)).phase is Phase.session
        ids = await handle.execute_update(
            EW.record_outcomes,
            RecordOutcomes(
                outcomes=outcomes(
                    action("A1", "Ben Wu", "ben@acme.example", "Asia/Tokyo", date(2027, 5, 31), 0, 200),
                    action(
                        "A2", "Ana Lima", "ana@acme.example", "America/Sao_Paulo", date(2027, 4, 30), 21, 10, "decrease"
                    ),
                    action("A3", "Chloé Martin", "chloe@acme.example", "Europe/Berlin", date(2027, 5, 10), 0, 10),
                )
            ),
        )
        assert ids == ["A1", "A2", "A3"]

        # After the first check-ins: two answers, one silence.
        await env.sleep(until(await env.get_current_time(), datetime(2027, 2, 26, tzinfo=UTC)))
        a1 = await handle.execute_update(EW.report_metric, ReportMetric(action_id="A1", value=40))
        assert a1.status.value == "on_track"
        a2 = await handle.execute_update(EW.report_metric, ReportMetric(action_id="A2", value=20))
        assert a2.status.value == "at_risk"
        before = a2.next_checkin_at
        assert before == at_local(date(2027, 3, 11), 9, "America/Sao_Paulo")
        a2 = await handle.execute_update(EW.snooze_action, SnoozeAction(action_id="A2", days=7))
        assert a2.next_checkin_at == at_local(date(2027, 3, 18), 9, "America/Sao_Paulo")

        await env.sleep(until(await env.get_current_time(), datetime(2027, 3, 20, tzinfo=UTC)))
        a1 = await handle.execute_update(EW.report_metric, ReportMetric(action_id="A1", value=200))
        assert (a1.status.value, a1.closed_reason) == ("achieved", "achieved")

        final: EngagementStatus = await handle.result()
        await save_history(handle, "lifecycle_closed")
    # Time skips: a wait in real time for any of its deadlines would take days. Not a speed figure (that is
    # bench/run.py's): the bound holds on a machine as loaded as a one-core CI run (15 s there).
    assert time.monotonic() - wall < 120, "90 days of follow-through should take seconds of wall time"

    assert final.phase is Phase.closed
    views = {a.action_id: a for a in final.actions}
    assert views["A1"].closed_reason == "achieved"
    assert (views["A2"].closed_reason, views["A2"].escalations) == ("horizon", 1)
    assert (views["A3"].closed_reason, views["A3"].escalations, views["A3"].checkins_sent) == ("horizon", 2, 6)

    log = await read_log(pool, eid)
    assert [e.seq for e in log] == list(range(1, len(log) + 1)), "no gap, no duplicate"
    types = [e.event.type for e in log]
    assert types[0] == "engagement_started"
    assert types[-1] == "engagement_closed"
    phases = [e.event.phase.value for e in log if e.event.type == "phase_entered"]
    assert phases == [
        "scoping",
        "format_choice",
        "scheduling",
        "pre_reads",
        "session",
        "action_assignment",
        "follow_through",
    ]
    assert types.index("outcomes_recorded") < types.index("action_assigned") < types.index("checkin_requested")
    reported = [
        (e.event.action_id, e.event.value, e.event.status.value) for e in log if e.event.type == "metric_reported"
    ]
    assert reported == [("A1", 40, "on_track"), ("A2", 20, "at_risk"), ("A1", 200, "achieved")]

    sent = [(e.occurred_at, e.event) for e in log if isinstance(e.event, MessageSent)]
    kinds = Counter(m.kind.value for _, m in sent)
    assert kinds["invitation"] == 4  # three participants, and the consultant's copy
    # Nobody answered the invitation: one reminder each, three days before, at their own 09:00.
    assert kinds["invitation_reminder"] == 3
    reminded_rsvp = {m.recipients[0]: minute(at) for at, m in sent if m.kind.value == "invitation_reminder"}
    assert reminded_rsvp["ana@acme.example"] == at_local(date(2027, 2, 8), 9, "America/Sao_Paulo")
    assert reminded_rsvp["ben@acme.example"] == at_local(date(2027, 2, 8), 9, "Europe/Berlin")
    assert kinds["preread"] == 3
    assert kinds["action_assignment"] == 3
    assert kinds["report"] == 2
    assert kinds["escalation"] == 3  # A2 once, A3 twice
    # The pre-read reminder goes only to those who have not read it.
    reminded = sorted(r for _, m in sent if m.kind.value == "preread_reminder" for r in m.recipients)
    assert reminded == ["ben@acme.example", "chloe@acme.example"]
    # ... at the reader's morning (09:00 local), the one nearest halfway between the pre-read and the session.
    assert {minute(at) for at, m in sent if m.kind.value == "preread_reminder"} == {
        at_local(date(2027, 2, 7), 9, "Europe/Berlin")}
    preread_at = {minute(at) for at, m in sent if m.kind.value == "preread"}
    assert preread_at == {at_local(date(2027, 2, 4), 9, "Europe/Berlin")}
    # Check-ins go out at 09:00 in each owner's zone, across the daylight-saving change of 2027-03-28.
    for action_id, tz in (("A1", "Asia/Tokyo"), ("A2", "America/Sao_Paulo"), ("A3", "Europe/Berlin")):
        times = [minute(at) for at, m in sent if m.kind.value == "checkin_request" and m.action_id == action_id]
        assert times, action_id
        assert {t.astimezone(ZoneInfo(tz)).time() for t in times} == {dtime(9)}, action_id
    a3_times = [minute(at) for at, m in sent if m.kind.value == "checkin_request" and m.action_id == "A3"]
    assert [t.astimezone(BERLIN).date() for t in a3_times] == [
        date(2027, 2, 25),
        date(2027, 3, 11),
        date(2027, 3, 25),
        date(2027, 4, 8),
        date(2027, 4, 22),
        date(2027, 5, 6),
    ]
    assert {t.utcoffset() for t in a3_times} == {timedelta(0)}
    assert {t.astimezone(BERLIN).utcoffset() for t in a3_times} == {timedelta(hours=1), timedelta(hours=2)}
    escalations = [m for _, m in sent if m.kind.value == "escalation"]
    assert {tuple(m.recipients) for m in escalations} == {("sam@acme.example", "dana@consultancy.example")}
    a2_times = [minute(at) for at, m in sent if m.kind.value == "checkin_request" and m.action_id == "A2"]
    assert a2_times[1] == at_local(date(2027, 3, 18), 9, "America/Sao_Paulo"), "the snooze moved check-in 2"

    # Every message the log says was sent is at the SMTP sink, once.
    at_sink = sink_messages(mail_sink, eid)
    assert len(at_sink) == len(sent)
    assert Counter(m["Message-ID"] for m in at_sink) == Counter(m.message_id for _, m in sent)


async def test_cancel_during_follow_through_stops_every_child(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool, mail_sink: MailSink
) -> None:
    env = time_skipping_env
    eid = unique_id("cancel")
    async with started(env.client, settings, pool, scoping(eid, cadence="7d", horizon="60d")) as handle:
        await into_follow_through(env, handle, date(2027, 3, 1), timedelta(minutes=5),
            action("A1", "Ben Wu", "ben@acme.example", "Europe/Berlin", date(2027, 5, 31), 0, 200),
            action("A2", "Ana Lima", "ana@acme.example", "America/Sao_Paulo", date(2027, 4, 30), 0, 5))
        await env.sleep(timedelta(days=10))
        cancelled_at = await env.get_current_time()
        await handle.execute_update(EW.cancel, CancelEngagement(reason="Client paused the programme"))
        final: EngagementStatus = await handle.result()
        await save_history(handle, "lifecycle_cancelled")
        calendar = CalendarStore(settings)
        try:
            left_on_caldav = await calendar.list_uids(eid)
        finally:
            calendar.close()
        for child in ("A1", "A2"):
            status = await execution_status(env, f"{handle.id}/{child}")
            assert status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED
        await env.sleep(timedelta(days=30))

    assert final.phase is Phase.cancelled
    assert {a.closed_reason for a in final.actions} == {"cancelled"}
    log = await read_log(pool, eid)
    after = [e.event for e in log if e.occurred_at >= cancelled_at]
    sent_after = [e for e in after if isinstance(e, MessageSent)]
    # After a cancel: the final report, and the withdrawal of the session (held, but void now) and every due date.
    assert {m.kind.value for m in sent_after} == {"report", "action_cancel", "invitation_cancel"}
    assert sorted(r for m in sent_after if m.kind.value == "action_cancel" for r in m.recipients) == [
        "ana@acme.example", "ben@acme.example"]
    # Every calendar entry engage mailed is cancelled by mail, its SEQUENCE raised, both parsers agreeing; and
    # nothing the engagement stored is left on the CalDAV server (Radicale).
    mails = [m for m in sink_messages(mail_sink, eid) if m.get_content_maintype() == "multipart"
             and any(p.get_content_type() == "text/calendar" for p in m.walk())]
    requests: dict[str, int] = {}
    cancels: dict[str, int] = {}
    for mail in mails:
        method, ics = calendar_of(mail)  # type: ignore[arg-type]
        read = facts(ics)
        assert read["method"] == method
        for event in read["events"]:
            (cancels if method == "CANCEL" else requests)[event["uid"]] = event["sequence"]
            if method == "CANCEL":
                assert event["status"] == "CANCELLED"
    due = {uid for uid in requests if uid.endswith("/due@engage.localhost")}
    assert due == {f"{eid}/A1/due@engage.localhost", f"{eid}/A2/due@engage.localhost"}
    session_uid = f"{eid}/session@engage.localhost"
    assert set(requests) == due | {session_uid}
    assert set(cancels) == set(requests) and all(cancels[uid] > requests[uid] for uid in requests)
    assert left_on_caldav == []
    assert log[-1].event.type == "engagement_cancelled" or any(e.type == "engagement_cancelled" for e in after)
    checkins = [e for e in log if isinstance(e.event, MessageSent) and e.event.kind.value == "checkin_request"]
    assert checkins and all(e.occurred_at < cancelled_at for e in checkins)


@pytest.mark.parametrize(
    "update, payload, names",
    [
        ("choose_format", {"format": "workshop"}, "format"),
        ("choose_format", {"format": "offsite", "surprise": 1}, "surprise"),
        ("schedule_session", {"on": "2027-06-01"}, "on"),
        ("schedule_session", {"on": "2027-02-10", "days": 7}, "days"),
        ("record_outcomes", {"outcomes": {"actions": []}}, "actions"),
        ("report_metric", {"action_id": "A9", "value": 1}, "action"),
        ("report_metric", {"action_id": "A1", "value": "NaN"}, "value"),
        ("snooze_action", {"action_id": "A1", "days": -3}, "days"),
        ("acknowledge_preread", {"participant": "mallory@evil.example"}, "participant"),
        ("add_preread", {"title": "x", "url": "javascript:alert(1)"}, "url"),
        ("acknowledge_preread", {"participant": "ana@acme.example", "preread_id": "P9"}, "preread"),
    ],
)
async def test_invalid_updates_are_rejected_and_the_engagement_goes_on(
    time_skipping_env: WorkflowEnvironment,
    settings: Settings,
    pool: asyncpg.Pool,
    update: str,
    payload: dict,
    names: str,
) -> None:
    env = time_skipping_env
    eid = unique_id("bad")
    async with started(env.client, settings, pool, scoping(eid, cadence="30d", horizon="30d")) as handle:
        await handle.execute_update(EW.add_preread, AddPreread(title="Memo", url="https://x.example"))
        if update in ("schedule_session", "record_outcomes", "report_metric", "snooze_action"):
            await handle.execute_update(EW.choose_format, ChooseFormat(format="combined"))
        if update in ("record_outcomes", "report_metric", "snooze_action"):
            plan = await handle.execute_update(EW.schedule_session, ScheduleSession(on=date(2027, 2, 10)))
            await env.sleep(until(await env.get_current_time(), plan.starts_at + timedelta(minutes=1)))
        if update in ("report_metric", "snooze_action"):
            await handle.execute_update(
                EW.record_outcomes,
                RecordOutcomes(
                    outcomes=outcomes(
                        action("A1", "Ben Wu", "ben@acme.example", "Europe/Berlin", date(2027, 3, 1), 0, 10)
                    )
                ),
            )
        history_before = len((await handle.fetch_history()).events)
        with pytest.raises(WorkflowUpdateFailedError) as failure:
            await handle.execute_update(update, payload)
        message = str(failure.value.cause)
        assert names in message, message
        # A rejected update is never accepted into the history, and the engagement then completes normally.
        added = {EventType.Name(e.event_type) for e in (await handle.fetch_history()).events[history_before:]}
        assert not {name for name in added if "UPDATE" in name}, added
        status: EngagementStatus = await handle.query(EW.status)
        if status.format is None:
            await handle.execute_update(EW.choose_format, ChooseFormat(format="combined"))
        if status.session is None:
            plan = await handle.execute_update(EW.schedule_session, ScheduleSession(on=date(2027, 2, 10)))
            await env.sleep(until(await env.get_current_time(), plan.starts_at + timedelta(minutes=1)))
        if update not in ("report_metric", "snooze_action"):
            # Not `status.actions`: right after the outcomes, the engagement is still assigning the actions.
            await handle.execute_update(
                EW.record_outcomes,
                RecordOutcomes(
                    outcomes=outcomes(
                        action("A1", "Ben Wu", "ben@acme.example", "Europe/Berlin", date(2027, 3, 1), 0, 10)
                    )
                ),
            )
        final: EngagementStatus = await handle.result()
    assert final.phase is Phase.closed


async def test_actions_due_at_the_same_instant_and_a_seconds_cadence(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    """Two owners in one zone get their check-ins at the same instant (the demo's case)."""
    env = time_skipping_env
    eid = unique_id("same")
    async with started(env.client, settings, pool, scoping(eid, cadence="8s", horizon="45s")) as handle:
        await into_follow_through(env, handle, date(2027, 2, 10), timedelta(seconds=1),
            action("A1", "Ben Wu", "ben@acme.example", "Europe/Berlin", date(2027, 3, 1), 0, 10),
            action("A2", "Ana Lima", "ana@acme.example", "Europe/Berlin", date(2027, 3, 1), 0, 10))
        final: EngagementStatus = await handle.result()
    assert final.phase is Phase.closed
    assert [a.checkins_sent for a in final.actions] == [5, 5]


async def test_a_temporal_cancel_winds_down_like_engage_cancel(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    env = time_skipping_env
    eid = unique_id("tcancel")
    async with started(env.client, settings, pool, scoping(eid, cadence="7d", horizon="60d")) as handle:
        await into_follow_through(env, handle, date(2027, 3, 1), timedelta(minutes=5),
            action("A1", "Ben Wu", "ben@acme.example", "Europe/Berlin", date(2027, 5, 31), 0, 200))
        await env.sleep(timedelta(days=8))
        await handle.cancel()
        final: EngagementStatus = await handle.result()
    assert final.phase is Phase.cancelled
    assert final.cancel_reason == "cancelled through Temporal"
    assert [a.closed_reason for a in final.actions] == ["cancelled"]
    log = await read_log(pool, eid)
    assert any(e.event.type == "engagement_cancelled" for e in log)
    assert [e for e in log if isinstance(e.event, MessageSent) and e.event.kind.value == "report"]


async def test_a_checkin_is_one_activity_that_sends_and_records_it(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    """A check-in costs one activity: the request goes out and its events (requested, the next one scheduled) are
    appended with its `message_sent`, in one transaction. The engagement is not woken for it (issue 18,
    PARENT_HEARS_WHAT_MATTERS): the engagement's check-in loop (CHECKINS_IN_ONE_LOOP) shows the next check-in in
    its search attributes and details, and `engagement_status` reads every action from it; each action's own
    workflow is not woken for a routine check-in either."""
    env = time_skipping_env
    eid = unique_id("one")
    async with started(env.client, settings, pool, scoping(eid, cadence="7d", horizon="30d")) as handle:
        await into_follow_through(env, handle, date(2027, 3, 1), timedelta(minutes=5),
            action("A1", "Ben Wu", "ben@acme.example", "Asia/Tokyo", date(2027, 5, 31), 0, 200),
            action("A2", "Ana Lima", "ana@acme.example", "America/Sao_Paulo", date(2027, 4, 30), 0, 5))
        # Between the first check-ins (2027-03-08, 09:00 local) and the second ones.
        await env.sleep(until(await env.get_current_time(), datetime(2027, 3, 10, tzinfo=UTC)))
        second = {"A1": at_local(date(2027, 3, 15), 9, "Asia/Tokyo"),
                  "A2": at_local(date(2027, 3, 15), 9, "America/Sao_Paulo")}
        status = await engagement_status(env.client, eid)
        assert {a.action_id: (a.checkins_sent, a.next_checkin_at) for a in status.actions} == {
            "A1": (1, second["A1"]), "A2": (1, second["A2"])}
        # The check-in page asks for one action: the loop answers for all in one query.
        one = await engagement_status(env.client, eid, only="A1")
        assert one.actions == status.actions
        # The engagement's own view still holds the plan it started with: it was not told of the check-ins, and
        # no signal woke it for them.
        told = await handle.query(EW.status)
        assert {a.action_id: a.checkins_sent for a in told.actions} == {"A1": 0, "A2": 0}
        parent_events = (await handle.fetch_history()).events
        assert not [e for e in parent_events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
        assert await next_checkin_attribute(env, handle.id) is None, "the loop carries it"
        assert await next_checkin_attribute(env, f"{handle.id}/checkins") == min(second.values())
        for action_id in second:
            assert await next_checkin_attribute(env, f"{handle.id}/{action_id}") is None
            own = (await env.client.get_workflow_handle(f"{handle.id}/{action_id}").fetch_history()).events
            assert not [e for e in own if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
        events = (await env.client.get_workflow_handle(f"{handle.id}/checkins").fetch_history()).events
        scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name for e in events
                     if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
        # Both first check-ins planned in one activity, then each sent with its events (Tokyo's and Sao Paulo's
        # mornings are not the same instant).
        assert scheduled == ["append_events", "send_messages", "send_messages"]
        log = await read_log(pool, eid)
        for action_id in second:
            mine = [e for e in log if getattr(e.event, "action_id", None) == action_id
                    and e.event.type in ("checkin_requested", "checkin_scheduled", "message_sent")]
            assert [(e.event.type, getattr(e.event, "number", None)) for e in mine] == [
                ("checkin_scheduled", 1), ("message_sent", None), ("checkin_requested", 1), ("checkin_scheduled", 2)]
            # One batch: consecutive sequence numbers, one instant.
            assert [e.seq for e in mine[1:]] == list(range(mine[1].seq, mine[1].seq + 3))
            assert mine[3].event.at == second[action_id]  # type: ignore[union-attr]
        await handle.execute_update(EW.cancel, CancelEngagement(reason="test done"))
        await handle.result()
