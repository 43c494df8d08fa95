"""What a workflow starts with: the engagement's input, and a follow-through's (with what continue-as-new carries
to its next run). Recorded histories hold these as they are: a field is only ever added, with a default."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from pydantic import BaseModel

from schemas.common import Slug
from schemas.scoping import Consultant, Person, Scoping
from schemas.views import ActionView


class EngagementInput(BaseModel):
    engagement_id: Slug
    scoping: Scoping


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


class CheckInLoopInput(BaseModel):
    """The check-in loop of an engagement (workflows/checkin_loop.py): one follow-through per open action, each
    with what continue-as-new carries in its `carry`."""

    engagement_id: str
    parent_workflow_id: str
    client: str
    follow_throughs: list[FollowThroughInput]


class ActionInput(BaseModel):
    """An action's own workflow (workflows/action.py) under a check-in loop: its view as assigned."""

    engagement_id: str
    client: str
    action: ActionView
    checkin_loop_id: str
