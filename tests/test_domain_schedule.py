"""Check-in times (domain/schedule.py): local hours across daylight saving, never in the past, never too late."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.schedule import (
    checkin_plan,
    following_checkin,
    local_label,
    local_to_utc,
    next_checkin,
    snoozed,
)
from tests.strategies import TIMEZONES, examples

NINE = time(9, 0)
WEEK = timedelta(days=7)
DAY = timedelta(days=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def wall(at: datetime, tz: str) -> str:
    return at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


# -------------------------------------------------------------------------------------- daylight saving


def test_berlin_spring_forward_keeps_nine_local() -> None:
    before = utc(2027, 3, 22, 8, 0)  # Mon 09:00 CET (+1)
    after = next_checkin(before, WEEK, NINE, "Europe/Berlin", whole_days=True)
    assert after == utc(2027, 3, 29, 7, 0)  # Mon 09:00 CEST (+2): 6 days 23 hours later
    assert wall(after, "Europe/Berlin") == "2027-03-29 09:00"


def test_berlin_fall_back_keeps_nine_local() -> None:
    before = utc(2027, 10, 25, 7, 0)  # Mon 09:00 CEST (+2)
    after = next_checkin(before, WEEK, NINE, "Europe/Berlin", whole_days=True)
    assert after == utc(2027, 11, 1, 8, 0)  # Mon 09:00 CET (+1): 7 days 1 hour later
    assert wall(after, "Europe/Berlin") == "2027-11-01 09:00"


def test_new_york_spring_forward_keeps_nine_local() -> None:
    before = utc(2027, 3, 12, 14, 0)  # Fri 09:00 EST (-5)
    after = next_checkin(before, DAY * 3, NINE, "America/New_York", whole_days=True)
    assert after == utc(2027, 3, 15, 13, 0)  # Mon 09:00 EDT (-4)


@pytest.mark.parametrize(
    ("tz", "start", "end"),
    [
        ("Europe/Berlin", utc(2027, 3, 25, 8, 0), utc(2027, 4, 2)),
        ("Europe/Berlin", utc(2027, 10, 28, 7, 0), utc(2027, 11, 4)),
        ("America/New_York", utc(2027, 3, 11, 14, 0), utc(2027, 3, 18)),
    ],
)
def test_daily_plan_across_the_change_stays_at_nine(tz: str, start: datetime, end: datetime) -> None:
    plan = checkin_plan(start, DAY, NINE, tz, True, horizon_end=end, now=start)
    assert len(plan) >= 6
    assert {p.astimezone(ZoneInfo(tz)).time() for p in plan} == {NINE}
    # The UTC hour does change: that is the point.
    assert len({p.hour for p in plan}) == 2


def test_a_wall_time_in_the_spring_forward_gap_moves_forward_by_the_gap() -> None:
    # 02:30 does not exist in Berlin on 2027-03-28: the check-in goes out at 03:30 CEST.
    at = local_to_utc(datetime(2027, 3, 28).date(), time(2, 30), "Europe/Berlin")
    assert at == utc(2027, 3, 28, 1, 30)
    assert wall(at, "Europe/Berlin") == "2027-03-28 03:30"
    nxt = next_checkin(utc(2027, 3, 27, 1, 30), DAY, time(2, 30), "Europe/Berlin", whole_days=True)
    assert nxt == at
    assert wall(nxt, "Europe/Berlin") == "2027-03-28 03:30"


def test_new_york_gap_too() -> None:
    nxt = next_checkin(utc(2027, 3, 13, 7, 30), DAY, time(2, 30), "America/New_York", whole_days=True)
    assert wall(nxt, "America/New_York") == "2027-03-14 03:30"


def test_an_ambiguous_wall_time_takes_its_first_occurrence() -> None:
    # 02:30 happens twice in Berlin on 2027-10-31: first at +2 (00:30 UTC), then at +1 (01:30 UTC).
    nxt = next_checkin(utc(2027, 10, 30, 0, 30), DAY, time(2, 30), "Europe/Berlin", whole_days=True)
    assert nxt == utc(2027, 10, 31, 0, 30)


def test_local_date_of_after_is_used_not_the_utc_date() -> None:
    # 23:30 UTC on the 3rd is already the 4th in Kolkata (+05:30): a daily cadence lands on the 5th.
    nxt = next_checkin(utc(2027, 3, 3, 23, 30), DAY, NINE, "Asia/Kolkata", whole_days=True)
    assert wall(nxt, "Asia/Kolkata") == "2027-03-05 09:00"


# -------------------------------------------------------------------------------------- short cadences, snooze


def test_short_cadence_is_plain_elapsed_time() -> None:
    after = utc(2027, 3, 28, 0, 50)
    assert next_checkin(after, timedelta(minutes=15), NINE, "Europe/Berlin", False) == utc(2027, 3, 28, 1, 5)
    assert next_checkin(after, timedelta(hours=36), NINE, "Europe/Berlin", False) == utc(2027, 3, 29, 12, 50)


def test_short_cadence_plan() -> None:
    start = utc(2027, 3, 1, 10, 0)
    now = start + timedelta(seconds=95)
    plan = checkin_plan(start, timedelta(seconds=30), NINE, "UTC", False, start + timedelta(minutes=3), now)
    assert plan == [start + timedelta(seconds=s) for s in (120, 150, 180)]


def test_short_cadence_far_behind_does_not_walk_every_tick() -> None:
    start = utc(2027, 3, 1)
    now = start + timedelta(days=60)  # 5 million one-second ticks ago
    plan = checkin_plan(start, timedelta(seconds=1), NINE, "UTC", False, now + timedelta(seconds=10), now)
    assert plan == [now + timedelta(seconds=s) for s in range(11)]


def test_plan_limit() -> None:
    start = utc(2027, 3, 1, 8)
    plan = checkin_plan(start, DAY, NINE, "Europe/Berlin", True, start + timedelta(days=365), start, limit=3)
    assert [wall(p, "Europe/Berlin") for p in plan] == ["2027-03-02 09:00", "2027-03-03 09:00", "2027-03-04 09:00"]


def test_snooze_keeps_the_local_hour_across_the_change() -> None:
    at = utc(2027, 3, 26, 8, 0)  # Fri 09:00 CET
    assert snoozed(at, 3, NINE, "Europe/Berlin", whole_days=True) == utc(2027, 3, 29, 7, 0)
    assert snoozed(at, 3, NINE, "Europe/Berlin", whole_days=False) == utc(2027, 3, 29, 8, 0)
    assert snoozed(at, 0, NINE, "Europe/Berlin", whole_days=False) == at


def test_snooze_cannot_go_back() -> None:
    with pytest.raises(ValueError):
        snoozed(utc(2027, 3, 26, 8), -1, NINE, "Europe/Berlin", True)


# -------------------------------------------------------------------------------------- labels, input checks


def test_local_label() -> None:
    assert local_label(utc(2027, 3, 4, 12, 0), "America/Sao_Paulo") == "Thu 2027-03-04 09:00 America/Sao_Paulo"
    assert local_label(utc(2027, 3, 28, 7, 0), "Europe/Berlin") == "Sun 2027-03-28 09:00 Europe/Berlin"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_checkin(datetime(2027, 3, 1, 9), WEEK, NINE, "Europe/Berlin", True)
    with pytest.raises(ValueError, match="timezone-aware"):
        checkin_plan(utc(2027, 3, 1), WEEK, NINE, "UTC", True, datetime(2027, 6, 1), utc(2027, 3, 1))


def test_results_are_utc_even_when_given_another_zone() -> None:
    after = datetime(2027, 3, 1, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert next_checkin(after, WEEK, NINE, "Europe/Berlin", True).tzinfo is UTC
    assert next_checkin(after, timedelta(hours=2), NINE, "Europe/Berlin", False).tzinfo is UTC


# -------------------------------------------------------------------------------------- properties

instants = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC))
zones = st.sampled_from(TIMEZONES)
# Local times outside 01:00-03:59, where no zone here has a gap or an overlap: they must come out exactly.
safe_times = st.builds(time, st.sampled_from([0, 6, 7, 8, 9, 12, 17, 23]), st.sampled_from([0, 15, 30, 45]))
whole_cadences = st.integers(1, 30).map(lambda d: timedelta(days=d))
short_cadences = st.integers(1, 86399 * 3).map(lambda s: timedelta(seconds=s))


@settings(max_examples=examples(200), deadline=None)
@given(instants, whole_cadences, safe_times, zones)
def test_whole_day_checkins_land_on_the_local_time(
    after: datetime, cadence: timedelta, local_time: time, tz: str
) -> None:
    nxt = next_checkin(after, cadence, local_time, tz, True)
    assert nxt > after
    assert nxt.tzinfo is UTC
    local = nxt.astimezone(ZoneInfo(tz))
    assert local.time() == local_time
    after_local = after.astimezone(ZoneInfo(tz)).date()
    steps = (local.date() - after_local).days
    assert steps in (cadence.days, 2 * cadence.days)


@settings(max_examples=examples(200), deadline=None)
@given(
    instants,
    st.one_of(whole_cadences, short_cadences),
    st.builds(time, st.integers(0, 23), st.integers(0, 59)),
    zones,
    st.integers(0, 90),
    st.integers(0, 120),
)
def test_plan_is_increasing_never_in_the_past_never_past_the_horizon(
    start: datetime, cadence: timedelta, local_time: time, tz: str, now_offset: int, horizon_days: int
) -> None:
    whole = cadence >= DAY and cadence % DAY == timedelta(0)
    now = start + timedelta(days=now_offset, hours=now_offset % 7)
    horizon_end = start + timedelta(days=horizon_days)
    plan = checkin_plan(start, cadence, local_time, tz, whole, horizon_end, now, limit=500)
    assert all(now <= p <= horizon_end for p in plan)
    assert all(a < b for a, b in zip(plan, plan[1:], strict=False))
    assert all(p.tzinfo is UTC for p in plan)
    # Nothing skipped in between, and nothing left out at the end.
    assert all(next_checkin(a, cadence, local_time, tz, whole) == b for a, b in zip(plan, plan[1:], strict=False))
    if plan and len(plan) < 500:
        assert next_checkin(plan[-1], cadence, local_time, tz, whole) > horizon_end
    if whole:
        # Nothing left out at the start either: the same ticks as walking the series from `start`.
        ticks, current = [], start
        while (current := next_checkin(current, cadence, local_time, tz, whole)) <= horizon_end:
            ticks.append(current)
        assert plan == [t for t in ticks if t >= now]


@settings(max_examples=examples(100), deadline=None)
@given(instants, short_cadences, st.integers(0, 50))
def test_short_plan_matches_stepping_one_tick_at_a_time(start: datetime, cadence: timedelta, ticks: int) -> None:
    now = start + cadence * ticks + timedelta(seconds=ticks % 3)
    horizon_end = now + cadence * 5
    expected = []
    current = start
    while current <= horizon_end:
        current = current + cadence
        if now <= current <= horizon_end:
            expected.append(current)
    assert checkin_plan(start, cadence, NINE, "UTC", False, horizon_end, now) == expected
# ------------------------------------------------------------------------------- the check-in after this one


def test_following_checkin_is_the_next_one_or_none_on_the_horizon() -> None:
    due = utc(2027, 3, 8, 8)  # Mon 09:00 Berlin
    assert following_checkin(due, WEEK, NINE, "Europe/Berlin", True, utc(2027, 6, 1)) == utc(2027, 3, 15, 8)
    # Across the change to summer time: still 09:00 local.
    assert following_checkin(utc(2027, 3, 22, 8), WEEK, NINE, "Europe/Berlin", True, utc(2027, 6, 1)) == utc(
        2027, 3, 29, 7)
    # One falling exactly on the horizon is not sent; the follow-through closes there instead.
    assert following_checkin(due, WEEK, NINE, "Europe/Berlin", True, utc(2027, 3, 15, 8)) is None
