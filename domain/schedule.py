"""Check-in times: when the next check-in request goes out, in each owner's own time zone.

Every datetime going in and out is timezone-aware and every result is in UTC: workflows compare and sleep in
UTC, and only the owner's wall clock is local. Local wall times are built with `zoneinfo` so that a 09:00
check-in stays at 09:00 local across daylight-saving changes (a fixed 24 h step would drift by an hour).

Workflows must import this module (and `domain.status`, which uses it) inside
`workflow.unsafe.imports_passed_through()`: the sandbox wraps `zoneinfo.ZoneInfo` instances in a restriction
proxy that `datetime.astimezone` rejects ("tzinfo argument must be ... a tzinfo subclass"). Passing the module
through is safe: it is pure and has no import-time side effects.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# Fixed English names: `strftime("%a")` follows the process locale, and a label must read the same on every
# worker (it ends up in activity summaries recorded in workflow history).
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _require_aware(value: datetime, name: str) -> None:
    # A naive datetime would be read in the worker's own zone: a silent, machine-dependent hour shift.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")


def local_to_utc(day: date, at: time, tz: str) -> datetime:
    """The instant the wall clock in `tz` shows `day` `at`, in UTC.

    fold=0 (PEP 495) settles both daylight-saving edge cases the way a person expects: a wall time that falls
    in a spring-forward gap is read with the offset before the change, so it moves forward by the gap
    (02:30 -> 03:30 in Europe/Berlin), and a wall time that occurs twice in autumn takes its first occurrence.
    """
    wall = datetime.combine(day, at.replace(tzinfo=None, fold=0), tzinfo=ZoneInfo(tz))
    return wall.astimezone(UTC)


def local_date(at: datetime, tz: str) -> date:
    """The calendar date in `tz` at the instant `at`."""
    _require_aware(at, "at")
    return at.astimezone(ZoneInfo(tz)).date()


def next_checkin(after: datetime, cadence: timedelta, local_time: time, tz: str, whole_days: bool) -> datetime:
    """The first check-in strictly after `after`.

    Whole-day cadences are counted in local calendar days and land on `local_time`, so owners are asked at the
    same hour of their day whatever the season. Shorter cadences (demos, tests) are plain elapsed time.
    """
    _require_aware(after, "after")
    if cadence <= timedelta(0):
        raise ValueError("cadence must be positive")
    if not whole_days:
        return (after + cadence).astimezone(UTC)
    step = max(1, cadence.days)
    day = local_date(after, tz) + timedelta(days=step)
    candidate = local_to_utc(day, local_time, tz)
    # Only possible when `after` is itself late on its local day and the cadence is short (e.g. 1 day, or
    # a DST gap pushed the wall time): another cadence keeps the sequence strictly increasing.
    while candidate <= after:
        day += timedelta(days=step)
        candidate = local_to_utc(day, local_time, tz)
    return candidate


def following_checkin(due: datetime, cadence: timedelta, local_time: time, tz: str, whole_days: bool,
                      horizon_end: datetime) -> datetime | None:
    """The check-in after the one due at `due`, or None when it would fall on or past the horizon."""
    following = next_checkin(due, cadence, local_time, tz, whole_days)
    return following if following < horizon_end else None


def snoozed(at: datetime, days: int, local_time: time, tz: str, whole_days: bool) -> datetime:
    """The check-in due at `at`, moved `days` days later (same local hour when the cadence is whole days)."""
    _require_aware(at, "at")
    if days < 0:
        raise ValueError("a snooze cannot move a check-in into the past")
    if not whole_days:
        return (at + timedelta(days=days)).astimezone(UTC)
    return local_to_utc(local_date(at, tz) + timedelta(days=days), local_time, tz)


def checkin_plan(
    start: datetime,
    cadence: timedelta,
    local_time: time,
    tz: str,
    whole_days: bool,
    horizon_end: datetime,
    now: datetime,
    *,
    limit: int | None = None,
) -> list[datetime]:
    """The check-ins still to come: successive `next_checkin` from `start`, none before `now`, none after
    `horizon_end`, strictly increasing. `limit` caps the list for displays of "what happens next"."""
    for value, name in ((start, "start"), (horizon_end, "horizon_end"), (now, "now")):
        _require_aware(value, name)
    if cadence <= timedelta(0):
        raise ValueError("cadence must be positive")
    plan: list[datetime] = []
    current = start
    if not whole_days and now > start:
        # Elapsed-time cadences can be seconds long: jump straight to the last tick before `now` instead of
        # walking through millions of past ticks (timedelta arithmetic is exact, so this is the same tick).
        current = start + cadence * ((now - start) // cadence)
        if current == now:
            current -= cadence
    while limit is None or len(plan) < limit:
        current = next_checkin(current, cadence, local_time, tz, whole_days)
        if current > horizon_end:
            break
        if current >= now:
            plan.append(current)
    return plan


def local_label(at: datetime, tz: str) -> str:
    """`Thu 2027-03-04 09:00 America/Sao_Paulo`: how a check-in time reads to its owner."""
    _require_aware(at, "at")
    local = at.astimezone(ZoneInfo(tz))
    return f"{_WEEKDAYS[local.weekday()]} {local:%Y-%m-%d %H:%M} {tz}"
