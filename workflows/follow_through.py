"""An action's follow-through, from assignment to achieved, the horizon, or a cancel: its rules (`FollowThrough`),
run as a track of its engagement's check-in loop (workflows/checkin_loop.py, since CHECKINS_IN_ONE_LOOP) or, in
engagements begun before it, in a workflow of its own (`ActionFollowThroughWorkflow`).

Check-in requests go out at the cadence, at the owner's local time; one reminder when a request goes
unanswered; after `escalate_after_missed` misses in a row the sponsor is told. Values and snoozes arrive as
signals from the parent (which validated them). Continue-as-new keeps each run's history short.

The parent hears only what matters (`FollowThroughInput.parent_hears_what_matters`, set by newer parents): a
value, a snooze, a block (each with its verdict), and the close. A routine check-in, reminder or escalation
wakes this workflow alone, which shows its status and next check-in in its own details and search attributes
(docs/BENCHMARKS.md: the parent's cold replay per check-in was the largest cost of a burst).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.schedule import following_checkin, local_label, next_checkin, snoozed
    from domain.status import action_status, due_datetime
    from schemas import events as ev
    from schemas.answers import AnswerResult
    from schemas.inputs import FollowThroughCarry, FollowThroughInput
    from schemas.messages import MessageContext, OutboundMessage, Recipient, ReplyScope
    from schemas.status import ActionStatus
    from schemas.telemetry import CHECKINS_RECEIVED, ESCALATIONS
    from schemas.updates import BlockAction, ReportMetric, SnoozeAction
    from schemas.views import ActionView
    from workflows import search_attributes as sa
    from workflows.steps import record, send

# A run hands over to a fresh one after this many check-ins (a 52-week weekly action: about every 6 months).
CHECKINS_PER_RUN = 26
# workflow.patched ids: each guards a change of commands, so histories of older runs still replay.
CHECKIN_IN_ONE_ACTIVITY = "checkin-in-one-activity"
CLOCK_FROM_HISTORY = "clock-from-history"
# The verdicts kept on the view: enough for every update waiting on one, small enough for every signal.
ANSWERS_KEPT = 50


def _count(counter: tuple[str, str], label: str) -> None:
    # Workflow metrics are not emitted during replay, so each event is counted once.
    name, description = counter
    workflow.metric_meter().create_counter(name, description).add(1, {"source": label})


class FollowThrough:
    """One action's follow-through: its state and every rule of its check-ins, reminders, misses, escalations,
    values, snoozes, blocks and close. Run by its own workflow (ActionFollowThroughWorkflow) or, since
    CHECKINS_IN_ONE_LOOP, as one of the tracks of its engagement's check-in loop (workflows/checkin_loop.py),
    which overrides how it records, sends, waits and tells."""

    def __init__(self, inp: FollowThroughInput) -> None:
        self._in = inp
        carry = inp.carry or FollowThroughCarry(view=inp.action)
        self._view: ActionView = carry.view
        self._pending: int | None = carry.pending_number
        self._answered = carry.answered
        self._reminder_at: datetime | None = carry.reminder_at
        self._reminded = carry.reminded
        self._values: list[ReportMetric] = []
        self._snoozes: list[SnoozeAction] = []
        self._blocks: list[BlockAction] = []
        self._stop_requested = False
        self._reached: datetime | None = None  # the deadline of the last timer that fired
        # The latest time the history proves has passed (`_now`): the run's start (its first event's time), a
        # fired timer's deadline, a finished activity's time.
        self._known: datetime = workflow.info().workflow_start_time
        self._by_history = False  # decisions by `_known` (CLOCK_FROM_HISTORY), decided once per run
        self._attributes: dict[str, object] = {}  # the search attributes this run has set (`_publish`)

    def take(self, request: ReportMetric | SnoozeAction | BlockAction) -> None:
        """An owner's input, validated by the engagement, applied at the run's next step."""
        if isinstance(request, ReportMetric):
            self._values.append(request)
        elif isinstance(request, SnoozeAction):
            self._snoozes.append(request)
        else:
            self._blocks.append(request)

    def stop(self) -> None:
        self._stop_requested = True

    def _has_inputs(self) -> bool:
        return bool(self._values or self._snoozes or self._blocks or self._stop_requested)

    # --- the run ------------------------------------------------------------------------------------------

    async def follow(self) -> ActionView:
        inp = self._in
        if self._view.next_checkin_at is None and self._view.checkins_sent == 0:
            await self._schedule_first_checkin()
        self._publish()
        sent_this_run = 0
        while self._view.closed_reason is None:
            await self._apply_inputs()
            if self._view.closed_reason is not None:
                break
            now = self._now()
            if self._stop_requested:
                await self._close("cancelled")
            elif now >= inp.horizon_end:
                await self._close("horizon")
            elif self._view.next_checkin_at is not None and now >= self._view.next_checkin_at:
                await self._checkin_due()
                sent_this_run += 1
                if sent_this_run >= CHECKINS_PER_RUN or workflow.info().is_continue_as_new_suggested():
                    await self._continue_as_new()
            elif self._reminder_due(now):
                await self._send_reminder()
            else:
                await self._wait_until(self._next_deadline())
        self._reject_pending()
        self._publish()
        if not self._in.parent_reads_result:
            await self._tell_parent()
        return self._view

    def _label(self, at: datetime) -> str:
        return local_label(at, self._view.owner.timezone)

    def _next_checkin_after(self, at: datetime) -> datetime:
        inp = self._in
        return next_checkin(at, inp.cadence, inp.local_time, self._view.owner.timezone, inp.whole_days)

    async def _schedule_first_checkin(self) -> None:
        first = self._next_checkin_after(self._view.assigned_at)
        self._view.next_checkin_at = first
        await self._record(
                     (f"{self._view.action_id}/checkin/1/scheduled",
                      ev.CheckInScheduled(action_id=self._view.action_id, number=1, at=first)),
                     summary=f"Plan check-in 1 of '{self._view.title}' for {self._label(first)}")
        if not self._in.parent_reads_result:
            await self._tell_parent()

    def _reminder_due(self, now: datetime) -> bool:
        return (self._pending is not None and not self._answered and not self._reminded
                and self._reminder_at is not None and now >= self._reminder_at)

    def _next_deadline(self) -> datetime:
        deadlines = [self._in.horizon_end]
        if self._view.next_checkin_at is not None:
            deadlines.append(self._view.next_checkin_at)
        if self._pending is not None and not self._answered and not self._reminded and self._reminder_at:
            deadlines.append(self._reminder_at)
        return min(deadlines)

    def _now(self) -> datetime:
        """The time every decision of the run goes by.

        Since CLOCK_FROM_HISTORY: the latest time the history proves has passed, `_known` (the run's start, the
        deadline of a timer that fired, the time an activity finished), never `workflow.now()`. The SDK's
        clock is not always the history's: on a fresh worker, the task that followed a 30 s activity got the time
        of the task before; the live task sent a check-in that its replay, with the right time, closed at the
        horizon instead (CI's chaos test: "Non-deprecated patch marker encountered"). What the history holds,
        the live task and every replay read alike.

        Before it: `workflow.now()`, but never before the deadline of a timer that has fired (a stale clock after
        a sticky task's schedule-to-start timeout, "Activity machine does not handle this event: TimerStarted")."""
        if self._by_history:
            return self._known
        now = workflow.now()
        return max(now, self._reached) if self._reached is not None else now

    def _saw(self, at: datetime | None) -> None:
        """`at` has passed: an activity finished then (None in histories recorded before activities said so), or
        a timer with that deadline fired."""
        if at is not None and at > self._known:
            self._known = at

    async def _record(self, *items: tuple[str, ev.Event], summary: str | None = None) -> None:
        self._saw(await record(self._in.engagement_id, *items, summary=summary))

    async def _send(self, message: OutboundMessage, *items: tuple[str, ev.Event]) -> None:
        self._saw((await send(message, *items)).at)

    async def _wait_until(self, deadline: datetime) -> None:
        timeout = deadline - workflow.now()
        if self._by_history:
            # A deadline past by the SDK's clock but not by the history's still gets its timer, a short one: its
            # firing is what proves the deadline passed. Only the timer's length comes from workflow.now(), and
            # a replay does not compare lengths.
            timeout = max(timeout, timedelta(milliseconds=1))
        elif timeout <= timedelta(0):
            return
        what = "the horizon" if deadline == self._in.horizon_end else self._label(deadline)
        try:
            await workflow.wait_condition(
                self._has_inputs,
                timeout=timeout,
                timeout_summary=f"Wait for a value of '{self._view.title}' until {what}",
            )
        except TimeoutError:
            self._reached = deadline
            self._saw(deadline)

    # --- inputs -----------------------------------------------------------------------------------------

    async def _apply_inputs(self) -> None:
        while self._values:
            await self._apply_value(self._values.pop(0))
            if self._view.closed_reason is not None:
                return
        while self._snoozes:
            await self._apply_snooze(self._snoozes.pop(0))
        while self._blocks:
            await self._apply_block(self._blocks.pop(0))

    def _verdict(self, answer_id: str | None, outcome: str, kind: str, detail: str) -> None:
        """Keep the verdict on an answer, so the update that carried it can tell its sender."""
        if answer_id is None:
            return
        answers = self._view.answers
        answers.append(AnswerResult(answer_id=answer_id, outcome=outcome, kind=kind,  # type: ignore[arg-type]
                                    detail=detail))
        del answers[:-ANSWERS_KEPT]

    def _reject_pending(self) -> None:
        """Inputs that arrived after the action closed are refused, by name: never acknowledged and dropped."""
        closed = f"{self._view.action_id} closed ({self._view.closed_reason})"
        for value in self._values:
            self._verdict(value.answer_id, "rejected", "value", f"{closed} before this value ({value.value:g})")
        for snooze in self._snoozes:
            self._verdict(snooze.answer_id, "rejected", "snooze", f"{closed} before this snooze")
        for block in self._blocks:
            self._verdict(block.answer_id, "rejected", "blocked", f"{closed} before this report")
        self._values, self._snoozes, self._blocks = [], [], []

    async def _apply_value(self, value: ReportMetric) -> None:
        view = self._view
        now = workflow.now()
        status = action_status(view.metric, value.value, view.assigned_at,
                               due_datetime(view.due, view.owner.timezone), now)
        view.values_received += 1
        _count(CHECKINS_RECEIVED, value.source)
        view.last_value = value.value
        view.last_reported_at = now
        view.status = status
        view.missed_in_row = 0
        view.blocked_reason = None
        self._answered = True
        await self._record(
                     (f"{view.action_id}/value/{view.values_received}",
                      ev.MetricReported(action_id=view.action_id, value=value.value, note=value.note,
                                        status=status, source=value.source, answer_id=value.answer_id)),
                     summary=f"Record {value.value:g} {view.metric.unit} for '{view.title}': {status.value}")
        self._verdict(value.answer_id, "applied", "value",
                      f"recorded {value.value:g} {view.metric.unit} for {view.action_id}: {status.value}")
        if status is ActionStatus.achieved:
            await self._close("achieved")
        else:
            await self._tell_parent()

    async def _apply_snooze(self, request: SnoozeAction) -> None:
        view = self._view
        if view.next_checkin_at is None:
            self._verdict(request.answer_id, "rejected", "snooze", f"{view.action_id} has no check-in left to snooze")
            return
        inp = self._in
        moved = snoozed(view.next_checkin_at, request.days, inp.local_time, view.owner.timezone, inp.whole_days)
        view.next_checkin_at = moved
        view.snoozes += 1
        await self._record(
                     (f"{view.action_id}/snooze/{view.snoozes}",
                      ev.ActionSnoozed(action_id=view.action_id, days=request.days, next_checkin_at=moved,
                                       answer_id=request.answer_id)),
                     summary=f"Snooze '{view.title}' {request.days} days, to {self._label(moved)}")
        self._verdict(request.answer_id, "applied", "snooze",
                      f"{view.action_id} snoozed {request.days} days: next check-in {self._label(moved)}")
        await self._tell_parent()

    async def _apply_block(self, request: BlockAction) -> None:
        """The owner reports the action blocked: logged, and the consultant told at once."""
        view = self._view
        inp = self._in
        view.blocked_reason = request.reason
        step = f"blocked/{request.answer_id or view.checkins_sent}"
        await self._record(
                     (f"{view.action_id}/{step}",
                      ev.ActionBlocked(action_id=view.action_id, reason=request.reason, answer_id=request.answer_id)),
                     summary=f"Record '{view.title}' blocked: {request.reason}")
        consultant = inp.consultant
        await self._send(self._message(
            ev.MessageKind.action_blocked, step, view.checkins_sent,
            to=Recipient(name=consultant.name, email=consultant.email, timezone=consultant.timezone),
            reason=request.reason,
            summary=f"Tell {consultant.email} that '{view.title}' is blocked"))
        self._verdict(request.answer_id, "applied", "blocked",
                      f"{view.action_id} reported blocked; {consultant.name} has been told")
        await self._tell_parent()

    # --- check-ins --------------------------------------------------------------------------------------

    async def _checkin_due(self) -> None:
        view = self._view
        inp = self._in
        if self._pending is not None and not self._answered:
            await self._missed(self._pending)
        number = view.checkins_sent + 1
        due_at = view.next_checkin_at or workflow.now()
        upcoming = following_checkin(due_at, inp.cadence, inp.local_time, view.owner.timezone, inp.whole_days,
                                     inp.horizon_end)
        items: list[tuple[str, ev.Event]] = [
            (f"{view.action_id}/checkin/{number}/requested",
             ev.CheckInRequested(action_id=view.action_id, number=number)),
        ]
        if upcoming is not None:
            items.append((f"{view.action_id}/checkin/{number + 1}/scheduled",
                          ev.CheckInScheduled(action_id=view.action_id, number=number + 1, at=upcoming)))
        request = self._message(ev.MessageKind.checkin_request, f"checkin/{number}", number,
                                summary=f"Check-in {number} of '{view.title}' to {view.owner.email}, "
                                        f"{self._label(due_at)}")
        # Newer runs append the check-in's events in the activity that sends the request: one activity and one
        # workflow task fewer per check-in (a burst of check-ins is mostly workflow tasks).
        in_one = self._checkin_in_one_activity()
        await self._send(request, *(items if in_one else ()))
        view.checkins_sent = number
        view.next_checkin_at = upcoming
        self._pending, self._answered, self._reminded = number, False, False
        sent_at = self._known if self._by_history else workflow.now()  # after the send: its finishing time
        self._reminder_at = sent_at + min(inp.cadence / 2, timedelta(days=3))
        if not in_one:
            await self._record(*items)
        if inp.parent_hears_what_matters:
            self._publish()  # a routine check-in: the parent is not woken for it
        else:
            await self._tell_parent()

    async def _send_reminder(self) -> None:
        assert self._pending is not None
        self._reminded = True
        await self._send(self._message(ev.MessageKind.checkin_reminder, f"checkin/{self._pending}/reminder",
                                 self._pending,
                                 summary=f"Remind {self._view.owner.email} of check-in {self._pending} "
                                         f"of '{self._view.title}'"))

    async def _missed(self, number: int) -> None:
        view = self._view
        inp = self._in
        view.missed_in_row += 1
        items: list[tuple[str, ev.Event]] = [
            (f"{view.action_id}/checkin/{number}/missed",
             ev.CheckInMissed(action_id=view.action_id, number=number, missed_in_row=view.missed_in_row)),
        ]
        escalate = view.missed_in_row % inp.escalate_after_missed == 0
        if escalate:
            view.escalations += 1
            _count(ESCALATIONS, "sponsor")
            items.append((f"{view.action_id}/escalation/{number}",
                          ev.ActionEscalated(action_id=view.action_id, missed_in_row=view.missed_in_row)))
        await self._record(*items)
        if escalate:
            sponsor = inp.sponsor
            await self._send(self._message(
                ev.MessageKind.escalation, f"escalation/{number}", number,
                to=Recipient(name=sponsor.name, email=sponsor.email, timezone=sponsor.timezone),
                cc=[Recipient(name=inp.consultant.name, email=inp.consultant.email)],
                summary=f"Escalate '{view.title}' to {sponsor.email}: {view.missed_in_row} check-ins missed",
            ))

    def _message(self, kind: ev.MessageKind, step: str, number: int, *, to: Recipient | None = None,
                 cc: list[Recipient] | None = None, reason: str | None = None, summary: str) -> OutboundMessage:
        view = self._view
        inp = self._in
        owner = Recipient(name=view.owner.name, email=view.owner.email, timezone=view.owner.timezone)
        recipient = to or owner
        reply = None
        if recipient is owner or kind is ev.MessageKind.escalation:
            # A reply or the page may answer this check-in until the horizon (and a week after, for late
            # answers); the sponsor's escalation carries a link of their own.
            reply = ReplyScope(action_id=view.action_id, number=number,
                               expires_at=inp.horizon_end + timedelta(days=7))
        return OutboundMessage(
            engagement_id=inp.engagement_id,
            key=f"{inp.engagement_id}/{view.action_id}/{step}",
            kind=kind,
            to=recipient,
            cc=cc or [],
            reply=reply,
            action_id=view.action_id,
            summary=summary,
            context=MessageContext(
                client=inp.client, engagement_id=inp.engagement_id, recipient_name=recipient.name,
                consultant_name=inp.consultant.name, action_id=view.action_id, action_title=view.title,
                owner_name=view.owner.name, due=view.due, metric_name=view.metric.name,
                unit=view.metric.unit, baseline=view.metric.baseline, target=view.metric.target,
                last_value=view.last_value, status=view.status.value, checkin_number=number,
                missed_in_row=view.missed_in_row,
                checkin_label=self._label(view.next_checkin_at or workflow.now()),
                reason=reason,
            ),
        )

    # --- the end ----------------------------------------------------------------------------------------

    async def _close(self, reason: str) -> None:
        view = self._view
        view.closed_reason = reason  # type: ignore[assignment]
        view.next_checkin_at = None
        await self._record(
                     (f"{view.action_id}/closed",
                      ev.ActionClosed(action_id=view.action_id, status=view.status,
                                      reason=reason)),  # type: ignore[arg-type]
                     summary=f"Close '{view.title}': {reason}, {view.status.value}")

    async def _tell_parent(self) -> None:
        self._publish()
        parent_workflow = engagement.EngagementWorkflow
        parent = workflow.get_external_workflow_handle_for(parent_workflow.run, self._in.parent_workflow_id)
        await parent.signal(parent_workflow.action_changed, self._view)

    def _publish(self) -> None:
        """The action's own status and next check-in, for parents that hear only what matters (older runs never
        set them, and their histories stay as recorded): in its details in the UI (not a command), and in its own
        search attributes, so that `NextCheckInAt < "..."` finds the actions due and `ActionsAtRisk` the ones at
        risk. An unchanged attribute is not upserted again.

        A follow-through that upserted these beside its timer was once blamed for a replay failure under SIGKILL
        storms; the failure was a stale `workflow.now()`, and deciding by the history's time (CLOCK_FROM_HISTORY)
        closed it (docs/BENCHMARKS.md, "Tried and dropped")."""
        if not self._in.parent_hears_what_matters:
            return
        view = self._view
        open_ = view.closed_reason is None
        sa.upsert_changed(self._attributes, {
            sa.CLIENT_NAME.name: self._in.client,
            sa.NEXT_CHECKIN_AT.name: view.next_checkin_at if open_ else None,
            sa.ACTIONS_AT_RISK.name: int(view.status is ActionStatus.at_risk and open_),
        })
        next_line = self._label(view.next_checkin_at) if view.next_checkin_at else "none"
        state = f"closed ({view.closed_reason})" if view.closed_reason else view.status.value.replace("_", " ")
        workflow.set_current_details(
            f"**Status:** {state}\n\n**Check-ins sent:** {view.checkins_sent}, missed in a row "
            f"{view.missed_in_row}, escalations {view.escalations}\n\n**Next check-in:** {next_line}")

    async def _continue_as_new(self) -> None:
        # Values and snoozes that arrived during this run are applied here, not lost with it.
        await self._apply_inputs()
        if self._view.closed_reason is not None:
            return
        await workflow.wait_condition(workflow.all_handlers_finished)
        carry = FollowThroughCarry(view=self._view, pending_number=self._pending, answered=self._answered,
                                   reminder_at=self._reminder_at, reminded=self._reminded)
        workflow.continue_as_new(self._in.model_copy(update={"carry": carry}))

    def _checkin_in_one_activity(self) -> bool:
        return workflow.patched(CHECKIN_IN_ONE_ACTIVITY)


@workflow.defn
class ActionFollowThroughWorkflow(FollowThrough):
    """One action's follow-through in a workflow of its own: every engagement begun before CHECKINS_IN_ONE_LOOP
    (workflows/engagement.py), whose follow-throughs keep running as they began."""

    @workflow.init
    def __init__(self, inp: FollowThroughInput) -> None:
        super().__init__(inp)

    # --- inputs from the parent -----------------------------------------------------------------------

    @workflow.signal
    def report(self, value: ReportMetric) -> None:
        self.take(value)

    @workflow.signal
    def snooze(self, request: SnoozeAction) -> None:
        self.take(request)

    @workflow.signal
    def block(self, request: BlockAction) -> None:
        self.take(request)

    @workflow.signal
    def stop(self) -> None:
        super().stop()

    @workflow.query
    def view(self) -> ActionView:
        return self._view

    @workflow.run
    async def run(self, inp: FollowThroughInput) -> ActionView:
        # Runs recorded before this patch keep deciding by workflow.now() (`_now`) until they continue as new.
        self._by_history = workflow.patched(CLOCK_FROM_HISTORY)
        return await self.follow()


# The parent, by reference for its signal. Imported last, as a module: workflows/engagement.py imports this module
# for its children, and whichever of the two loads first, the other is then only partly initialised. Passed
# through, so that the sandbox does not run the engagement's module again for every follow-through it rebuilds
# (as workflows/checkin_loop.py).
with workflow.unsafe.imports_passed_through():
    import workflows.engagement as engagement  # noqa: E402
