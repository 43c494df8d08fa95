"""The format recommendation and its agenda (built by `domain/format.py` and `domain/agenda.py`)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from schemas.names import EngagementFormat


class Venue(StrEnum):
    offsite = "offsite"
    onsite = "onsite"


class Aspect(StrEnum):
    """The rows of the seed's comparison table."""

    purpose = "purpose"
    duration = "duration"
    participants = "participants"
    focus = "focus"
    location = "location"
    outcome = "outcome"


class Module(StrEnum):
    opening = "opening"
    competitive_analysis = "competitive_analysis"
    market_positioning = "market_positioning"
    vision_alignment = "vision_alignment"
    team_building = "team_building"
    strategic_priorities = "strategic_priorities"
    problem_solving = "problem_solving"
    action_planning = "action_planning"


class Technique(StrEnum):
    turn_taking = "turn_taking"
    dot_voting = "dot_voting"
    design_thinking = "design_thinking"


class AgendaItem(BaseModel):
    day: int = Field(ge=1)
    module: Module
    title: str
    technique: Technique
    minutes: int = Field(gt=0)


class Agenda(BaseModel):
    days: float = Field(gt=0)
    items: list[AgendaItem]

    @property
    def total_minutes(self) -> int:
        return sum(i.minutes for i in self.items)


class RationaleEntry(BaseModel):
    aspect: Aspect
    reason: str


class Recommendation(BaseModel):
    format: EngagementFormat
    min_days: float = Field(gt=0)
    max_days: float = Field(gt=0)
    days: float = Field(gt=0, description="the suggested duration, inside [min_days, max_days]")
    location: Venue
    participants: list[str] = Field(description="emails of the participants the format calls for")
    agenda: Agenda
    rationale: list[RationaleEntry]
