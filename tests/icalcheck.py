"""Reading an ICS the way two independent parsers do: icalendar (what engage writes with) and vobject (its own
parser and, through dateutil, its own reading of the VTIMEZONE). `facts` asserts both see the same thing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email.message import EmailMessage
from typing import Any

import icalendar
import vobject

Facts = dict[str, Any]


def _when(value: object) -> object:
    if isinstance(value, datetime):
        assert value.tzinfo is not None, "every time is zoned (TZID with a VTIMEZONE, or UTC)"
        return value.astimezone(UTC)
    assert isinstance(value, date)
    return value


def _address(value: str) -> str:
    return value.removeprefix("mailto:").removeprefix("MAILTO:").lower()


def by_icalendar(ics: bytes) -> Facts:
    cal = icalendar.Calendar.from_ical(ics)
    events = []
    event: Any
    for event in cal.walk("VEVENT"):
        e = event
        attendees = e.get("ATTENDEE", [])
        attendees = attendees if isinstance(attendees, list) else [attendees]
        rid = e.get("RECURRENCE-ID")
        events.append({
            "uid": str(e["UID"]), "sequence": int(e.get("SEQUENCE", 0)), "status": str(e.get("STATUS", "")),
            "recurrence_id": _when(rid.dt) if rid is not None else None,
            "start": _when(e["DTSTART"].dt), "end": _when(e["DTEND"].dt),
            "rrule": e["RRULE"].to_ical().decode() if "RRULE" in e else None,
            "organizer": _address(str(e["ORGANIZER"])),
            "attendees": sorted((_address(str(a)), str(a.params.get("PARTSTAT", "")),
                                 str(a.params.get("SCHEDULE-AGENT", ""))) for a in attendees),
        })
    return {"method": str(cal["METHOD"]) if "METHOD" in cal else None, "events": events}


def by_vobject(ics: bytes) -> Facts:
    cal = vobject.readOne(ics.decode("utf-8"))
    events = []
    for e in cal.contents.get("vevent", []):
        rid = e.contents.get("recurrence-id")
        rrule = e.contents.get("rrule")
        events.append({
            "uid": e.uid.value, "sequence": int(e.sequence.value) if "sequence" in e.contents else 0,
            "status": e.status.value if "status" in e.contents else "",
            "recurrence_id": _when(rid[0].value) if rid else None,
            "start": _when(e.dtstart.value), "end": _when(e.dtend.value),
            "rrule": rrule[0].value if rrule else None,
            "organizer": _address(e.organizer.value),
            "attendees": sorted((_address(a.value), a.params.get("PARTSTAT", [""])[0],
                                 a.params.get("SCHEDULE-AGENT", [""])[0]) for a in e.contents.get("attendee", [])),
        })
    return {"method": cal.method.value if "method" in cal.contents else None, "events": events}


def facts(ics: bytes) -> Facts:
    """What both parsers read: method, and per VEVENT the UID, SEQUENCE, RECURRENCE-ID, start and end (UTC, or
    the date of an all-day entry), RRULE, STATUS, ORGANIZER and attendees with PARTSTAT; asserted equal."""
    one, other = by_icalendar(ics), by_vobject(ics)
    assert one == other, f"icalendar and vobject disagree:\n{one}\n{other}"
    return one


def calendar_of(mail: EmailMessage) -> tuple[str, bytes]:
    """(method parameter, ICS) of a mail's text/calendar part; the invite.ics attachment must be the same."""
    parts = [p for p in mail.walk() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1, "one iTIP part"
    ics = parts[0].get_payload(decode=True)
    assert isinstance(ics, bytes)
    attached = [p.get_payload(decode=True) for p in mail.walk() if p.get_filename() == "invite.ics"]
    # The same object; a 7bit text part may come back with its line ends normalised.
    assert [a.replace(b"\r\n", b"\n") for a in attached if isinstance(a, bytes)] == [ics.replace(b"\r\n", b"\n")]
    return str(parts[0].get_param("method")), ics
