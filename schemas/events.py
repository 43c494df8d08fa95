"""Every event of an engagement: one model per type, a discriminated union on `type`.

Events are appended to the Postgres log by the store activity; read models are projections of them.
Each carries a deterministic `key` (engagement + logical step) so a retried append writes nothing twice.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter, model_validator

from schemas.names import Phase
from schemas.outcomes import Metric, Outcomes, Owner
from schemas.recommendation import Agenda, EngagementFormat, Recommendation
from schemas.scoping import Scoping
from schemas.status import ActionStatus


class MessageKind(StrEnum):
    invitation = "invitation"
    invitation_cancel = "invitation_cancel"
    preread = "preread"
    preread_reminder = "preread_reminder"
    action_assignment = "action_assignment"
    checkin_request = "checkin_request"
    checkin_reminder = "checkin_reminder"
    escalation = "escalation"
    action_blocked = "action_blocked"
    answer = "answer"
    outcomes_reminder = "outcomes_reminder"
    report = "report"
    invitation_reminder = "invitation_reminder"
    rsvp_declined = "rsvp_declined"
    action_cancel = "action_cancel"


class EngagementStarted(BaseModel):
    type: Literal["engagement_started"] = "engagement_started"
    scoping: Scoping
    recommendation: Recommendation


class PhaseEntered(BaseModel):
    type: Literal["phase_entered"] = "phase_entered"
    phase: Phase


class FormatChosen(BaseModel):
    type: Literal["format_chosen"] = "format_chosen"
    format: EngagementFormat
    recommended: EngagementFormat
    reason: str | None = None


class SessionScheduled(BaseModel):
    type: Literal["session_scheduled"] = "session_scheduled"
    starts_at: datetime
    ends_at: datetime
    timezone: str
    days: float
    sequence: int = Field(ge=0, description="ICS SEQUENCE: raised on every reschedule")
    agenda: Agenda | None = Field(default=None, description="the agenda as held; absent from older logs")


class PrereadAdded(BaseModel):
    type: Literal["preread_added"] = "preread_added"
    preread_id: str
    title: str
    url: str
    days_before: int


class PrereadAcknowledged(BaseModel):
    type: Literal["preread_acknowledged"] = "preread_acknowledged"
    preread_id: str
    email: str


Attendance = Literal["accepted", "declined", "tentative"]


class RsvpRecorded(BaseModel):
    """An attendee's answer to the invitation (an iMIP REPLY, or a COUNTER proposing another time)."""

    type: Literal["rsvp_recorded"] = "rsvp_recorded"
    email: str
    attendance: Attendance
    sequence: int = Field(ge=0, description="the SEQUENCE of the invitation answered")
    method: Literal["REPLY", "COUNTER"] = "REPLY"
    comment: str | None = None
    proposed_starts_at: datetime | None = None
    proposed_ends_at: datetime | None = None


class MessageSent(BaseModel):
    type: Literal["message_sent"] = "message_sent"
    message_id: str
    kind: MessageKind
    recipients: list[str]
    subject: str
    action_id: str | None = None


class OutcomesRecorded(BaseModel):
    type: Literal["outcomes_recorded"] = "outcomes_recorded"
    outcomes: Outcomes


class ActionAssigned(BaseModel):
    type: Literal["action_assigned"] = "action_assigned"
    action_id: str
    title: str
    owner: Owner
    due: date
    metric: Metric
    assigned_at: datetime


class CheckInScheduled(BaseModel):
    type: Literal["checkin_scheduled"] = "checkin_scheduled"
    action_id: str
    number: int
    at: datetime


class CheckInRequested(BaseModel):
    type: Literal["checkin_requested"] = "checkin_requested"
    action_id: str
    number: int


class MetricReported(BaseModel):
    type: Literal["metric_reported"] = "metric_reported"
    action_id: str
    value: float
    note: str | None = None
    status: ActionStatus
    source: str = "cli"
    answer_id: str | None = None


class CheckInMissed(BaseModel):
    type: Literal["checkin_missed"] = "checkin_missed"
    action_id: str
    number: int
    missed_in_row: int


class ActionEscalated(BaseModel):
    type: Literal["action_escalated"] = "action_escalated"
    action_id: str
    missed_in_row: int


class ActionSnoozed(BaseModel):
    type: Literal["action_snoozed"] = "action_snoozed"
    action_id: str
    days: int
    next_checkin_at: datetime
    answer_id: str | None = None


class ActionBlocked(BaseModel):
    """The owner says the action is blocked; the consultant is told at once."""

    type: Literal["action_blocked"] = "action_blocked"
    action_id: str
    reason: str
    answer_id: str | None = None


class ActionClosed(BaseModel):
    type: Literal["action_closed"] = "action_closed"
    action_id: str
    status: ActionStatus
    reason: Literal["achieved", "horizon", "cancelled"]


class EngagementCancelled(BaseModel):
    type: Literal["engagement_cancelled"] = "engagement_cancelled"
    reason: str


class EngagementClosed(BaseModel):
    type: Literal["engagement_closed"] = "engagement_closed"


Event = Annotated[
    EngagementStarted
    | PhaseEntered
    | FormatChosen
    | SessionScheduled
    | PrereadAdded
    | PrereadAcknowledged
    | RsvpRecorded
    | MessageSent
    | OutcomesRecorded
    | ActionAssigned
    | CheckInScheduled
    | CheckInRequested
    | MetricReported
    | CheckInMissed
    | ActionEscalated
    | ActionSnoozed
    | ActionBlocked
    | ActionClosed
    | EngagementCancelled
    | EngagementClosed,
    Field(discriminator="type"),
]


class NewEvent(BaseModel):
    """An event on its way to the log. `key` makes the append idempotent."""

    key: str = Field(min_length=1, max_length=300)
    occurred_at: datetime
    event: Event


class AppendBatch(BaseModel):
    engagement_id: str
    events: list[NewEvent]


class Appended(BaseModel):
    """What append_events answers: the log's sequence numbers, and when the activity finished (a time the
    workflow can trust to have passed, since it is in the history: workflows/follow_through.py decides by it)."""

    seqs: list[int]
    at: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_list(cls, data: Any) -> Any:
        # Histories recorded before this model carry a bare list of sequence numbers.
        return {"seqs": data} if isinstance(data, list) else data


class StoredEvent(BaseModel):
    engagement_id: str
    seq: int
    key: str
    occurred_at: datetime
    recorded_at: datetime
    event: Event


EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
