"""ICS (iCalendar) for a CalendarEntry: the invitation attached to emails and the object stored over CalDAV."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vCalAddress, vText

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


def _address(person: Recipient, **params: str) -> vCalAddress:
    address = vCalAddress(f"mailto:{_param_text(person.email)}")
    address.params["CN"] = vText(_param_text(person.name))
    for name, value in params.items():
        address.params[name] = vText(value)
    return address


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("calendar times must be timezone-aware")
    return moment.astimezone(zone)


def build_ics(entry: CalendarEntry, *, method: bool = True, now: datetime | None = None) -> bytes:
    """The entry as an iCalendar object.

    `method=False` leaves out the METHOD property: an iTIP message (email) needs it, a CalDAV calendar
    object resource must not carry it (RFC 4791, 4.1)."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    if method:
        cal.add("method", entry.method)

    event = Event()
    event.add("uid", entry.uid)
    event.add("sequence", entry.sequence)
    event.add("dtstamp", (now or datetime.now(UTC)).astimezone(UTC))
    first_day: date
    last_day: date
    if entry.all_day is not None:
        event.add("dtstart", entry.all_day)
        event.add("dtend", entry.all_day + timedelta(days=1))
        # A due date marks the day; it must not block the owner's calendar.
        event.add("transp", "TRANSPARENT")
        first_day = last_day = entry.all_day
    elif entry.starts_at is not None:
        zone = ZoneInfo(entry.timezone)
        start = _local(entry.starts_at, zone)
        end = _local(entry.ends_at, zone) if entry.ends_at is not None else start + DEFAULT_DURATION
        event.add("dtstart", start)
        event.add("dtend", end)
        event.add("transp", "OPAQUE")
        first_day, last_day = start.date(), end.date()
    else:
        raise ValueError(f"calendar entry {entry.uid!r} has neither starts_at nor all_day")

    event.add("summary", entry.summary)
    if entry.description:
        event.add("description", entry.description)
    if entry.location:
        event.add("location", entry.location)
    event.add("organizer", _address(entry.organizer))
    for attendee in entry.attendees:
        event.add(
            "attendee",
            _address(attendee, CUTYPE="INDIVIDUAL", ROLE="REQ-PARTICIPANT", PARTSTAT="NEEDS-ACTION", RSVP="TRUE"),
        )
    event.add("status", "CANCELLED" if entry.method == "CANCEL" else "CONFIRMED")
    cal.add_component(event)

    if entry.all_day is None:
        cal.add_missing_timezones(first_date=first_day - _TZ_MARGIN, last_date=last_day + _TZ_MARGIN)
    return cal.to_ical()
