"""Sending, once: an OutboundMessage over SMTP, recorded in the outbox ledger (store/outbox.py) so a retried send
sends nothing twice. The message is rendered by adapters/email/render.py and built by adapters/email/mime.py."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from email.message import Message
from urllib.parse import unquote, urlsplit

import aiosmtplib
import asyncpg
import structlog
from pydantic import BaseModel

from adapters.email.headers import addr_spec, message_id_for, sender_parts
from adapters.email.mime import build_email
from adapters.email.render import render
from adapters.ics import mail_domain
from adapters.tokens import answer_scope, answer_url
from schemas.messages import OutboundMessage, SendResult
from schemas.settings import Settings
from store import outbox, scopes

log = structlog.get_logger(__name__)

SMTP_TIMEOUT = 30.0
QUIT_TIMEOUT = 5.0  # after the relay accepted the message: nothing left to wait for
MARK_PATIENCE_S = 25.0  # within send_message's 30 s (workflows/steps.py IO_TIMEOUT)
_DB_DOWN = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError)


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
        self.domain = mail_domain(settings.mail_from)
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
        recipients = [addr_spec(r.email) for r in [message.to, *message.cc]]
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
            errors, _ = await smtp.send_message(mime, sender=sender_parts(self.settings)[1],
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
