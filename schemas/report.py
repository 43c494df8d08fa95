"""The follow-through report (`engage report`): the engagement, its outcomes, and each action's metric history.

Built by `store.queries.report_data` from the read models and the log; rendered by `cli/report/` as
markdown, html (with a chart per metric) or JSON (this model as it is).
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from schemas.events import Phase
from schemas.outcomes import Decision, DotVote, Metric
from schemas.recommendation import Agenda, EngagementFormat
from schemas.scoping import Consultant, Person
from schemas.status import ActionStatus


class MetricPoint(BaseModel):
    """One reported value, with the status it gave the action when it came in."""

    at: datetime
    value: float
    status: ActionStatus
    note: str | None = None


class ActionReport(BaseModel):
    action_id: str
    title: str
    owner_name: str
    owner_email: str
    owner_timezone: str
    due: date
    assigned_at: datetime
    metric: Metric
    status: ActionStatus
    last_value: float | None = None
    next_checkin_at: datetime | None = None
    closed_reason: str | None = None
    checkins_sent: int = 0
    missed: int = Field(default=0, description="check-in requests left unanswered, in total")
    escalations: int = 0
    snoozes: int = 0
    history: list[MetricPoint] = Field(default_factory=list)


class Report(BaseModel):
    engagement_id: str
    client: str
    timezone: str
    phase: Phase
    format: EngagementFormat | None = Field(default=None, description="the chosen format, else the recommended")
    format_confirmed: bool = False
    session_starts_at: datetime | None = None
    session_ends_at: datetime | None = None
    sponsor: Person
    consultant: Consultant
    cancel_reason: str | None = None
    generated_at: datetime
    decisions: list[Decision] = Field(default_factory=list)
    dot_votes: list[DotVote] = Field(default_factory=list)
    agenda: Agenda | None = Field(default=None, description="the agenda as the session was held")
    actions: list[ActionReport] = Field(default_factory=list)
