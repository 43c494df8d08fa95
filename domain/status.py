"""The status of an action: expected progress (time) against actual progress (metric), the rule that
docs/architecture.md states ("The status of an action").

This is the only place the rule lives: the follow-through workflow, the read models and the report all call
`action_status`, so an action never shows two different statuses in two places.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from domain.schedule import local_to_utc
from schemas.outcomes import Metric
from schemas.status import ActionStatus

ON_TRACK_RATIO = 0.95
BEHIND_RATIO = 0.85
# Progress is a ratio of floats: 95 out of 100 can come out as 0.9499999999999. A reported value that is
# exactly on a band's edge must land in the better band, as a person reading the numbers would expect.
_EPSILON = 1e-9


def due_datetime(due: date, tz: str) -> datetime:
    """The end of the due date in the owner's zone (the next local midnight), in UTC.

    An action due on the 15th is still on time at 23:30 on the 15th where its owner lives.
    """
    return local_to_utc(due + timedelta(days=1), time(0, 0), tz)


def expected_progress(assigned_at: datetime, due_at: datetime, at: datetime) -> float:
    """0 at assignment, growing linearly to 1 at the due date, clamped to 0..1."""
    span = (due_at - assigned_at).total_seconds()
    if span <= 0:
        # Due at (or before) assignment: the whole result is expected as soon as the due moment has come.
        return 1.0 if at >= due_at else 0.0
    elapsed = (at - assigned_at).total_seconds()
    return min(1.0, max(0.0, elapsed / span))


def actual_progress(metric: Metric, value: float) -> float:
    """(value - baseline) / (target - baseline).

    The sign takes care of `direction: decrease`: target < baseline, so a value falling towards the target
    gives a positive progress and a value rising away from it a negative one. Metric validation guarantees
    target != baseline.
    """
    return (value - metric.baseline) / (metric.target - metric.baseline)


def action_status(
    metric: Metric, value: float | None, assigned_at: datetime, due_at: datetime, at: datetime
) -> ActionStatus:
    """no_data before the first value; achieved once the target is reached; otherwise the band of
    actual / expected progress: on_track >= 0.95, behind >= 0.85, at_risk below."""
    if value is None:
        return ActionStatus.no_data
    actual = actual_progress(metric, value)
    if actual >= 1 - _EPSILON:
        return ActionStatus.achieved
    expected = expected_progress(assigned_at, due_at, at)
    if expected <= 0:
        # At the moment of assignment nothing is expected yet: only a move away from the target is a risk.
        return ActionStatus.on_track if actual >= 0 else ActionStatus.at_risk
    ratio = actual / expected
    if ratio >= ON_TRACK_RATIO - _EPSILON:
        return ActionStatus.on_track
    if ratio >= BEHIND_RATIO - _EPSILON:
        return ActionStatus.behind
    return ActionStatus.at_risk
