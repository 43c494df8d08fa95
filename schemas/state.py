"""Workflow inputs, update payloads, and the status views the CLI shows (the `status` query returns them)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from schemas.answers import AnswerResult
from schemas.common import MAX_VALUE as MAX_VALUE  # the check-in page and the CLI import it from here
from schemas.common import ActionId, Email, LocalTime, LongText, Slug, StrictModel, Text, Value, WebUrl
from schemas.events import Phase, StoredEvent
from schemas.outcomes import Metric, Outcomes, Owner
from schemas.recommendation import Agenda, EngagementFormat, Recommendation
from schemas.scoping import Consultant, Person, Scoping
from schemas.status import ActionStatus

# --- inputs -------------------------------------------------------------------------------------------


class EngagementInput(BaseModel):
    engagement_id: Slug
    scoping: Scoping


class ActionView(BaseModel):
    """One action as its follow-through sees it; the parent keeps the latest copy for `status`."""

    action_id: str
    title: str
    owner: Owner
    due: date
    metric: Metric
    assigned_at: datetime
    status: ActionStatus = ActionStatus.no_data
    last_value: float | None = None
    last_reported_at: datetime | None = None
    next_checkin_at: datetime | None = None
    checkins_sent: int = 0
    missed_in_row: int = 0
    escalations: int = 0
    values_received: int = 0
    snoozes: int = 0
    closed_reason: Literal["achieved", "horizon", "cancelled"] | None = None
    blocked_reason: str | None = Field(default=None, description="set by a `blocked` answer, cleared by a value")
    answers: list[AnswerResult] = Field(
        default_factory=list,
        description="the verdicts on the latest answers (value, snooze, blocked), newest last; "
                    "each update waits for its own")


class FollowThroughCarry(BaseModel):
    """What continue-as-new carries to the next run of a follow-through."""

    view: ActionView
    pending_number: int | None = None
    answered: bool = True
    reminder_at: datetime | None = None
    reminded: bool = False


class FollowThroughInput(BaseModel):
    engagement_id: str
    parent_workflow_id: str
    client: str
    consultant: Consultant
    sponsor: Person
    action: ActionView
    cadence: timedelta
    local_time: time
    whole_days: bool
    horizon_end: datetime
    escalate_after_missed: int
    carry: FollowThroughCarry | None = None
    # Set by parents that plan the first check-in themselves and take the closed view from the child's result:
    # the child then sends neither of those two signals. Absent (False) from the inputs older parents sent.
    parent_reads_result: bool = False
    # Set by parents that hear only what matters (issue 18: a value, a snooze, a block, a status change, the
    # close): a routine check-in, reminder or escalation wakes only the action's own workflow, which shows its
    # next check-in and status in its own search attributes. Absent (False) from the inputs older parents sent.
    parent_hears_what_matters: bool = False


# --- updates (human steps) --------------------------------------------------------------------------


class ChooseFormat(StrictModel):
    format: EngagementFormat
    reason: Text | None = None


class ScheduleSession(StrictModel):
    on: date
    at: LocalTime | None = Field(default=None, description="the start; absent: the scoping's day_starts (09:00)")
    days: float | None = Field(default=None, gt=0, le=14, allow_inf_nan=False)


class AddPreread(StrictModel):
    title: Text
    url: WebUrl
    days_before: int = Field(default=7, ge=0, le=90)


class AcknowledgePreread(StrictModel):
    participant: Email
    preread_id: str | None = None


class RecordOutcomes(StrictModel):
    outcomes: Outcomes


# The answer id of an owner's input is the id of the update that carried it: the parent sets it, and the
# follow-through's verdict on the input is kept under it (ActionView.answers).
AnswerSource = Literal["cli", "email", "page"]


class ReportMetric(StrictModel):
    action_id: ActionId
    value: Value
    note: LongText | None = None
    source: AnswerSource = "cli"
    answer_id: str | None = None


class SnoozeAction(StrictModel):
    action_id: ActionId
    days: int = Field(ge=1, le=365)
    source: AnswerSource = "cli"
    answer_id: str | None = None


class BlockAction(StrictModel):
    action_id: ActionId
    reason: Text
    source: AnswerSource = "cli"
    answer_id: str | None = None


class RecordRsvp(StrictModel):
    """An attendee's RSVP, read from the iMIP REPLY (or COUNTER) their calendar sent (adapters/inbound.py)."""

    attendee: Email
    attendance: Literal["accepted", "declined", "tentative"]
    sequence: int = Field(default=0, ge=0, le=1_000_000)
    method: Literal["REPLY", "COUNTER"] = "REPLY"
    comment: LongText | None = None
    proposed_starts_at: datetime | None = None
    proposed_ends_at: datetime | None = None
    answer_id: str | None = None


class CancelEngagement(StrictModel):
    reason: Text


# --- views -----------------------------------------------------------------------------------------------


class SessionPlan(BaseModel):
    starts_at: datetime
    ends_at: datetime
    days: float
    timezone: str
    sequence: int = 0
    # The agenda as it is held: built for the scheduled days and start. Absent from plans made before it was kept.
    agenda: Agenda | None = None


class AttendanceView(BaseModel):
    """One participant's answer to the current invitation; `attendance` None: no answer yet."""

    email: str
    name: str
    attendance: Literal["accepted", "declined", "tentative"] | None = None
    answered_at: datetime | None = None
    sequence: int | None = None
    comment: str | None = None
    proposed_starts_at: datetime | None = None
    proposed_ends_at: datetime | None = None


class PrereadView(BaseModel):
    preread_id: str
    title: str
    url: str
    days_before: int
    sent_at: datetime | None = None
    reminded: bool = False
    reminded_to: list[str] = Field(default_factory=list, description="reminded at their own morning (newer runs)")
    acknowledged: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)


class EngagementStatus(BaseModel):
    engagement_id: str
    client: str
    timezone: str
    consultant: Consultant
    sponsor: Person
    phase: Phase
    recommendation: Recommendation
    format: EngagementFormat | None = None
    session: SessionPlan | None = None
    prereads: list[PrereadView] = Field(default_factory=list)
    attendance: list[AttendanceView] = Field(default_factory=list, description="the participants' RSVPs")
    actions: list[ActionView] = Field(default_factory=list)
    cancel_reason: str | None = None
    outcomes_recorded_at: datetime | None = None
    horizon_end: datetime | None = None


class StartResult(BaseModel):
    engagement_id: str
    workflow_id: str
    recommendation: Recommendation


class EngagementListItem(BaseModel):
    engagement_id: str
    client: str
    phase: Phase
    format: str | None = None
    session_starts_at: datetime | None = None
    next_checkin_at: datetime | None = None
    actions_at_risk: int = 0
    updated_at: datetime


class EngagementList(BaseModel):
    engagements: list[EngagementListItem]


class Timeline(BaseModel):
    engagement_id: str
    events: list[StoredEvent]


class PreviewItem(BaseModel):
    """One thing the engagement would do: an email, a calendar entry, a log event."""

    at: datetime
    local_time: str = Field(description="the time in the recipient's (or the client's) zone")
    kind: str
    recipient: str | None = None
    subject: str
    action_id: str | None = None


class Preview(BaseModel):
    engagement_id: str
    format: str
    session_starts_at: datetime
    horizon_end: datetime | None = None
    items: list[PreviewItem]
