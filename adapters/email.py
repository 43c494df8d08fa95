"""Email out (render, build, send once over SMTP) and the two halves of email in (signed Reply-To
tokens, and reading a reply into a command)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.header import Header
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit

import aiosmtplib
import asyncpg
import jinja2
import structlog
from pydantic import BaseModel, SecretStr

from adapters.ics import build_ics
from schemas.events import MessageKind
from schemas.messages import ActionSummary, OutboundMessage, Recipient, ReplyScope, SendResult
from schemas.settings import Settings
from store import outbox

log = structlog.get_logger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
FROM_NAME = "engage"
REPLY_LOCAL_PART = "checkin"
SMTP_TIMEOUT = 30.0

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
    MessageKind.outcomes_reminder: "Please record the outcomes for {{ context.client }}",
    MessageKind.report: "Follow-through report: {{ context.client }}",
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
    """42.0 -> 42, 1234.5 -> 1,234.5, 0.125 -> 0.125: no float noise in an executive's inbox."""
    if value is None:
        return ""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if number == number.to_integral_value():
        return f"{int(number):,}"
    return f"{number.normalize():,f}"


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
    # Autoescape stops attribute breakouts; this stops `javascript:` and friends in an href.
    text = str(value or "").strip()
    return text if re.match(r"^(https?|mailto):", text, re.IGNORECASE) else "#"


def _autoescape(name: str | None) -> bool:
    return name is not None and name.endswith(".html.j2")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=_autoescape,
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


_ENV = _environment()


@lru_cache(maxsize=len(MessageKind))
def _subject_template(kind: MessageKind) -> jinja2.Template:
    return _ENV.from_string(SUBJECTS[kind])


def render(message: OutboundMessage) -> tuple[str, str, str]:
    """(subject, plain text, html) of the message, from `templates/{kind}.txt.j2` and `.html.j2`."""
    kind = MessageKind(message.kind)
    subject = header_safe(_subject_template(kind).render(context=message.context))
    variables = {"context": message.context, "kind": kind.value, "subject": subject}
    text = _ENV.get_template(f"{kind.value}.txt.j2").render(variables)
    html = _ENV.get_template(f"{kind.value}.html.j2").render(variables)
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


def reply_address(message: OutboundMessage, settings: Settings) -> str | None:
    """`checkin+TOKEN@inbound_domain`, or None when a reply to this message changes nothing."""
    if message.reply is None:
        return None
    token = sign_reply_token(message.engagement_id, message.reply, message.to.email, settings.reply_secret)
    domain = _DOMAIN_UNSAFE.sub("", settings.inbound_domain)
    return f"{REPLY_LOCAL_PART}+{token}@{domain}"


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
        ics = build_ics(message.calendar, now=now)
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
    reply_to = reply_address(message, settings)
    if reply_to is not None:
        msg["Reply-To"] = _address(FROM_NAME, reply_to)
    # Out-of-office replies must not come back as check-in answers (RFC 3834, and Outlook's own header).
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    msg["X-Engage-Kind"] = header_safe(str(getattr(message.kind, "value", message.kind)))
    return msg


# ---------------------------------------------------------------------------------------------------------
# Reply tokens: what a reply may change, signed into the Reply-To address
# ---------------------------------------------------------------------------------------------------------

_TOKEN_VERSION = 1
_MAC_BYTES = 12  # 96 bits: a forger gets one guess per email sent to the inbound server
_MAC_DOMAIN = b"engage/reply-token/v1\x00"


class InvalidReplyToken(ValueError):  # noqa: N818 - the name the callers know
    """A Reply-To token that is malformed, forged or tampered with, or expired. `reason` says which."""

    def __init__(self, reason: Literal["malformed", "bad_signature", "expired"], detail: str) -> None:
        super().__init__(f"invalid reply token ({reason}): {detail}")
        self.reason = reason


class VerifiedReply(BaseModel):
    engagement_id: str
    action_id: str | None = None
    preread_id: str | None = None
    number: int
    recipient: str
    expires_at: datetime


def _secret_bytes(secret: str | bytes | SecretStr) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def _varint(value: int) -> bytes:
    if value < 0:
        raise ValueError("reply token numbers must not be negative")
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated number")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _field(value: str | None) -> bytes:
    raw = (value or "").encode("utf-8")
    if len(raw) > 255:
        raise ValueError("reply token field longer than 255 bytes")
    return bytes([len(raw)]) + raw


def _read_field(data: bytes, pos: int) -> tuple[str, int]:
    if pos >= len(data) or pos + 1 + data[pos] > len(data):
        raise ValueError("truncated field")
    end = pos + 1 + data[pos]
    return data[pos + 1 : end].decode("utf-8"), end


def _mac(payload: bytes, secret: bytes) -> bytes:
    return hmac.new(secret, _MAC_DOMAIN + payload, hashlib.sha256).digest()[:_MAC_BYTES]


def _epoch(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def sign_reply_token(
    engagement_id: str, scope: ReplyScope, recipient_email: str, secret: str | bytes | SecretStr
) -> str:
    """A compact token naming the engagement, the action or pre-read, the check-in number, the recipient
    and the expiry, with an HMAC-SHA256 over all of them.

    Lower-case base32 without padding: relays may case-fold the local part of an address, and base32 reads
    back the same either way."""
    payload = (
        bytes([_TOKEN_VERSION])
        + struct.pack(">I", _epoch(scope.expires_at))
        + _varint(scope.number)
        + _field(engagement_id)
        + _field(scope.action_id)
        + _field(scope.preread_id)
        + _field(recipient_email.strip().lower())
    )
    token = base64.b32encode(payload + _mac(payload, _secret_bytes(secret))).decode("ascii")
    return token.rstrip("=").lower()


def verify_reply_token(token: str, secret: str | bytes | SecretStr, now: datetime) -> VerifiedReply:
    """The scope a token grants, or InvalidReplyToken with reason `malformed`, `bad_signature` (forged
    with another secret, or tampered with) or `expired`."""
    text = token.strip().upper()
    if not text or not re.fullmatch(r"[A-Z2-7]+", text):
        raise InvalidReplyToken("malformed", "not a base32 token")
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except ValueError as exc:
        raise InvalidReplyToken("malformed", "not a base32 token") from exc
    if len(raw) <= _MAC_BYTES + 5:
        raise InvalidReplyToken("malformed", "too short")
    payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    if not hmac.compare_digest(mac, _mac(payload, _secret_bytes(secret))):
        raise InvalidReplyToken("bad_signature", "the signature does not match: forged or tampered with")
    if payload[0] != _TOKEN_VERSION:
        raise InvalidReplyToken("malformed", f"unknown token version {payload[0]}")
    try:
        (expires,) = struct.unpack(">I", payload[1:5])
        number, pos = _read_varint(payload, 5)
        engagement_id, pos = _read_field(payload, pos)
        action_id, pos = _read_field(payload, pos)
        preread_id, pos = _read_field(payload, pos)
        recipient, pos = _read_field(payload, pos)
    except (ValueError, struct.error) as exc:
        raise InvalidReplyToken("malformed", str(exc)) from exc
    if pos != len(payload):
        raise InvalidReplyToken("malformed", "trailing bytes")
    expires_at = datetime.fromtimestamp(expires, UTC)
    if _epoch(now) >= expires:
        raise InvalidReplyToken("expired", f"the reply window closed at {expires_at.isoformat()}")
    return VerifiedReply(
        engagement_id=engagement_id,
        action_id=action_id or None,
        preread_id=preread_id or None,
        number=number,
        recipient=recipient,
        expires_at=expires_at,
    )


# ---------------------------------------------------------------------------------------------------------
# Reading a reply
# ---------------------------------------------------------------------------------------------------------

DEFAULT_SNOOZE_DAYS = 7
MAX_SNOOZE_DAYS = 365


class ReplyParseError(ValueError):
    """Nothing usable in a reply: no number, no `snooze N`, no `read` or `done`."""


class ReplyCommand(BaseModel):
    kind: Literal["value", "snooze", "ack"]
    value: float | None = None
    days: int | None = None


# Where the quoted original starts: everything from here on was written by someone else.
_QUOTE_HEADERS = (
    re.compile(r"^\s*-{2,}\s*Original Message\s*-{2,}\s*$", re.IGNORECASE),
    re.compile(r"^\s*On\b.*\bwrote:\s*$", re.IGNORECASE),
    re.compile(r"^\s*-- ?$"),  # signature delimiter: phone numbers below it are not answers
    re.compile(r"^\s*_{10,}\s*$"),  # Outlook's rule above "From: ... Sent: ..."
)
_SNOOZE = re.compile(r"\bsnooze\b(?:\s*(?:for\s+)?([+-]?\d+)\s*(?:d|days?)?\b)?", re.IGNORECASE)
_ACK = re.compile(r"^\W*(read|done)\b", re.IGNORECASE)
_NUMBER = re.compile(
    r"(?<![\w.,])"
    r"(?P<sign>[+-]?)"
    r"(?:(?P<grouped>\d{1,3}(?:,\d{3})+(?:\.\d+)?)"  # 1,234.5
    r"|(?P<comma>\d+,\d{1,2})(?![\d,])"  # 42,5: a decimal comma (a thousands group has three digits)
    r"|(?P<plain>\d+(?:\.\d+)?|\.\d+))"
    r"(?![\w])"
)


def unquoted(text: str) -> str:
    """The part of a reply its sender wrote: no `>` lines, nothing from an "On ... wrote:" or
    "-----Original Message-----" line on."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        if any(p.match(line) for p in _QUOTE_HEADERS):
            break
        # Gmail wraps a long "On <date>, <name> <address> wrote:" over two lines.
        if re.match(r"^\s*On\b", line) and i + 1 < len(lines) and re.search(r"\bwrote:\s*$", lines[i + 1]):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept).strip()


def parse_reply(text: str) -> ReplyCommand:
    """`snooze N` -> snooze N days (`snooze` alone: 7); `read` or `done` first -> acknowledge; otherwise the
    first number (`42`, `-3`, `12.5`, `1,234.5`, `42,5`) -> value. Raises ReplyParseError otherwise."""
    body = unquoted(text).replace("\u2212", "-")  # the typographic minus some clients insert
    snooze = _SNOOZE.search(body)
    if snooze:
        days = int(snooze.group(1)) if snooze.group(1) else DEFAULT_SNOOZE_DAYS
        if not 1 <= days <= MAX_SNOOZE_DAYS:
            raise ReplyParseError(f"snooze takes 1 to {MAX_SNOOZE_DAYS} days, not {days}")
        return ReplyCommand(kind="snooze", days=days)
    if _ACK.match(body):
        return ReplyCommand(kind="ack")
    match = _NUMBER.search(body)
    if match:
        if match.group("grouped"):
            digits = match.group("grouped").replace(",", "")
        elif match.group("comma"):
            digits = match.group("comma").replace(",", ".")
        else:
            digits = match.group("plain")
        return ReplyCommand(kind="value", value=float(match.group("sign") + digits))
    raise ReplyParseError(
        "no number, `snooze N`, `read` or `done` found in the reply (quoted text is ignored)"
    )


# ---------------------------------------------------------------------------------------------------------
# Sending, once
# ---------------------------------------------------------------------------------------------------------


class PermanentDeliveryError(RuntimeError):
    """The relay refused the message for good (a 5xx on a recipient or on the content): retrying cannot help."""


class SmtpTarget(BaseModel):
    hostname: str
    port: int
    use_tls: bool
    username: str | None = None
    password: str | None = None


def smtp_target(url: str) -> SmtpTarget:
    """`smtp://[user:pass@]host[:port]` (plain, upgraded with STARTTLS when offered; port 25) or
    `smtps://...` (implicit TLS; port 465)."""
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

    The outbox row is written before the SMTP conversation and marked sent after it. A crash between the
    relay's 250 and `mark_sent` sends the message again on retry (the same Message-ID lets mail clients
    fold the two); every other retry finds the row sent and sends nothing."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool) -> None:
        self.settings = settings
        self.pool = pool
        self.target = smtp_target(settings.smtp_url.get_secret_value())
        self.domain = _domain_of(settings.mail_from)

    def message_id(self, message: OutboundMessage) -> str:
        return message_id_for(message.key, self.domain)

    async def send(self, message: OutboundMessage) -> SendResult:
        message_id = self.message_id(message)
        rendered = render(message)
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
            refused = await self._deliver(mime, recipients)
            await outbox.mark_sent(conn, message_id)
        if refused:
            bound.warning("some recipients refused", refused=refused)
        return SendResult(message_id=message_id, delivered_now=True, subject=rendered[0])

    async def _deliver(self, mime: Message, recipients: list[str]) -> dict[str, str]:
        """One SMTP conversation; returns the recipients the relay refused while accepting the others."""
        t = self.target
        try:
            errors, _ = await aiosmtplib.send(
                mime,
                sender=_sender_parts(self.settings)[1],
                recipients=recipients,
                hostname=t.hostname,
                port=t.port,
                username=t.username,
                password=t.password,
                use_tls=t.use_tls,
                start_tls=None if not t.use_tls else False,
                timeout=SMTP_TIMEOUT,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            if all(_is_permanent(r.code) for r in exc.recipients):
                detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
                raise PermanentDeliveryError(f"every recipient refused: {detail}") from exc
            raise
        except (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError) as exc:
            if _is_permanent(exc.code):
                raise PermanentDeliveryError(f"relay refused the message: {exc.code} {exc.message}") from exc
            raise
        # A refused sender or failed login is a configuration problem the operator can fix: those stay
        # retryable, so the message goes out once the relay accepts it.
        return {address: f"{r.code} {r.message}" for address, r in errors.items()}


def _address_of(recipient: Recipient) -> str:
    return _HEADER_BREAKS.sub("", recipient.email).strip()
