"""Pre-read and RSVP reminders go at the recipient's morning, never at night (issue 17)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.session import morning_reminder_at, rsvp_reminder_at
from tests.strategies import examples

ZONES = ["Europe/Berlin", "America/Sao_Paulo", "Asia/Tokyo", "Pacific/Chatham", "America/St_Johns", "UTC"]


@settings(max_examples=examples(300), deadline=None)
@given(sent=st.datetimes(min_value=datetime(2027, 1, 1), max_value=datetime(2028, 12, 1), timezones=st.just(UTC)),
       lead=st.timedeltas(min_value=timedelta(hours=1), max_value=timedelta(days=30)), zone=st.sampled_from(ZONES))
def test_a_preread_reminder_is_at_nine_local_between_the_preread_and_the_session(
        sent: datetime, lead: timedelta, zone: str) -> None:
    starts = sent + lead
    at = morning_reminder_at(sent, starts, zone)
    if at is None:  # no 09:00 between them: no reminder rather than one at night
        day = sent.astimezone(ZoneInfo(zone)).date()
        mornings = [datetime.combine(day + timedelta(days=n), time(9), tzinfo=ZoneInfo(zone)) for n in range(32)]
        assert not any(sent < m < starts for m in mornings)
        return
    assert sent < at < starts
    assert at.astimezone(ZoneInfo(zone)).time() == time(9)
    middle = sent + lead / 2
    local = at.astimezone(ZoneInfo(zone))
    day_after = datetime.combine(local.date() + timedelta(days=1), time(9), tzinfo=ZoneInfo(zone))
    day_before = datetime.combine(local.date() - timedelta(days=1), time(9), tzinfo=ZoneInfo(zone))
    if at <= middle:  # the last morning at or before halfway
        assert day_after > middle or day_after >= starts
    else:  # none at or before halfway: the first after it
        assert day_before <= sent


def test_examples() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    sent = datetime(2027, 2, 4, 9, tzinfo=berlin)
    session = datetime(2027, 2, 11, 9, tzinfo=berlin)
    assert morning_reminder_at(sent, session, "Europe/Berlin") == datetime(2027, 2, 7, 9, tzinfo=berlin)
    # Sent the evening before: no morning left.
    assert morning_reminder_at(session - timedelta(hours=14), session, "Europe/Berlin") is None
    # Sent at 22:00 two days before: the next morning, not a midpoint in the night.
    assert morning_reminder_at(session - timedelta(hours=35), session, "Europe/Berlin") == datetime(
        2027, 2, 10, 9, tzinfo=berlin)
    assert rsvp_reminder_at(session.astimezone(UTC), "America/Sao_Paulo") == datetime(
        2027, 2, 8, 9, tzinfo=ZoneInfo("America/Sao_Paulo"))
