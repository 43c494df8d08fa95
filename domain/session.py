"""Session timing rules: when the session starts and ends, when pre-reads and their reminders go out,
when the consultant is reminded of missing outcomes."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.format import duration_range
from schemas.recommendation import EngagementFormat, Recommendation
from schemas.scoping import Constraints

WORKDAY = timedelta(hours=8)
OUTCOMES_GRACE = timedelta(days=2)


def session_bounds(on: date, at: time, days: float, tz: str,
                   workday: timedelta = WORKDAY) -> tuple[datetime, datetime]:
    """Start and end (UTC). Less than a day is that share of a workday (the scoping's day_starts .. day_ends,
    8 hours by default); longer sessions end a workday after the start on their last day."""
    local = datetime.combine(on, at, tzinfo=ZoneInfo(tz))
    starts = local.astimezone(UTC)
    if days < 1:
        return starts, starts + workday * days
    last_day = local + timedelta(days=math.ceil(days) - 1)
    return starts, (last_day + workday).astimezone(UTC)


def default_days(fmt: EngagementFormat, recommendation: Recommendation, constraints: Constraints) -> float:
    """The recommended duration when the consultant kept the recommended format, else the longest the
    chosen format allows under `max_days`."""
    if fmt is recommendation.format:
        return recommendation.days
    low, high = duration_range(fmt)
    return max(low, min(high, constraints.max_days))


def schedule_error(
    on: date, days: float, fmt: EngagementFormat, constraints: Constraints, starts_at: datetime, now: datetime
) -> str | None:
    """Why this date and duration cannot be scheduled, naming the field; None when they can."""
    if not constraints.earliest <= on <= constraints.latest:
        return (
            f"on: {on} is outside the scoping window "
            f"{constraints.earliest} .. {constraints.latest} (constraints.earliest/latest)"
        )
    low, high = duration_range(fmt)
    if not low <= days <= high:
        return f"days: a {fmt.value} lasts {low:g} to {high:g} days, not {days:g}"
    if days > constraints.max_days:
        return f"days: {days:g} is more than constraints.max_days ({constraints.max_days:g})"
    if starts_at <= now:
        return f"on/at: the session start {starts_at.isoformat()} is in the past"
    return None


def preread_send_at(starts_at: datetime, days_before: int) -> datetime:
    return starts_at - timedelta(days=days_before)


def preread_reminder_at(sent_at: datetime, starts_at: datetime) -> datetime:
    """Halfway between the pre-read and the session: late enough to be fair, early enough to read."""
    return sent_at + (starts_at - sent_at) / 2


def outcomes_reminder_at(ends_at: datetime) -> datetime:
    return ends_at + OUTCOMES_GRACE
