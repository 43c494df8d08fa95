"""The format recommendation and its agenda (built by `domain/format.py` and `domain/agenda.py`)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

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
    # Pairs or small groups, then plenary: a round of 2-3 minutes a person no longer fits the timebox.
    small_groups = "small_groups"


class BlockKind(StrEnum):
    work = "work"
    break_ = "break"
    lunch = "lunch"
    opening = "opening"
    close = "close"
    social = "social"


# "HH:MM", local to the client's zone.
ClockTime = Annotated[str, Field(pattern=r"^\d{2}:\d{2}$")]
# A block on the run sheet: "day.position", e.g. "1.4" (the 4th block of day 1, breaks included).
BlockRef = Annotated[str, Field(pattern=r"^\d{1,2}\.\d{1,2}$")]


class Step(BaseModel):
    name: str
    minutes: int = Field(gt=0)


class AgendaItem(BaseModel):
    """One block of the agenda. Agendas recorded before clock times had work blocks only, without `starts`."""

    day: int = Field(ge=1)
    kind: BlockKind = BlockKind.work
    ref: BlockRef | None = None
    starts: ClockTime | None = None
    ends: ClockTime | None = None
    module: Module | None = None
    also: list[Module] = Field(default_factory=list, description="modules merged into a block too short for each")
    title: str
    aim: str | None = None
    technique: Technique | None = None
    minutes: int = Field(gt=0)
    steps: list[Step] = Field(default_factory=list)
    materials: list[str] = Field(default_factory=list)
    dots: int | None = Field(default=None, description="dot voting: dots a person")
    options: int | None = Field(default=None, description="dot voting: the options the dots were computed for")
    optional: bool = False


class Agenda(BaseModel):
    days: float = Field(gt=0)
    items: list[AgendaItem]
    day_starts: ClockTime = "09:00"
    day_ends: ClockTime = "17:00"
    group_size: int | None = None

    @property
    def work_items(self) -> list[AgendaItem]:
        return [i for i in self.items if i.kind is BlockKind.work]

    @property
    def total_minutes(self) -> int:
        """Facilitated minutes: the working blocks, without opening, breaks, lunch, close and evenings."""
        return sum(i.minutes for i in self.work_items)

    def block(self, ref: str) -> AgendaItem | None:
        return next((i for i in self.items if i.ref == ref), None)


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
