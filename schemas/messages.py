"""What the workflows ask the notify and calendar activities to do. The adapters render and deliver it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import MessageKind, NewEvent


class Recipient(BaseModel):
    name: str
    email: str
    timezone: str | None = None


class SessionDay(BaseModel):
    """One day of a multi-day session, with that day's own hours (aware datetimes)."""

    starts_at: datetime
    ends_at: datetime


class CalendarEntry(BaseModel):
    """One calendar event (the session, or an action's due date), sent as ICS and stored over CalDAV.

    `uid` is the step's idempotency key (the adapters add `@` and the mail domain); `sequence` rises on every
    reschedule and on the cancel. `days`, when it holds two or more, makes the event a daily series of that many
    days under the one UID, each day with its own hours (adapters/ics.py says why a series)."""

    uid: str
    sequence: int = 0
    method: Literal["REQUEST", "CANCEL"] = "REQUEST"
    summary: str
    description: str = ""
    starts_at: datetime | None = None  # aware; rendered in `timezone` with a VTIMEZONE
    ends_at: datetime | None = None
    all_day: date | None = None  # an action's due date is an all-day entry
    timezone: str
    location: str | None = None
    organizer: Recipient
    attendees: list[Recipient] = Field(default_factory=list)
    days: list[SessionDay] = Field(default_factory=list)
    chair: Recipient | None = Field(default=None, description="the consultant: an attendee who runs the session")
    rsvp: bool = Field(default=True, description="attendees are asked to answer (a due date asks nothing)")


class ActionSummary(BaseModel):
    action_id: str
    title: str
    owner_name: str
    status: str
    last_value: float | None = None
    baseline: float
    target: float
    unit: str
    due: date


class ReplyScope(BaseModel):
    """What a reply to this message may change: signed into the Reply-To token by the email adapter.

    Neither an action nor a pre-read: the scope of an invitation, whose token is also the ICS ORGANIZER, so the
    attendee's calendar sends its RSVP (an iMIP REPLY) to a mailbox engage reads."""

    action_id: str | None = None
    preread_id: str | None = None
    number: int = 0
    expires_at: datetime


class MessageContext(BaseModel):
    """The template variables of every message kind (each kind uses the fields it needs)."""

    client: str
    engagement_id: str
    recipient_name: str
    consultant_name: str
    format: str | None = None
    session_label: str | None = None
    days: float | None = None
    agenda: list[str] = Field(default_factory=list)
    preread_title: str | None = None
    preread_url: str | None = None
    action_id: str | None = None
    action_title: str | None = None
    owner_name: str | None = None
    due: date | None = None
    metric_name: str | None = None
    unit: str | None = None
    baseline: float | None = None
    target: float | None = None
    last_value: float | None = None
    status: str | None = None
    checkin_number: int | None = None
    missed_in_row: int | None = None
    checkin_label: str | None = None
    reason: str | None = None
    actions: list[ActionSummary] = Field(default_factory=list)
    # An RSVP (MessageKind.rsvp_declined): who answered, and how.
    attendee_name: str | None = None
    attendee_email: str | None = None
    attendance: str | None = None
    # The answer to an owner's reply (MessageKind.answer).
    answer_recorded: bool | None = None
    answer_text: str | None = None
    answer_subject: str | None = None

    def with_(self, **changes: object) -> MessageContext:
        """A copy with these fields changed, validated. Unlike `model_copy(update=...)`, which keeps a misspelt
        name as a stray attribute that no template reads, a name that is not a field is a TypeError."""
        unknown = sorted(set(changes) - set(type(self).model_fields))
        if unknown:
            raise TypeError(f"MessageContext has no field {', '.join(repr(name) for name in unknown)}")
        return type(self).model_validate({**dict(self), **changes})


class OutboundMessage(BaseModel):
    """One email to one recipient. `key` is the idempotency key of the step and becomes the Message-ID."""

    engagement_id: str
    key: str
    kind: MessageKind
    to: Recipient
    cc: list[Recipient] = Field(default_factory=list)
    context: MessageContext
    reply: ReplyScope | None = None
    calendar: CalendarEntry | None = None
    action_id: str | None = None
    summary: str = Field(default="", description="one line for logs and the Temporal UI")
    in_reply_to: str | None = Field(default=None, description="the Message-ID this message answers (threading)")
    events: list[NewEvent] = Field(
        default_factory=list,
        description="the step's own events, appended with `message_sent` in one batch once the message is out "
                    "(a check-in: one activity and one workflow task instead of two each)")


class SendResult(BaseModel):
    message_id: str
    delivered_now: bool = Field(description="False when an earlier attempt had already delivered it")
    subject: str = Field(default="", description="The rendered subject line, for the `message_sent` event")
    at: datetime | None = Field(default=None, description="When the activity finished (activities/clock.py)")
    refused: str | None = Field(default=None, description="Why the relay refused it for good (send_messages only)")


class CalendarUpsert(BaseModel):
    engagement_id: str
    entry: CalendarEntry


class CalendarRemoval(BaseModel):
    engagement_id: str
    uid: str


class Conversation(BaseModel):
    """One SMTP conversation for the mail sender process (adapters/email/sender.py), one JSON line on its stdin:
    the message as built, the relay, and the database its outbox mark goes to."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    id: int
    smtp_url: str
    database_url: str
    envelope_from: str
    recipients: list[str]
    message_id: str
    mime: bytes = Field(description="The EmailMessage as built, pickled (the worker and its child are one program)")


class ConversationOutcome(BaseModel):
    """The sender process's answer, one JSON line on its stdout."""

    id: int
    outcome: Literal["accepted", "permanent", "insecure", "failed"]
    error: str = Field(default="", description="What went wrong, for the activity's failure (no secret in it)")
    refused: dict[str, str] = Field(default_factory=dict, description="Recipients refused while others were taken")
    marked: bool = Field(default=False, description="The outbox row was marked sent at the relay's 250")
    marking_at_ns: int = 0
    window_s: float = 0.0
    quit_s: float = 0.0
