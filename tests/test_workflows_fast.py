"""The lifecycle in seconds: the real workflows on the time-skipping server, with recording activities.

The fast tier (`make check`): nothing is sent and nothing is stored; the activities record what the workflows
ask of them, as `engage preview` does (cli/preview.py). A lifecycle change that is wrong fails here first; the
same paths against the real store, SMTP sink and CalDAV server are in tests/test_lifecycle.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from cli.preview import RecordingActivities
from schemas.events import AppendBatch, Appended, NewEvent, Phase
from schemas.messages import OutboundMessage, SendResult
from schemas.updates import CancelEngagement, ChooseFormat, RecordOutcomes, ReportMetric, ScheduleSession
from schemas.views import EngagementStatus
from tests.conftest import unique_id
from tests.lifecycle import action, into_follow_through, outcomes, scoping, start, until
from workflows.engagement import EngagementWorkflow as EW
from workflows.registry import WORKFLOWS

SESSION_DAY = date(2027, 2, 11)  # inside examples/scoping.yaml's window


@dataclass
class Sent:
    at: datetime
    message: OutboundMessage

    @property
    def kind(self) -> str:
        return self.message.kind.value

    def local(self) -> datetime:
        return self.at.astimezone(ZoneInfo(self.message.to.timezone or "Europe/Berlin"))


class Recorder(RecordingActivities):
    """RecordingActivities (what `engage preview` runs), also keeping every event and message it is given."""

    def __init__(self) -> None:
        super().__init__("Europe/Berlin")
        self.events: list[NewEvent] = []
        self.sent: list[Sent] = []
        self.rounds: list[list[str]] = []  # the keys of each `send_messages` (a check-in loop's round)

    @activity.defn(name="append_events")
    async def append_events(self, batch: AppendBatch) -> Appended:
        self.events.extend(batch.events)
        return await super().append_events(batch)

    @activity.defn(name="send_message")
    async def send_message(self, message: OutboundMessage) -> SendResult:
        self.sent.append(Sent(self._now(), message))
        self.events.extend(message.events)
        return await super().send_message(message)

    @activity.defn(name="send_messages")
    async def send_messages(self, messages: list[OutboundMessage]) -> list[SendResult]:
        self.rounds.append([m.key for m in messages])
        return await super().send_messages(messages)

    def types(self) -> list[str]:
        return [e.event.type for e in self.events]

    def of(self, kind: str, action_id: str | None = None) -> list[Sent]:
        return [s for s in self.sent if s.kind == kind and (action_id is None or s.message.action_id == action_id)]


@dataclass
class Run:
    env: WorkflowEnvironment
    recorder: Recorder
    task_queue: str

    async def start(self, **follow_through: str | int) -> WorkflowHandle:
        return await start(self.env.client, self.task_queue, scoping(unique_id("fast"), **follow_through))

    async def sleep_until(self, at: datetime) -> None:
        await self.env.sleep(until(await self.env.get_current_time(), at))


@pytest_asyncio.fixture(loop_scope="session")
async def run(time_skipping_env: WorkflowEnvironment) -> AsyncIterator[Run]:
    recorder = Recorder()
    task_queue = f"fast-{uuid.uuid4().hex[:8]}"
    async with Worker(time_skipping_env.client, task_queue=task_queue,
                      workflows=WORKFLOWS,
                      activities=[recorder.append_events, recorder.send_message, recorder.send_messages,
                                  recorder.upsert_calendar_entry, recorder.remove_calendar_entry]):
        yield Run(time_skipping_env, recorder, task_queue)


async def reaches(handle: WorkflowHandle, phase: Phase) -> None:
    """The phase the engagement enters once the activity that records the last one is done (real time: a
    query does not move the test server's clock)."""
    for _ in range(200):
        if (await handle.query(EW.status)).phase is phase:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"still {(await handle.query(EW.status)).phase.value}, not {phase.value}")


def local(day: date, hh: int, tz: str) -> datetime:
    return datetime.combine(day, dtime(hh), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


BEN = ("A1", "Ben Wu", "ben@acme.example", "Europe/Berlin")
ANA = ("A2", "Ana Lima", "ana@acme.example", "America/Sao_Paulo")


async def test_the_phases_in_order_and_a_value_that_closes_the_action_as_achieved(run: Run) -> None:
    handle = await run.start(cadence="14d", horizon="90d")
    await reaches(handle, Phase.format_choice)
    await handle.execute_update(EW.choose_format, ChooseFormat(format="combined"))
    await reaches(handle, Phase.scheduling)
    plan = await handle.execute_update(EW.schedule_session, ScheduleSession(on=SESSION_DAY, at="09:00"))
    assert plan.starts_at == local(SESSION_DAY, 9, "Europe/Berlin")
    await reaches(handle, Phase.pre_reads)
    await run.sleep_until(plan.starts_at + timedelta(hours=1))
    await reaches(handle, Phase.session)

    ids = await handle.execute_update(EW.record_outcomes,
                                      RecordOutcomes(outcomes=outcomes(action(*BEN, date(2027, 5, 31), 0, 10))))
    assert ids == ["A1"]
    await run.sleep_until(datetime(2027, 2, 26, tzinfo=UTC))  # past the first check-in (02-25)
    on_track = await handle.execute_update(EW.report_metric, ReportMetric(action_id="A1", value=2))
    assert (on_track.status.value, on_track.closed_reason) == ("on_track", None)
    achieved = await handle.execute_update(EW.report_metric, ReportMetric(action_id="A1", value=10))
    assert (achieved.status.value, achieved.closed_reason) == ("achieved", "achieved")
    final: EngagementStatus = await handle.result()

    assert final.phase is Phase.closed
    assert [(a.action_id, a.closed_reason, a.values_received) for a in final.actions] == [("A1", "achieved", 2)]
    types = run.recorder.types()
    phases = [e.event.phase.value for e in run.recorder.events if e.event.type == "phase_entered"]
    assert phases == ["scoping", "format_choice", "scheduling", "pre_reads", "session", "action_assignment",
                      "follow_through"]
    assert types[0] == "engagement_started" and types[-1] == "engagement_closed"
    assert (types.index("format_chosen") < types.index("session_scheduled") < types.index("outcomes_recorded")
            < types.index("action_assigned") < types.index("checkin_requested") < types.index("metric_reported")
            < types.index("action_closed") < types.index("engagement_closed"))
    # Closed the day of the value: no check-in after it, and the report to sponsor and consultant.
    assert len(run.recorder.of("checkin_request")) == 1
    assert sorted(s.message.to.email for s in run.recorder.of("report")) == ["dana@consultancy.example",
                                                                            "sam@acme.example"]
    keys = [e.key for e in run.recorder.events]
    assert len(keys) == len(set(keys)), "every event key once"


async def test_a_checkin_at_the_owners_morning_and_one_reminder(run: Run) -> None:
    handle = await run.start(cadence="14d", horizon="20d")
    await into_follow_through(run.env, handle, SESSION_DAY, timedelta(hours=1),
                              action(*ANA, date(2027, 5, 31), 0, 10))
    final: EngagementStatus = await handle.result()

    [request] = run.recorder.of("checkin_request", "A2")
    assert request.message.to.email == "ana@acme.example"
    assert minute(request.at) == local(date(2027, 2, 25), 9, "America/Sao_Paulo"), "09:00 in Sao Paulo"
    assert request.message.reply is not None and request.message.reply.number == 1
    [reminder] = run.recorder.of("checkin_reminder", "A2")
    # Unanswered: one reminder, min(cadence / 2, 3 days) after the request.
    assert minute(reminder.at) == minute(request.at + timedelta(days=3))
    assert (final.actions[0].closed_reason, final.actions[0].checkins_sent) == ("horizon", 1)


async def test_missed_checkins_escalate_to_the_sponsor(run: Run) -> None:
    handle = await run.start(cadence="7d", horizon="22d", escalate_after_missed=2)
    await into_follow_through(run.env, handle, SESSION_DAY, timedelta(hours=1),
                              action(*BEN, date(2027, 5, 31), 0, 10))
    final: EngagementStatus = await handle.result()

    requests = run.recorder.of("checkin_request", "A1")
    assert [r.local().date() for r in requests] == [date(2027, 2, 18), date(2027, 2, 25), date(2027, 3, 4)]
    missed = [e.event for e in run.recorder.events if e.event.type == "checkin_missed"]
    assert [(m.number, m.missed_in_row) for m in missed] == [(1, 1), (2, 2)]  # type: ignore[union-attr]
    [escalation] = run.recorder.of("escalation", "A1")
    assert escalation.message.to.email == "sam@acme.example"
    assert [r.email for r in escalation.message.cc] == ["dana@consultancy.example"]
    assert minute(escalation.at) == minute(requests[2].at), "at the check-in that found the second miss"
    assert escalation.message.context.missed_in_row == 2
    assert (final.actions[0].escalations, final.actions[0].missed_in_row) == (1, 2)


async def test_checkins_due_together_go_out_in_one_activity_and_each_action_keeps_its_own_workflow(
    run: Run,
) -> None:
    """Three owners in one time zone: each check-in is due at the same instant, and the engagement's check-in loop
    sends the three in one `send_messages` activity after one timer (workflows/checkin_loop.py). Each action's own
    workflow hears what changed it (here the misses) and ends with its closed view."""
    from workflows.action import ActionWorkflow

    handle = await run.start(cadence="7d", horizon="22d", escalate_after_missed=5)
    cleo = ("A3", "Cleo Park", "cleo@acme.example", "Europe/Berlin")
    eva = ("A2", "Eva Roth", "eva@acme.example", "Europe/Berlin")
    await into_follow_through(run.env, handle, SESSION_DAY, timedelta(hours=1),
                              action(*BEN, date(2027, 5, 31), 0, 10), action(*eva, date(2027, 5, 31), 0, 10),
                              action(*cleo, date(2027, 5, 31), 0, 10))
    final: EngagementStatus = await handle.result()

    checkin_rounds = [r for r in run.recorder.rounds if any("/checkin/" in k and "/reminder" not in k for k in r)]
    assert [sorted(k.split("/")[-3] for k in r) for r in checkin_rounds] == [["A1", "A2", "A3"]] * 3, \
        run.recorder.rounds
    assert [a.checkins_sent for a in final.actions] == [3, 3, 3]
    loop_history = await run.env.client.get_workflow_handle(f"{handle.id}/checkins").fetch_history()
    sends = [e for e in loop_history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
             and e.activity_task_scheduled_event_attributes.activity_type.name == "send_messages"]
    assert len(sends) == len(run.recorder.rounds), "one activity per round, every message of it inside"
    for view in final.actions:
        own = run.env.client.get_workflow_handle_for(ActionWorkflow.run, f"{handle.id}/{view.action_id}")
        assert await own.result() == view
        told = [e for e in (await own.fetch_history()).events
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
        assert len(told) == 3, "two misses and the close: not the routine check-ins"
    # The three actions' workflows and the loop are started by one workflow task of the engagement
    # (children-start-together): commands of one task sit between two WORKFLOW_TASK_COMPLETED events.
    tasks, starts = 0, []
    for e in (await handle.fetch_history()).events:
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            tasks += 1
        elif e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            starts.append((tasks, e.start_child_workflow_execution_initiated_event_attributes.workflow_id))
    assert [i for _, i in starts] == [f"{handle.id}/{a}" for a in ("A1", "A2", "A3", "checkins")]
    assert len({task for task, _ in starts}) == 1, starts


async def test_a_cancel_in_follow_through_stops_every_action_and_reports(run: Run) -> None:
    handle = await run.start(cadence="7d", horizon="60d")
    await into_follow_through(run.env, handle, SESSION_DAY, timedelta(minutes=5),
                              action(*BEN, date(2027, 5, 31), 0, 200), action(*ANA, date(2027, 4, 30), 0, 5))
    await run.sleep_until(datetime(2027, 2, 22, tzinfo=UTC))  # after the first check-ins
    cancelled_at = await run.env.get_current_time()
    await handle.execute_update(EW.cancel, CancelEngagement(reason="Client paused the programme"))
    final: EngagementStatus = await handle.result()
    await run.env.sleep(timedelta(days=30))  # nothing more is sent once cancelled

    assert (final.phase, final.cancel_reason) == (Phase.cancelled, "Client paused the programme")
    assert {a.action_id: a.closed_reason for a in final.actions} == {"A1": "cancelled", "A2": "cancelled"}
    assert len(run.recorder.of("checkin_request")) == 2
    after = [s for s in run.recorder.sent if s.at >= cancelled_at]
    assert {s.kind for s in after} == {"report", "action_cancel", "invitation_cancel"}
    assert run.recorder.types()[-1] == "engagement_cancelled"


async def test_outcomes_not_recorded_remind_the_consultant_after_two_days(run: Run) -> None:
    handle = await run.start()
    await handle.execute_update(EW.choose_format, ChooseFormat(format="strategy_session"))
    plan = await handle.execute_update(EW.schedule_session, ScheduleSession(on=SESSION_DAY, at="09:00"))
    await run.sleep_until(plan.ends_at + timedelta(days=2, hours=1))
    [reminder] = run.recorder.of("outcomes_reminder")
    assert reminder.message.to.email == "dana@consultancy.example"
    assert plan.ends_at + timedelta(days=2) <= reminder.at < plan.ends_at + timedelta(days=2, hours=1)
    await reaches(handle, Phase.session)
    await handle.execute_update(EW.cancel, CancelEngagement(reason="done"))
    assert (await handle.result()).phase is Phase.cancelled


async def test_a_rejected_update_never_reaches_history(run: Run) -> None:
    handle = await run.start()
    before = len((await handle.fetch_history()).events)
    with pytest.raises(WorkflowUpdateFailedError) as bad_format:
        await handle.execute_update(EW.choose_format, {"format": "workshop"})
    assert "format" in str(bad_format.value.cause)
    await handle.execute_update(EW.choose_format, ChooseFormat(format="combined"))
    with pytest.raises(WorkflowUpdateFailedError) as outside:
        await handle.execute_update(EW.schedule_session, ScheduleSession(on=date(2027, 6, 1)))
    assert "on" in str(outside.value.cause)
    events = (await handle.fetch_history()).events[before:]
    rejected = [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED]
    assert len(rejected) == 1, "only the valid choice was accepted"
    await reaches(handle, Phase.scheduling)
    await handle.execute_update(EW.cancel, CancelEngagement(reason="done"))
    assert (await handle.result()).phase is Phase.cancelled


async def test_the_follow_through_decides_by_the_historys_time_not_the_sdks_clock(
    time_skipping_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`workflow.now()` was once seen stale on a fresh worker: the task after a long activity got the time of the
    task before, the live task sent a check-in, and its replay (with the right time) closed the action at the
    horizon instead: a nondeterminism error in CI's chaos run. Here every task of the follow-throughs gets a
    clock two days behind the server's; their histories must then replay, with the right clock, to the same
    decisions (workflows/follow_through.py `_now`). The follow-throughs run in the engagement's check-in loop."""
    from temporalio import workflow as wf
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Replayer

    from tests.lifecycle import child_histories

    true_now = wf.now

    def lagging_now() -> datetime:
        lagging = ("ActionFollowThroughWorkflow", "CheckInLoopWorkflow")
        lag = timedelta(days=2) if wf.info().workflow_type in lagging else timedelta(0)
        return true_now() - lag

    recorder = Recorder()
    task_queue = f"fast-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(wf, "now", lagging_now)
    async with Worker(time_skipping_env.client, task_queue=task_queue, workflows=WORKFLOWS,
                      activities=[recorder.append_events, recorder.send_message, recorder.send_messages,
                                  recorder.upsert_calendar_entry, recorder.remove_calendar_entry]):
        handle = await start(time_skipping_env.client, task_queue,
                             scoping(unique_id("fast"), cadence="7d", horizon="30d", escalate_after_missed=2))
        await into_follow_through(time_skipping_env, handle, SESSION_DAY, timedelta(hours=1),
                                  action(*BEN, date(2027, 5, 31), 0, 10), action(*ANA, date(2027, 5, 31), 0, 5))
        final: EngagementStatus = await handle.result()
    monkeypatch.undo()
    assert [a.closed_reason for a in final.actions] == ["horizon", "horizon"]
    assert all(a.checkins_sent >= 3 for a in final.actions), [a.checkins_sent for a in final.actions]

    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    children = await child_histories(time_skipping_env.client, await handle.fetch_history())
    runs = [run for histories in children.values() for run in histories]
    assert sorted(r.workflow_id.rsplit("/", 1)[1] for r in runs) == ["A1", "A2", "checkins"]
    for history in runs:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, f"{history.workflow_id}: {result.replay_failure}"


class SlowSessionRecord(Recorder):
    """The recording activities, but the record of a scheduled session takes 4 s, as a retried activity did in
    the chaos run."""

    @activity.defn(name="append_events")
    async def append_events(self, batch: AppendBatch) -> Appended:
        if any("/schedule/" in e.key for e in batch.events):
            await asyncio.sleep(4)
        return await super().append_events(batch)


async def test_the_invitations_go_out_when_the_session_is_recorded_after_it_began(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """A session scheduled 2 s before it starts, whose record takes 4 s: the lifecycle waits for the record before
    it leaves the scheduling phase, so the invitations still go out (late), instead of passing the pre-reads
    while the update was still recording, and inviting no one (workflows/engagement.py SESSION_RECORDED_FIRST)."""
    recorder = SlowSessionRecord()
    task_queue = f"fast-{uuid.uuid4().hex[:8]}"
    env = time_skipping_env
    async with Worker(env.client, task_queue=task_queue, workflows=WORKFLOWS,
                      activities=[recorder.append_events, recorder.send_message, recorder.send_messages,
                                  recorder.upsert_calendar_entry, recorder.remove_calendar_entry]):
        handle = await start(env.client, task_queue, scoping(unique_id("fast"), cadence="14d", horizon="20d"))
        await reaches(handle, Phase.format_choice)
        await handle.execute_update(EW.choose_format, ChooseFormat(format="combined"))
        await reaches(handle, Phase.scheduling)
        starts = local(SESSION_DAY, 9, "Europe/Berlin")
        await env.sleep(until(await env.get_current_time(), starts - timedelta(seconds=2)))
        plan = await handle.execute_update(EW.schedule_session, ScheduleSession(on=SESSION_DAY, at="09:00"))
        assert plan.starts_at == starts
        await reaches(handle, Phase.session)
        invited = sorted(s.message.to.email for s in recorder.of("invitation"))
        assert len(invited) == 4 and "dana@consultancy.example" in invited, invited  # 3 participants, the consultant
        await handle.execute_update(EW.cancel, CancelEngagement(reason="test done"))
