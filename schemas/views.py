"""What the engagement shows: its status (the `status` query) with the session, pre-reads, attendance and each
action's view, and what the CLI prints (a start, the list, a timeline, a preview)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from schemas.answers import AnswerResult
from schemas.events import Phase, StoredEvent
from schemas.outcomes import Metric, Owner
from schemas.recommendation import Agenda, EngagementFormat, Recommendation
from schemas.scoping import Consultant, Person
from schemas.status import ActionStatus


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
