"""The scoping document (an example: `examples/scoping.yaml`): what a consultant knows when an engagement starts."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum

from pydantic import Field, model_validator

from schemas.common import Duration, Email, LocalTime, Slug, StrictModel, Text, TimeZoneName


class ObjectiveKind(StrEnum):
    cohesion = "cohesion"
    trust = "trust"
    culture = "culture"
    vision = "vision"
    planning = "planning"
    goals = "goals"
    problem_solving = "problem_solving"
    market = "market"
    competition = "competition"
    performance = "performance"


class Role(StrEnum):
    executive = "executive"
    senior_leader = "senior_leader"
    department_head = "department_head"
    manager = "manager"
    facilitator = "facilitator"


class Location(StrEnum):
    offsite = "offsite"
    onsite = "onsite"
    either = "either"


class Topic(StrEnum):
    competitive_analysis = "competitive_analysis"
    market_positioning = "market_positioning"
    vision_alignment = "vision_alignment"
    team_building = "team_building"


class Consultant(StrictModel):
    name: Text
    email: Email
    timezone: TimeZoneName | None = None


class Person(StrictModel):
    """Someone with a mailbox and a clock: sponsor, action owner."""

    name: Text
    email: Email
    timezone: TimeZoneName | None = None


class Participant(StrictModel):
    name: Text
    email: Email
    role: Role
    timezone: TimeZoneName | None = None


class Objective(StrictModel):
    text: Text
    kind: ObjectiveKind


class Constraints(StrictModel):
    earliest: date
    latest: date
    # "Several hours" is the shortest session the seed knows: 0.125 day = 3 hours.
    max_days: float = Field(ge=0.125, le=14)
    location: Location = Location.either
    # The session day's hours, local to the client; the agenda's clock times and a session's length follow them.
    day_starts: LocalTime = time(9, 0)
    day_ends: LocalTime = time(17, 0)

    @model_validator(mode="after")
    def _window(self) -> Constraints:
        if self.earliest > self.latest:
            raise ValueError(f"earliest ({self.earliest}) must not be after latest ({self.latest})")
        hours = self.day_hours.total_seconds() / 3600
        # Under 4 hours a day cannot hold an opening, a close and working blocks of 30 minutes or more.
        if not 4 <= hours <= 12:
            raise ValueError(f"day_starts .. day_ends must span 4 to 12 hours, not {hours:g}")
        return self

    @property
    def day_hours(self) -> timedelta:
        return datetime.combine(date.min, self.day_ends) - datetime.combine(date.min, self.day_starts)


class FollowThrough(StrictModel):
    cadence: Duration = timedelta(days=14)
    horizon: Duration = timedelta(days=90)
    local_time: LocalTime = time(9, 0)
    escalate_after_missed: int = Field(default=2, ge=1, le=52)

    @model_validator(mode="after")
    def _cadence_within_horizon(self) -> FollowThrough:
        if self.cadence > self.horizon:
            raise ValueError("cadence must not be longer than horizon")
        return self

    @property
    def whole_days(self) -> bool:
        """Whole-day cadences go out at `local_time`; shorter ones count from the outcomes (demos, tests)."""
        return self.cadence >= timedelta(days=1) and self.cadence.total_seconds() % 86400 == 0


class Scoping(StrictModel):
    id: Slug | None = None
    client: Text
    timezone: TimeZoneName
    consultant: Consultant
    sponsor: Person
    objectives: list[Objective] = Field(min_length=1, max_length=50)
    participants: list[Participant] = Field(min_length=1, max_length=500)
    constraints: Constraints
    topics: list[Topic] = Field(default_factory=list)
    follow_through: FollowThrough = Field(default_factory=FollowThrough)

    @model_validator(mode="after")
    def _defaults_and_uniqueness(self) -> Scoping:
        # Everyone without a zone lives in the client's zone.
        if self.sponsor.timezone is None:
            self.sponsor.timezone = self.timezone
        if self.consultant.timezone is None:
            self.consultant.timezone = self.timezone
        seen: set[str] = set()
        for p in self.participants:
            if p.timezone is None:
                p.timezone = self.timezone
            if p.email in seen:
                raise ValueError(f"participant {p.email} is listed twice")
            seen.add(p.email)
        return self

    def participant(self, email: str) -> Participant | None:
        email = email.strip().lower()
        return next((p for p in self.participants if p.email == email), None)
