"""The email adapter against real servers on loopback: Postgres for the outbox, an aiosmtpd sink for SMTP."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg
import icalendar
import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from adapters.email.headers import message_id_for
from adapters.email.mime import build_email
from adapters.email.render import render
from adapters.email.send import Mailer
from adapters.email.smtp import PermanentDeliveryError, smtp_target
from adapters.tokens import (
    InvalidReplyToken,
    answer_url,
    check_token,
    scope_id_for,
    sign_reply_token,
    sign_token,
    verify_reply_token,
)
from devstack.mailsink import MailSink
from devstack.process import free_port
from schemas.events import MessageKind
from schemas.messages import (
    ActionSummary,
    CalendarEntry,
    MessageContext,
    OutboundMessage,
    Recipient,
    ReplyScope,
    SendResult,
)
from schemas.settings import Settings
from store import outbox, scopes

SECRET = "test-reply-secret"
NOW = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
BERLIN_9AM = datetime(2027, 3, 4, 8, 0, tzinfo=UTC)  # 09:00 in Europe/Berlin (CET)

REPLY_KINDS = {MessageKind.preread, MessageKind.preread_reminder, MessageKind.checkin_request,
               MessageKind.checkin_reminder}
CALENDAR_KINDS = {MessageKind.invitation, MessageKind.invitation_cancel, MessageKind.action_assignment,
                  MessageKind.invitation_reminder, MessageKind.action_cancel}
# An invitation's reply scope (no action, no pre-read): its token is the ICS ORGANIZER, where RSVPs come back.
INVITATION_KINDS = {MessageKind.invitation, MessageKind.invitation_reminder}


# ---------------------------------------------------------------------------------------------------------
# Fixtures: real servers, started once for this module
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def settings_ad(settings: Settings) -> Settings:
    """The session's real Postgres and SMTP sink (tests/conftest.py), with this module's addresses and secret."""
    return settings.model_copy(update={
        "mail_from": "engage@engage.example",
        "inbound_domain": "in.engage.example",
        "reply_secret": SecretStr(SECRET),
    })


@pytest.fixture(scope="module")
def mailer_ad(settings_ad: Settings, pool: asyncpg.Pool) -> Mailer:
    return Mailer(settings_ad, pool)


# ---------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------


def full_context(**overrides: Any) -> MessageContext:
    values: dict[str, Any] = dict(
        client="Acme",
        engagement_id="acme-2027",
        recipient_name="Ana Silva",
        consultant_name="Cora Consultant",
        format="offsite",
        session_label="Thu 4 Mar 2027, 09:00-17:00 Europe/Berlin",
        days=2,
        agenda=["Opening", "Vision alignment", "Team building"],
        preread_title="Market memo",
        preread_url="https://docs.example/memo",
        action_id="A2",
        action_title="Grow the partner pipeline",
        owner_name="Ben Owner",
        due=date(2027, 6, 30),
        metric_name="qualified leads",
        unit="leads",
        baseline=10,
        target=40,
        last_value=22.5,
        status="behind",
        checkin_number=3,
        missed_in_row=2,
        checkin_label="every two weeks, Monday 09:00",
        reason="The client asked to postpone.",
        answer_recorded=True,
        answer_text="Recorded 25 leads for 'Grow the partner pipeline': behind.",
        answer_subject="Recorded: Grow the partner pipeline",
        actions=[
            ActionSummary(action_id="A1", title="Close the EMEA gap", owner_name="Ben Owner", status="on_track",
                          last_value=5, baseline=0, target=10, unit="%", due=date(2027, 5, 1)),
            ActionSummary(action_id="A2", title="Grow the partner pipeline", owner_name="Cy Lee",
                          status="at_risk", baseline=10, target=40, unit="leads", due=date(2027, 6, 30)),
        ],
    )
    values.update(overrides)
    return MessageContext(**values)


def session_entry(method: str = "REQUEST", sequence: int = 0, uid: str = "acme-2027/session") -> CalendarEntry:
    return CalendarEntry(
        uid=uid,
        sequence=sequence,
        method=method,  # type: ignore[arg-type]
        summary="Leadership offsite: Acme",
        description="Two days on vision and team.",
        starts_at=BERLIN_9AM,
        ends_at=BERLIN_9AM + timedelta(hours=8),
        timezone="Europe/Berlin",
        location="Schloss Elmau",
        organizer=Recipient(name="Cora Consultant", email="cora@consult.example"),
        attendees=[Recipient(name="Ana Silva", email="ana@acme.example"),
                   Recipient(name="Ben Owner", email="ben@acme.example")],
    )


def make_message(kind: MessageKind, key: str | None = None, **overrides: Any) -> OutboundMessage:
    reply = None
    if kind in REPLY_KINDS:
        reply = ReplyScope(
            action_id="A2" if kind.value.startswith("checkin") else None,
            preread_id="memo" if kind.value.startswith("preread") else None,
            number=3,
            expires_at=NOW + timedelta(days=14),
        )
    if kind in INVITATION_KINDS:
        reply = ReplyScope(expires_at=NOW + timedelta(days=14))
    calendar = None
    cancel = kind in (MessageKind.invitation_cancel, MessageKind.action_cancel)
    if kind in CALENDAR_KINDS:
        calendar = session_entry("CANCEL" if cancel else "REQUEST", sequence=1 if cancel else 0)
    values: dict[str, Any] = dict(
        engagement_id="acme-2027",
        key=key or f"acme-2027/{kind.value}/{uuid.uuid4().hex[:8]}",
        kind=kind,
        to=Recipient(name="Ana Silva", email="ana@acme.example", timezone="Europe/Berlin"),
        cc=[Recipient(name="Cora Consultant", email="cora@consult.example")] if kind == MessageKind.escalation
        else [],
        context=full_context(),
        reply=reply,
        calendar=calendar,
        action_id="A2",
        summary=f"{kind.value} test",
    )
    values.update(overrides)
    return OutboundMessage(**values)


def parse_eml(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def delivered(sink: MailSink, message_id: str) -> list[tuple[bytes, EmailMessage]]:
    found = []
    for path in sink.messages():
        parsed = parse_eml(path)
        if str(parsed["Message-ID"]).strip() == message_id:
            found.append((path.read_bytes(), parsed))
    return found


def header_block(raw: bytes) -> str:
    return raw.split(b"\r\n\r\n", 1)[0].decode("ascii")


def header_names(raw: bytes) -> list[str]:
    """Every header name at the top of the raw message (continuation lines skipped)."""
    return [line.split(":", 1)[0] for line in header_block(raw).split("\r\n") if line and not line[0].isspace()]


def calendar_part(message: EmailMessage) -> EmailMessage:
    parts = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1
    part = parts[0]
    assert isinstance(part, EmailMessage)
    return part


async def sent_calendar(mailer: Mailer, sink: MailSink,
                        message: OutboundMessage) -> tuple[EmailMessage, icalendar.Calendar]:
    """Send the message: the mail as delivered, and its one text/calendar part read (its `method` parameter is
    the calendar's METHOD, as iMIP requires)."""
    result = await mailer.send(message)
    [(_, got)] = delivered(sink, result.message_id)
    part = calendar_part(got)
    cal = icalendar.Calendar.from_ical(part.get_content())
    assert part.get_param("method") == cal["METHOD"]
    return got, cal


# ---------------------------------------------------------------------------------------------------------
# Rendering and delivery of every kind
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(MessageKind))
def test_every_kind_renders(kind: MessageKind) -> None:
    subject, text, html = render(make_message(kind))
    assert subject and "\n" not in subject
    assert text.startswith("Dear Ana Silva,")
    assert "Cora Consultant" in text
    assert html.lstrip().startswith("<!DOCTYPE html>") and "Ana Silva" in html
    assert "None" not in text and "None" not in html


def test_checkin_and_preread_wording() -> None:
    _, text, _ = render(make_message(MessageKind.checkin_request))
    assert "What is the current value of qualified leads for 'Grow the partner pipeline'?" in text
    assert "Reply to this email with just the number (for example 42)" in text
    _, text, html = render(make_message(MessageKind.preread))
    assert "`read` once you have read it" in text
    assert 'href="https://docs.example/memo"' in html


def test_numbers_read_like_numbers() -> None:
    _, text, _ = render(make_message(MessageKind.report, context=full_context(
        actions=[ActionSummary(action_id="A9", title="Revenue", owner_name="Ben", status="achieved",
                               last_value=1234567.0, baseline=1000000.0, target=1200000.0, unit="EUR",
                               due=date(2027, 6, 30))])))
    assert "Last value 1,234,567 (baseline 1,000,000, target 1,200,000 EUR)" in text
    assert "1 action: 1 achieved" in text


@pytest.mark.parametrize("kind", list(MessageKind))
async def test_every_kind_arrives_with_headers_and_parts(
    kind: MessageKind, mailer_ad: Mailer, mail_sink: MailSink, settings_ad: Settings
) -> None:
    message = make_message(kind)
    result = await mailer_ad.send(message)
    subject, text, html = render(message, answer_url(message, settings_ad))
    assert result == SendResult(message_id=message_id_for(message.key, "engage.example"), delivered_now=True,
                                subject=subject)

    [(raw, got)] = delivered(mail_sink, result.message_id)
    assert got["Subject"] == subject
    assert got["From"].addresses[0].addr_spec == "engage@engage.example"
    assert got["From"].addresses[0].display_name == "engage"
    assert got["To"].addresses[0].addr_spec == "ana@acme.example"
    assert got["To"].addresses[0].display_name == "Ana Silva"
    assert got["Date"] is not None
    assert got["Auto-Submitted"] == "auto-generated"
    if kind == MessageKind.escalation:
        assert [a.addr_spec for a in got["Cc"].addresses] == ["cora@consult.example"]
    else:
        assert got["Cc"] is None

    if kind in REPLY_KINDS:
        reply_to = got["Reply-To"].addresses[0]
        assert reply_to.domain == "in.engage.example"
        local, _, token = reply_to.username.partition("+")
        assert local == "checkin"
        assert len(reply_to.username.encode()) <= 64  # RFC 5321's limit for a local part
        grant = check_token(token, "reply", SECRET, NOW)
        assert grant.scope_id == scope_id_for("acme-2027", message.key, "ana@acme.example")
        # The scope was stored before the mail went out: the token alone names it.
        stored = await scopes.lookup(mailer_ad.pool, grant.scope_id)
        assert stored is not None and stored.engagement_id == "acme-2027" and stored.number == 3
        assert stored.recipient == "ana@acme.example"
    elif kind in INVITATION_KINDS:
        # An invitation's scope: no action, no pre-read; the same address is its ICS ORGANIZER.
        reply_to = got["Reply-To"].addresses[0]
        grant = check_token(reply_to.username.partition("+")[2], "reply", SECRET, NOW)
        assert grant.scope_id is not None
        stored = await scopes.lookup(mailer_ad.pool, grant.scope_id)
        assert stored is not None and stored.is_invitation and stored.recipient == "ana@acme.example"
    else:
        assert got["Reply-To"] is None

    plain = got.get_body(preferencelist=("plain",))
    rich = got.get_body(preferencelist=("html",))
    assert plain is not None and rich is not None
    assert plain.get_content().replace("\r\n", "\n") == text
    assert "Ana Silva" in rich.get_content()
    attachments = [p.get_filename() for p in got.iter_attachments()]
    assert attachments == (["invite.ics"] if kind in CALENDAR_KINDS else [])


async def test_invitation_carries_a_calendar_request(mailer_ad: Mailer, mail_sink: MailSink) -> None:
    got, cal = await sent_calendar(mailer_ad, mail_sink, make_message(MessageKind.invitation))
    assert cal["METHOD"] == "REQUEST"
    assert cal["VERSION"] == "2.0" and cal["PRODID"]
    [event] = cal.walk("VEVENT")
    assert str(event["UID"]) == "acme-2027/session@engage.example"  # globally unique: the mail domain
    assert event["SEQUENCE"] == 0
    organizer = event["ORGANIZER"]
    # The consultant's name at the signed reply address: the attendees' RSVPs come back to engage.
    assert str(organizer) == f"mailto:{parseaddr(str(got['Reply-To']))[1]}"
    assert organizer.params["CN"] == "Cora Consultant"
    assert str(organizer).startswith("mailto:checkin+")
    attendees = event["ATTENDEE"]
    assert [str(a) for a in attendees] == ["mailto:ana@acme.example", "mailto:ben@acme.example"]
    for attendee in attendees:
        assert attendee.params["RSVP"] == "TRUE"
        assert attendee.params["ROLE"] == "REQ-PARTICIPANT"
        assert attendee.params["PARTSTAT"] == "NEEDS-ACTION"
    start = event["DTSTART"]
    assert start.params["TZID"] == "Europe/Berlin"
    assert (start.dt.hour, start.dt.minute) == (9, 0)
    assert start.dt == BERLIN_9AM
    assert event["DTEND"].dt == BERLIN_9AM + timedelta(hours=8)
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/Berlin"]
    assert cal.get_missing_tzids() == set()
    # The same ICS travels as a file for clients that ignore the inline part.
    [attachment] = list(got.iter_attachments())
    assert attachment.get_content_type() == "application/ics"
    assert icalendar.Calendar.from_ical(attachment.get_content())["METHOD"] == "REQUEST"


async def test_cancellation_carries_method_cancel(mailer_ad: Mailer, mail_sink: MailSink) -> None:
    _, cal = await sent_calendar(mailer_ad, mail_sink, make_message(MessageKind.invitation_cancel))
    assert cal["METHOD"] == "CANCEL"
    [event] = cal.walk("VEVENT")
    assert event["STATUS"] == "CANCELLED"
    assert event["SEQUENCE"] == 1


async def test_action_due_date_is_an_all_day_entry(mailer_ad: Mailer, mail_sink: MailSink) -> None:
    entry = CalendarEntry(uid="acme-2027/A2/due", summary="Due: Grow the partner pipeline",
                          all_day=date(2027, 6, 30), timezone="Europe/Berlin",
                          organizer=Recipient(name="Cora Consultant", email="cora@consult.example"),
                          attendees=[Recipient(name="Ben Owner", email="ben@acme.example")])
    _, cal = await sent_calendar(mailer_ad, mail_sink, make_message(MessageKind.action_assignment, calendar=entry))
    [event] = cal.walk("VEVENT")
    assert event["DTSTART"].dt == date(2027, 6, 30)
    assert event["DTSTART"].params.get("VALUE") == "DATE"
    assert event["DTEND"].dt == date(2027, 7, 1)
    assert cal.walk("VTIMEZONE") == []


# ---------------------------------------------------------------------------------------------------------
# Hostile and international text
# ---------------------------------------------------------------------------------------------------------


async def test_hostile_names_render_safely_and_inject_no_header(mailer_ad: Mailer, mail_sink: MailSink) -> None:
    # model_construct bypasses the schema's own rejection of line breaks: this is the adapter's last line.
    context = full_context().model_copy(update={
        "recipient_name": "مدير المشروع 🚀\r\nBcc: victim@evil.example",
        "action_title": "<script>alert('x')</script>\r\nX-Injected: yes",
        "metric_name": "NPS <b>bold</b> 📈",
        "client": "Acme\nX-Client-Injected: 1",
    })
    to = Recipient.model_construct(name="מנהלת 🚀\r\nBcc: victim@evil.example", email="ana@acme.example",
                                   timezone=None)
    cc = Recipient.model_construct(name="Eve\nX-Cc-Injected: 1", email="eve@acme.example", timezone=None)
    message = OutboundMessage.model_construct(**{
        **make_message(MessageKind.checkin_request).__dict__,
        "context": context,
        "to": to,
        "cc": [cc],
    })
    result = await mailer_ad.send(message)
    [(raw, got)] = delivered(mail_sink, result.message_id)

    names = {n.lower() for n in header_names(raw)}
    assert not names & {"bcc", "x-injected", "x-client-injected", "x-cc-injected"}
    block = header_block(raw)
    assert not re.search(r"(?im)^(bcc|x-injected|x-client-injected|x-cc-injected):", block)
    # Non-ASCII display names and subject travel RFC 2047 encoded, and decode back intact.
    assert block.isascii()
    assert "=?utf-8?" in block.lower()
    assert got["To"].addresses[0].display_name == "מנהלת 🚀 Bcc: victim@evil.example"
    assert got["To"].addresses[0].addr_spec == "ana@acme.example"
    assert [a.addr_spec for a in got["Cc"].addresses] == ["eve@acme.example"]
    assert "<script>" in got["Subject"] and "\n" not in got["Subject"]

    html = got.get_body(preferencelist=("html",))
    assert html is not None
    body = html.get_content()
    assert "<script>" not in body and "<b>bold</b>" not in body
    assert "&lt;script&gt;" in body and "&lt;b&gt;bold&lt;/b&gt;" in body
    assert "مدير المشروع 🚀" in body and "📈" in body
    plain = got.get_body(preferencelist=("plain",))
    assert plain is not None and "مدير المشروع 🚀" in plain.get_content()


def test_javascript_urls_do_not_reach_an_href() -> None:
    message = make_message(MessageKind.preread, context=full_context(preread_url="javascript:alert(1)"))
    _, _, html = render(message)
    assert 'href="#"' in html and "javascript:" not in html.split("<a ", 1)[1].split(">", 1)[0]


def test_build_email_never_puts_a_line_break_in_a_header(settings_ad: Settings) -> None:
    message = make_message(MessageKind.invitation)
    message = message.model_copy(update={"context": message.context.model_copy(
        update={"client": "Acme\r\nBcc: x@evil.example", "session_label": "Mon\u2028X-Evil: 1"})})
    mime = build_email(message, settings_ad, "<id\r\nX-Evil: 2@engage.example>", now=NOW)
    for name, value in mime.items():
        assert not re.search(r"[\r\n\u2028\u2029]", str(value)), name
    raw = mime.as_bytes(policy=email.policy.SMTP)
    assert not {"bcc", "x-evil"} & {n.lower() for n in header_names(raw)}


# ---------------------------------------------------------------------------------------------------------
# Sending once
# ---------------------------------------------------------------------------------------------------------


async def test_the_same_message_twice_is_delivered_once(
    mailer_ad: Mailer, mail_sink: MailSink, pool: asyncpg.Pool
) -> None:
    message = make_message(MessageKind.checkin_request)
    first = await mailer_ad.send(message)
    second = await mailer_ad.send(message)
    assert first.delivered_now is True and second.delivered_now is False
    assert first.message_id == second.message_id
    assert len(delivered(mail_sink, first.message_id)) == 1
    row = await outbox.status_of(pool, first.message_id)
    assert row is not None
    assert (row["status"], row["attempts"], row["kind"]) == ("sent", 1, "checkin_request")
    assert row["recipients"] == ["ana@acme.example"] and row["sent_at"] is not None


async def test_concurrent_sends_of_one_message_deliver_once(mailer_ad: Mailer, mail_sink: MailSink) -> None:
    message = make_message(MessageKind.preread)
    results = await asyncio.gather(*(mailer_ad.send(message) for _ in range(4)))
    assert sorted(r.delivered_now for r in results) == [False, False, False, True]
    assert len(delivered(mail_sink, results[0].message_id)) == 1


async def test_smtp_down_raises_then_delivers_exactly_once(
    settings_ad: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    port = free_port()
    settings = settings_ad.model_copy(update={"smtp_url": SecretStr(f"smtp://127.0.0.1:{port}")})
    mailer = Mailer(settings, pool)
    message = make_message(MessageKind.checkin_reminder)
    with pytest.raises((aiosmtplib.SMTPException, OSError)) as caught:
        await mailer.send(message)
    assert not isinstance(caught.value, PermanentDeliveryError)
    row = await outbox.status_of(pool, mailer.message_id(message))
    assert row is not None and (row["status"], row["attempts"]) == ("pending", 1)

    late_sink = MailSink(tmp_path / "late-mail", port)
    late_sink.start()
    try:
        assert (await mailer.send(message)).delivered_now is True
        assert (await mailer.send(message)).delivered_now is False
        assert len(delivered(late_sink, mailer.message_id(message))) == 1
        assert len(late_sink.messages()) == 1
    finally:
        late_sink.stop()
    row = await outbox.status_of(pool, mailer.message_id(message))
    assert row is not None and (row["status"], row["attempts"]) == ("sent", 2)


class RefusingHandler:
    """An SMTP server that refuses every recipient, permanently (5xx) or for now (4xx)."""

    def __init__(self, code: int) -> None:
        self.code = code

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        return f"{self.code} {'5.1.1 no such user' if self.code >= 500 else '4.2.1 try again later'}"


@pytest.mark.parametrize("code", [550, 451])
async def test_refused_recipient(code: int, settings_ad: Settings, pool: asyncpg.Pool) -> None:
    port = free_port()
    controller = Controller(RefusingHandler(code), hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        settings = settings_ad.model_copy(
            update={"smtp_url": SecretStr(f"smtp://127.0.0.1:{port}")})
        mailer = Mailer(settings, pool)
        message = make_message(MessageKind.checkin_request)
        with pytest.raises(aiosmtplib.SMTPException if code < 500 else PermanentDeliveryError) as caught:
            await mailer.send(message)
        assert isinstance(caught.value, PermanentDeliveryError) == (code >= 500)
        row = await outbox.status_of(pool, mailer.message_id(message))
        assert row is not None and row["status"] == "pending"
    finally:
        controller.stop()


def test_smtp_urls() -> None:
    plain = smtp_target("smtp://127.0.0.1:8025")
    assert (plain.hostname, plain.port, plain.use_tls, plain.username) == ("127.0.0.1", 8025, False, None)
    assert smtp_target("smtp://relay.example").port == 25
    tls = smtp_target("smtps://mailer%40acme.example:p%40ss%3Aword@relay.example")
    assert (tls.hostname, tls.port, tls.use_tls) == ("relay.example", 465, True)
    assert (tls.username, tls.password) == ("mailer@acme.example", "p@ss:word")
    with pytest.raises(ValueError, match="smtp://"):
        smtp_target("http://relay.example")


# ---------------------------------------------------------------------------------------------------------
# Message-IDs
# ---------------------------------------------------------------------------------------------------------

MESSAGE_ID = re.compile(r"^<[A-Za-z0-9_.-]+@[A-Za-z0-9.-]+>$")


@pytest.mark.parametrize("key", [
    "acme-2027/A2/checkin/3",
    "acme-2027/invitation/0/ana@acme.example",
    "acme 2027 / weird ~ key ✨",
    "////",
])
def test_message_id_is_valid_and_deterministic(key: str) -> None:
    value = message_id_for(key, "engage.example")
    assert MESSAGE_ID.match(value), value
    assert len(f"Message-ID: {value}") <= 78
    assert ".." not in value and "<." not in value and ".@" not in value
    assert value == message_id_for(key, "engage.example")
    parsed = email.message_from_bytes(f"Message-ID: {value}\r\n\r\n".encode(), policy=email.policy.default)
    assert parsed["Message-ID"] == value


def test_message_ids_of_different_keys_differ() -> None:
    assert message_id_for("acme-2027/A2/checkin/3", "d.example") == message_id_for("acme-2027/A2/checkin/3",
                                                                                  "d.example")
    assert message_id_for("acme/a-b", "d.example") != message_id_for("acme/a/b", "d.example")
    assert message_id_for("acme-2027/A2/checkin/3", "d.example").startswith("<acme-2027.A2.checkin.3.")


# ---------------------------------------------------------------------------------------------------------
# Reply tokens
# ---------------------------------------------------------------------------------------------------------

SCOPE = ReplyScope(action_id="A2", number=3, expires_at=NOW + timedelta(days=14))


def test_reply_token_round_trip() -> None:
    token = sign_reply_token("acme-2027", SCOPE, "Ana@Acme.example", SECRET)
    assert re.fullmatch(r"[a-z2-7]+", token)
    verified = verify_reply_token(token, SECRET, NOW)
    assert verified.engagement_id == "acme-2027"
    assert (verified.action_id, verified.preread_id, verified.number) == ("A2", None, 3)
    assert verified.recipient == "ana@acme.example"
    assert verified.expires_at == SCOPE.expires_at
    # A relay that upper-cases the local part changes nothing.
    assert verify_reply_token(token.upper(), SECRET, NOW) == verified


def test_reply_token_for_a_preread() -> None:
    scope = ReplyScope(preread_id="memo", expires_at=NOW + timedelta(days=3))
    verified = verify_reply_token(sign_reply_token("acme-2027", scope, "ben@acme.example", SECRET), SECRET, NOW)
    assert (verified.action_id, verified.preread_id, verified.number) == (None, "memo", 0)


def test_tampered_token_is_rejected() -> None:
    token = sign_reply_token("acme-2027", SCOPE, "ana@acme.example", SECRET)
    for i in (0, 5, len(token) // 2, len(token) - 1):
        flipped = token[:i] + ("a" if token[i] != "a" else "b") + token[i + 1:]
        with pytest.raises(InvalidReplyToken) as caught:
            verify_reply_token(flipped, SECRET, NOW)
        assert caught.value.reason in ("bad_signature", "malformed")
    # Another action's payload under this token's signature: the signature covers every field.
    other = sign_reply_token("acme-2027", SCOPE.model_copy(update={"action_id": "A3"}), "ana@acme.example", SECRET)
    assert other != token

    def raw(t: str) -> bytes:
        return base64.b32decode(t.upper() + "=" * (-len(t) % 8))

    spliced_bytes = raw(other)[:-12] + raw(token)[-12:]
    spliced = base64.b32encode(spliced_bytes).decode().rstrip("=").lower()
    with pytest.raises(InvalidReplyToken) as caught:
        verify_reply_token(spliced, SECRET, NOW)
    assert caught.value.reason == "bad_signature"


def test_forged_token_is_rejected() -> None:
    forged = sign_reply_token("acme-2027", SCOPE, "ana@acme.example", "someone-elses-secret")
    with pytest.raises(InvalidReplyToken, match="bad_signature") as caught:
        verify_reply_token(forged, SECRET, NOW)
    assert caught.value.reason == "bad_signature"


def test_expired_token_is_rejected() -> None:
    token = sign_reply_token("acme-2027", SCOPE, "ana@acme.example", SECRET)
    with pytest.raises(InvalidReplyToken, match="expired") as caught:
        verify_reply_token(token, SECRET, SCOPE.expires_at + timedelta(seconds=1))
    assert caught.value.reason == "expired"


@pytest.mark.parametrize("token", ["", "not a token!", "abc", "01890"])
def test_malformed_token_is_rejected(token: str) -> None:
    with pytest.raises(InvalidReplyToken) as caught:
        verify_reply_token(token, SECRET, NOW)
    assert caught.value.reason == "malformed"




# ---------------------------------------------------------------------------------------------------------
# v2 tokens: an opaque scope id, short enough for a local part, one MAC domain per purpose
# ---------------------------------------------------------------------------------------------------------

SCOPE_ID = scope_id_for("a-very-long-engagement-id-" + "x" * 40, "key/A1/checkin/12345", "someone@acme.example")


def test_v2_token_fits_a_local_part_whatever_the_ids() -> None:
    token = sign_token(SCOPE_ID, NOW + timedelta(days=400), "reply", SECRET)
    assert len(f"checkin+{token}".encode()) <= 64
    assert check_token(token.upper(), "reply", SECRET, NOW).scope_id == SCOPE_ID


def test_v2_token_of_one_purpose_is_refused_for_the_other() -> None:
    link = sign_token(SCOPE_ID, NOW + timedelta(days=1), "link", SECRET)
    assert check_token(link, "link", SECRET, NOW).scope_id == SCOPE_ID
    with pytest.raises(InvalidReplyToken) as caught:
        check_token(link, "reply", SECRET, NOW)
    assert caught.value.reason == "bad_signature"


def test_v2_token_tampered_forged_or_expired() -> None:
    token = sign_token(SCOPE_ID, NOW + timedelta(days=1), "link", SECRET)
    for i in range(len(token)):
        flipped = token[:i] + ("a" if token[i] != "a" else "b") + token[i + 1:]
        with pytest.raises(InvalidReplyToken) as caught:
            check_token(flipped, "link", SECRET, NOW)
        assert caught.value.reason in ("bad_signature", "malformed")
    with pytest.raises(InvalidReplyToken, match="bad_signature"):
        check_token(sign_token(SCOPE_ID, NOW + timedelta(days=1), "link", "other-secret"), "link", SECRET, NOW)
    with pytest.raises(InvalidReplyToken, match="expired"):
        check_token(token, "link", SECRET, NOW + timedelta(days=1))


def test_v1_reply_tokens_of_older_mails_still_read() -> None:
    token = sign_reply_token("acme-2027", SCOPE, "ana@acme.example", SECRET)
    grant = check_token(token, "reply", SECRET, NOW)
    assert grant.scope is not None and grant.scope.action_id == "A2" and grant.scope_id is None


def test_checkin_mails_carry_the_page_link(settings_ad: Settings) -> None:
    message = make_message(MessageKind.checkin_request)
    url = answer_url(message, settings_ad)
    assert url is not None and url.startswith(settings_ad.public_url.rstrip("/") + "/a/")
    grant = check_token(url.rsplit("/", 1)[1], "link", SECRET, NOW)
    assert grant.scope_id == scope_id_for("acme-2027", message.key, "ana@acme.example")
    _, text, html = render(message, url)
    assert url in text and f'href="{url}"' in html
    assert answer_url(make_message(MessageKind.report), settings_ad) is None
