"""The payloads of the engagement's updates: the consultant's steps (choose, schedule, pre-reads, outcomes,
cancel) and the owners' and participants' answers (a value, a snooze, a block, an RSVP), validated before
anything is written to history."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from schemas.common import ActionId, Email, LocalTime, LongText, StrictModel, Text, Value, WebUrl
from schemas.outcomes import Outcomes
from schemas.recommendation import EngagementFormat


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
