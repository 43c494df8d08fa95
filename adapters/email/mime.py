"""The MIME message of an OutboundMessage: text and html alternatives, the calendar entry, and headers that
cannot break (adapters/email/headers.py). The content comes from adapters/email/render.py."""

from __future__ import annotations

from datetime import UTC, datetime
from email.header import Header
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime
from typing import Any, TypeVar

from adapters.email.headers import FROM_NAME, address, header_safe, sender_parts
from adapters.email.render import render
from adapters.ics import build_ics, mail_domain, sender_address
from adapters.tokens import reply_address
from schemas.messages import OutboundMessage
from schemas.settings import Settings

_MAX_7BIT_LINE = 998  # RFC 5322's limit for a line of a 7bit body
M = TypeVar("M", bound=Message)


def _text_part(body: str, subtype: str) -> MIMEText:
    # ASCII with short lines travels as is (7bit); anything else as UTF-8 in base64, which a C codec encodes.
    ascii_lines = body.isascii() and all(len(line) <= _MAX_7BIT_LINE for line in body.splitlines())
    return _inner(MIMEText(body, subtype, "us-ascii" if ascii_lines else "utf-8"))


def _inner(part: M) -> M:
    del part["MIME-Version"]  # one MIME-Version, at the top of the message
    return part


def _header_text(value: str) -> str | Header:
    value = header_safe(value)
    return value if value.isascii() else Header(value, "utf-8")


def build_email(
    message: OutboundMessage, settings: Settings, message_id: str, *, now: datetime | None = None,
    rendered: tuple[str, str, str] | None = None,
) -> Message[Any, Any]:
    """The complete MIME message: text and HTML alternatives and, for a calendar entry, the iTIP part
    (text/calendar; method=...) clients show as an invitation plus the same ICS as `invite.ics`.

    Built with the `email.mime` classes (the compat32 policy): the header registry of `EmailMessage` parses
    and refolds every header, which cost several milliseconds a message, most of the worker's time in a
    burst of check-ins. Every header value passes `header_safe` or `formataddr`, so none carries a break."""
    subject, text, html = rendered or render(message)
    body = MIMEMultipart("alternative", _subparts=[_text_part(text, "plain"), _text_part(html, "html")])
    msg: Message[Any, Any] = body
    if message.calendar is not None:
        # The organizer's mailbox is the signed reply address when the message has one (an invitation): the
        # attendees' RSVPs come back to engage's inbound server; else engage's own sender address.
        ics = build_ics(message.calendar, now=now, domain=mail_domain(settings.mail_from),
                        organizer_address=reply_address(message, settings) or sender_address(settings.mail_from))
        invitation = _text_part(ics.decode("utf-8"), "calendar")
        invitation.set_param("method", message.calendar.method)
        body.attach(invitation)
        attachment = _inner(MIMEApplication(ics, "ics"))
        attachment.add_header("Content-Disposition", "attachment", filename="invite.ics")
        msg = MIMEMultipart("mixed", _subparts=[_inner(body), attachment])
    msg["From"] = address(*sender_parts(settings))
    msg["To"] = address(message.to.name, message.to.email)
    if message.cc:
        msg["Cc"] = ", ".join(address(c.name, c.email) for c in message.cc)
    msg["Subject"] = _header_text(subject)
    msg["Date"] = format_datetime((now or datetime.now(UTC)).astimezone(UTC))
    msg["Message-ID"] = header_safe(message_id)
    if message.in_reply_to:
        # An answer to an owner's reply: threaded under it in every client.
        msg["In-Reply-To"] = header_safe(message.in_reply_to)
        msg["References"] = header_safe(message.in_reply_to)
    reply_to = reply_address(message, settings)
    if reply_to is not None:
        msg["Reply-To"] = address(FROM_NAME, reply_to)
    # Out-of-office replies must not come back as check-in answers (RFC 3834, and Outlook's own header).
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    msg["X-Engage-Kind"] = header_safe(str(getattr(message.kind, "value", message.kind)))
    return msg

