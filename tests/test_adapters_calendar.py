"""The CalDAV calendar store and the ICS builder against a real Radicale on loopback."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import icalendar
import pytest
from pydantic import SecretStr

import adapters.calendar
from adapters.calendar import CalendarStore, resource_name
from adapters.ics import build_ics
from schemas.messages import CalendarEntry, Recipient
from schemas.settings import Settings

BERLIN_9AM = datetime(2027, 3, 4, 8, 0, tzinfo=UTC)  # 09:00 CET


@pytest.fixture(scope="module")
def settings_cal_ad(settings: Settings) -> Settings:
    """The session's real Radicale (tests/conftest.py); it accepts any user and password."""
    return settings.model_copy(update={"caldav_user": "engage", "caldav_password": SecretStr("any")})


@pytest.fixture
def store_ad(settings_cal_ad: Settings) -> Iterator[CalendarStore]:
    store = CalendarStore(settings_cal_ad)
    yield store
    store.close()


def engagement() -> str:
    return f"cal-{uuid.uuid4().hex[:8]}"


def session(uid: str, sequence: int = 0, starts_at: datetime = BERLIN_9AM, summary: str = "Offsite") -> CalendarEntry:
    return CalendarEntry(
        uid=uid,
        sequence=sequence,
        summary=summary,
        description="Vision and team.",
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=8),
        timezone="Europe/Berlin",
        location="Schloss Elmau",
        organizer=Recipient(name="Cora Consultant", email="cora@consult.example"),
        attendees=[Recipient(name="Ana Silva", email="ana@acme.example")],
    )


def parse(ics: bytes | None) -> icalendar.Calendar:
    assert ics is not None
    return icalendar.Calendar.from_ical(ics)


async def test_create_update_remove(store_ad: CalendarStore) -> None:
    eid = engagement()
    uid = f"{eid}/session"
    assert await store_ad.get(eid, uid) is None  # no calendar yet: nothing, and no error

    await store_ad.upsert(eid, session(uid))
    created = parse(await store_ad.get(eid, uid))
    [event] = created.walk("VEVENT")
    assert str(event["UID"]) == f"{uid}@engage.localhost"  # globally unique: the mail domain
    assert event["SEQUENCE"] == 0
    assert event["SUMMARY"] == "Offsite"
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert event["DTSTART"].dt.hour == 9 and event["DTSTART"].dt == BERLIN_9AM
    assert [str(tz["TZID"]) for tz in created.walk("VTIMEZONE")] == ["Europe/Berlin"]
    assert "METHOD" not in created  # a stored calendar object carries no iTIP method
    # engage's own mailbox, and no server-side scheduling for any of them (RFC 6638 SCHEDULE-AGENT=CLIENT)
    assert str(event["ORGANIZER"]) == "mailto:engage@engage.localhost"
    assert event["ORGANIZER"].params["SCHEDULE-AGENT"] == "CLIENT"
    assert all(a.params["SCHEDULE-AGENT"] == "CLIENT" for a in event.get("ATTENDEE") if hasattr(a, "params"))
    assert event["ATTENDEE"].params["RSVP"] == "TRUE"

    # Rescheduled: a day later, SEQUENCE + 1, the same UID replaces the event.
    later = BERLIN_9AM + timedelta(days=1, hours=1)
    await store_ad.upsert(eid, session(uid, sequence=1, starts_at=later, summary="Offsite (moved)"))
    [event] = parse(await store_ad.get(eid, uid)).walk("VEVENT")
    assert event["SEQUENCE"] == 1
    assert event["SUMMARY"] == "Offsite (moved)"
    assert event["DTSTART"].dt == later and event["DTSTART"].dt.astimezone(later.tzinfo).hour == 9
    assert await store_ad.list_uids(eid) == [uid]

    await store_ad.remove(eid, uid)
    assert await store_ad.get(eid, uid) is None
    assert await store_ad.list_uids(eid) == []
    await store_ad.remove(eid, uid)  # already gone: fine
    await store_ad.remove(engagement(), uid)  # no calendar at all: fine


async def test_upsert_is_idempotent(store_ad: CalendarStore, settings_cal_ad: Settings) -> None:
    eid = engagement()
    uid = f"{eid}/session"
    entry = session(uid, sequence=2)
    await store_ad.upsert(eid, entry)
    await store_ad.upsert(eid, entry)
    # A fresh store (a restarted worker) finds the same calendar instead of making a second one.
    other = CalendarStore(settings_cal_ad)
    try:
        await other.upsert(eid, entry)
        assert await other.list_uids(eid) == [uid]
        [event] = parse(await other.get(eid, uid)).walk("VEVENT")
        assert event["SEQUENCE"] == 2  # stored as given: the library does not bump it
    finally:
        other.close()
    principal = store_ad._principal_of()
    names = [str(c.url).rstrip("/").rsplit("/", 1)[-1] for c in principal.calendars()]
    assert names.count(eid) == 1


async def test_one_calendar_per_engagement(store_ad: CalendarStore) -> None:
    first, second = engagement(), engagement()
    await store_ad.upsert(first, session(f"{first}/session"))
    await store_ad.upsert(second, session(f"{second}/session"))
    await store_ad.upsert(second, session(f"{second}/A1/due"))
    assert await store_ad.list_uids(first) == [f"{first}/session"]
    assert await store_ad.list_uids(second) == sorted([f"{second}/session", f"{second}/A1/due"])


async def test_a_worker_keeps_only_the_recent_calendars_and_finds_the_others_by_their_url(
    store_ad: CalendarStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store kept every calendar it had found, for good: at 2,000 engagements the worker grew past its memory
    target (docs/BENCHMARKS.md), and each new engagement listed every calendar on the server to find its own. It
    keeps the most recent ones now and asks for any other by its URL."""
    monkeypatch.setattr(adapters.calendar, "CALENDARS_KEPT", 3)
    eids = [engagement() for _ in range(5)]
    for eid in eids:
        await store_ad.upsert(eid, session(f"{eid}/session"))
    assert list(store_ad._calendars) == eids[2:], "the three most recent, least recent first"
    # The first one, no longer kept, is found again by its own URL; the list of calendars is never read.
    monkeypatch.setattr(type(store_ad._principal_of()), "calendars",
                        lambda self: pytest.fail("listed every calendar to find one"))
    assert await store_ad.list_uids(eids[0]) == [f"{eids[0]}/session"]
    assert list(store_ad._calendars) == [*eids[3:], eids[0]]
    assert await store_ad.list_uids(engagement()) == [], "an engagement with no calendar: none, and no error"
    assert await store_ad.get(engagement(), "x/session") is None


async def test_all_day_due_date(store_ad: CalendarStore) -> None:
    eid = engagement()
    uid = f"{eid}/A2/due"
    entry = CalendarEntry(uid=uid, summary="Due: Grow the partner pipeline", all_day=date(2027, 6, 30),
                          timezone="Europe/Berlin", organizer=Recipient(name="Cora", email="cora@consult.example"),
                          attendees=[Recipient(name="Ben Owner", email="ben@acme.example")])
    await store_ad.upsert(eid, entry)
    [event] = parse(await store_ad.get(eid, uid)).walk("VEVENT")
    assert event["DTSTART"].dt == date(2027, 6, 30)
    assert event["DTEND"].dt == date(2027, 7, 1)
    assert event["TRANSP"] == "TRANSPARENT"


async def test_hostile_text_is_stored_escaped(store_ad: CalendarStore) -> None:
    eid = engagement()
    uid = f"{eid}/session"
    entry = CalendarEntry.model_construct(**{
        **session(uid).__dict__,
        "summary": "Offsite 🚀 مدير\r\nATTENDEE:mailto:evil@evil.example",
        "organizer": Recipient.model_construct(name='Cora "C"\r\nX-EVIL:1', email="cora@consult.example",
                                               timezone=None),
    })
    await store_ad.upsert(eid, entry)
    [event] = parse(await store_ad.get(eid, uid)).walk("VEVENT")
    assert str(event["ATTENDEE"]) == "mailto:ana@acme.example"  # one attendee: nothing injected
    assert "X-EVIL" not in event
    assert "🚀 مدير" in str(event["SUMMARY"])


def test_resource_names_are_safe_and_distinct() -> None:
    a, b = resource_name("acme-2027/A2/due"), resource_name("acme-2027/A2-due")
    assert a != b
    assert a.endswith(".ics") and "/" not in a and "@" not in resource_name("x/ana@acme.example")


def test_build_ics_request_and_cancel() -> None:
    request = parse(build_ics(session("acme/session")))
    assert request["METHOD"] == "REQUEST"
    assert request.walk("VEVENT")[0]["STATUS"] == "CONFIRMED"
    cancel_entry = session("acme/session", sequence=3).model_copy(update={"method": "CANCEL"})
    cancel = parse(build_ics(cancel_entry))
    assert cancel["METHOD"] == "CANCEL"
    [event] = cancel.walk("VEVENT")
    assert event["STATUS"] == "CANCELLED" and event["SEQUENCE"] == 3


def test_build_ics_needs_a_time() -> None:
    entry = session("acme/session").model_copy(update={"starts_at": None, "ends_at": None})
    with pytest.raises(ValueError, match="neither"):
        build_ics(entry)


def test_build_ics_tokyo_has_its_own_vtimezone() -> None:
    entry = session("acme/session").model_copy(update={"timezone": "Asia/Tokyo"})
    cal = parse(build_ics(entry))
    [event] = cal.walk("VEVENT")
    assert event["DTSTART"].params["TZID"] == "Asia/Tokyo"
    assert event["DTSTART"].dt.hour == 17 and event["DTSTART"].dt == BERLIN_9AM
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Asia/Tokyo"]
