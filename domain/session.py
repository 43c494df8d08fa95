"""Session timing rules: when the session starts and ends, when pre-reads and their reminders go out,
when the consultant is reminded of missing outcomes."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.format import duration_range
from schemas.recommendation import Agenda, EngagementFormat, Recommendation, Venue
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
    """Halfway between the pre-read and the session (runs started before reminders moved to the morning)."""
    return sent_at + (starts_at - sent_at) / 2


REMINDER_MORNING = time(9, 0)


def morning_reminder_at(sent_at: datetime, starts_at: datetime, tz: str | None,
                        morning: time = REMINDER_MORNING) -> datetime | None:
    """The recipient's last local morning (09:00 in `tz`) at or before halfway between the pre-read and the
    session, or the first after it when there is none; always strictly after the pre-read went out and before
    the session starts. None when no morning lies between them (a pre-read sent the evening before): no
    reminder rather than one at night."""
    zone = ZoneInfo(tz or "UTC")
    middle = sent_at + (starts_at - sent_at) / 2
    first = sent_at.astimezone(zone).date()
    last = starts_at.astimezone(zone).date()
    mornings = []
    for offset in range((last - first).days + 1):
        at = datetime.combine(first + timedelta(days=offset), morning, tzinfo=zone).astimezone(UTC)
        if sent_at < at < starts_at:
            mornings.append(at)
    if not mornings:
        return None
    before = [at for at in mornings if at <= middle]
    return before[-1] if before else mornings[0]


RSVP_REMINDER_BEFORE = timedelta(days=3)


def rsvp_reminder_at(starts_at: datetime, tz: str | None, morning: time = REMINDER_MORNING) -> datetime:
    """Three days before the session, at the recipient's local morning."""
    zone = ZoneInfo(tz or "UTC")
    day = (starts_at - RSVP_REMINDER_BEFORE).astimezone(zone).date()
    return datetime.combine(day, morning, tzinfo=zone).astimezone(UTC)


def session_days(starts_at: datetime, ends_at: datetime, days: float, tz: str,
                 agenda: Agenda | None) -> list[tuple[datetime, datetime]]:
    """Each day of the session with its own hours (UTC): from the agenda's clock times when it has them (the
    first block's start to the last required block's end; an optional dinner does not stretch the day), else
    the start's and the end's time of day. One pair for a session of a day or less."""
    count = math.ceil(days)
    if count <= 1:
        return [(starts_at, ends_at)]
    zone = ZoneInfo(tz)
    local_start, local_end = starts_at.astimezone(zone), ends_at.astimezone(zone)
    result = []
    for number in range(1, count + 1):
        on = local_start.date() + timedelta(days=number - 1)
        timed = [i for i in (agenda.items if agenda else []) if i.day == number and i.starts and i.ends
                 and not i.optional]
        if timed:
            begin = min(time.fromisoformat(i.starts) for i in timed if i.starts)
            end = max(time.fromisoformat(i.ends) for i in timed if i.ends)
        else:
            begin, end = local_start.time(), local_end.time()
        start = datetime.combine(on, begin, tzinfo=zone)
        finish = datetime.combine(on, end, tzinfo=zone)
        if finish <= start:
            finish = start + WORKDAY
        result.append((start.astimezone(UTC), finish.astimezone(UTC)))
    return result


_FORMAT_WORDS = {
    EngagementFormat.offsite: "leadership offsite",
    EngagementFormat.strategy_session: "strategy session",
    EngagementFormat.combined: "leadership offsite and strategy session",
}
_VENUE_WORDS = {Venue.offsite: "Offsite venue", Venue.onsite: "Onsite meeting room"}


def event_summary(client: str, fmt: EngagementFormat) -> str:
    """The calendar title in words: "Acme Corp — leadership offsite and strategy session"."""
    return f"{client} — {_FORMAT_WORDS[fmt]}"


def venue_words(venue: Venue) -> str:
    return _VENUE_WORDS[venue]


def outcomes_reminder_at(ends_at: datetime) -> datetime:
    return ends_at + OUTCOMES_GRACE
