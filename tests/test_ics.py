"""Every ICS engage writes, read by two independent parsers (icalendar and vobject, tests/icalcheck.py), and
the VTIMEZONE it writes compared with zoneinfo (issue 17).

The entries are built as workflows/engagement.py builds them (the same domain functions), and the mails by the
real `build_email`, so what is parsed is what an attendee's calendar receives."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import vobject

from adapters.email.mime import build_email
from adapters.ics import build_ics, transitions, vtimezone
from domain.agenda import held_agenda
from domain.session import event_summary, session_bounds, session_days, venue_words
from schemas.events import MessageKind
from schemas.messages import CalendarEntry, MessageContext, OutboundMessage, Recipient, ReplyScope, SessionDay
from schemas.recommendation import EngagementFormat, Venue
from schemas.settings import Settings
from tests.icalcheck import calendar_of, facts

SETTINGS = Settings(_env_file=None, mail_from="engage <engage@engage.example>",  # type: ignore[call-arg]
                    inbound_domain="in.engage.example")
NOW = datetime(2027, 1, 20, 10, tzinfo=UTC)
CONSULTANT = Recipient(name="Dana Reyes", email="dana@consultancy.example")
PEOPLE = [Recipient(name="Ana Lima", email="ana@acme.example", timezone="America/Sao_Paulo"),
          Recipient(name="Ben Wu", email="ben@acme.example")]
TZ = "Europe/Berlin"


def session_entry(days: float, on: date = date(2027, 2, 11), sequence: int = 0, method: str = "REQUEST"
                  ) -> CalendarEntry:
    starts, ends = session_bounds(on, time(9), days, TZ, timedelta(hours=8))
    agenda = held_agenda(EngagementFormat.combined, days, [], [], group_size=3, starts=time(9),
                         hours=timedelta(hours=8))
    each = session_days(starts, ends, days, TZ, agenda)
    return CalendarEntry(
        uid="acme-2027/session", sequence=sequence + (method == "CANCEL"), method=method,  # type: ignore[arg-type]
        summary=event_summary("Acme Corp", EngagementFormat.combined), starts_at=starts, ends_at=ends, timezone=TZ,
        days=[SessionDay(starts_at=a, ends_at=b) for a, b in each] if len(each) > 1 else [],
        location=venue_words(Venue.offsite), organizer=CONSULTANT, chair=CONSULTANT, attendees=PEOPLE)


def due_entry(method: str = "REQUEST") -> CalendarEntry:
    return CalendarEntry(uid="acme-2027/A1/due", summary="Due: Grow the partner pipeline",
                         sequence=1 if method == "CANCEL" else 0, method=method,  # type: ignore[arg-type]
                         all_day=date(2027, 5, 31), timezone="Asia/Tokyo", organizer=CONSULTANT,
                         attendees=[PEOPLE[1]], rsvp=False)


def mail(kind: MessageKind, entry: CalendarEntry, reply: bool) -> bytes:
    message = OutboundMessage(
        engagement_id="acme-2027", key=f"acme-2027/{kind.value}/ana", kind=kind, to=PEOPLE[0], calendar=entry,
        reply=ReplyScope(expires_at=NOW + timedelta(days=30)) if reply else None,
        context=MessageContext(client="Acme Corp", engagement_id="acme-2027", recipient_name="Ana Lima",
                               consultant_name="Dana Reyes", format="combined", action_title="Grow"))
    built = build_email(message, SETTINGS, "<x@engage.example>", now=NOW)
    import email
    import email.policy
    parsed = email.message_from_bytes(built.as_bytes(), policy=email.policy.default)
    method, ics = calendar_of(parsed)  # type: ignore[arg-type]
    assert method == entry.method
    return ics


CASES = {
    "invitation, one day": (MessageKind.invitation, session_entry(1), True),
    "invitation, two days": (MessageKind.invitation, session_entry(2), True),
    "invitation, one and a half days": (MessageKind.invitation, session_entry(1.5), True),
    "reschedule": (MessageKind.invitation, session_entry(2, on=date(2027, 2, 18), sequence=1), True),
    "reminder to answer": (MessageKind.invitation_reminder, session_entry(2), True),
    "cancel, two days": (MessageKind.invitation_cancel, session_entry(2, sequence=1, method="CANCEL"), False),
    "due date": (MessageKind.action_assignment, due_entry(), False),
    "due date cancelled": (MessageKind.action_cancel, due_entry("CANCEL"), False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_message_kind_reads_the_same_in_icalendar_and_vobject(case: str) -> None:
    kind, entry, reply = CASES[case]
    read = facts(mail(kind, entry, reply))
    assert read["method"] == entry.method
    uid = f"{entry.uid}@engage.example"
    assert {e["uid"] for e in read["events"]} == {uid}
    assert {e["sequence"] for e in read["events"]} == {entry.sequence}
    assert {e["status"] for e in read["events"]} == {"CANCELLED" if entry.method == "CANCEL" else "CONFIRMED"}
    [master, *days] = read["events"]
    organizer = master["organizer"]
    if reply:  # an invitation: the signed reply address, so the RSVP comes back to engage
        assert organizer.startswith("checkin+") and organizer.endswith("@in.engage.example")
    else:
        assert organizer == "engage@engage.example"
    people = [(p.email, "NEEDS-ACTION", "") for p in entry.attendees]
    if entry.chair is not None:
        people.append((CONSULTANT.email, "ACCEPTED", ""))
    assert master["attendees"] == sorted(people)
    if entry.all_day is not None:
        assert (master["start"], master["end"]) == (entry.all_day, entry.all_day + timedelta(days=1))  # type: ignore[operator]
        return
    want = [(d.starts_at, d.ends_at) for d in entry.days] or [(entry.starts_at, entry.ends_at)]
    assert (master["start"], master["end"]) == want[0]
    if entry.method == "CANCEL":  # the master alone: the whole series goes
        assert days == [] and master["rrule"] == (f"FREQ=DAILY;COUNT={len(want)}" if len(want) > 1 else None)
        return
    # One VEVENT a day, each with its own hours, none across the night.
    assert [(e["start"], e["end"]) for e in read["events"]] == want
    assert all(end - start <= timedelta(hours=9) for start, end in want)
    assert [e["recurrence_id"] for e in days] == [want[0][0] + timedelta(days=n) for n in range(1, len(want))]


def test_a_multi_day_session_is_one_event_a_day_with_that_days_hours() -> None:
    entry = session_entry(2)
    berlin = ZoneInfo(TZ)
    assert [(d.starts_at.astimezone(berlin).strftime("%a %H:%M"), d.ends_at.astimezone(berlin).strftime("%H:%M"))
            for d in entry.days] == [("Thu 09:00", "17:00"), ("Fri 09:00", "17:00")]
    assert entry.summary == "Acme Corp — leadership offsite and strategy session"
    assert entry.location == "Offsite venue"
    half = session_entry(1.5)
    assert [(d.ends_at - d.starts_at) for d in half.days][0] == timedelta(hours=8)
    assert len(half.days) == 2


def test_the_caldav_copy_asks_no_server_to_schedule() -> None:
    for entry in (session_entry(2), due_entry()):
        read = facts(build_ics(entry, method=False, stored=True, domain="engage.example",
                               organizer_address="engage@engage.example", now=NOW))
        assert read["method"] is None
        for event in read["events"]:
            assert {agent for _, _, agent in event["attendees"]} == {"CLIENT"}
        cal = icalendar.Calendar.from_ical(build_ics(entry, method=False, stored=True, now=NOW))
        assert all(e["ORGANIZER"].params["SCHEDULE-AGENT"] == "CLIENT" for e in cal.walk("VEVENT"))


# --- VTIMEZONE ---------------------------------------------------------------------------------------------

ZONES = ["Europe/Berlin", "America/New_York", "America/St_Johns", "Australia/Lord_Howe", "Asia/Kathmandu",
         "Europe/London", "America/Sao_Paulo", "Australia/Sydney", "Pacific/Auckland", "Pacific/Chatham",
         "America/Santiago", "Asia/Tokyo", "Africa/Casablanca", "Europe/Dublin"]
FIRST, LAST = date(2027, 1, 1), date(2028, 12, 31)


def zoneinfo_changes(zone: str) -> list[tuple[datetime, timedelta]]:
    """The test's own scan of zoneinfo, every 15 minutes (every change in these zones falls on a quarter hour)."""
    tz = ZoneInfo(zone)
    at = datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=UTC)
    end = datetime(LAST.year, LAST.month, LAST.day, tzinfo=UTC) + timedelta(days=1)
    changes, offset = [], at.astimezone(tz).utcoffset()
    while at < end:
        at += timedelta(minutes=15)
        now = at.astimezone(tz).utcoffset()
        if now != offset:
            assert now is not None
            changes.append((at, now))
            offset = now
    return changes


def observances(ics: bytes) -> list[tuple[datetime, timedelta]]:
    """Each onset the VTIMEZONE declares (DTSTART and RDATEs), read as RFC 5545 defines it: a local time in
    TZOFFSETFROM, so the instant is the local time minus TZOFFSETFROM."""
    cal = icalendar.Calendar.from_ical(ics)
    [tz] = cal.walk("VTIMEZONE")
    found = []
    part: Any
    for part in tz.subcomponents:
        before, after = part["TZOFFSETFROM"].td, part["TZOFFSETTO"].td
        rdates = part.get("RDATE", [])
        starts = [part["DTSTART"].dt] + [d.dt for r in (rdates if isinstance(rdates, list) else [rdates])
                                         for d in r.dts]
        for local in starts:
            if before != after:
                found.append(((local - before).replace(tzinfo=UTC), after))
    return sorted(found)


@pytest.mark.parametrize("zone", ZONES)
def test_vtimezone_transitions_are_zoneinfos(zone: str) -> None:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//engage test//EN")
    cal.add("version", "2.0")
    cal.add_component(vtimezone(zone, FIRST, LAST))
    ics = cal.to_ical()
    expected = zoneinfo_changes(zone)
    assert observances(ics) == expected
    assert [(t.at, t.offset_to) for t in transitions(zone, FIRST, LAST)[1]] == expected
    if zone == "Asia/Kathmandu":
        assert expected == []  # +05:45 all year: one observance, no change

    # Read by an independent reader (vobject builds a tzinfo from the VTIMEZONE through dateutil): every two
    # hours over the two years, and a minute either side of each change, its offset is zoneinfo's. Instants whose
    # local time is ambiguous (the repeated hour) are left out: dateutil picks the wrong fold there for some
    # zones whatever the VTIMEZONE says (Lord Howe, Chatham, Dublin), a reader's limitation, not the data's.
    reader = vobject.readOne(ics.decode()).vtimezone.gettzinfo()
    tz = ZoneInfo(zone)
    instants = [datetime(FIRST.year, 1, 2, tzinfo=UTC) + timedelta(hours=2 * n) for n in range(2 * 365 * 12)]
    instants += [at + d for at, _ in expected for d in (timedelta(minutes=-1), timedelta(minutes=1))]
    for at in instants:
        local = at.astimezone(tz)
        naive = local.replace(tzinfo=None)
        if (naive.replace(tzinfo=tz, fold=0).utcoffset() != naive.replace(tzinfo=tz, fold=1).utcoffset()
                or not FIRST < at.date() < LAST):
            continue
        assert at.astimezone(reader).utcoffset() == local.utcoffset(), (zone, at)


def test_the_daylight_onset_is_the_local_time_before_the_change() -> None:
    """Berlin, 2027-03-28: 02:00 CET becomes 03:00 CEST at 01:00 UTC; the icalendar library writes 03:00."""
    cal = icalendar.Calendar.from_ical(build_ics(session_entry(1, on=date(2027, 3, 4)), now=NOW))
    daylight: Any
    [daylight] = [c for c in cal.walk("DAYLIGHT")]
    onsets = [daylight["DTSTART"].dt] + [d.dt for d in daylight["RDATE"].dts]
    assert datetime(2027, 3, 28, 2, 0) in onsets
