"""The outcomes file (an example: `examples/outcomes.yaml`): what the session produced."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import Field, field_validator, model_validator

from schemas.common import ActionId, Email, StrictModel, Text, TimeZoneName, Value
from schemas.recommendation import BlockRef


class Direction(StrEnum):
    increase = "increase"
    decrease = "decrease"


class Owner(StrictModel):
    name: Text
    email: Email
    timezone: TimeZoneName


class Metric(StrictModel):
    name: Text
    unit: Text
    baseline: Value
    target: Value
    direction: Direction

    @model_validator(mode="after")
    def _target_direction(self) -> Metric:
        if self.direction is Direction.increase and self.target <= self.baseline:
            raise ValueError("metric.target must be above metric.baseline when direction is increase")
        if self.direction is Direction.decrease and self.target >= self.baseline:
            raise ValueError("metric.target must be below metric.baseline when direction is decrease")
        return self


class ActionInput(StrictModel):
    id: ActionId | None = None
    title: Text
    owner: Owner
    due: date
    metric: Metric


class DotVote(StrictModel):
    option: Text
    votes: int = Field(ge=0, le=100_000)
    # The agenda block whose vote this option was in (its number on the run sheet, e.g. "2.4"); the options of one
    # block form one vote.
    block: BlockRef | None = None


class Decision(StrictModel):
    """A decision, and optionally the agenda block that produced it. A plain string is a decision too."""

    text: Text
    block: BlockRef | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: object) -> object:
        return {"text": value} if isinstance(value, str) else value

    def __str__(self) -> str:
        return self.text


class Outcomes(StrictModel):
    held_on: date | None = None
    decisions: list[Decision] = Field(default_factory=list, max_length=200)
    dot_votes: list[DotVote] = Field(default_factory=list, max_length=200)
    actions: list[ActionInput] = Field(min_length=1, max_length=100)

    @field_validator("actions")
    @classmethod
    def _ids(cls, actions: list[ActionInput]) -> list[ActionInput]:
        # Ids given in the file are kept; the others get A1, A2, ... skipping those already taken.
        taken = [a.id for a in actions if a.id]
        duplicates = {i for i in taken if taken.count(i) > 1}
        if duplicates:
            raise ValueError(f"action id {sorted(duplicates)[0]} is used twice")
        used = set(taken)
        counter = 0
        for action in actions:
            if action.id is None:
                counter += 1
                while f"A{counter}" in used:
                    counter += 1
                action.id = f"A{counter}"
                used.add(action.id)
        return actions
