"""ICS (iCalendar) for a CalendarEntry: the invitation attached to emails and the object stored over CalDAV;
and the reading of an attendee's iMIP REPLY or COUNTER (RFC 5546, RFC 6047).

A session of several days is one daily series under one UID: the first day is the master VEVENT (DTSTART and
DTEND of day 1, `RRULE:FREQ=DAILY;COUNT=n`), each later day an override VEVENT with its RECURRENCE-ID and that
day's own hours. Why a series and not one UID per day under RELATED-TO: Outlook, Google Calendar and Apple
Calendar all treat an iMIP REQUEST or CANCEL without RECURRENCE-ID as the whole series, so one message updates or
cancels every day at once, and an attendee answers once for all days; RELATED-TO is ignored by all three for
scheduling, so separate UIDs would mean separate invitations, separate answers, and a cancel each.

The VTIMEZONE is written here, not by the icalendar library: its DAYLIGHT observances start an hour late (their
DTSTART is the local time after the change, where RFC 5545 wants it in TZOFFSETFROM, i.e. before). Ours are
the transitions zoneinfo knows, found by scanning the zone, so a client that reads the VTIMEZONE instead of its
own zone database changes over at the right minute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import parseaddr
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

from icalendar import Calendar, Component, Event, Timezone, TimezoneDaylight, TimezoneStandard, vCalAddress, vText

from schemas.messages import CalendarEntry, Recipient

PRODID = "-//engage//engagement engine//EN"
DEFAULT_DURATION = timedelta(hours=1)
# The VTIMEZONE only needs the rules around the event: a year either side keeps it to a few lines
# instead of every transition since 1970.
_TZ_MARGIN = timedelta(days=366)
# Parameter values (CN) cannot hold a DQUOTE, and no property may hold a line break.
_UNSAFE_PARAM = re.compile(r'[\x00-\x1f\x7f\x85\u2028\u2029"]+')


def _param_text(value: str) -> str:
    return " ".join(_UNSAFE_PARAM.sub(" ", value).split())


def _address(person: Recipient, email: str | None = None, **params: str) -> vCalAddress:
    address = vCalAddress(f"mailto:{_param_text(email or person.email)}")
    address.params["CN"] = vText(_param_text(person.name))
    for name, value in params.items():
        address.params[name.replace("_", "-")] = vText(value)
    return address


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("calendar times must be timezone-aware")
    return moment.astimezone(zone)


def mail_domain(mail_from: str) -> str:
    """The domain of ENGAGE_MAIL_FROM (`engage <engage@example.com>` -> example.com), the UIDs' right-hand side."""
    _, addr = parseaddr(mail_from)
    domain = (addr or mail_from).rpartition("@")[2]
    return ".".join(p for p in re.sub(r"[^A-Za-z0-9.-]+", "", domain).split(".") if p) or "engage.localhost"


def sender_address(mail_from: str) -> str:
    """The bare address of ENGAGE_MAIL_FROM."""
    _, addr = parseaddr(mail_from)
    return (addr or mail_from).strip()


def ics_uid(uid: str, domain: str) -> str:
    """A globally unique UID (RFC 5545 3.8.4.7): the step's key at the mail domain."""
    return uid if "@" in uid else f"{uid}@{domain}"


# ---------------------------------------------------------------------------------------------------------
# VTIMEZONE from zoneinfo
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    at: datetime  # UTC, the first instant of the new offset
    offset_from: timedelta
    offset_to: timedelta
    name: str
    daylight: bool


def _state(zone: ZoneInfo, at: datetime) -> tuple[timedelta, str, bool]:
    local = at.astimezone(zone)
    offset, dst = local.utcoffset(), local.dst()
    assert offset is not None
    return offset, local.tzname() or "", bool(dst and dst > timedelta(0))


@lru_cache(maxsize=512)
def transitions(zone_name: str, first: date, last: date) -> tuple[tuple[timedelta, str, bool], list[Transition]]:
    """The offset in force at `first` (with its name, and whether it is daylight time), and every change of
    offset or name until `last`, to the second, as zoneinfo has them."""
    zone = ZoneInfo(zone_name)
    moment = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    step = timedelta(hours=6)  # zones change at most twice a year; no two changes lie six hours apart
    state = _state(zone, moment)
    initial = state
    found: list[Transition] = []
    while moment < end:
        later = moment + step
        new = _state(zone, later)
        if new != state:
            low, high = moment, later
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                middle = middle.replace(microsecond=0)
                if _state(zone, middle) == state:
                    low = middle
                else:
                    high = middle
            found.append(Transition(at=high, offset_from=state[0], offset_to=new[0], name=new[1], daylight=new[2]))
            state = new
        moment = later
    return initial, found


def _offset(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    sign = "+" if seconds >= 0 else "-"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours:02d}{minutes:02d}" + (f"{secs:02d}" if secs else "")


def vtimezone(zone_name: str, first: date, last: date) -> Timezone:
    """The VTIMEZONE of the zone from `first` to `last`: the offset at `first`, then every transition, each
    observance's DTSTART the local time before it (in TZOFFSETFROM), as RFC 5545 3.6.5 defines it. Transitions
    alike (same offsets and name) share one observance: a DTSTART and RDATEs."""
    (offset, name, daylight_now), found = transitions(zone_name, first, last)
    tz = Timezone()
    tz.add("tzid", zone_name)
    start = datetime(first.year, first.month, first.day)
    base: Component = TimezoneDaylight() if daylight_now else TimezoneStandard()
    base.add("tzname", name)
    base.add("tzoffsetfrom", offset)
    base.add("tzoffsetto", offset)
    base.add("dtstart", start)
    tz.add_component(base)
    groups: dict[tuple[timedelta, timedelta, str, bool], list[datetime]] = {}
    for t in found:
        groups.setdefault((t.offset_from, t.offset_to, t.name, t.daylight), []).append(
            (t.at + t.offset_from).replace(tzinfo=None))
    for (off_from, off_to, tzname, daylight), starts in groups.items():
        observance: Component = TimezoneDaylight() if daylight else TimezoneStandard()
        observance.add("dtstart", starts[0])
        for extra in starts[1:]:
            observance.add("rdate", extra)
        observance.add("tzname", tzname)
        observance.add("tzoffsetfrom", off_from)
        observance.add("tzoffsetto", off_to)
        tz.add_component(observance)
    return tz


# ---------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------


def build_ics(entry: CalendarEntry, *, method: bool = True, now: datetime | None = None,
              domain: str = "engage.localhost", organizer_address: str | None = None,
              stored: bool = False) -> bytes:
    """The entry as an iCalendar object.

    `method=False` leaves out the METHOD property: an iTIP message (email) needs it, a CalDAV calendar
    object resource must not carry it (RFC 4791, 4.1). `organizer_address` replaces the organizer's mailbox
    (the signed reply address, so RSVPs come back to engage). `stored`: the CalDAV copy, whose ORGANIZER and
    ATTENDEEs carry SCHEDULE-AGENT=CLIENT (RFC 6638, 7.1) so a server that schedules on its own sends nothing."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    if method:
        cal.add("method", entry.method)
    stamp = (now or datetime.now(UTC)).astimezone(UTC)
    agent = {"SCHEDULE_AGENT": "CLIENT"} if stored else {}

    def event_with_people() -> Event:
        event = Event()
        event.add("uid", ics_uid(entry.uid, domain))
        event.add("sequence", entry.sequence)
        event.add("dtstamp", stamp)
        event.add("summary", entry.summary)
        if entry.description:
            event.add("description", entry.description)
        if entry.location:
            event.add("location", entry.location)
        event.add("organizer", _address(entry.organizer, organizer_address, **agent))
        if entry.chair is not None:
            event.add("attendee", _address(entry.chair, CUTYPE="INDIVIDUAL", ROLE="CHAIR", PARTSTAT="ACCEPTED",
                                           RSVP="FALSE", **agent))
        for attendee in entry.attendees:
            event.add("attendee", _address(attendee, CUTYPE="INDIVIDUAL", ROLE="REQ-PARTICIPANT",
                                           PARTSTAT="NEEDS-ACTION", RSVP="TRUE" if entry.rsvp else "FALSE",
                                           **agent))
        event.add("status", "CANCELLED" if entry.method == "CANCEL" else "CONFIRMED")
        return event

    first_day: date
    last_day: date
    if entry.all_day is not None:
        event = event_with_people()
        event.add("dtstart", entry.all_day)
        event.add("dtend", entry.all_day + timedelta(days=1))
        # A due date marks the day; it must not block the owner's calendar.
        event.add("transp", "TRANSPARENT")
        cal.add_component(event)
        first_day = last_day = entry.all_day
    elif entry.starts_at is not None:
        zone = ZoneInfo(entry.timezone)
        days = [(d.starts_at, d.ends_at) for d in entry.days] if len(entry.days) > 1 else []
        if days:
            start, end = _local(days[0][0], zone), _local(days[0][1], zone)
        else:
            start = _local(entry.starts_at, zone)
            end = _local(entry.ends_at, zone) if entry.ends_at is not None else start + DEFAULT_DURATION
        event = event_with_people()
        event.add("dtstart", start)
        event.add("dtend", end)
        event.add("transp", "OPAQUE")
        if days:
            event.add("rrule", {"FREQ": "DAILY", "COUNT": len(days)})
        cal.add_component(event)
        first_day, last_day = start.date(), end.date()
        # A cancel of the series names the master only: every day goes with it.
        for number, (day_start, day_end) in enumerate(days[1:] if entry.method == "REQUEST" else [], start=1):
            override = event_with_people()
            # The instance the rule makes on that day: day 1's wall-clock start, `number` days later.
            override.add("recurrence-id", datetime.combine(start.date() + timedelta(days=number),
                                                           start.timetz().replace(tzinfo=None), tzinfo=zone))
            override.add("dtstart", _local(day_start, zone))
            override.add("dtend", _local(day_end, zone))
            override.add("transp", "OPAQUE")
            cal.add_component(override)
            last_day = _local(day_end, zone).date()
    else:
        raise ValueError(f"calendar entry {entry.uid!r} has neither starts_at nor all_day")

    if entry.all_day is None:
        # Before the events that name it: some readers resolve a TZID as they meet it.
        cal.subcomponents.insert(0, vtimezone(entry.timezone, first_day - _TZ_MARGIN, last_day + _TZ_MARGIN))
    return cal.to_ical()


# ---------------------------------------------------------------------------------------------------------
# Reading an attendee's answer
# ---------------------------------------------------------------------------------------------------------

_PARTSTAT: dict[str, Literal["accepted", "declined", "tentative"]] = {
    "ACCEPTED": "accepted", "DECLINED": "declined", "TENTATIVE": "tentative"}


@dataclass(frozen=True)
class Rsvp:
    """One attendee's answer in an iMIP REPLY (or COUNTER)."""

    method: Literal["REPLY", "COUNTER"]
    uid: str
    sequence: int
    attendee: str  # the bare address, lower case
    attendance: Literal["accepted", "declined", "tentative"] | None  # None: a PARTSTAT we do not record
    comment: str | None = None
    proposed_starts_at: datetime | None = None
    proposed_ends_at: datetime | None = None


class NotAnRsvp(ValueError):  # noqa: N818 - the reason a calendar part cannot be read as an RSVP
    pass


def _utc(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return None


def read_rsvp(ics: bytes | str) -> Rsvp:
    """The answer in a METHOD:REPLY or METHOD:COUNTER object: its UID, SEQUENCE, the one attendee and PARTSTAT
    (of the master, or of the first instance when only instances are answered), a comment, and for a counter
    the proposed times (UTC). NotAnRsvp says why anything else is not one."""
    try:
        cal = Calendar.from_ical(ics)
    except ValueError as exc:
        raise NotAnRsvp(f"the calendar part cannot be parsed: {exc}") from None
    method = str(cal.get("METHOD", "")).strip().upper()
    if method not in ("REPLY", "COUNTER"):
        raise NotAnRsvp(f"METHOD:{method or '(none)'} is not an answer to an invitation")
    events = [c for c in cal.walk("VEVENT")]
    if not events:
        raise NotAnRsvp("the calendar part holds no VEVENT")
    events.sort(key=lambda e: e.get("RECURRENCE-ID") is not None)  # the master first
    event = events[0]
    attendees = event.get("ATTENDEE")
    listed = attendees if isinstance(attendees, list) else [attendees] if attendees is not None else []
    if method == "REPLY" and len(listed) != 1:
        raise NotAnRsvp(f"a REPLY names exactly one attendee, this one {len(listed)}")
    if not listed:
        raise NotAnRsvp("the answer names no attendee")
    attendee = listed[0]
    address = str(attendee).strip()
    if address.lower().startswith("mailto:"):
        address = address[7:]
    partstat = str(attendee.params.get("PARTSTAT", "")).upper() if hasattr(attendee, "params") else ""
    comment = event.get("COMMENT")
    comment_text = " ".join(str(comment[0] if isinstance(comment, list) else comment).split()) if comment else None
    if not comment_text and hasattr(attendee, "params"):
        # Google Calendar puts the attendee's note in a parameter of their ATTENDEE line.
        comment_text = " ".join(str(attendee.params.get("X-RESPONSE-COMMENT", "")).split()) or None
    starts = ends = None
    if method == "COUNTER":
        starts = _utc(event.decoded("DTSTART")) if "DTSTART" in event else None
        ends = _utc(event.decoded("DTEND")) if "DTEND" in event else None
    try:
        sequence = int(str(event.get("SEQUENCE", 0)))
    except ValueError:
        sequence = 0
    return Rsvp(method=method,  # type: ignore[arg-type]
                uid=str(event.get("UID", "")), sequence=max(0, sequence), attendee=address.strip().lower(),
                attendance=_PARTSTAT.get(partstat) if method == "REPLY" else _PARTSTAT.get(partstat, "tentative"),
                comment=comment_text or None, proposed_starts_at=starts, proposed_ends_at=ends)
