"""Email in: an SMTP server (aiosmtpd) for replies to check-in and pre-read mails.

A reply goes to `checkin+TOKEN@ENGAGE_INBOUND_DOMAIN`. The token (adapters/email.py) names the engagement,
the action or pre-read, the check-in number, the person the mail went to and an expiry, under an HMAC. A reply
is applied only when the token verifies, has not expired, and both the envelope sender and the From header
are that person; then its own text (quoted text ignored) becomes one workflow update:
a number -> `report_metric`, `snooze N` -> `snooze_action`, `read`/`done` to a pre-read -> `acknowledge_preread`.

Each reply is applied once: its Message-ID is recorded in `inbound_replies` (store/inbound.py) before the
update and marked final after it, and the update carries an id derived from it, so a relay that delivers a
reply twice, or a replayed copy, changes nothing. The SMTP answer tells the relay what to do: 250 applied (or
already applied, or an automatic reply ignored), 550 rejected for good (the sender gets a bounce naming the
reason), 451 try again later (Temporal or Postgres unreachable).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser
from typing import Literal

import asyncpg
import structlog
from pydantic import BaseModel, ValidationError
from temporalio.client import Client, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from adapters.email import (
    REPLY_LOCAL_PART,
    InvalidReplyToken,
    ReplyCommand,
    ReplyParseError,
    VerifiedReply,
    header_safe,
    parse_reply,
    verify_reply_token,
)
from adapters.temporal import engagement_workflow_id
from schemas.common import one_line
from schemas.settings import Settings
from schemas.state import AcknowledgePreread, ReportMetric, SnoozeAction
from store import inbound

log = structlog.get_logger(__name__)

# A reply is a few lines of text; a forwarded deck is not a check-in answer.
MAX_MESSAGE_BYTES = 10 * 1024 * 1024
# How long a reply may wait for its workflow update before the relay is told to try again later.
UPDATE_TIMEOUT = timedelta(seconds=60)

Rejection = Literal[
    "no_reply_address",  # no checkin+TOKEN@inbound_domain among the recipients
    "malformed_token",
    "bad_signature",  # forged with another secret, or tampered with
    "expired",
    "spoofed_sender",  # envelope sender or From header is not the person the mail went to
    "auto_reply",  # out-of-office and other automatic replies (RFC 3834)
    "unreadable",  # no number, `snooze N`, `read` or `done` in the reply's own text
    "wrong_scope",  # e.g. `read` to a check-in, or a number to a pre-read
    "duplicate",  # this Message-ID was handled before
    "not_accepted",  # the workflow's validator refused it (e.g. the action is closed)
    "engagement_not_running",  # no such workflow, or it has completed
]
Deferral = Literal["temporal_unavailable", "database_unavailable"]


class ReplyOutcome(BaseModel):
    """What became of one inbound reply, and the SMTP answer that says so."""

    outcome: Literal["applied", "rejected", "deferred"]
    reason: Rejection | Deferral | None = None
    detail: str = ""
    message_id: str | None = None
    engagement_id: str | None = None
    action_id: str | None = None
    preread_id: str | None = None
    command: ReplyCommand | None = None

    def smtp_response(self) -> str:
        """One SMTP reply line: 250 (done, or nothing to do), 550 (never), 451 (try again later)."""
        detail = header_safe(self.detail)[:200]
        if self.outcome == "applied":
            return f"250 2.0.0 applied: {detail}"
        if self.outcome == "deferred":
            return f"451 4.3.0 try again later ({self.reason})"
        if self.reason == "duplicate":
            return "250 2.0.0 already handled (duplicate): nothing changed"
        if self.reason == "auto_reply":
            return "250 2.0.0 automatic reply ignored (auto_reply)"
        code = ("5.7.1" if self.reason in ("malformed_token", "bad_signature", "expired", "spoofed_sender")
                else "5.1.1" if self.reason == "no_reply_address" else "5.6.0")
        return f"550 {code} rejected ({self.reason}): {detail}"


# ---------------------------------------------------------------------------------------------------------
# Reading the reply
# ---------------------------------------------------------------------------------------------------------

_REPLY_ADDRESS = re.compile(rf"^{REPLY_LOCAL_PART}\+(?P<token>[A-Za-z2-7]+)@(?P<domain>[^@\s]+)$", re.IGNORECASE)


def reply_token_of(address: str, settings: Settings) -> str | None:
    """The token of `checkin+TOKEN@inbound_domain`, or None for any other address."""
    _, addr = parseaddr(address)
    match = _REPLY_ADDRESS.match((addr or address).strip())
    if match is None or match.group("domain").lower().rstrip(".") != settings.inbound_domain.lower().rstrip("."):
        return None
    return match.group("token")


def _bare(address: str | None) -> str:
    _, addr = parseaddr(address or "")
    return addr.strip().lower()


def _from_header(message: EmailMessage) -> str | None:
    """The one address of the From header, or None when there is none or more than one."""
    addresses = [a for _, a in getaddresses([str(v) for v in message.get_all("From", [])]) if a]
    return addresses[0].strip().lower() if len(addresses) == 1 else None


def _is_automatic(message: EmailMessage) -> bool:
    auto = str(message.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(message.get("Precedence", "")).strip().lower()
    return (auto not in ("", "no") or precedence in ("bulk", "junk", "list", "auto_reply")
            or message.get("X-Autoreply") is not None or message.get("X-Autorespond") is not None)


class _HtmlText(HTMLParser):
    """The visible text of an HTML reply, without the quoted original: blockquotes are skipped, and reading
    stops where Gmail, Outlook or Thunderbird start the quote."""

    _BLOCKS = {"p", "div", "br", "tr", "li", "ul", "ol", "table", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "pre"}
    _HIDDEN = {"script", "style", "head", "title", "blockquote"}
    _QUOTE_CLASSES = {"gmail_quote", "gmail_extra", "moz-cite-prefix", "yahoo_quoted"}
    _QUOTE_IDS = {"appendonsend", "divrplyfwdmsg", "mail-editor-reference-message-container"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden: str | None = None
        self._depth = 0
        self._stopped = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._stopped:
            return
        if self._hidden is not None:
            self._depth += tag == self._hidden
            return
        values = dict(attrs)
        classes = set((values.get("class") or "").lower().split())
        if classes & self._QUOTE_CLASSES or (values.get("id") or "").lower() in self._QUOTE_IDS:
            self._stopped = True
            return
        if tag in self._HIDDEN:
            self._hidden, self._depth = tag, 1
            return
        if tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self._stopped:
            return
        if self._hidden is not None:
            if tag == self._hidden:
                self._depth -= 1
                if self._depth == 0:
                    self._hidden = None
            return
        if tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._stopped and self._hidden is None:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(lines).strip()


def reply_text(message: EmailMessage) -> str | None:
    """The reply's text: the text/plain part when there is one, else the HTML part without its tags."""
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return None
    try:
        content = body.get_content()
    except (LookupError, ValueError, AssertionError):  # an unknown charset, a broken encoding
        return None
    if not isinstance(content, str):
        return None
    return html_to_text(content) if body.get_content_subtype() == "html" else content


def inbound_message_id(message: EmailMessage, raw: bytes) -> str:
    """The reply's Message-ID (the key that makes a redelivery harmless); a digest of the bytes without one."""
    value = " ".join(str(message.get("Message-ID", "")).split())
    if value:
        return value if len(value) <= 250 else "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return "sha256:" + hashlib.sha256(raw).hexdigest()


# ---------------------------------------------------------------------------------------------------------
# Applying it
# ---------------------------------------------------------------------------------------------------------


class _Reject(Exception):  # noqa: N818 - control flow inside apply_reply, never escapes it
    def __init__(self, reason: Rejection, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _update_for(reply: VerifiedReply, command: ReplyCommand) -> tuple[str, BaseModel, str]:
    """(update name, payload, what it does) for a command within the token's scope, or _Reject."""
    if reply.action_id is not None:
        if command.kind == "value":
            assert command.value is not None
            return ("report_metric",
                    ReportMetric(action_id=reply.action_id, value=command.value, source="email",
                                 note=f"email reply to check-in {reply.number}" if reply.number else "email reply"),
                    f"value {command.value:g} for {reply.action_id}")
        if command.kind == "snooze":
            assert command.days is not None
            return ("snooze_action", SnoozeAction(action_id=reply.action_id, days=command.days),
                    f"{reply.action_id} snoozed {command.days} days")
        raise _Reject("wrong_scope", "a check-in takes a number or `snooze N`, not `read` or `done`")
    if reply.preread_id is not None:
        if command.kind == "ack":
            return ("acknowledge_preread", AcknowledgePreread(participant=reply.recipient, preread_id=reply.preread_id),
                    f"pre-read {reply.preread_id} read by {reply.recipient}")
        raise _Reject("wrong_scope", "a pre-read takes `read` or `done`")
    raise _Reject("wrong_scope", "this reply address names no action and no pre-read")


_TRANSIENT = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED,
              RPCStatusCode.ABORTED, RPCStatusCode.INTERNAL, RPCStatusCode.UNKNOWN, RPCStatusCode.CANCELLED)


async def apply_reply(
    raw: bytes,
    envelope_from: str | None,
    rcpt_tos: list[str],
    settings: Settings,
    client: Client,
    pool: asyncpg.Pool,
    *,
    now: datetime | None = None,
    timeout: timedelta = UPDATE_TIMEOUT,
) -> ReplyOutcome:
    """Check one inbound reply and apply it as a workflow update, at most once per Message-ID.

    Every rejection is logged with its reason (never the token or the secret) and changes nothing."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    message_id = inbound_message_id(message, raw)
    sender = _bare(envelope_from)
    bound = log.bind(message_id=message_id, sender=sender)
    reply: VerifiedReply | None = None
    command: ReplyCommand | None = None

    def outcome(kind: Literal["applied", "rejected", "deferred"], reason: Rejection | Deferral | None,
                detail: str) -> ReplyOutcome:
        result = ReplyOutcome(
            outcome=kind, reason=reason, detail=detail, message_id=message_id, command=command,
            engagement_id=reply.engagement_id if reply else None,
            action_id=reply.action_id if reply else None, preread_id=reply.preread_id if reply else None)
        fields = {"reason": reason, "engagement_id": result.engagement_id, "action_id": result.action_id,
                  "preread_id": result.preread_id, "detail": detail}
        if kind == "applied":
            bound.info("reply applied", **fields)
        elif kind == "deferred":
            bound.warning("reply deferred", **fields)
        else:
            bound.warning("reply rejected", **fields)
        return result

    try:
        tokens = [t for t in (reply_token_of(r, settings) for r in rcpt_tos) if t]
        if not tokens:
            raise _Reject("no_reply_address",
                          f"no {REPLY_LOCAL_PART}+TOKEN@{settings.inbound_domain} address among the recipients")
        try:
            reply = verify_reply_token(tokens[0], settings.reply_secret, now or datetime.now(UTC))
        except InvalidReplyToken as exc:
            reason: Rejection = "malformed_token" if exc.reason == "malformed" else exc.reason
            raise _Reject(reason, "this reply address is not valid" if reason != "expired"
                          else "this reply address has expired") from None
        header_from = _from_header(message)
        if sender != reply.recipient or header_from != reply.recipient:
            raise _Reject("spoofed_sender", "only the person the mail was sent to can answer it")
        if _is_automatic(message):
            raise _Reject("auto_reply", "automatic replies are ignored")
        text = reply_text(message)
        if text is None:
            raise _Reject("unreadable", "no text/plain or text/html part")
        try:
            command = parse_reply(text)
        except ReplyParseError as exc:
            raise _Reject("unreadable", str(exc)) from None
        try:
            update, payload, what = _update_for(reply, command)
        except ValidationError as exc:  # e.g. a number too large to be a float
            raise _Reject("unreadable", one_line(exc)) from None
    except _Reject as rejected:
        return outcome("rejected", rejected.reason, rejected.detail)

    try:
        async with inbound.handling(pool, message_id) as conn:
            status = await inbound.reserve(
                conn, message_id=message_id, engagement_id=reply.engagement_id, action_id=reply.action_id,
                preread_id=reply.preread_id, sender=sender, command=command.kind)
            if status != "pending":
                return outcome("rejected", "duplicate", f"this reply was {status} before")
            handle = client.get_workflow_handle(engagement_workflow_id(reply.engagement_id))
            # The update id makes a second delivery after a crash (row still pending) a no-op in Temporal too.
            update_id = "email-reply/" + hashlib.sha256(message_id.encode()).hexdigest()[:32]
            try:
                await asyncio.wait_for(
                    handle.execute_update(update, payload, id=update_id, rpc_timeout=timeout),
                    timeout.total_seconds())
            except WorkflowUpdateFailedError as exc:
                cause = exc.cause
                detail = cause.message if isinstance(cause, ApplicationError) else str(cause or exc)
                await inbound.finish(conn, message_id, "rejected", "not_accepted")
                return outcome("rejected", "not_accepted", detail)
            except RPCError as exc:
                if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                    await inbound.finish(conn, message_id, "rejected", "engagement_not_running")
                    return outcome("rejected", "engagement_not_running",
                                   f"engagement {reply.engagement_id} is not running")
                if exc.status in _TRANSIENT:
                    return outcome("deferred", "temporal_unavailable", f"{type(exc).__name__}: {exc.message}")
                raise
            except (WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError) as exc:
                return outcome("deferred", "temporal_unavailable", type(exc).__name__)
            except RuntimeError as exc:
                # A client that has to (re)connect first fails with "Failed client connect: ...".
                if "client connect" not in str(exc):
                    raise
                return outcome("deferred", "temporal_unavailable", "cannot connect to Temporal")
            await inbound.finish(conn, message_id, "applied")
            return outcome("applied", None, what)
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
        return outcome("deferred", "database_unavailable", type(exc).__name__)
