"""EngagementWorkflow: one engagement, from scoping to the last check-in (docs/architecture.md, the lifecycle).

The run method reads as the lifecycle. Human steps arrive as validated updates; each phase is a short
awaited step; the rules (format, schedule, status) live in `domain/`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime, time, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from domain.agenda import agenda_lines, held_agenda
    from domain.format import format_fit_error, recommend, recommend_as
    from domain.schedule import local_date, local_label, next_checkin
    from domain.session import (
        default_days,
        event_summary,
        morning_reminder_at,
        outcomes_reminder_at,
        preread_reminder_at,
        preread_send_at,
        rsvp_reminder_at,
        schedule_error,
        session_bounds,
        session_days,
        venue_words,
    )
    from schemas import events as ev
    from schemas.answers import AnswerResult
    from schemas.common import one_line
    from schemas.inputs import ActionInput, CheckInLoopInput, EngagementInput, FollowThroughInput
    from schemas.messages import (
        ActionSummary,
        CalendarEntry,
        CalendarRemoval,
        CalendarUpsert,
        MessageContext,
        OutboundMessage,
        Recipient,
        ReplyScope,
        SessionDay,
    )
    from schemas.recommendation import Agenda, EngagementFormat, Recommendation
    from schemas.status import ActionStatus
    from schemas.updates import (
        AcknowledgePreread,
        AddPreread,
        BlockAction,
        CancelEngagement,
        ChooseFormat,
        RecordOutcomes,
        RecordRsvp,
        ReportMetric,
        ScheduleSession,
        SnoozeAction,
    )
    from schemas.views import ActionView, AttendanceView, EngagementStatus, PrereadView, SessionPlan
    from workflows import checkin_loop  # a module: it imports this one, and either may load first
    from workflows import search_attributes as sa
    from workflows.action import ActionWorkflow
    from workflows.follow_through import ActionFollowThroughWorkflow
    from workflows.steps import put_on_calendar, record, send, take_off_calendar

Phase = ev.Phase


class _CancelRequested(Exception):
    """Raised inside the run when the `cancel` update arrived; the run then winds the engagement down."""


M = TypeVar("M", bound=BaseModel)

# workflow.patched ids: each guards a change of commands, so histories of older runs still replay.
PARENT_READS_CHILD_RESULTS = "parent-reads-child-results"
FORMAT_RECORDED_BY_THE_LIFECYCLE = "format-recorded-by-the-lifecycle"
ANSWER_VERDICTS = "answer-verdicts"
# Issue 17: the consultant gets a copy of the invitation, RSVPs are read and reminded, pre-read reminders go at
# each recipient's morning, and a cancel withdraws every calendar entry (session and due dates) by mail and CalDAV.
CALENDARS_STAY_RIGHT = "calendars-stay-right"
# The scheduling phase ends once the session is recorded, not as soon as the update has set it: the chaos run
# caught an engagement whose session record (a retried activity) finished after the session had begun, by which
# time the lifecycle had passed the pre-reads without inviting anyone.
SESSION_RECORDED_FIRST = "session-recorded-first"
# Issue 18: the follow-throughs tell the engagement only what matters (a value, a snooze, a block, the close), not
# every routine check-in: the engagement's cold replay per check-in was the largest cost of a burst
# (docs/BENCHMARKS.md). Each action shows its own next check-in and risk, in its own workflow.
PARENT_HEARS_WHAT_MATTERS = "parent-hears-what-matters"
# Issue 18: one check-in loop per engagement sends the check-ins of all its actions, those due together in one task
# and one activity (workflows/checkin_loop.py); each action keeps a workflow of its own, told of what changes it
# (workflows/action.py). Measured on bare Temporal first: a tenth of the time of one workflow per action.
CHECKINS_IN_ONE_LOOP = "checkins-in-one-loop"
# Issue 18: the actions' own workflows and the check-in loop are started in one workflow task, not one task each.
# The horizon runs from the outcomes: on one busy core, five round trips through the task queue held the loop back
# until a first check-ins' time had passed (`taskset -c 0 bench/run.py`, docs/BENCHMARKS.md).
CHILDREN_START_TOGETHER = "children-start-together"


def _parse(model: type[M], raw: Any) -> M:
    """Updates take raw JSON so that a malformed payload is rejected by the validator with a message naming
    the field, instead of failing to decode with no explanation."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise _reject(one_line(exc)) from None


def _reject(message: str) -> ApplicationError:
    # Non-retryable: an update rejected by its validator never reaches history.
    return ApplicationError(message, type="ValidationError", non_retryable=True)


@workflow.defn
class EngagementWorkflow:
    @workflow.init
    def __init__(self, inp: EngagementInput) -> None:
        self._id = inp.engagement_id
        self._scoping = inp.scoping
        self._recommendation: Recommendation = recommend(inp.scoping)
        self._phase = Phase.scoping
        self._format: EngagementFormat | None = None
        self._session: SessionPlan | None = None
        self._session_changed = False
        self._session_recording = 0  # schedule_session handlers still recording their session
        self._prereads: list[PrereadView] = []
        self._outcomes: RecordOutcomes | None = None
        self._outcomes_at: datetime | None = None
        self._horizon_end: datetime | None = None
        self._actions: dict[str, ActionView] = {}
        self._children: dict[str, workflow.ChildWorkflowHandle] = {}
        self._watchers: list[asyncio.Task[None]] = []  # one per child: its result is its closed view
        self._cancel: CancelEngagement | None = None
        self._sa_values: dict[str, object] = {}
        self._format_choice: ChooseFormat | None = None  # chosen, not yet logged
        self._calendars_v2: bool | None = None  # CALENDARS_STAY_RIGHT, once asked
        self._rsvps: dict[str, AttendanceView] = {}  # the latest answer of each participant
        self._invited_at: datetime | None = None
        self._rsvp_reminded: set[str] = set()  # "sequence/email"
        self._hears_what_matters = False  # PARENT_HEARS_WHAT_MATTERS, asked when the follow-through begins
        self._loop: workflow.ChildWorkflowHandle | None = None  # CHECKINS_IN_ONE_LOOP: the check-in loop

    # === the lifecycle ======================================================================================

    @workflow.run
    async def run(self, inp: EngagementInput) -> EngagementStatus:
        try:
            await self._scoping_phase()                 # 1
            await self._format_choice_phase()           # 2
            await self._scheduling_phase()              # 3
            await self._pre_reads_phase()               # 4
            await self._session_phase()                 # 5
            await self._action_assignment_phase()       # 6
            await self._follow_through_phase()          # 7
            await self._close()                         # 8
        except _CancelRequested:
            await self._cancelled()
        except asyncio.CancelledError:
            # Cancelled from the Temporal UI or `temporal workflow cancel`: wind down as `engage cancel` does
            # (children stopped, invitations withdrawn, the log told, the report sent) instead of just ending.
            self._cancel = self._cancel or CancelEngagement(reason="cancelled through Temporal")
            await self._cancelled()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    async def _scoping_phase(self) -> None:
        await record(self._id,
                     ("started", ev.EngagementStarted(scoping=self._scoping, recommendation=self._recommendation)),
                     ("phase/scoping", ev.PhaseEntered(phase=Phase.scoping)),
                     summary=f"Record the start of the {self._scoping.client} engagement")

    async def _format_choice_phase(self) -> None:
        await self._enter(Phase.format_choice,
                          f"waiting for the consultant to confirm {self._recommendation.format.value}")
        try:
            await self._wait(lambda: self._format is not None, "Wait for the consultant to choose the format")
        finally:
            if self._format_choice is not None:  # a cancel right after the choice still logs it
                await self._record_format(self._format_choice)

    async def _scheduling_phase(self) -> None:
        await self._enter(Phase.scheduling, "waiting for the session date (engage schedule)")
        recorded_first = workflow.patched(SESSION_RECORDED_FIRST)
        await self._wait(lambda: self._session is not None and (not recorded_first or self._session_recording == 0),
                         "Wait for the session to be scheduled")

    async def _pre_reads_phase(self) -> None:
        """Until the session starts: invitations on every (re)schedule, pre-reads and their reminders."""
        await self._enter(Phase.pre_reads, self._session_line())
        while True:
            if self._session_changed:
                self._session_changed = False
                await self._invite()
            session = self._current_session()
            now = workflow.now()
            if now >= session.starts_at:
                return
            await self._send_due_prereads(now)
            await self._send_due_rsvp_reminders(now)
            deadline = min([session.starts_at, *self._preread_deadlines(), *self._rsvp_deadlines()])
            await self._wait(lambda: (self._session_changed or self._has_unsent_due_prereads()
                                      or self._has_due_rsvp_reminders()),
                             f"Wait until {self._local(deadline)}", until=deadline)

    async def _session_phase(self) -> None:
        session = self._current_session()
        await self._enter(Phase.session, f"session under way; then engage session record {self._id}")
        remind_at = outcomes_reminder_at(session.ends_at)
        recorded = await self._wait(lambda: self._outcomes is not None,
                                    "Wait for the session's outcomes", until=remind_at)
        if not recorded:
            consultant = self._scoping.consultant
            await send(self._message(
                ev.MessageKind.outcomes_reminder, "outcomes-reminder",
                Recipient(name=consultant.name, email=consultant.email, timezone=consultant.timezone),
                summary=f"Remind {consultant.email}: the outcomes of {self._local(session.starts_at)} are "
                        "two days late"))
            await self._wait(lambda: self._outcomes is not None, "Wait for the session's outcomes")

    async def _action_assignment_phase(self) -> None:
        assert self._outcomes is not None
        await self._enter(Phase.action_assignment, "assigning actions to their owners")
        now = workflow.now()
        self._outcomes_at = now
        self._horizon_end = now + self._scoping.follow_through.horizon
        outcomes = self._outcomes.outcomes
        for a in outcomes.actions:
            assert a.id is not None
            self._actions[a.id] = ActionView(action_id=a.id, title=a.title, owner=a.owner, due=a.due,
                                             metric=a.metric, assigned_at=now)
        await record(self._id,
                     ("outcomes", ev.OutcomesRecorded(outcomes=outcomes)),
                     *[(f"{v.action_id}/assigned",
                        ev.ActionAssigned(action_id=v.action_id, title=v.title, owner=v.owner, due=v.due,
                                          metric=v.metric, assigned_at=now))
                       for v in self._actions.values()],
                     summary=f"Record the outcomes: {len(self._actions)} actions")
        await asyncio.gather(*(self._assign(v) for v in self._actions.values()))

    async def _follow_through_phase(self) -> None:
        ft = self._scoping.follow_through
        assert self._horizon_end is not None
        # Newer runs plan each first check-in here (the rule the child applies too) and take each closed view
        # from the child's result: two signals and two workflow tasks fewer per action.
        reads_results = workflow.patched(PARENT_READS_CHILD_RESULTS)
        self._hears_what_matters = reads_results and workflow.patched(PARENT_HEARS_WHAT_MATTERS)
        planned = dict(self._actions)
        if reads_results:
            for view in planned.values():
                first = next_checkin(view.assigned_at, ft.cadence, ft.local_time, view.owner.timezone,
                                     ft.whole_days)
                self._actions[view.action_id] = view.model_copy(update={"next_checkin_at": first})
        await self._enter(Phase.follow_through, self._follow_through_line())
        follow_throughs = [
            FollowThroughInput(
                engagement_id=self._id, parent_workflow_id=workflow.info().workflow_id,
                client=self._scoping.client, consultant=self._scoping.consultant,
                sponsor=self._scoping.sponsor, action=view, cadence=ft.cadence, local_time=ft.local_time,
                whole_days=ft.whole_days, horizon_end=self._horizon_end,
                escalate_after_missed=ft.escalate_after_missed, parent_reads_result=reads_results,
                parent_hears_what_matters=self._hears_what_matters,
            )
            for view in planned.values()
        ]
        if self._hears_what_matters and workflow.patched(CHECKINS_IN_ONE_LOOP):
            await self._start_checkin_loop(follow_throughs)
        else:
            for inp in follow_throughs:
                self._children[inp.action.action_id] = await self._start_action(ActionFollowThroughWorkflow.run, inp)
        children = list(self._children.values())
        if reads_results:
            for child in children:
                self._watchers.append(asyncio.create_task(self._take_result(child)))
        await self._wait(lambda: all(v.closed_reason is not None for v in self._actions.values()),
                         "Wait for every action's follow-through")
        for child in children:
            closed = await child
            self._actions[closed.action_id] = closed
        if self._loop is not None:
            await self._loop

    async def _start_checkin_loop(self, follow_throughs: list[FollowThroughInput]) -> None:
        """Each action's own workflow first (the loop tells them of every change), then the loop: since
        CHILDREN_START_TOGETHER, all in one workflow task, in that order."""
        own_id = workflow.info().workflow_id
        starts = [self._start_action(ActionWorkflow.run, ActionInput(
                      engagement_id=self._id, client=self._scoping.client, action=inp.action,
                      checkin_loop_id=f"{own_id}/checkins"))
                  for inp in follow_throughs]
        if workflow.patched(CHILDREN_START_TOGETHER):
            started = await asyncio.gather(*starts, self._start_loop(follow_throughs))
            actions, self._loop = started[:-1], started[-1]
        else:
            actions = [await start for start in starts]
            self._loop = await self._start_loop(follow_throughs)
        for inp, handle in zip(follow_throughs, actions, strict=True):
            self._children[inp.action.action_id] = handle

    def _start_loop(self, follow_throughs: list[FollowThroughInput]) -> Awaitable[workflow.ChildWorkflowHandle]:
        own_id = workflow.info().workflow_id
        return workflow.start_child_workflow(
            checkin_loop.CheckInLoopWorkflow.run,
            CheckInLoopInput(engagement_id=self._id, parent_workflow_id=own_id, client=self._scoping.client,
                             follow_throughs=follow_throughs),
            id=f"{own_id}/checkins",
            static_summary=f"Check-ins of {len(follow_throughs)} actions of {self._scoping.client}",
            static_details=", ".join(f"{i.action.action_id} ({i.action.owner.name}, {i.action.owner.timezone})"
                                     for i in follow_throughs),
        )

    async def _start_action(self, run: Any, inp: FollowThroughInput | ActionInput) -> Any:
        view = inp.action
        return await workflow.start_child_workflow(
            run, inp,
            id=f"{workflow.info().workflow_id}/{view.action_id}",
            static_summary=f"{view.action_id} '{view.title}' ({view.owner.name})",
            static_details=(f"Owner {view.owner.name} <{view.owner.email}>, {view.owner.timezone}; "
                            f"due {view.due}; {view.metric.name}: {view.metric.baseline:g} -> "
                            f"{view.metric.target:g} {view.metric.unit}"),
        )

    async def _take_result(self, child: workflow.ChildWorkflowHandle[Any, ActionView]) -> None:
        self._view_changed(await child)

    async def _close(self) -> None:
        await self._send_report()
        await record(self._id, ("closed", ev.EngagementClosed()),
                     summary=f"Close the {self._scoping.client} engagement")
        await self._enter(Phase.closed, "closed; report sent", record_phase=False)

    async def _cancelled(self) -> None:
        assert self._cancel is not None
        if self._loop is not None and any(v.closed_reason is None for v in self._actions.values()):
            await self._loop.signal(checkin_loop.CheckInLoopWorkflow.stop)
        for view_id, child in self._children.items():
            if self._loop is None and self._actions[view_id].closed_reason is None:
                await child.signal(ActionFollowThroughWorkflow.stop)
        for child in self._children.values():
            closed = await child
            self._actions[closed.action_id] = closed
        if self._loop is not None:
            await self._loop
        session = self._session
        if self._calendars_stay_right():
            await self._withdraw_calendar_entries()
        elif session is not None and workflow.now() < session.starts_at:
            await asyncio.gather(*(self._invitation(p, method="CANCEL") for p in self._participants()))
            await take_off_calendar(CalendarRemoval(engagement_id=self._id, uid=self._session_uid()),
                                    "Remove the session from the calendar")
        await record(self._id, ("cancelled", ev.EngagementCancelled(reason=self._cancel.reason)),
                     summary=f"Record the cancellation: {self._cancel.reason}")
        await self._send_report()
        await self._enter(Phase.cancelled, f"cancelled: {self._cancel.reason}", record_phase=False)

    # === updates (human steps), each with a validator =======================================================

    def _require_open(self) -> None:
        if self._phase in (Phase.closed, Phase.cancelled) or self._cancel is not None:
            raise _reject(f"the engagement is {self._phase.value}")

    @workflow.update
    async def choose_format(self, raw: Any) -> Recommendation:
        choice = _parse(ChooseFormat, raw)
        self._format = choice.format
        if choice.format is not self._recommendation.format:
            self._recommendation = recommend_as(self._scoping, choice.format)
        if workflow.patched(FORMAT_RECORDED_BY_THE_LIFECYCLE):
            # The lifecycle logs the choice after the start's events. Logged here, both activities ran at once,
            # and a busy store could commit the choice before the start.
            self._format_choice = choice
        else:
            await self._record_format(choice)
        self._upsert_search_attributes()
        return self._recommendation

    async def _record_format(self, choice: ChooseFormat) -> None:
        await record(self._id, ("format", ev.FormatChosen(format=choice.format,
                                                          recommended=recommend(self._scoping).format,
                                                          reason=choice.reason)))

    @choose_format.validator
    def _validate_choose_format(self, raw: Any) -> None:
        choice = _parse(ChooseFormat, raw)
        self._require_open()
        if self._format is not None:
            raise _reject(f"format: the format can only be chosen once ({self._format.value} was chosen)")
        if self._phase not in (Phase.scoping, Phase.format_choice):
            raise _reject(f"format: the format can only be chosen in format_choice "
                          f"(the engagement is in {self._phase.value})")
        error = format_fit_error(choice.format, self._scoping.constraints)
        if error:
            raise _reject(f"format: {error}")

    @workflow.update
    async def schedule_session(self, raw: Any) -> SessionPlan:
        request = _parse(ScheduleSession, raw)
        assert self._format is not None
        days = request.days if request.days is not None else self._default_days()
        at = self._start_time(request)
        starts, ends = session_bounds(request.on, at, days, self._scoping.timezone, self._scoping.constraints.day_hours)
        sequence = 0 if self._session is None else self._session.sequence + 1
        # The agenda as it will be held: the scheduled days and start, kept with the plan and in the log.
        agenda = held_agenda(self._format, days, self._scoping.objectives, self._scoping.topics,
                             group_size=len(self._recommendation.participants), starts=at,
                             hours=self._scoping.constraints.day_hours)
        self._session = SessionPlan(starts_at=starts, ends_at=ends, days=days, timezone=self._scoping.timezone,
                                    sequence=sequence, agenda=agenda)
        self._session_recording += 1
        try:
            await record(self._id, (f"schedule/{sequence}", ev.SessionScheduled(
                starts_at=starts, ends_at=ends, timezone=self._scoping.timezone, days=days, sequence=sequence,
                agenda=agenda)),
                summary=f"Record the session on {self._local(starts)}")
            self._session_changed = True
        finally:
            self._session_recording -= 1
        return self._session

    @schedule_session.validator
    def _validate_schedule_session(self, raw: Any) -> None:
        request = _parse(ScheduleSession, raw)
        self._require_open()
        started = self._session is not None and workflow.now() >= self._session.starts_at
        if self._format is None or started:
            raise _reject(f"on: a session can be scheduled once the format is chosen and until it starts "
                          f"(the engagement is in {self._phase.value})")
        days = request.days if request.days is not None else self._default_days()
        try:
            starts, _ = session_bounds(request.on, self._start_time(request), days, self._scoping.timezone,
                                       self._scoping.constraints.day_hours)
        except OverflowError:
            # Year 1 or 9999: no start or end in UTC. Refused here, the handler never computes it.
            window = self._scoping.constraints
            raise _reject(f"on: {request.on} is outside the range of dates a session can have (the scoping "
                          f"window is {window.earliest} .. {window.latest})") from None
        error = schedule_error(request.on, days, self._format, self._scoping.constraints, starts, workflow.now())
        if error:
            raise _reject(error)

    @workflow.update
    async def add_preread(self, raw: Any) -> PrereadView:
        request = _parse(AddPreread, raw)
        preread = PrereadView(preread_id=f"P{len(self._prereads) + 1}", title=request.title, url=request.url,
                              days_before=request.days_before,
                              missing=[p.email for p in self._participants()])
        self._prereads.append(preread)
        await record(self._id, (f"preread/{preread.preread_id}", ev.PrereadAdded(
            preread_id=preread.preread_id, title=preread.title, url=preread.url,
            days_before=preread.days_before)))
        return preread

    @add_preread.validator
    def _validate_add_preread(self, raw: Any) -> None:
        _parse(AddPreread, raw)
        self._require_open()
        if self._session is not None and workflow.now() >= self._session.starts_at:
            raise _reject(f"pre-reads can be added until the session starts (the engagement is in "
                          f"{self._phase.value})")
        if len(self._prereads) >= 20:
            raise _reject("an engagement has at most 20 pre-reads")

    @workflow.update
    async def acknowledge_preread(self, raw: Any) -> list[PrereadView]:
        request = _parse(AcknowledgePreread, raw)
        changed: list[tuple[str, ev.Event]] = []
        for preread in self._targets(request):
            if request.participant not in preread.acknowledged:
                preread.acknowledged.append(request.participant)
                preread.missing.remove(request.participant)
                changed.append((f"preread/{preread.preread_id}/ack/{request.participant}",
                                ev.PrereadAcknowledged(preread_id=preread.preread_id, email=request.participant)))
        if changed:
            await record(self._id, *changed)
        return self._prereads

    @acknowledge_preread.validator
    def _validate_acknowledge_preread(self, raw: Any) -> None:
        request = _parse(AcknowledgePreread, raw)
        self._require_open()
        if self._scoping.participant(request.participant) is None:
            raise _reject(f"participant: {request.participant} is not a participant of {self._id}")
        if request.preread_id is not None and not any(p.preread_id == request.preread_id
                                                      for p in self._prereads):
            known = ", ".join(p.preread_id for p in self._prereads) or "none yet"
            raise _reject(f"preread: unknown pre-read {request.preread_id} (known: {known})")
        if not self._prereads:
            raise _reject("preread: this engagement has no pre-reads yet")

    @workflow.update
    async def record_outcomes(self, raw: Any) -> list[str]:
        request = _parse(RecordOutcomes, raw)
        self._outcomes = request
        return [a.id for a in request.outcomes.actions if a.id]

    @record_outcomes.validator
    def _validate_record_outcomes(self, raw: Any) -> None:
        request = _parse(RecordOutcomes, raw)
        self._require_open()
        if self._session is None or workflow.now() < self._session.starts_at or self._outcomes is not None:
            raise _reject(f"outcomes: outcomes are recorded once, after the session has started "
                          f"(the engagement is in {self._phase.value})")
        today = local_date(workflow.now(), self._scoping.timezone)
        for action in request.outcomes.actions:
            if action.due <= today:
                raise _reject(f"actions[{action.id}].due: {action.due} is not after today ({today})")

    @workflow.update
    async def report_metric(self, raw: Any) -> ActionView:
        request = _parse(ReportMetric, raw)
        return await self._forward(request.action_id, "report", request,
                                   counter="values_received", what=f"this value ({request.value:g})")

    @report_metric.validator
    def _validate_report_metric(self, raw: Any) -> None:
        request = _parse(ReportMetric, raw)
        self._require_action(request.action_id)

    @workflow.update
    async def snooze_action(self, raw: Any) -> ActionView:
        request = _parse(SnoozeAction, raw)
        return await self._forward(request.action_id, "snooze", request,
                                   counter="snoozes", what="this snooze")

    @snooze_action.validator
    def _validate_snooze_action(self, raw: Any) -> None:
        request = _parse(SnoozeAction, raw)
        view = self._require_action(request.action_id)
        if view.next_checkin_at is None:
            raise _reject(f"action: {request.action_id} has no check-in left to snooze")

    @workflow.update
    async def block_action(self, raw: Any) -> ActionView:
        """The owner reports the action blocked, with a reason: the consultant is told at once."""
        request = _parse(BlockAction, raw)
        return await self._forward(request.action_id, "block", request,
                                   counter=None, what="this report")

    @block_action.validator
    def _validate_block_action(self, raw: Any) -> None:
        request = _parse(BlockAction, raw)
        self._require_action(request.action_id)

    @workflow.update
    async def record_rsvp(self, raw: Any) -> AttendanceView:
        """An attendee's RSVP (read from their calendar's iMIP REPLY or COUNTER by the inbound paths): recorded,
        shown in `status`, counted in AttendeesDeclined; the consultant is told of a decline."""
        request = _parse(RecordRsvp, raw)
        session = self._current_session()
        participant = self._scoping.participant(request.attendee)
        assert participant is not None
        earlier = self._rsvps.get(participant.email)
        view = AttendanceView(email=participant.email, name=participant.name, attendance=request.attendance,
                              answered_at=workflow.now(), sequence=request.sequence, comment=request.comment,
                              proposed_starts_at=request.proposed_starts_at,
                              proposed_ends_at=request.proposed_ends_at)
        self._rsvps[participant.email] = view
        answer_key = request.answer_id or f"{request.sequence}/{participant.email}/{workflow.uuid4()}"
        await record(self._id, (f"rsvp/{answer_key}", ev.RsvpRecorded(
            email=participant.email, attendance=request.attendance, sequence=request.sequence,
            method=request.method, comment=request.comment, proposed_starts_at=request.proposed_starts_at,
            proposed_ends_at=request.proposed_ends_at)),
            summary=f"Record {participant.email}'s answer to the invitation: {request.attendance}")
        newly_declined = request.attendance == "declined" and request.sequence == session.sequence and not (
            earlier is not None and earlier.attendance == "declined" and earlier.sequence == session.sequence)
        if newly_declined:
            consultant = self._scoping.consultant
            await send(self._message(
                ev.MessageKind.rsvp_declined, f"rsvp/{session.sequence}/{participant.email}/declined",
                Recipient(name=consultant.name, email=consultant.email, timezone=consultant.timezone),
                attendee_name=participant.name, attendee_email=participant.email, attendance="declined",
                reason=request.comment,
                summary=f"Tell {consultant.email} that {participant.email} declined the session"))
        self._upsert_search_attributes()
        return view

    @record_rsvp.validator
    def _validate_record_rsvp(self, raw: Any) -> None:
        request = _parse(RecordRsvp, raw)
        self._require_open()
        if self._session is None:
            raise _reject("rsvp: no session has been scheduled, so there is no invitation to answer")
        if self._scoping.participant(request.attendee) is None:
            raise _reject(f"rsvp: {request.attendee} is not a participant of {self._id}")
        if request.sequence > self._session.sequence:
            raise _reject(f"rsvp: sequence {request.sequence} answers no invitation engage sent "
                          f"(the latest is {self._session.sequence})")
        if workflow.now() >= self._session.ends_at:
            raise _reject("rsvp: the session is over")

    @workflow.update
    async def cancel(self, raw: Any) -> None:
        self._cancel = _parse(CancelEngagement, raw)

    @cancel.validator
    def _validate_cancel(self, raw: Any) -> None:
        _parse(CancelEngagement, raw)
        self._require_open()

    async def _forward(self, action_id: str, signal_name: str, request: ReportMetric | SnoozeAction | BlockAction,
                       *, counter: str | None, what: str) -> ActionView:
        """Hand an owner's input to the action's follow-through and answer once it has given its verdict on
        it: applied (the caller sees the resulting status and next check-in) or rejected, by name. The
        follow-through is the engagement's check-in loop, or (begun before CHECKINS_IN_ONE_LOOP) the action's own.

        The input's answer id is this update's id, so each of many answers arriving at once waits for its own
        verdict; a sender retrying with the same id (a double submit, a redelivered reply) is answered once."""
        signal = getattr(ActionFollowThroughWorkflow, signal_name)
        if counter is not None and not workflow.patched(ANSWER_VERDICTS):
            return await self._forward_counted(action_id, signal, request, counter=counter, what=what)
        answer_id = workflow.current_update_info().id  # type: ignore[union-attr]
        request = request.model_copy(update={"answer_id": answer_id})
        try:
            if self._loop is not None:
                await self._loop.signal(getattr(checkin_loop.CheckInLoopWorkflow, signal_name), request)
            else:
                await self._children[action_id].signal(signal, request)
        except Exception:  # noqa: BLE001 - the follow-through has completed: the input cannot reach it
            await workflow.wait_condition(lambda: self._actions[action_id].closed_reason is not None)
        await workflow.wait_condition(lambda: self._verdict(action_id, answer_id) is not None
                                      or self._actions[action_id].closed_reason is not None)
        view = self._actions[action_id]
        verdict = self._verdict(action_id, answer_id)
        if verdict is None:
            # The action closed while the input was on its way: say so, never drop it silently.
            raise _reject(f"action: {action_id} closed ({view.closed_reason}) before {what}")
        if verdict.outcome == "rejected":
            raise _reject(f"action: {verdict.detail}")
        return view

    def _verdict(self, action_id: str, answer_id: str) -> AnswerResult | None:
        return next((a for a in self._actions[action_id].answers if a.answer_id == answer_id), None)

    async def _forward_counted(self, action_id: str, signal: Any, request: BaseModel, *, counter: str,
                               what: str) -> ActionView:
        """Before answer verdicts: wait for the follow-through's `counter` to rise (kept to replay older runs)."""
        target = getattr(self._actions[action_id], counter) + 1
        await self._children[action_id].signal(signal, request)
        await workflow.wait_condition(lambda: getattr(self._actions[action_id], counter) >= target
                                      or self._actions[action_id].closed_reason is not None)
        view = self._actions[action_id]
        if getattr(view, counter) < target:
            raise _reject(f"action: {action_id} closed ({view.closed_reason}) before {what}")
        return view

    def _require_action(self, action_id: str) -> ActionView:
        self._require_open()
        view = self._actions.get(action_id)
        if view is None:
            known = ", ".join(self._actions) or "none yet"
            raise _reject(f"action: unknown action {action_id} in {self._id} (known: {known})")
        if action_id not in self._children:
            raise _reject(f"action: follow-through of {action_id} has not started yet")
        if view.closed_reason is not None:
            raise _reject(f"action: {action_id} is closed ({view.closed_reason})")
        return view

    # === signals and queries ============================================================================

    @workflow.signal
    def action_changed(self, view: ActionView) -> None:
        self._view_changed(view)

    def _view_changed(self, view: ActionView) -> None:
        self._actions[view.action_id] = view
        if self._phase is Phase.follow_through:
            self._upsert_search_attributes()
            workflow.set_current_details(self._details(self._follow_through_line()))

    @workflow.query
    def status(self) -> EngagementStatus:
        return EngagementStatus(
            engagement_id=self._id, client=self._scoping.client, timezone=self._scoping.timezone,
            consultant=self._scoping.consultant, sponsor=self._scoping.sponsor, phase=self._phase,
            recommendation=self._recommendation, format=self._format, session=self._session,
            prereads=self._prereads, attendance=self._attendance(), actions=list(self._actions.values()),
            cancel_reason=self._cancel.reason if self._cancel else None,
            outcomes_recorded_at=self._outcomes_at, horizon_end=self._horizon_end,
        )

    # === steps ==========================================================================================

    async def _wait(self, condition: object, summary: str, until: datetime | None = None) -> bool:
        """Wait for a condition (True), a deadline (False) or a cancel (raises)."""
        assert callable(condition)
        timeout = None
        if until is not None:
            timeout = until - workflow.now()
            if timeout <= timedelta(0):
                if self._cancel is not None:
                    raise _CancelRequested
                return bool(condition())
        try:
            await workflow.wait_condition(lambda: bool(condition()) or self._cancel is not None,
                                          timeout=timeout, timeout_summary=summary)
        except TimeoutError:
            return False
        if self._cancel is not None:
            raise _CancelRequested
        return True

    async def _enter(self, phase: Phase, next_step: str, *, record_phase: bool = True) -> None:
        self._phase = phase
        if record_phase:
            await record(self._id, (f"phase/{phase.value}", ev.PhaseEntered(phase=phase)),
                         summary=f"Enter phase {phase.value}")
        self._upsert_search_attributes()
        workflow.set_current_details(self._details(next_step))

    def _details(self, next_step: str) -> str:
        return f"**Phase:** {self._phase.value}\n\n**Next:** {next_step}"

    def _upsert_search_attributes(self) -> None:
        # Once the follow-throughs tell only what matters, the next check-in is each action's own attribute:
        # the engagement's copy would go stale after the first routine check-in.
        open_times = [v.next_checkin_at for v in self._actions.values()
                      if v.next_checkin_at is not None and v.closed_reason is None
                      and not self._hears_what_matters]
        wanted: dict[str, object] = {
            sa.ENGAGEMENT_PHASE.name: self._phase.value,
            sa.ENGAGEMENT_FORMAT.name: (self._format or self._recommendation.format).value,
            sa.CLIENT_NAME.name: self._scoping.client,
            sa.CONSULTANT.name: self._scoping.consultant.email,
            sa.NEXT_CHECKIN_AT.name: min(open_times) if open_times else None,
            sa.ACTIONS_AT_RISK.name: sum(v.status is ActionStatus.at_risk for v in self._actions.values()),
        }
        if self._calendars_v2:  # older runs never set it: their upserts stay as recorded
            wanted[sa.ATTENDEES_DECLINED.name] = sum(a.attendance == "declined" for a in self._attendance())
        sa.upsert_changed(self._sa_values, wanted)

    def _current_session(self) -> SessionPlan:
        assert self._session is not None
        return self._session

    def _default_days(self) -> float:
        assert self._format is not None
        return default_days(self._format, self._recommendation, self._scoping.constraints)

    def _start_time(self, request: ScheduleSession) -> time:
        return request.at if request.at is not None else self._scoping.constraints.day_starts

    def _agenda(self) -> Agenda:
        """The agenda as held once the session is scheduled, the recommendation's before."""
        held = self._session.agenda if self._session else None
        return held or self._recommendation.agenda

    def _agenda_lines(self) -> list[str]:
        session = self._session
        first_day = local_date(session.starts_at, session.timezone) if session and session.agenda else None
        return agenda_lines(self._agenda(), first_day)

    def _participants(self) -> list[Recipient]:
        return [Recipient(name=p.name, email=p.email, timezone=p.timezone) for p in self._scoping.participants]

    def _targets(self, request: AcknowledgePreread) -> list[PrereadView]:
        return [p for p in self._prereads if request.preread_id in (None, p.preread_id)]

    def _local(self, at: datetime) -> str:
        return local_label(at, self._scoping.timezone)

    def _session_line(self) -> str:
        return f"session on {self._local(self._session.starts_at)}" if self._session else "no session yet"

    def _follow_through_line(self) -> str:
        return self._open_actions_line() if self._hears_what_matters else self._next_checkin_line()

    def _open_actions_line(self) -> str:
        views = self._actions.values()
        open_ = sum(v.closed_reason is None for v in views)
        at_risk = sum(v.status is ActionStatus.at_risk and v.closed_reason is None for v in views)
        where = "the check-in loop" if self._loop is not None else "each action's workflow"
        return f"{open_} of {len(views)} actions open, {at_risk} at risk; {where} shows the next check-in"

    def _next_checkin_line(self) -> str:
        upcoming = [v for v in self._actions.values() if v.next_checkin_at is not None and v.closed_reason is None]
        if not upcoming:
            return "no check-in pending"
        view = min(upcoming, key=lambda v: (v.next_checkin_at, v.action_id))
        assert view.next_checkin_at is not None
        return (f"check-in of '{view.title}' to {view.owner.email}, "
                f"{local_label(view.next_checkin_at, view.owner.timezone)}")

    def _session_uid(self) -> str:
        return f"{self._id}/session"

    def _message(self, kind: ev.MessageKind, step: str, to: Recipient, *, summary: str,
                 calendar: CalendarEntry | None = None, cc: list[Recipient] | None = None,
                 reply: ReplyScope | None = None, **context: object) -> OutboundMessage:
        session = self._session
        base = MessageContext(
            client=self._scoping.client, engagement_id=self._id, recipient_name=to.name,
            consultant_name=self._scoping.consultant.name,
            format=(self._format or self._recommendation.format).value,
            session_label=local_label(session.starts_at, to.timezone or self._scoping.timezone) if session else None,
            days=session.days if session else None,
            agenda=self._agenda_lines(),
        )
        return OutboundMessage(engagement_id=self._id, key=f"{self._id}/{step}", kind=kind, to=to, cc=cc or [],
                               context=base.with_(**context), calendar=calendar, reply=reply,
                               summary=summary)

    # --- invitations ------------------------------------------------------------------------------------

    def _calendars_stay_right(self) -> bool:
        """CALENDARS_STAY_RIGHT, asked once (the first invitation or the cancel) and remembered."""
        if self._calendars_v2 is None:
            self._calendars_v2 = workflow.patched(CALENDARS_STAY_RIGHT)
        return self._calendars_v2

    def _consultant(self) -> Recipient:
        c = self._scoping.consultant
        return Recipient(name=c.name, email=c.email, timezone=c.timezone)

    def _session_entry(self, method: str) -> CalendarEntry:
        session = self._current_session()
        consultant = self._scoping.consultant
        fmt = self._format or self._recommendation.format
        if not self._calendars_v2:  # as older runs wrote it
            return CalendarEntry(
                uid=self._session_uid(), sequence=session.sequence, method=method,  # type: ignore[arg-type]
                summary=f"{self._scoping.client}: {fmt.value.replace('_', ' ')}",
                description="\n".join(self._agenda_lines()),
                starts_at=session.starts_at, ends_at=session.ends_at, timezone=session.timezone,
                location=self._recommendation.location.value,
                organizer=Recipient(name=consultant.name, email=consultant.email),
                attendees=self._participants(),
            )
        days = session_days(session.starts_at, session.ends_at, session.days, session.timezone, session.agenda)
        return CalendarEntry(
            # A cancel raises the SEQUENCE (RFC 5546 3.2.5): clients ignore a CANCEL no newer than what they hold.
            uid=self._session_uid(), sequence=session.sequence + (method == "CANCEL"),
            method=method,  # type: ignore[arg-type]
            summary=event_summary(self._scoping.client, fmt),
            description="\n".join(self._agenda_lines()),
            starts_at=session.starts_at, ends_at=session.ends_at, timezone=session.timezone,
            days=[SessionDay(starts_at=a, ends_at=b) for a, b in days] if len(days) > 1 else [],
            location=venue_words(self._recommendation.location),
            # The adapter puts the signed reply address in the ORGANIZER: the RSVPs come back to engage.
            organizer=Recipient(name=consultant.name, email=consultant.email),
            chair=Recipient(name=consultant.name, email=consultant.email),
            attendees=self._participants(),
        )

    def _invitation_reply(self) -> ReplyScope | None:
        # An invitation's scope (no action, no pre-read): the attendee's RSVP, until the session has ended.
        if not self._calendars_v2:
            return None
        return ReplyScope(expires_at=self._current_session().ends_at + timedelta(days=1))

    async def _invitation(self, to: Recipient, method: str = "REQUEST") -> None:
        session = self._current_session()
        kind = ev.MessageKind.invitation if method == "REQUEST" else ev.MessageKind.invitation_cancel
        step = f"invitation/{session.sequence}/{to.email}" if method == "REQUEST" else f"invitation/cancel/{to.email}"
        await send(self._message(
            kind, step, to, calendar=self._session_entry(method),
            reply=self._invitation_reply() if method == "REQUEST" else None,
            reason=self._cancel.reason if self._cancel else None,
            summary=(f"Invite {to.email} to the session on "
                     f"{local_label(session.starts_at, to.timezone or session.timezone)}"
                     if method == "REQUEST" else f"Cancel the session for {to.email}")))

    def _invitees(self) -> list[Recipient]:
        """Who gets the invitation: the participants, and (newer runs) the consultant, a copy for their calendar."""
        if self._calendars_v2 and self._scoping.participant(self._scoping.consultant.email) is None:
            return [*self._participants(), self._consultant()]
        return self._participants()

    async def _invite(self) -> None:
        session = self._current_session()
        self._calendars_stay_right()
        await put_on_calendar(CalendarUpsert(engagement_id=self._id, entry=self._session_entry("REQUEST")),
                              f"Put the session on the calendar: {self._local(session.starts_at)} "
                              f"(sequence {session.sequence})")
        await asyncio.gather(*(self._invitation(p) for p in self._invitees()))
        self._invited_at = workflow.now()
        if self._calendars_v2:
            self._upsert_search_attributes()

    async def _withdraw_calendar_entries(self) -> None:
        """A cancel withdraws every calendar entry engage made: each gets METHOD:CANCEL with its SEQUENCE raised,
        and leaves the CalDAV calendar. The session too, even once held: the engagement is void, and a calendar
        that still shows it (or a CalDAV copy gone while mailboxes keep it) would disagree with every other."""
        session = self._session
        if session is not None:
            await asyncio.gather(*(self._invitation(p, method="CANCEL") for p in self._invitees()))
            await take_off_calendar(CalendarRemoval(engagement_id=self._id, uid=self._session_uid()),
                                    "Remove the session from the calendar")
        for view in self._actions.values():
            entry = self._due_entry(view, "CANCEL")
            owner = Recipient(name=view.owner.name, email=view.owner.email, timezone=view.owner.timezone)
            await send(self._message(
                ev.MessageKind.action_cancel, f"{view.action_id}/due/cancel", owner, calendar=entry,
                action_id=view.action_id, action_title=view.title, owner_name=view.owner.name, due=view.due,
                reason=self._cancel.reason if self._cancel else None,
                summary=f"Cancel the due date of '{view.title}' for {view.owner.email}"))
            await take_off_calendar(CalendarRemoval(engagement_id=self._id, uid=entry.uid),
                                    f"Remove the due date of '{view.title}' from the calendar")

    # --- RSVPs ------------------------------------------------------------------------------------------

    def _attendance(self) -> list[AttendanceView]:
        """Each participant's answer to the current invitation; an answer to an earlier date counts as none."""
        session = self._session
        result = []
        for p in self._participants():
            answer = self._rsvps.get(p.email)
            if answer is not None and session is not None and answer.sequence == session.sequence:
                result.append(answer)
            else:
                result.append(AttendanceView(email=p.email, name=p.name))
        return result

    def _rsvp_due(self) -> list[tuple[datetime, Recipient]]:
        """(when, whom) of the reminders still to send: one per participant who has not answered, three days
        before the session at their morning, when the invitation went out before then."""
        if not self._calendars_v2 or self._invited_at is None or self._session_changed:
            return []
        session = self._current_session()
        answered = {a.email for a in self._attendance() if a.attendance is not None}
        due = []
        for p in self._participants():
            if p.email in answered or f"{session.sequence}/{p.email}" in self._rsvp_reminded:
                continue
            at = rsvp_reminder_at(session.starts_at, p.timezone or session.timezone)
            if self._invited_at < at < session.starts_at:
                due.append((at, p))
        return due

    def _rsvp_deadlines(self) -> list[datetime]:
        return [at for at, _ in self._rsvp_due()]

    def _has_due_rsvp_reminders(self) -> bool:
        now = workflow.now()
        return any(at <= now for at in self._rsvp_deadlines())

    async def _send_due_rsvp_reminders(self, now: datetime) -> None:
        session = self._current_session()
        due = [p for at, p in self._rsvp_due() if at <= now]
        for p in due:
            self._rsvp_reminded.add(f"{session.sequence}/{p.email}")
        await asyncio.gather(*(send(self._message(
            ev.MessageKind.invitation_reminder, f"invitation/{session.sequence}/reminder/{p.email}", p,
            calendar=self._session_entry("REQUEST"), reply=self._invitation_reply(),
            summary=f"Remind {p.email} to answer the invitation")) for p in due))

    # --- pre-reads --------------------------------------------------------------------------------------

    def _preread_deadlines(self) -> list[datetime]:
        session = self._current_session()
        deadlines = []
        for p in self._prereads:
            if p.sent_at is None:
                deadlines.append(preread_send_at(session.starts_at, p.days_before))
            elif self._calendars_v2 and p.missing:
                deadlines += [at for at, _ in self._preread_reminders(p)]
            elif not self._calendars_v2 and not p.reminded and p.missing:
                deadlines.append(preread_reminder_at(p.sent_at, session.starts_at))
        return deadlines

    def _preread_reminders(self, p: PrereadView) -> list[tuple[datetime, Recipient]]:
        """(when, whom) of a pre-read's reminders still to send: at each reader's local morning."""
        assert p.sent_at is not None
        session = self._current_session()
        due = []
        for r in self._participants():
            if r.email in p.missing and r.email not in p.reminded_to:
                at = morning_reminder_at(p.sent_at, session.starts_at, r.timezone or session.timezone)
                if at is not None:
                    due.append((at, r))
        return due

    def _preread_reply(self, preread: PrereadView) -> ReplyScope:
        # "read" in a reply acknowledges this pre-read, until a week after the session.
        return ReplyScope(preread_id=preread.preread_id, expires_at=self._current_session().ends_at + timedelta(days=7))

    def _has_unsent_due_prereads(self) -> bool:
        now = workflow.now()
        return any(d <= now for d in self._preread_deadlines())

    async def _send_due_prereads(self, now: datetime) -> None:
        session = self._current_session()
        for p in self._prereads:
            if p.sent_at is None and now >= preread_send_at(session.starts_at, p.days_before):
                p.sent_at = now
                await asyncio.gather(*(send(self._message(
                    ev.MessageKind.preread, f"preread/{p.preread_id}/{to.email}", to,
                    preread_title=p.title, preread_url=p.url, reply=self._preread_reply(p),
                    summary=f"Send pre-read '{p.title}' to {to.email}")) for to in self._participants()))
            elif p.sent_at is not None and self._calendars_v2 and p.missing:
                due = [r for at, r in self._preread_reminders(p) if at <= now]
                p.reminded_to += [r.email for r in due]
                p.reminded = p.reminded or bool(due)
                await asyncio.gather(*(send(self._message(
                    ev.MessageKind.preread_reminder, f"preread/{p.preread_id}/reminder/{to.email}", to,
                    preread_title=p.title, preread_url=p.url, reply=self._preread_reply(p),
                    summary=f"Remind {to.email} of pre-read '{p.title}'")) for to in due))
            elif (p.sent_at is not None and not p.reminded and p.missing and not self._calendars_v2
                  and now >= preread_reminder_at(p.sent_at, session.starts_at)):
                p.reminded = True
                missing = [r for r in self._participants() if r.email in p.missing]
                await asyncio.gather(*(send(self._message(
                    ev.MessageKind.preread_reminder, f"preread/{p.preread_id}/reminder/{to.email}", to,
                    preread_title=p.title, preread_url=p.url, reply=self._preread_reply(p),
                    summary=f"Remind {to.email} of pre-read '{p.title}'")) for to in missing))

    # --- actions ----------------------------------------------------------------------------------------

    def _due_entry(self, view: ActionView, method: str = "REQUEST") -> CalendarEntry:
        consultant = self._scoping.consultant
        owner = Recipient(name=view.owner.name, email=view.owner.email, timezone=view.owner.timezone)
        return CalendarEntry(
            uid=f"{self._id}/{view.action_id}/due", summary=f"Due: {view.title}",
            sequence=1 if method == "CANCEL" else 0, method=method,  # type: ignore[arg-type]
            description=f"{view.metric.name}: from {view.metric.baseline:g} to {view.metric.target:g} "
                        f"{view.metric.unit}",
            all_day=view.due, timezone=view.owner.timezone,
            organizer=Recipient(name=consultant.name, email=consultant.email), attendees=[owner],
            rsvp=False,
        )

    async def _assign(self, view: ActionView) -> None:
        owner = Recipient(name=view.owner.name, email=view.owner.email, timezone=view.owner.timezone)
        entry = self._due_entry(view)
        await put_on_calendar(CalendarUpsert(engagement_id=self._id, entry=entry),
                              f"Put the due date of '{view.title}' ({view.due}) on the calendar")
        await send(self._message(
            ev.MessageKind.action_assignment, f"{view.action_id}/assignment", owner, calendar=entry,
            action_id=view.action_id, action_title=view.title, owner_name=view.owner.name, due=view.due,
            metric_name=view.metric.name, unit=view.metric.unit, baseline=view.metric.baseline,
            target=view.metric.target,
            summary=f"Assign '{view.title}' to {view.owner.email}, due {view.due}"))

    async def _send_report(self) -> None:
        summaries = [ActionSummary(action_id=v.action_id, title=v.title, owner_name=v.owner.name,
                                   status=v.status.value, last_value=v.last_value, baseline=v.metric.baseline,
                                   target=v.metric.target, unit=v.metric.unit, due=v.due)
                     for v in self._actions.values()]
        sponsor, consultant = self._scoping.sponsor, self._scoping.consultant
        readers = [Recipient(name=sponsor.name, email=sponsor.email, timezone=sponsor.timezone),
                   Recipient(name=consultant.name, email=consultant.email, timezone=consultant.timezone)]
        await asyncio.gather(*(send(self._message(
            ev.MessageKind.report, f"report/{r.email}", r, actions=summaries,
            reason=self._cancel.reason if self._cancel else None,
            summary=f"Send the follow-through report to {r.email}")) for r in readers))
