"""Email out: render, build (with the signed Reply-To address and check-in link), send once over SMTP.
Tokens are in adapters/tokens.py, reading replies in adapters/reply_reading.py."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.header import Header
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import aiosmtplib
import asyncpg
import jinja2
import structlog
from pydantic import BaseModel

from adapters.ics import build_ics, mail_domain, sender_address
from adapters.tokens import scope_id_for, sign_token
from domain.numbers import number
from schemas.answers import AnswerScope
from schemas.common import is_web_url
from schemas.events import MessageKind
from schemas.messages import ActionSummary, OutboundMessage, Recipient, SendResult
from schemas.settings import Settings
from store import outbox, scopes

log = structlog.get_logger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
FROM_NAME = "engage"
REPLY_LOCAL_PART = "checkin"
SMTP_TIMEOUT = 30.0
QUIT_TIMEOUT = 5.0  # after the relay accepted the message: nothing left to wait for
MARK_PATIENCE_S = 25.0  # within send_message's 30 s (workflows/steps.py IO_TIMEOUT)
_DB_DOWN = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError)

# ---------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------

SUBJECTS: dict[MessageKind, str] = {
    MessageKind.invitation:
        "Invitation: {{ context.format | format_label | capitalize }} for {{ context.client }}"
        "{% if context.session_label %}, {{ context.session_label }}{% endif %}",
    MessageKind.invitation_cancel:
        "Cancelled: {{ context.format | format_label | capitalize }} for {{ context.client }}"
        "{% if context.session_label %}, {{ context.session_label }}{% endif %}",
    MessageKind.preread: "Pre-read for {{ context.client }}: {{ context.preread_title }}",
    MessageKind.preread_reminder: "Reminder: pre-read for {{ context.client }}: {{ context.preread_title }}",
    MessageKind.action_assignment:
        "Your action: {{ context.action_title }}{% if context.due %} (due {{ context.due | day }}){% endif %}",
    MessageKind.checkin_request: "Check-in: {{ context.metric_name or 'progress' }} for {{ context.action_title }}",
    MessageKind.checkin_reminder:
        "Reminder: check-in on {{ context.metric_name or 'progress' }} for {{ context.action_title }}",
    MessageKind.escalation:
        "Escalation: {{ context.action_title }}"
        "{% if context.owner_name %} ({{ context.owner_name }}{% if context.missed_in_row %},"
        " {{ context.missed_in_row }} check-ins missed{% endif %}){% endif %}",
    MessageKind.action_blocked: "Blocked: {{ context.action_title }}"
                                "{% if context.owner_name %} ({{ context.owner_name }}){% endif %}",
    MessageKind.answer: "{{ context.answer_subject }}",
    MessageKind.outcomes_reminder: "Please record the outcomes for {{ context.client }}",
    MessageKind.report: "Follow-through report: {{ context.client }}",
    MessageKind.invitation_reminder:
        "Please answer: {{ context.format | format_label | capitalize }} for {{ context.client }}"
        "{% if context.session_label %}, {{ context.session_label }}{% endif %}",
    MessageKind.rsvp_declined:
        "Declined: {{ context.attendee_name or context.attendee_email or 'a participant' }} will not attend the "
        "{{ context.format | format_label }} for {{ context.client }}",
    MessageKind.action_cancel:
        "Cancelled: {{ context.action_title }}{% if context.due %} (due {{ context.due | day }}){% endif %}",
}

_FORMAT_LABELS = {
    "offsite": "leadership offsite",
    "strategy_session": "strategy session",
    "combined": "leadership offsite and strategy session",
}


def _format_label(value: object) -> str:
    if value is None:
        return "session"
    text = str(getattr(value, "value", value))
    return _FORMAT_LABELS.get(text, text.replace("_", " "))


def _number(value: object) -> str:
    """42.0 -> 42, 1234.5 -> 1,234.5, 0.125 -> 0.125: no float noise in an executive's inbox (domain/numbers.py,
    the rule of every output, so a mail and the report never print one value two ways)."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return number(value)
    return str(value)


def _days(value: float | None) -> str:
    if value is None:
        return ""
    if value == 0.5:
        return "half a day"
    return f"{_number(value)} day{'' if value == 1 else 's'}"


def _day(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.date()
    return value.strftime("%a %-d %b %Y") if hasattr(value, "strftime") else str(value)


def _status_label(value: object) -> str:
    if value is None:
        return ""
    return str(getattr(value, "value", value)).replace("_", " ")


def _status_counts(actions: list[ActionSummary]) -> str:
    counts: dict[str, int] = {}
    for action in actions:
        label = _status_label(action.status)
        counts[label] = counts.get(label, 0) + 1
    order = ["achieved", "on track", "behind", "at risk", "no data"]
    ranked = sorted(counts, key=lambda s: (order.index(s) if s in order else len(order), s))
    return ", ".join(f"{counts[s]} {s}" for s in ranked)


def _safe_url(value: object) -> str:
    # Autoescape stops attribute breakouts; this keeps `javascript:`, `data:`, `mailto:` and friends out of an href.
    text = str(value or "").strip()
    return text if is_web_url(text) else "#"


class _OutputLoader(jinja2.FileSystemLoader):
    """The templates of one output: an html environment never loads a `.txt.j2` template, nor a text one an
    `.html.j2` template, so no html template is ever rendered without autoescape."""

    def __init__(self, refused_suffix: str) -> None:
        super().__init__(TEMPLATES)
        self.refused_suffix = refused_suffix

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        if template.endswith(self.refused_suffix):
            raise jinja2.TemplateNotFound(f"{template} (not a template of this output)")
        return super().get_source(environment, template)


def _environment(*, html: bool) -> jinja2.Environment:
    """One environment per output. Autoescape belongs to the environment, not to a template's name: in Jinja a
    template is compiled escaping or not by its own name, so a macro file imported by an html template (the
    metric range, the last value) printed user text unescaped. Here every template and partial an html mail
    loads, whatever its name, escapes; the text parts and subjects never do."""
    env = jinja2.Environment(
        loader=_OutputLoader(".txt.j2" if html else ".html.j2"),
        autoescape=html,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters.update(
        format_label=_format_label,
        number=_number,
        days=_days,
        day=_day,
        status_label=_status_label,
        status_counts=_status_counts,
        safe_url=_safe_url,
    )
    return env


_HTML = _environment(html=True)
_TEXT = _environment(html=False)


@lru_cache(maxsize=len(MessageKind))
def _subject_template(kind: MessageKind) -> jinja2.Template:
    return _TEXT.from_string(SUBJECTS[kind])


def render(message: OutboundMessage, answer_url: str | None = None) -> tuple[str, str, str]:
    """(subject, plain text, html) of the message, from `templates/{kind}.txt.j2` and `.html.j2`.
    `answer_url` is the signed link to the check-in page, shown in the mails that ask for an answer."""
    kind = MessageKind(message.kind)
    subject = header_safe(_subject_template(kind).render(context=message.context))
    variables = {"context": message.context, "kind": kind.value, "subject": subject, "answer_url": answer_url}
    text = _TEXT.get_template(f"{kind.value}.txt.j2").render(variables)
    html = _HTML.get_template(f"{kind.value}.html.j2").render(variables)
    return subject, _tidy_text(text), html


def _tidy_text(text: str) -> str:
    # Optional template lines leave runs of blank lines behind; one blank line is enough.
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


# ---------------------------------------------------------------------------------------------------------
# Building the MIME message
# ---------------------------------------------------------------------------------------------------------

# CR and LF split a header; the others are line breaks to some parsers (str.splitlines among them).
_HEADER_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
_MAX_7BIT_LINE = 998  # RFC 5322's limit for a line of a 7bit body
M = TypeVar("M", bound=Message)


def header_safe(value: str) -> str:
    """One header-safe line: control characters and line breaks become spaces (defence in depth: the
    schemas already reject them on input)."""
    return " ".join(_HEADER_BREAKS.sub(" ", value).split())


def _address(name: str, email: str) -> str:
    """`Name <addr>`: the name quoted, or RFC 2047 encoded when it is not ASCII; no line break survives."""
    addr_spec = _HEADER_BREAKS.sub("", email).strip()
    return formataddr((header_safe(name), addr_spec), charset="utf-8")


def _sender_parts(settings: Settings) -> tuple[str, str]:
    name, addr = parseaddr(header_safe(settings.mail_from))
    return name or FROM_NAME, _HEADER_BREAKS.sub("", addr or settings.mail_from).strip()


def _domain_of(address: str) -> str:
    _, addr = parseaddr(address)
    domain = (addr or address).rpartition("@")[2]
    return domain or "engage.localhost"


_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_DOMAIN_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


def message_id_for(key: str, domain: str) -> str:
    """A deterministic Message-ID from an idempotency key: `<readable.part.digest@domain>`.

    The readable part keeps only safe characters (so `acme-2027/A2/checkin/3` reads as
    `acme-2027.A2.checkin.3`); the sha256 digest keeps two keys that differ only in unsafe characters apart."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    host = ".".join(p for p in _DOMAIN_UNSAFE.sub("", domain).split(".") if p) or "engage.localhost"
    # Short enough that `Message-ID: <...>` fits one 78-character line and is never folded.
    budget = max(16, 78 - len("Message-ID: <.") - len(digest) - len(host) - len("@>"))
    readable = ".".join(p for p in _ID_UNSAFE.split(key) if p)[:budget].strip(".") or "msg"
    return f"<{readable}.{digest}@{host}>"


def answer_scope(message: OutboundMessage) -> tuple[bytes, AnswerScope] | None:
    """The scope an answer to this message may change (its id, and the row kept for it), or None."""
    if message.reply is None:
        return None
    scope = AnswerScope(engagement_id=message.engagement_id, action_id=message.reply.action_id,
                        preread_id=message.reply.preread_id, number=message.reply.number,
                        recipient=message.to.email, expires_at=message.reply.expires_at)
    return scope_id_for(message.engagement_id, message.key, message.to.email), scope


def reply_address(message: OutboundMessage, settings: Settings) -> str | None:
    """`checkin+TOKEN@inbound_domain` (45 octets before the @), or None when a reply changes nothing."""
    scoped = answer_scope(message)
    if scoped is None:
        return None
    token = sign_token(scoped[0], scoped[1].expires_at, "reply", settings.reply_secret)
    domain = _DOMAIN_UNSAFE.sub("", settings.inbound_domain)
    return f"{REPLY_LOCAL_PART}+{token}@{domain}"


def answer_url(message: OutboundMessage, settings: Settings) -> str | None:
    """The signed, expiring link to the check-in page for this message's action and recipient, or None."""
    scoped = answer_scope(message)
    if scoped is None or scoped[1].action_id is None:
        return None
    token = sign_token(scoped[0], scoped[1].expires_at, "link", settings.reply_secret)
    return f"{settings.public_url.rstrip('/')}/a/{token}"


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
    msg["From"] = _address(*_sender_parts(settings))
    msg["To"] = _address(message.to.name, message.to.email)
    if message.cc:
        msg["Cc"] = ", ".join(_address(c.name, c.email) for c in message.cc)
    msg["Subject"] = _header_text(subject)
    msg["Date"] = format_datetime((now or datetime.now(UTC)).astimezone(UTC))
    msg["Message-ID"] = header_safe(message_id)
    if message.in_reply_to:
        # An answer to an owner's reply: threaded under it in every client.
        msg["In-Reply-To"] = header_safe(message.in_reply_to)
        msg["References"] = header_safe(message.in_reply_to)
    reply_to = reply_address(message, settings)
    if reply_to is not None:
        msg["Reply-To"] = _address(FROM_NAME, reply_to)
    # Out-of-office replies must not come back as check-in answers (RFC 3834, and Outlook's own header).
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    msg["X-Engage-Kind"] = header_safe(str(getattr(message.kind, "value", message.kind)))
    return msg


# ---------------------------------------------------------------------------------------------------------
# Sending, once
# ---------------------------------------------------------------------------------------------------------


class PermanentDeliveryError(RuntimeError):
    """The relay refused the message for good (a 5xx on a recipient or on the content): retrying cannot help."""


class InsecureRelayError(aiosmtplib.SMTPException):
    """ENGAGE_SMTP_URL carries credentials but the connection to the relay is not encrypted: the password is not
    sent. Retryable on purpose, like a refused login: the operator fixes the URL or the relay and the waiting
    messages go out once."""


class SmtpTarget(BaseModel):
    hostname: str
    port: int
    use_tls: bool
    username: str | None = None
    password: str | None = None


def smtp_target(url: str) -> SmtpTarget:
    """`smtp://[user:pass@]host[:port]` (plain, upgraded with STARTTLS when offered; port 25) or
    `smtps://...` (implicit TLS; port 465). With a user or password, TLS is required: STARTTLS or smtps."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("ENGAGE_SMTP_URL must look like smtp://host:port or smtps://user:password@host:port")
    use_tls = parts.scheme == "smtps"
    return SmtpTarget(
        hostname=parts.hostname,
        port=parts.port or (465 if use_tls else 25),
        use_tls=use_tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def _is_permanent(code: int) -> bool:
    return 500 <= code < 600


class Mailer:
    """Sends each OutboundMessage at most once per Message-ID, recorded in the `outbox` table.

    The outbox row is written before the SMTP conversation and marked sent as soon as the relay answers 250
    to DATA, before QUIT and the socket's close. A crash between that 250 and the committed `mark_sent` (a
    fraction of a millisecond, docs/email.md "The remaining window") sends the message again on retry, with
    the same Message-ID so mail clients fold the two; every other retry finds the row sent and sends nothing."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool) -> None:
        self.settings = settings
        self.pool = pool
        self.target = smtp_target(settings.smtp_url.get_secret_value())
        self.domain = _domain_of(settings.mail_from)
        # (relay's 250 -> mark committed, QUIT) in seconds for the latest sends: bench/email_window.py reads it.
        self.recent_windows: deque[tuple[float, float]] = deque(maxlen=4096)

    def message_id(self, message: OutboundMessage) -> str:
        return message_id_for(message.key, self.domain)

    async def send(self, message: OutboundMessage) -> SendResult:
        message_id = self.message_id(message)
        rendered = render(message, answer_url(message, self.settings))
        try:
            mime = build_email(message, self.settings, message_id, rendered=rendered)
        except ValueError as exc:  # an address the email package cannot parse: no retry will fix it
            raise PermanentDeliveryError(f"cannot build message {message_id}: {exc}") from exc
        recipients = [_address_of(r) for r in [message.to, *message.cc]]
        bound = log.bind(engagement_id=message.engagement_id, action_id=message.action_id,
                         message_id=message_id, kind=str(message.kind))
        async with outbox.sending(self.pool, message_id) as conn:
            status = await outbox.reserve(
                conn,
                message_id=message_id,
                engagement_id=message.engagement_id,
                key=message.key,
                kind=str(getattr(message.kind, "value", message.kind)),
                recipients=recipients,
                subject=rendered[0],
            )
            if status == "sent":
                return SendResult(message_id=message_id, delivered_now=False, subject=rendered[0])
            scoped = answer_scope(message)
            if scoped is not None:  # before the mail is out: an answer to it must find its scope
                await scopes.save(conn, *scoped)
            try:
                refused = await self._deliver(mime, recipients, accepted=lambda: self._mark_sent(conn, message_id))
            except InsecureRelayError as exc:
                bound.error(str(exc))
                raise
        if refused:
            bound.warning("some recipients refused", refused=refused)
        return SendResult(message_id=message_id, delivered_now=True, subject=rendered[0])

    async def _mark_sent(self, conn: asyncpg.Connection, message_id: str) -> None:
        """The relay has the message: record it, through a Postgres restart if need be. Giving up here sends it
        again on retry, so the mark keeps trying on fresh connections for most of the activity's 30 s."""
        deadline = time.monotonic() + MARK_PATIENCE_S
        delay, db = 0.2, conn
        while True:
            try:
                await outbox.mark_sent(db, message_id)
                return
            except _DB_DOWN as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("the relay accepted the message; Postgres is away, marking it sent again shortly",
                            message_id=message_id, error=type(exc).__name__)
                await asyncio.sleep(delay)
                delay, db = min(delay * 2, 2.0), self.pool

    async def _deliver(self, mime: Message, recipients: list[str],
                       accepted: Callable[[], Awaitable[object]] | None = None) -> dict[str, str]:
        """One SMTP conversation; returns the recipients the relay refused while accepting the others.

        `accepted` (the outbox's mark_sent) runs the moment the relay answers 250 to DATA, before QUIT: a
        crash after it sends nothing again. A failed QUIT after that changes nothing: the relay has the
        message, and raising would only make the activity retry."""
        t = self.target
        smtp = aiosmtplib.SMTP(hostname=t.hostname, port=t.port, use_tls=t.use_tls, start_tls=False,
                               timeout=SMTP_TIMEOUT)
        await smtp.connect()
        try:
            await smtp.ehlo()
            if not t.use_tls and smtp.supports_extension("starttls"):
                await smtp.starttls()  # aiosmtplib says EHLO again over TLS before the next command
            if t.username is not None or t.password is not None:
                if smtp.get_transport_info("sslcontext") is None:
                    raise InsecureRelayError(
                        f"ENGAGE_SMTP_URL has credentials but the relay at {t.hostname}:{t.port} offers no STARTTLS:"
                        " the password is not sent without TLS; use smtps://host:465 or a relay that offers"
                        " STARTTLS (messages wait and retry until then)")
                await smtp.login(t.username or "", t.password or "")
            errors, _ = await smtp.send_message(mime, sender=_sender_parts(self.settings)[1],
                                                recipients=recipients)
            relay_said_250 = time.perf_counter()
            if accepted is not None:
                await accepted()
            marked = time.perf_counter()
        except aiosmtplib.SMTPRecipientsRefused as exc:
            smtp.close()
            if all(_is_permanent(r.code) for r in exc.recipients):
                detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
                raise PermanentDeliveryError(f"every recipient refused: {detail}") from exc
            raise
        except (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError) as exc:
            smtp.close()
            if _is_permanent(exc.code):
                raise PermanentDeliveryError(f"relay refused the message: {exc.code} {exc.message}") from exc
            raise
        except BaseException:
            smtp.close()
            raise
        # A refused sender or failed login is a configuration problem the operator can fix: those stay
        # retryable, so the message goes out once the relay accepts it.
        try:
            await smtp.quit(timeout=QUIT_TIMEOUT)
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.debug("QUIT failed after the relay accepted the message", error=str(exc))
        finally:
            smtp.close()
        self.recent_windows.append((marked - relay_said_250, time.perf_counter() - marked))
        return {address: f"{r.code} {r.message}" for address, r in errors.items()}


def _address_of(recipient: Recipient) -> str:
    return _HEADER_BREAKS.sub("", recipient.email).strip()
