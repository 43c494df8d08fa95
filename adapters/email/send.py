"""Sending, once: an OutboundMessage over SMTP, recorded in the outbox ledger (store/outbox.py) so a retried send
sends nothing twice. The message is rendered by adapters/email/render.py and built by adapters/email/mime.py."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from email.message import Message
from typing import NamedTuple, TypeVar
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
from store.db import DatabaseUnavailable, create_pool

log = structlog.get_logger(__name__)

SMTP_TIMEOUT = 30.0
QUIT_TIMEOUT = 5.0  # after the relay accepted the message: nothing left to wait for
MARK_PATIENCE_S = 25.0  # within send_message's 30 s (workflows/steps.py IO_TIMEOUT)
T = TypeVar("T")
_DB_DOWN = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError,
            DatabaseUnavailable)


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


class SendTiming(NamedTuple):
    """One conversation's timings (bench/email_window.py reads them)."""

    message_id: str
    marking_at_ns: int  # time.time_ns() as the mark's UPDATE goes out: what a SIGKILL must come before
    window_s: float  # the relay's 250 heard -> the mark committed
    quit_s: float  # QUIT and the close, after the mark


class MailLoop:
    """An event loop in a thread of its own, for SMTP conversations and their marks, nothing else.

    Why: between the relay's 250 and the `UPDATE` that marks the row sent, a SIGKILL sends the message again on
    retry (docs/email.md, "The remaining window"). On the worker's loop the coroutine that heard the 250 waits
    its turn behind workflow activations' completions, rendering and every other activity; that wait was most
    of the window (12.6 ms p50 with eight sends at a time). On this loop the only other work is other
    conversations' I/O, so the mark follows the 250 as soon as the thread gets the GIL. Its connections
    (`pool_for`) belong to this loop, one small pool per database."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pools: dict[str, asyncpg.Pool] = {}
        self._opening: asyncio.Lock | None = None  # made on the mail loop, used only there

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._guard:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="engage-mail", daemon=True).start()
                self._loop = loop
            return self._loop

    async def run(self, work: Coroutine[object, object, T]) -> T:
        """Runs `work` on the mail loop and waits for it here; cancelling the wait cancels the work."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self._running_loop()))

    async def pool_for(self, settings: Settings) -> asyncpg.Pool:
        """This loop's pool for `settings`' database (call on the mail loop). Not kept when it cannot connect."""
        dsn = settings.database_dsn()
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:  # two first sends at once open one pool
            if dsn not in self._pools:
                self._pools[dsn] = await create_pool(settings, min_size=0, timeout=2.0)
            return self._pools[dsn]


# One per process: the worker's Mailer and any other in the process share the thread.
MAIL_LOOP = MailLoop()


class Mailer:
    """Sends each OutboundMessage at most once per Message-ID, recorded in the `outbox` table.

    The outbox row is written before the SMTP conversation and marked sent as soon as the relay answers 250
    to DATA, before QUIT and the socket's close, by the conversation's own loop (`MailLoop`). A crash between
    that 250 and the mark (milliseconds, docs/email.md "The remaining window") sends the message again on
    retry, with the same Message-ID so mail clients fold the two; every other retry finds the row sent, or
    the activity's heartbeat saying the relay has it (Postgres was away), and sends nothing."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool) -> None:
        self.settings = settings
        self.pool = pool
        self.target = smtp_target(settings.smtp_url.get_secret_value())
        self.domain = mail_domain(settings.mail_from)
        # The latest sends' timings (appended on the mail loop's thread: a deque's append is thread-safe).
        self.recent_timings: deque[SendTiming] = deque(maxlen=4096)

    def message_id(self, message: OutboundMessage) -> str:
        return message_id_for(message.key, self.domain)

    async def send(self, message: OutboundMessage, *, relay_has_it: bool = False,
                   remember_accepted: Callable[[str], None] | None = None) -> SendResult:
        """Sends `message` unless its outbox row says sent.

        `relay_has_it`: an earlier attempt heard the relay accept this message but could not mark the row (the
        caller kept that fact elsewhere): mark it now and send nothing. `remember_accepted(message_id)` is
        called in that case, when the relay has said 250 and Postgres cannot be told at once; the send
        activity keeps it in its heartbeat, which Temporal hands to the next attempt."""
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
            if relay_has_it:
                bound.info("the relay accepted this message in an earlier attempt; marking it sent, not sending")
                await self._mark_sent(conn, message_id)
                return SendResult(message_id=message_id, delivered_now=True, subject=rendered[0])
            scoped = answer_scope(message)
            if scoped is not None:  # before the mail is out: an answer to it must find its scope
                await scopes.save(conn, *scoped)
            try:
                refused, marked = await MAIL_LOOP.run(self._converse(mime, recipients, message_id))
            except InsecureRelayError as exc:
                bound.error(str(exc))
                raise
            if not marked:
                if remember_accepted is not None:
                    remember_accepted(message_id)
                await self._mark_sent(self.pool, message_id)
        if refused:
            bound.warning("some recipients refused", refused=refused)
        return SendResult(message_id=message_id, delivered_now=True, subject=rendered[0])

    async def _converse(self, mime: Message, recipients: list[str], message_id: str) -> tuple[dict[str, str], bool]:
        """On the mail loop: the SMTP conversation, and the mark at the relay's 250 on a connection of this loop
        taken before the conversation began. Returns the refused recipients and whether the mark is written;
        when Postgres is away at that moment, the caller marks it patiently (`_mark_sent`)."""
        marked = False
        pool = await MAIL_LOOP.pool_for(self.settings)
        mark_conn = await pool.acquire()

        async def mark() -> None:
            nonlocal marked
            try:
                await outbox.mark_sent(mark_conn, message_id)
                marked = True
            except _DB_DOWN as exc:
                log.warning("the relay accepted the message; Postgres is away, marking it sent again shortly",
                            message_id=message_id, error=type(exc).__name__)

        try:
            refused = await self._deliver(mime, recipients, accepted=mark)
        finally:
            try:
                await pool.release(mark_conn)
            except _DB_DOWN:  # the connection died with Postgres: whether marked or not is already known
                pass
        return refused, marked

    async def _mark_sent(self, db: asyncpg.Connection | asyncpg.Pool, message_id: str) -> None:
        """The relay has the message: record it, through a Postgres restart if need be. Giving up here sends it
        again on retry (unless the caller remembered the 250, `remember_accepted`), so the mark keeps trying on
        fresh connections for most of the activity's 30 s."""
        deadline = time.monotonic() + MARK_PATIENCE_S
        delay = 0.2
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
            marking_at_ns = time.time_ns()
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
        self.recent_timings.append(SendTiming(str(mime["Message-ID"]), marking_at_ns, marked - relay_said_250,
                                              time.perf_counter() - marked))
        return {address: f"{r.code} {r.message}" for address, r in errors.items()}
