"""Every workflow type a worker runs and a replayer knows: engagements begun before a change keep the types they
began with (workflows/engagement.py's patches)."""

from __future__ import annotations

from workflows.action import ActionWorkflow
from workflows.checkin_loop import CheckInLoopWorkflow
from workflows.engagement import EngagementWorkflow
from workflows.follow_through import ActionFollowThroughWorkflow

WORKFLOWS: list[type] = [EngagementWorkflow, ActionFollowThroughWorkflow, CheckInLoopWorkflow, ActionWorkflow]
