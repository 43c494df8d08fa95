"""RSVPs come back (issue 17): attendees answer the invitation in their calendar, the calendar mails an iMIP
REPLY to the ORGANIZER (the invitation's signed reply address), and the real inbound SMTP server records it.

The REPLY mails are built the way Outlook (Exchange) and Google Calendar send them. Where the shapes come from:
reconstructed from public descriptions and samples, not captured from live accounts here. Outlook: Microsoft's
[MS-OXCICAL] (PRODID "Microsoft Exchange Server 2010", a Windows TZID such as "W. Europe Standard Time" with
its own RRULE-based VTIMEZONE from 1601, the X-MICROSOFT-CDO-* properties, COMMENT;LANGUAGE, SUMMARY
"Accepted: ...", a multipart/alternative with text/plain, text/html and a base64 text/calendar;method=REPLY,
and `Content-class: urn:content-classes:calendarmessage`). Gmail: Google Calendar's replies (PRODID
"-//Google Inc//Google Calendar 70.9054//EN", times in UTC, ATTENDEE with X-NUM-GUESTS and the note in
X-RESPONSE-COMMENT, multipart/mixed holding multipart/alternative with text/calendar;method=REPLY and the same
object again as an invite.ics attachment).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, make_msgid, parseaddr

import asyncpg
import pytest_asyncio
from rich.console import Console
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.testing import WorkflowEnvironment

from adapters.email.headers import message_id_for
from adapters.inbound_server import InboundServer
from cli.views import print_status
from devstack.mailsink import MailSink
from schemas.events import RsvpRecorded
from schemas.settings import Settings
from schemas.updates import ScheduleSession
from schemas.views import EngagementStatus
from store.events import read_log
from tests.conftest import unique_id
from tests.icalcheck import calendar_of, facts
from tests.lifecycle import scheduled, scoping, started
from tests.mailbox import MAIL_DOMAIN, mail_at_sink, text_of
from tests.test_inbound import send
from workflows.engagement import EngagementWorkflow as EW
from workflows.search_attributes import ATTENDEES_DECLINED

ANA = ("Ana Lima", "ana@acme.example")
BEN = ("Ben Wu", "ben@acme.example")
CHLOE = ("Chloé Martin", "chloe@acme.example")


@pytest_asyncio.fixture(loop_scope="session")
async def inbound_server(time_skipping_env: WorkflowEnvironment, settings: Settings,
                         pool: asyncpg.Pool) -> AsyncIterator[InboundServer]:
    async with InboundServer(settings, time_skipping_env.client, pool, host="127.0.0.1", port=0) as server:
        yield server


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def outlook_reply(who: tuple[str, str], organizer: str, uid: str, sequence: int, partstat: str,
                  starts: datetime, summary: str) -> EmailMessage | MIMEMultipart:
    """An Outlook (Exchange) RSVP: Windows time zone names, X-MICROSOFT-CDO-*, base64 text/calendar."""
    word = {"ACCEPTED": "Accepted", "DECLINED": "Declined", "TENTATIVE": "Tentative"}[partstat]
    local = starts.astimezone(UTC) + timedelta(hours=1)  # W. Europe Standard Time in February
    ics = "\r\n".join([
        "BEGIN:VCALENDAR", "METHOD:REPLY", "PRODID:Microsoft Exchange Server 2010", "VERSION:2.0",
        "BEGIN:VTIMEZONE", "TZID:W. Europe Standard Time",
        "BEGIN:STANDARD", "DTSTART:16010101T030000", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100",
        "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10", "END:STANDARD",
        "BEGIN:DAYLIGHT", "DTSTART:16010101T020000", "TZOFFSETFROM:+0100", "TZOFFSETTO:+0200",
        "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3", "END:DAYLIGHT", "END:VTIMEZONE",
        "BEGIN:VEVENT",
        f"ORGANIZER;CN=Dana Reyes:mailto:{organizer}",
        f"ATTENDEE;PARTSTAT={partstat};CN={who[0]}:mailto:{who[1]}",
        "COMMENT;LANGUAGE=en-US:\\n",
        "RRULE:FREQ=DAILY;COUNT=2",
        f"SUMMARY;LANGUAGE=en-US:{word}: {summary}",
        f"DTSTART;TZID=W. Europe Standard Time:{local.strftime('%Y%m%dT%H%M%S')}",
        f"DTEND;TZID=W. Europe Standard Time:{(local + timedelta(hours=8)).strftime('%Y%m%dT%H%M%S')}",
        f"UID:{uid}", "CLASS:PUBLIC", "PRIORITY:5", f"DTSTAMP:{_stamp(datetime.now(UTC))}", "TRANSP:OPAQUE",
        "STATUS:CONFIRMED", f"SEQUENCE:{sequence}", "LOCATION;LANGUAGE=en-US:Offsite venue",
        f"X-MICROSOFT-CDO-APPT-SEQUENCE:{sequence}", "X-MICROSOFT-CDO-OWNERAPPTID:-1",
        "X-MICROSOFT-CDO-BUSYSTATUS:BUSY", "X-MICROSOFT-CDO-INTENDEDSTATUS:BUSY",
        "X-MICROSOFT-CDO-ALLDAYEVENT:FALSE", "X-MICROSOFT-CDO-IMPORTANCE:1", "X-MICROSOFT-CDO-INSTTYPE:1",
        "X-MICROSOFT-DONOTFORWARDMEETING:FALSE", "X-MICROSOFT-DISALLOW-COUNTER:FALSE",
        "END:VEVENT", "END:VCALENDAR", ""])
    calendar = MIMEText(ics, "calendar", "utf-8")  # utf-8 -> base64, as Exchange sends it
    calendar.set_param("method", "REPLY")
    msg = MIMEMultipart("alternative", _subparts=[MIMEText("\r\n", "plain", "utf-8"),
                                                  MIMEText("<html><body></body></html>", "html", "utf-8"),
                                                  calendar])
    msg["From"] = f"{who[0]} <{who[1]}>"
    msg["To"] = f"Dana Reyes <{organizer}>"
    msg["Subject"] = f"{word}: {summary}"
    msg["Thread-Topic"] = summary
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain="EXCH01.acme.example")
    msg["Content-class"] = "urn:content-classes:calendarmessage"
    msg["X-MS-Has-Attach"] = ""
    msg["X-MS-TNEF-Correlator"] = ""
    return msg


def gmail_reply(who: tuple[str, str], organizer: str, uid: str, sequence: int, partstat: str, starts: datetime,
                summary: str, note: str = "") -> MIMEMultipart:
    """A Google Calendar RSVP: UTC times, X-NUM-GUESTS, the note in X-RESPONSE-COMMENT, the ICS twice."""
    comment = f';X-RESPONSE-COMMENT="{note}"' if note else ""
    ics = "\r\n".join([
        "BEGIN:VCALENDAR", "PRODID:-//Google Inc//Google Calendar 70.9054//EN", "VERSION:2.0",
        "CALSCALE:GREGORIAN", "METHOD:REPLY", "BEGIN:VEVENT",
        f"DTSTART:{_stamp(starts)}", f"DTEND:{_stamp(starts + timedelta(hours=8))}", "RRULE:FREQ=DAILY;COUNT=2",
        f"DTSTAMP:{_stamp(datetime.now(UTC))}", f"ORGANIZER;CN=Dana Reyes:mailto:{organizer}", f"UID:{uid}",
        f"ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT={partstat};CN={who[0]}{comment};"
        f"X-NUM-GUESTS=0:mailto:{who[1]}",
        "CREATED:20261129T100000Z", "LAST-MODIFIED:20261129T100000Z", "LOCATION:Offsite venue",
        f"SEQUENCE:{sequence}", "STATUS:CONFIRMED", f"SUMMARY:{summary}", "TRANSP:OPAQUE",
        "END:VEVENT", "END:VCALENDAR", ""])
    word = {"ACCEPTED": "Accepted", "DECLINED": "Declined", "TENTATIVE": "Tentative"}[partstat]
    calendar = MIMEText(ics, "calendar", "utf-8")
    calendar.set_param("method", "REPLY")
    text = f"{who[0]} has {word.lower()} this invitation." + (f"\n\n{note}" if note else "")
    body = MIMEMultipart("alternative", _subparts=[MIMEText(text, "plain", "utf-8"),
                                                   MIMEText(f"<div>{text}</div>", "html", "utf-8"), calendar])
    attachment = MIMEApplication(ics.encode(), "ics", name="invite.ics")
    attachment.add_header("Content-Disposition", "attachment", filename="invite.ics")
    msg = MIMEMultipart("mixed", _subparts=[body, attachment])
    msg["From"] = f"{who[0]} <{who[1]}>"
    msg["To"] = organizer
    msg["Subject"] = f"{word}: {summary} @ Thu 11 Feb 2027 09:00 - 17:00 (CET) ({who[1]})"
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = f"<{base64.b32encode(make_msgid().encode()).decode()[:20].lower()}@google.com>"
    return msg


async def attendees_declined(env: WorkflowEnvironment, workflow_id: str) -> int | None:
    described = await env.client.workflow_service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
        namespace=env.client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)))
    payload = described.workflow_execution_info.search_attributes.indexed_fields.get(ATTENDEES_DECLINED.name)
    return None if payload is None or payload.data in (b"", b"null") else int(json.loads(payload.data))


async def test_outlook_and_gmail_rsvps_are_recorded_and_a_decline_reaches_the_consultant(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool, mail_sink: MailSink,
    inbound_server: InboundServer,
) -> None:
    env, server = time_skipping_env, inbound_server
    eid = unique_id("rsvp")
    async with started(env.client, settings, pool, scoping(eid)) as handle:
        plan = await scheduled(handle, ScheduleSession(on=date(2027, 2, 11), days=2))

        invites = {who[1]: await mail_at_sink(mail_sink, message_id_for(f"{eid}/invitation/0/{who[1]}", MAIL_DOMAIN))
                   for who in (ANA, BEN, CHLOE)}
        organizers = {}
        for address, mail in invites.items():
            method, ics = calendar_of(mail)
            read = facts(ics)
            assert method == read["method"] == "REQUEST"
            [master, day2] = read["events"]  # one VEVENT a day under one UID
            assert master["uid"] == day2["uid"] == f"{eid}/session@{MAIL_DOMAIN}"
            # The ORGANIZER is the invitation's own signed reply address: RSVPs come back to engage.
            organizers[address] = master["organizer"]
            assert master["organizer"] == parseaddr(str(mail["Reply-To"]))[1].lower()
            assert master["organizer"].startswith("checkin+")
            assert master["organizer"].endswith(f"@{settings.inbound_domain}")
        uid = f"{eid}/session@{MAIL_DOMAIN}"
        summary = "Acme Corp — leadership offsite and strategy session"

        # Ana accepts in Outlook, Ben declines in Gmail with a note.
        accepted = outlook_reply(ANA, organizers[ANA[1]], uid, 0, "ACCEPTED", plan.starts_at, summary)
        code, text = await send(server, accepted.as_bytes(), ANA[1], organizers[ANA[1]])  # type: ignore[arg-type]
        assert code == 250 and "applied" in text and "accepted" in text, text
        declined = gmail_reply(BEN, organizers[BEN[1]], uid, 0, "DECLINED", plan.starts_at, summary,
                               note="Travelling that week")
        code, text = await send(server, declined.as_bytes(), BEN[1], organizers[BEN[1]])  # type: ignore[arg-type]
        assert code == 250 and "declined" in text, text

        # Delivered again: nothing changes. Forged: Mallory answering for Ana, or Ben answering for Ana.
        code, text = await send(server, accepted.as_bytes(), ANA[1], organizers[ANA[1]])  # type: ignore[arg-type]
        assert code == 250 and "duplicate" in text, text
        forged = outlook_reply(ANA, organizers[ANA[1]], uid, 0, "DECLINED", plan.starts_at, summary)
        code, text = await send(server, forged.as_bytes(), "mallory@evil.example",  # type: ignore[arg-type]
                                organizers[ANA[1]])
        assert code == 550 and "spoofed_sender" in text, text
        for_someone_else = gmail_reply(ANA, organizers[BEN[1]], uid, 0, "DECLINED", plan.starts_at, summary)
        del for_someone_else["From"]
        for_someone_else["From"] = f"{BEN[0]} <{BEN[1]}>"
        code, text = await send(server, for_someone_else.as_bytes(), BEN[1],  # type: ignore[arg-type]
                                organizers[BEN[1]])
        assert code == 550 and "spoofed_sender" in text, text

        status: EngagementStatus = await handle.query(EW.status)
        by_email = {a.email: a for a in status.attendance}
        assert by_email[ANA[1]].attendance == "accepted"
        assert (by_email[BEN[1]].attendance, by_email[BEN[1]].comment) == ("declined", "Travelling that week")
        assert by_email[CHLOE[1]].attendance is None
        logged = [e.event for e in await read_log(pool, eid) if isinstance(e.event, RsvpRecorded)]
        assert sorted((r.email, r.attendance) for r in logged) == [(ANA[1], "accepted"), (BEN[1], "declined")]

        # The consultant is told of the decline, once.
        told = await mail_at_sink(mail_sink, message_id_for(f"{eid}/rsvp/0/{BEN[1]}/declined", MAIL_DOMAIN))
        assert parseaddr(str(told["To"]))[1] == "dana@consultancy.example"
        assert "Ben Wu" in str(told["Subject"]) and "Travelling that week" in text_of(told)

        # `engage status` and the Temporal UI's search attribute show it.
        console = Console(record=True, width=200)
        print_status(console, status)
        shown = console.export_text()
        assert "accepted 1 (ana@acme.example)" in shown
        assert "declined 1 (ben@acme.example)" in shown
        assert "not answered 1 (chloe@acme.example)" in shown
        assert await attendees_declined(env, handle.id) == 1

        # A reminder to answer goes, three days before at their 09:00, to Chloé only.
        await env.sleep(plan.starts_at - timedelta(days=2) - await env.get_current_time())
        reminder = await mail_at_sink(mail_sink, message_id_for(f"{eid}/invitation/0/reminder/{CHLOE[1]}",
                                                                MAIL_DOMAIN))
        method, ics = calendar_of(reminder)
        assert method == "REQUEST" and facts(ics)["events"][0]["sequence"] == 0
        for who in (ANA, BEN):
            key = message_id_for(f"{eid}/invitation/0/reminder/{who[1]}", MAIL_DOMAIN)
            assert not [p for p in mail_sink.messages() if key.encode() in p.read_bytes()]
        await handle.terminate("test done")
