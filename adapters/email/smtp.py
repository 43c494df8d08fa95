"""One SMTP conversation with the relay (aiosmtplib), and what can go wrong in it.

`converse` runs in the mail sender process (adapters/email/sender.py); adapters/email/send.py decides what to send
and records it once."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from email.message import Message
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

import aiosmtplib
import structlog
from pydantic import BaseModel

log = structlog.get_logger(__name__)

SMTP_TIMEOUT = 30.0
QUIT_TIMEOUT = 5.0  # after the relay accepted the message: nothing left to wait for


class PermanentDeliveryError(RuntimeError):
    """The relay refused the message for good (a 5xx on a recipient or on the content): retrying cannot help."""


class InsecureRelayError(aiosmtplib.SMTPException):
    """ENGAGE_SMTP_URL carries credentials but the connection to the relay is not encrypted: the password is not
    sent. Retryable on purpose, like a refused login: the operator fixes the URL or the relay and the waiting
    messages go out once."""


class DeliveryFailed(aiosmtplib.SMTPException):
    """The conversation failed in a way a retry may mend (relay down, a 4xx, a timeout, the sender process gone);
    the message names the cause. The send activity retries."""


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


class SendTiming(NamedTuple):
    """One conversation's timings (bench/email_window.py reads them)."""

    message_id: str
    marking_at_ns: int  # time.time_ns() as the mark's UPDATE goes out: what a SIGKILL must come before
    window_s: float  # the relay's 250 heard -> the mark committed
    quit_s: float  # QUIT and the close, after the mark


def _is_permanent(code: int) -> bool:
    return 500 <= code < 600


async def converse(target: SmtpTarget, mime: Message, envelope_from: str, recipients: list[str],
                   accepted: Callable[[], Awaitable[object]] | None = None) -> tuple[dict[str, str], SendTiming]:
    """One SMTP conversation; returns the recipients the relay refused while accepting the others, and timings.

    `accepted` (the outbox's mark) runs the moment the relay answers 250 to DATA, before QUIT: a crash after it
    sends nothing again. A failed QUIT after that changes nothing: the relay has the message, and raising would
    only make the activity retry."""
    t = target
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
        errors, _ = await smtp.send_message(mime, sender=envelope_from, recipients=recipients)
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
    timing = SendTiming(str(mime["Message-ID"]), marking_at_ns, marked - relay_said_250, time.perf_counter() - marked)
    return {address: f"{r.code} {r.message}" for address, r in errors.items()}, timing
