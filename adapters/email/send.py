"""Sending, once: an OutboundMessage over SMTP, recorded in the outbox ledger (store/outbox.py) so a retried send
sends nothing twice. The message is rendered by adapters/email/render.py and built by adapters/email/mime.py; the
conversation (adapters/email/smtp.py) runs in the mail sender process (adapters/email/sender.py)."""

from __future__ import annotations

import asyncio
import pickle
import time
from collections import deque
from collections.abc import Callable

import asyncpg
import structlog

from adapters.email.headers import addr_spec, message_id_for, sender_parts
from adapters.email.mime import build_email
from adapters.email.render import render
from adapters.email.sender import SenderProcess, raise_for
from adapters.email.smtp import PermanentDeliveryError, SendTiming, smtp_target
from adapters.ics import mail_domain
from adapters.tokens import answer_scope, answer_url
from schemas.messages import Conversation, OutboundMessage, SendResult
from schemas.settings import Settings
from store import outbox, scopes
from store.db import DATABASE_AWAY

log = structlog.get_logger(__name__)

MARK_PATIENCE_S = 25.0  # within send_message's 30 s (workflows/steps.py IO_TIMEOUT)


class Mailer:
    """Sends each OutboundMessage at most once per Message-ID, recorded in the `outbox` table.

    The outbox row is written before the SMTP conversation and marked sent as soon as the relay answers 250
    to DATA, before QUIT and the socket's close, by the mail sender process. A crash between
    that 250 and the mark (milliseconds, docs/email.md "The remaining window") sends the message again on
    retry, with the same Message-ID so mail clients fold the two; every other retry finds the row sent, or
    the activity's heartbeat saying the relay has it (Postgres was away), and sends nothing."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool) -> None:
        self.settings = settings
        self.pool = pool
        self.target = smtp_target(settings.smtp_url.get_secret_value())
        self.domain = mail_domain(settings.mail_from)
        # The latest sends' timings, as the sender process measured them (bench/email_window.py reads them).
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
            outcome = await SenderProcess.for_running_loop().converse(Conversation(
                id=0, smtp_url=self.settings.smtp_url.get_secret_value(),
                database_url=self.settings.database_dsn(), envelope_from=sender_parts(self.settings)[1],
                recipients=recipients, message_id=message_id, mime=pickle.dumps(mime)))
            if outcome.outcome == "insecure":
                bound.error(outcome.error)
            raise_for(outcome)
            refused = outcome.refused
            self.recent_timings.append(SendTiming(message_id, outcome.marking_at_ns, outcome.window_s,
                                                  outcome.quit_s))
            if not outcome.marked:
                if remember_accepted is not None:
                    remember_accepted(message_id)
                await self._mark_sent(self.pool, message_id)
        if refused:
            bound.warning("some recipients refused", refused=refused)
        return SendResult(message_id=message_id, delivered_now=True, subject=rendered[0])

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
            except DATABASE_AWAY as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("the relay accepted the message; Postgres is away, marking it sent again shortly",
                            message_id=message_id, error=type(exc).__name__)
                await asyncio.sleep(delay)
                delay, db = min(delay * 2, 2.0), self.pool
