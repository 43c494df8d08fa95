"""Email in: what becomes of one reply to a check-in or pre-read mail, whichever way it came (SMTP or IMAP).

A reply goes to `checkin+TOKEN@ENGAGE_INBOUND_DOMAIN`. The token (adapters/tokens.py) names an answer scope
(the engagement, the action or pre-read, the check-in, the person the mail went to) and an expiry, under an
HMAC. A reply counts only when the token verifies, has not expired, and both the envelope sender and the From
header are that person. Its own text (adapters/reply_reading.py: quotes, forwards and signatures removed) is
read by a strict grammar: a value -> `report_metric`, `snooze N days|weeks` -> `snooze_action`,
`blocked: reason` -> `block_action`, `read`/`done` to a pre-read -> `acknowledge_preread`. Nothing is guessed.

An invitation's token is its ICS ORGANIZER, so an attendee's calendar sends its RSVP here: a `text/calendar`
part with METHOD:REPLY (PARTSTAT ACCEPTED, DECLINED, TENTATIVE) or METHOD:COUNTER is read before any text
(adapters/ics.py `read_rsvp`). It counts only when the token is an invitation's, the sender checks above pass,
the one ATTENDEE in it is the person the token was made for, and the UID is this engagement's session: then it
becomes the `record_rsvp` update (250). An RSVP gets no answer mail: the attendee's calendar already shows
their answer, and a mail about it would be noise. Automatic-reply headers do not stop it (an RSVP is made by a
machine by nature, and nothing is mailed back, so no loop can start).

Every correctly signed reply gets an answer mail, threaded under it: what was recorded and the resulting
status, or why nothing was ("A1 closed (achieved) before this value", "the first line is not a number").
A bare 550 stays for forged, expired or unparseable mail only.

Each reply is handled once (adapters/answers.py, the path the check-in page takes too): its Message-ID is
recorded in the answer ledger (store/inbound.py) before the update and marked final after it, with the answer
mail; the update id (the answer id) derives from it, so a relay that delivers a reply twice changes nothing, and
a redelivery after a failed answer mail sends that mail.
The verdict for the relay: 250 handled (applied, answered, duplicate, automatic reply), 550 refused for good,
451 try again later (Temporal, Postgres or the SMTP relay for the answer unreachable).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from typing import Any, Literal, cast

import asyncpg
import structlog
from pydantic import BaseModel, ValidationError
from temporalio.client import Client

from adapters.answers import AnswerUnconfirmed, Applied, Refused, Submission, Submitted, Tell, submit_answer
from adapters.email.headers import header_safe
from adapters.email.send import Mailer
from adapters.email.smtp import PermanentDeliveryError
from adapters.engagement_client import Update, engagement_handle
from adapters.ics import NotAnRsvp, Rsvp, ics_uid, mail_domain, read_rsvp
from adapters.mail_auth import authentication_error
from adapters.mime_limits import ParserBusy, parse_limited
from adapters.reply_reading import Reading, own_text, read_answer
from adapters.tokens import REPLY_LOCAL_PART, InvalidReplyToken, check_token
from domain.numbers import number
from schemas.answers import AnswerScope
from schemas.common import one_line
from schemas.events import MessageKind
from schemas.messages import MessageContext, OutboundMessage, Recipient, ReplyScope
from schemas.settings import Settings
from schemas.updates import AcknowledgePreread, BlockAction, RecordRsvp, ReportMetric, SnoozeAction
from schemas.views import ActionView, EngagementStatus
from store import inbound, scopes
from store.db import DATABASE_AWAY
from store.inbound import Channel
from workflows.engagement import EngagementWorkflow

log = structlog.get_logger(__name__)

# A reply is a few lines of text; a forwarded deck is not a check-in answer.
MAX_MESSAGE_BYTES = 10 * 1024 * 1024
# How long a reply may wait for its workflow update before the relay is told to try again later.
UPDATE_TIMEOUT = timedelta(seconds=60)

Rejection = Literal[
    # Refused for good (550), no answer mail: nobody we can trust to tell.
    "no_reply_address",  # no checkin+TOKEN@inbound_domain among the recipients
    "malformed_token",
    "bad_signature",  # forged with another secret, or tampered with
    "expired",
    "unknown_scope",  # signed, but names no scope we keep
    "spoofed_sender",  # envelope sender or From header is not the person the mail went to
    "unparseable",  # not a message we can read within the caps
    "unauthenticated",  # the trusted relay did not vouch for the sender (SPF/DKIM/DMARC)
    # Handled (250) without a change.
    "auto_reply",  # out-of-office and other automatic replies (RFC 3834): never answered (no mail loops)
    "duplicate",  # this Message-ID was handled before
    # Handled (250), and the sender is told why nothing changed.
    "unreadable",  # the own text does not follow the grammar
    "wrong_scope",  # e.g. `read` to a check-in, or a number to a pre-read
    "not_accepted",  # the follow-through refused it (e.g. the action closed before it)
    "not_an_rsvp",  # a calendar part that answers nothing we sent (another UID, NEEDS-ACTION, ...)
    "engagement_not_running",  # no such workflow, or it has completed
]
Deferral = Literal["temporal_unavailable", "database_unavailable", "answer_not_sent", "parser_busy"]
_REFUSED_FOR_GOOD = ("no_reply_address", "malformed_token", "bad_signature", "expired", "unknown_scope",
                     "spoofed_sender", "unparseable", "unauthenticated")


class ReplyOutcome(BaseModel):
    """What became of one inbound reply, and the SMTP answer that says so."""

    outcome: Literal["applied", "rejected", "deferred"]
    reason: Rejection | Deferral | None = None
    detail: str = ""
    message_id: str | None = None
    engagement_id: str | None = None
    action_id: str | None = None
    preread_id: str | None = None
    reading: Reading | None = None
    answer_message_id: str | None = None  # the answer mail sent to the owner, when there is one

    def smtp_response(self) -> str:
        """One SMTP reply line: 250 (handled), 550 (refused for good), 451 (try again later)."""
        detail = header_safe(self.detail)[:200]
        if self.outcome == "applied":
            return f"250 2.0.0 applied: {detail}"
        if self.outcome == "deferred":
            return f"451 4.3.0 try again later ({self.reason})"
        if self.reason == "duplicate":
            return "250 2.0.0 already handled (duplicate): nothing changed"
        if self.reason == "auto_reply":
            return "250 2.0.0 automatic reply ignored (auto_reply)"
        if self.reason == "not_an_rsvp":
            return f"250 2.0.0 calendar answer not recorded (not_an_rsvp): {detail}"
        if self.reason not in _REFUSED_FOR_GOOD:
            return f"250 2.0.0 answered, nothing changed ({self.reason}): {detail}"
        code = ("5.7.1" if self.reason in ("malformed_token", "bad_signature", "expired", "unknown_scope",
                                           "spoofed_sender", "unauthenticated")
                else "5.1.1" if self.reason == "no_reply_address" else "5.6.0")
        return f"550 {code} rejected ({self.reason}): {detail}"


# ---------------------------------------------------------------------------------------------------------
# Checking the reply
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


def _from_header(message: EmailMessage) -> tuple[str, str] | None:
    """(name, address) of the one From address, or None when there is none or more than one."""
    found = [(n, a) for n, a in getaddresses([str(v) for v in message.get_all("From", [])]) if a]
    return (found[0][0], found[0][1].strip().lower()) if len(found) == 1 else None


def _is_automatic(message: EmailMessage) -> bool:
    auto = str(message.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(message.get("Precedence", "")).strip().lower()
    return (auto not in ("", "no") or precedence in ("bulk", "junk", "list", "auto_reply")
            or message.get("X-Autoreply") is not None or message.get("X-Autorespond") is not None)


def inbound_message_id(message: EmailMessage, raw: bytes) -> str:
    """The reply's Message-ID (the key that makes a redelivery harmless); a digest of the bytes without one."""
    value = " ".join(str(message.get("Message-ID", "")).split())
    if value:
        return value if len(value) <= 250 else "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return "sha256:" + hashlib.sha256(raw).hexdigest()


async def _scope_of(token: str, settings: Settings, pool: asyncpg.Pool, now: datetime) -> AnswerScope:
    try:
        grant = check_token(token, "reply", settings.reply_secret, now)
    except InvalidReplyToken as exc:
        reason: Rejection = "malformed_token" if exc.reason == "malformed" else exc.reason
        raise _Reject(reason, "this reply address is not valid" if reason != "expired"
                      else "this reply address has expired") from None
    if grant.scope is not None:
        return grant.scope
    assert grant.scope_id is not None
    scope = await scopes.lookup(pool, grant.scope_id)
    if scope is None:
        raise _Reject("unknown_scope", "this reply address names nothing engage sent")
    return scope


# ---------------------------------------------------------------------------------------------------------
# Applying it
# ---------------------------------------------------------------------------------------------------------


class _Reject(Exception):  # noqa: N818 - control flow inside apply_reply, never escapes it
    def __init__(self, reason: Rejection, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _update_for(scope: AnswerScope, reading: Reading, note: str) -> tuple[Update[Any], BaseModel]:
    """(update, payload) for a reading within the scope, or _Reject("wrong_scope")."""
    if scope.action_id is not None:
        if reading.kind == "value":
            assert reading.value is not None
            text = " ".join(f"{note} {reading.note or ''}".split())[:4000]
            return EngagementWorkflow.report_metric, ReportMetric(action_id=scope.action_id, value=reading.value,
                                                                  note=text, source="email")
        if reading.kind == "snooze":
            assert reading.days is not None
            return EngagementWorkflow.snooze_action, SnoozeAction(action_id=scope.action_id, days=reading.days,
                                                                  source="email")
        if reading.kind == "blocked":
            assert reading.reason is not None
            return EngagementWorkflow.block_action, BlockAction(
                action_id=scope.action_id, reason=" ".join(reading.reason.split()), source="email")
        raise _Reject("wrong_scope", "a check-in takes a number, `snooze 2 weeks` or `blocked: reason`, "
                                     "not `read` or `done`")
    if scope.preread_id is not None:
        if reading.kind == "ack":
            return EngagementWorkflow.acknowledge_preread, AcknowledgePreread(participant=scope.recipient,
                                                                              preread_id=scope.preread_id)
        raise _Reject("wrong_scope", "a pre-read takes `read` or `done`")
    raise _Reject("wrong_scope", "to answer an invitation, accept or decline it in your calendar: engage reads "
                                 "that answer, not the text of a mail")


class ReplyDeferred(Exception):  # noqa: N818 - the reply must wait: the relay (or the IMAP poller) tries again
    def __init__(self, reason: Deferral, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _applied_text(reading: Reading, view: ActionView | None, answer_id: str) -> str:
    if view is None:
        return "Thank you: the pre-read is marked as read."
    title = f"'{view.title}'"
    if reading.kind == "value":
        assert reading.value is not None
        status = view.status.value.replace("_", " ")
        closed = " The action is closed: target reached." if view.closed_reason == "achieved" else ""
        return (f"Recorded {number(reading.value)} {view.metric.unit} for {title}: {status}.{closed}").strip()
    verdict = next((a for a in view.answers if a.answer_id == answer_id), None)
    if reading.kind == "snooze":
        return f"Snoozed {title} for {reading.days} days" + (f": {verdict.detail.split(': ', 1)[-1]}."
                                                               if verdict else ".")
    return f"Recorded that {title} is blocked: {reading.reason}. The consultant has been told."


async def _status(client: Client, engagement_id: str) -> EngagementStatus | None:
    """The engagement as the answer mail describes it; None when it cannot be asked (the mail says less)."""
    try:
        return await asyncio.wait_for(engagement_handle(client, engagement_id).query(EngagementWorkflow.status), 10)
    except Exception:  # noqa: BLE001 - the answer is sent anyway, only with fewer details
        return None


def answer_mail(scope: AnswerScope, answer_key: str, recorded: bool, text: str, status: EngagementStatus | None, *,
                sender_name: str = "", in_reply_to: str | None = None) -> OutboundMessage:
    """The answer to an answer (a reply, or a page submit): what was recorded or why nothing was, threaded under
    the reply, and signed for the same scope so that a correction is one reply or one click away.
    `answer_key` (the reply's Message-ID, the page's ledger id) makes it one mail per answer."""
    action = next((a for a in status.actions if a.action_id == scope.action_id), None) if status else None
    preread = next((p for p in status.prereads if p.preread_id == scope.preread_id), None) if status else None
    about = action.title if action else preread.title if preread else "your check-in"
    sender_name = sender_name or (action.owner.name if action and action.owner.email == scope.recipient else "")
    digest = hashlib.sha256(answer_key.encode()).hexdigest()[:24]
    return OutboundMessage(
        engagement_id=scope.engagement_id,
        key=f"{scope.engagement_id}/answer/{digest}",
        kind=MessageKind.answer,
        to=Recipient(name=sender_name or scope.recipient, email=scope.recipient),
        reply=ReplyScope(action_id=scope.action_id, preread_id=scope.preread_id, number=scope.number,
                         expires_at=scope.expires_at),
        action_id=scope.action_id,
        in_reply_to=in_reply_to,
        summary=f"Answer {scope.recipient}'s {'reply' if in_reply_to else 'answer'}",
        context=MessageContext(
            client=status.client if status else scope.engagement_id, engagement_id=scope.engagement_id,
            recipient_name=sender_name or scope.recipient,
            consultant_name=status.consultant.name if status else "engage",
            action_id=scope.action_id, action_title=about, answer_recorded=recorded, answer_text=text,
            answer_subject=(f"{'Recorded' if recorded else 'Not recorded'}: {about}"),
        ),
    )


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
    channel: Channel = "smtp",
    message: EmailMessage | None = None,
) -> ReplyOutcome:
    """Check one inbound reply, apply it as a workflow update at most once per Message-ID, and answer it.

    Every refusal is logged with its reason (never the token or the secret) and changes nothing."""
    sender = _bare(envelope_from)
    bound = log.bind(sender=sender, channel=channel)
    scope: AnswerScope | None = None
    reading: Reading | None = None
    message_id: str | None = None

    def outcome(kind: Literal["applied", "rejected", "deferred"], reason: Rejection | Deferral | None,
                detail: str, answer: str | None = None) -> ReplyOutcome:
        result = ReplyOutcome(
            outcome=kind, reason=reason, detail=detail, message_id=message_id, reading=reading,
            engagement_id=scope.engagement_id if scope else None, action_id=scope.action_id if scope else None,
            preread_id=scope.preread_id if scope else None, answer_message_id=answer)
        fields = {"reason": reason, "engagement_id": result.engagement_id, "action_id": result.action_id,
                  "preread_id": result.preread_id, "detail": detail, "message_id": message_id}
        if kind == "applied":
            bound.info("reply applied", **fields)
        elif kind == "deferred":
            bound.warning("reply deferred", **fields)
        else:
            bound.warning("reply rejected", **fields)
        return result

    try:
        try:
            parsed = message if message is not None else await parse_limited(raw)
        except ValueError as exc:  # UnparseableMessage, or the parser's own refusal
            raise _Reject("unparseable", str(exc) or "the message cannot be parsed") from None
        except ParserBusy:
            raise ReplyDeferred("parser_busy", "every parser is busy") from None
        message_id = inbound_message_id(parsed, raw)
        tokens = [t for t in (reply_token_of(r, settings) for r in rcpt_tos) if t]
        if not tokens:
            raise _Reject("no_reply_address",
                          f"no {REPLY_LOCAL_PART}+TOKEN@{settings.inbound_domain} address among the recipients")
        scope = await _scope_of(tokens[0], settings, pool, now or datetime.now(UTC))
        header_from = _from_header(parsed)
        if sender != scope.recipient or header_from is None or header_from[1] != scope.recipient:
            raise _Reject("spoofed_sender", "only the person the mail was sent to can answer it")
        unauthenticated = authentication_error(parsed, settings)
        if unauthenticated:
            raise _Reject("unauthenticated", unauthenticated)
        calendar = calendar_answer(parsed) if scope.is_invitation else None
        if calendar is not None:
            rsvp = _rsvp_of(calendar, scope, settings)
            return outcome(*await _decide_rsvp(pool, client, scope, rsvp, message_id, sender, channel, timeout))
        if _is_automatic(parsed):
            return outcome("rejected", "auto_reply", "automatic replies are ignored")

        text = own_text(parsed)
        reading = read_answer(text) if text else Reading(kind="none", why="the reply has no text of its own")
        sender_name = header_from[0]
        answer_id = "email-reply/" + hashlib.sha256(message_id.encode()).hexdigest()[:32]
        mailer = Mailer(settings, pool)
        # No connection is held while Temporal decides: many replies at once would drain the pool (and, in one
        # process with a worker, starve its activities). Two deliveries of one reply at once both reach Temporal
        # with the same update id, which applies it once and gives both the same verdict; the ledger's finish and
        # the outbox make the rest happen once.
        verdict, answer = await _decide(pool, client, scope, reading, message_id, answer_id, sender, sender_name,
                                        channel, timeout)
        if answer is not None:
            sent = await send_answer(mailer, answer)
            return outcome(verdict[0], verdict[1], verdict[2], sent)
        return outcome(*verdict)
    except _Reject as refused:  # only the checks above the RSVP and the answer raise it
        return outcome("rejected", refused.reason, refused.detail)
    except ReplyDeferred as deferred:
        return outcome("deferred", deferred.reason, str(deferred))
    except DATABASE_AWAY as exc:
        return outcome("deferred", "database_unavailable", type(exc).__name__)


Verdict = tuple[Literal["applied", "rejected"], Rejection | None, str]


def calendar_answer(message: EmailMessage) -> bytes | None:
    """The iCalendar object of an RSVP: the first `text/calendar` part (or `.ics` attachment) whose METHOD is
    REPLY or COUNTER; None when the mail carries none."""
    for part in message.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        filename = (part.get_filename() or "").lower()
        if ctype not in ("text/calendar", "application/ics") and not filename.endswith(".ics"):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        method = str(part.get_param("method") or "").upper()
        if method in ("REPLY", "COUNTER") or re.search(rb"^METHOD:(REPLY|COUNTER)\s*$", payload, re.M | re.I):
            return payload
    return None


def _rsvp_of(calendar: bytes, scope: AnswerScope, settings: Settings) -> Rsvp:
    """The RSVP, checked against the invitation's token: the one attendee is its recipient, the UID its session."""
    try:
        rsvp = read_rsvp(calendar)
    except NotAnRsvp as exc:
        raise _Reject("not_an_rsvp", str(exc)) from None
    if rsvp.attendee != scope.recipient:
        # The token was made for one attendee: an answer for someone else is forged, whoever sent it.
        raise _Reject("spoofed_sender", "the attendee in this answer is not the person the invitation went to")
    session_uid = f"{scope.engagement_id}/session"
    if rsvp.uid not in (ics_uid(session_uid, mail_domain(settings.mail_from)), session_uid):
        raise _Reject("not_an_rsvp", "this answer is for another calendar entry than the invitation")
    if rsvp.attendance is None:
        raise _Reject("not_an_rsvp", "the answer neither accepts, declines nor tentatively accepts")
    return rsvp


async def _decide_rsvp(pool: asyncpg.Pool, client: Client, scope: AnswerScope, rsvp: Rsvp, message_id: str,
                       sender: str, channel: Channel, timeout: timedelta) -> Verdict:
    """Record the RSVP once (the ledger, then `record_rsvp` with an update id from the Message-ID)."""
    answer_id = "rsvp/" + hashlib.sha256(message_id.encode()).hexdigest()[:32]
    assert rsvp.attendance is not None
    request: tuple[Update[Any], BaseModel] | Refused
    try:
        request = EngagementWorkflow.record_rsvp, RecordRsvp(
            attendee=scope.recipient, attendance=rsvp.attendance, sequence=min(rsvp.sequence, 1_000_000),
            method=rsvp.method, comment=(rsvp.comment or None) and rsvp.comment[:4000],
            proposed_starts_at=rsvp.proposed_starts_at, proposed_ends_at=rsvp.proposed_ends_at, answer_id=answer_id)
    except ValidationError as exc:
        request = Refused("not_an_rsvp", f"the answer cannot be recorded: {one_line(exc)}")
    told = f"{scope.recipient} {rsvp.attendance} the invitation" + (
        " and proposed another time" if rsvp.method == "COUNTER" else "")

    async def tell(verdict: Applied | Refused) -> tuple[str, OutboundMessage | None]:
        # No answer mail: the attendee's calendar already shows their answer.
        return (verdict.detail if isinstance(verdict, Refused) else told), None

    submitted = await _submit(pool, client, Submission(scope=scope, ledger_id=message_id, update_id=answer_id,
                                                       sender=sender, command="rsvp", channel=channel),
                              request, tell, timeout)
    if submitted.outcome == "duplicate":
        return "rejected", "duplicate", f"this answer was {submitted.first} before"
    return _verdict(submitted)


async def _decide(conn: asyncpg.Pool, client: Client, scope: AnswerScope, reading: Reading, message_id: str,
                  answer_id: str, sender: str, sender_name: str, channel: Channel,
                  timeout: timedelta) -> tuple[Verdict, OutboundMessage | None]:
    """Apply the reply once: the verdict, and the answer mail to send (for a duplicate, the first delivery's
    answer, in case it could not be sent then)."""
    request: tuple[Update[Any], BaseModel] | Refused
    if reading.kind == "none":
        request = Refused("unreadable", f"We could not read a value from your reply: {reading.why}.")
    else:
        note = f"email reply to check-in {scope.number}" if scope.number else "email reply"
        try:
            request = _update_for(scope, reading, note)
        except _Reject as refused:
            request = Refused(refused.reason, refused.detail)
        except ValidationError as exc:
            request = Refused("unreadable", f"We could not read your reply: {one_line(exc)}.")

    async def tell(verdict: Applied | Refused) -> tuple[str, OutboundMessage | None]:
        if isinstance(verdict, Refused):
            told = verdict.detail if verdict.reason == "unreadable" else f"Not recorded: {verdict.detail}."
        else:
            told = _applied_text(reading, verdict.result if isinstance(verdict.result, ActionView) else None,
                                 answer_id)
        return told, answer_mail(scope, message_id, isinstance(verdict, Applied), told,
                                 await _status(client, scope.engagement_id), sender_name=sender_name,
                                 in_reply_to=message_id)

    submitted = await _submit(conn, client, Submission(scope=scope, ledger_id=message_id, update_id=answer_id,
                                                       sender=sender, command=reading.kind, channel=channel),
                              request, tell, timeout)
    if submitted.outcome == "duplicate":
        return (("rejected", "duplicate", f"this reply was {submitted.first} before"),
                await inbound.answer_of(conn, message_id))
    return _verdict(submitted), submitted.answer


async def _submit(pool: asyncpg.Pool, client: Client, answer: Submission,
                  request: tuple[Update[Any], BaseModel] | Refused, tell: Tell, timeout: timedelta) -> Submitted:
    try:
        return await submit_answer(pool, client, answer, request, tell, rpc_timeout=timeout)
    except AnswerUnconfirmed as exc:
        raise ReplyDeferred("temporal_unavailable", str(exc)) from None


def _verdict(submitted: Submitted) -> Verdict:
    outcome: Literal["applied", "rejected"] = "applied" if submitted.outcome == "applied" else "rejected"
    return outcome, cast(Rejection | None, submitted.reason), submitted.told


async def send_answer(mailer: Mailer, answer: OutboundMessage) -> str | None:
    """Send the answer mail (once, by its key); ReplyDeferred when the relay cannot take it now, so the reply is
    delivered again and this mail with it."""
    try:
        return (await mailer.send(answer)).message_id
    except PermanentDeliveryError as exc:  # the relay refuses the owner's address: no retry will change that
        log.error("answer mail refused", engagement_id=answer.engagement_id, error=str(exc))
        return None
    except Exception as exc:  # noqa: BLE001 - any other failure to send: the relay retries the reply later
        log.warning("answer mail not sent", engagement_id=answer.engagement_id, error=type(exc).__name__)
        raise ReplyDeferred("answer_not_sent", f"the answer mail could not be sent: {type(exc).__name__}") from exc
