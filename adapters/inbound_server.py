"""The inbound SMTP server (aiosmtpd) in front of `apply_reply`, and `engage inbox`.

Relays deliver replies to `checkin+TOKEN@ENGAGE_INBOUND_DOMAIN` here; each message is answered with
apply_reply's verdict as an SMTP reply line (adapters/inbound.py says what each code means).

Anyone can connect, so nothing costly happens before it is earned: the token's MAC and expiry are checked at
RCPT (a forged or expired recipient is refused before DATA), each client address is limited in connections,
messages a minute and refused recipients (adapters/rate_limits.py), a message has at most a few recipients,
and a message is capped and parsed in a worker process under a time limit (adapters/mime_limits.py) before
apply_reply sees it. Mail that cannot be read, or is not authenticated by the trusted relay
(adapters/mail_auth.py), is refused for good (550), never deferred.
"""

from __future__ import annotations

import asyncio
import errno
import signal
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session
from temporalio.client import Client

from adapters.inbound import MAX_MESSAGE_BYTES, UPDATE_TIMEOUT, apply_reply, reply_token_of
from adapters.mime_limits import ParserBusy, UnparseableMessage, parse_limited, shutdown_parsers, warm_up
from adapters.rate_limits import ClientLimits, Limits
from adapters.tokens import InvalidReplyToken, check_token
from schemas.settings import Settings
from schemas.telemetry import REPLIES_REJECTED

log = structlog.get_logger(__name__)

# The token reasons of adapters/tokens.py, as apply_reply names them (the REPLIES_REJECTED `reason` label).
_TOKEN_REASONS = {"malformed": "malformed_token", "bad_signature": "bad_signature", "expired": "expired"}


# ---------------------------------------------------------------------------------------------------------
# The SMTP server
# ---------------------------------------------------------------------------------------------------------


def _peer_ip(session: Session | None) -> str:
    peer = session.peer if session is not None else None
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)


def _close_after_reply(server: SMTP) -> None:
    """Close the connection once the reply being returned is written (421: the server gives up on the client)."""
    transport = server.transport
    if transport is not None:
        server.loop.call_soon(transport.close)


class LimitedSMTP(SMTP):
    """aiosmtpd's SMTP session, with the connection limit per client address applied at connect."""

    def __init__(self, handler: ReplyHandler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.limits = handler.limits
        self._counted: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        ip = _peer_ip(self.session)
        refusal = self.limits.connect(ip)
        if refusal is None:
            self._counted = ip
            return
        # Refused before the greeting: the session task has not run yet, so it never greets.
        assert self._handler_coroutine is not None
        self._handler_coroutine.cancel()
        log.info("inbound connection refused", peer=ip, reply=refusal)
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(refusal.encode("ascii") + b"\r\n")
        transport.close()

    def connection_lost(self, error: Exception | None) -> None:
        if self._counted is not None:
            self.limits.disconnect(self._counted)
            self._counted = None
        super().connection_lost(error)


class ReplyHandler:
    """aiosmtpd handler: accepts mail only for signed reply addresses, answers each message with apply_reply's
    verdict."""

    def __init__(self, settings: Settings, client: Client, pool: asyncpg.Pool,
                 limits: ClientLimits | None = None) -> None:
        self.settings = settings
        self.client = client
        self.pool = pool
        self.limits = limits or ClientLimits(Limits.from_settings(settings))

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,  # noqa: N802
                          address: str, mail_options: list[str]) -> str:
        refusal = self.limits.message(_peer_ip(session))
        if refusal is not None:
            if refusal.startswith("421"):
                _close_after_reply(server)
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,  # noqa: N802
                          address: str, rcpt_options: list[str]) -> str:
        ip = _peer_ip(session)
        refusal = self.limits.recipient(ip)
        if refusal is not None:
            _close_after_reply(server)
            return refusal
        if len(envelope.rcpt_tos) >= self.settings.inbound_max_recipients:
            return f"452 4.5.3 too many recipients (at most {self.settings.inbound_max_recipients} a message)"
        token = reply_token_of(address, self.settings)
        if token is None:
            return self._refuse(ip, "no_reply_address",
                                "550 5.1.1 no such mailbox: replies go to the Reply-To address of the mail")
        try:
            check_token(token, "reply", self.settings.reply_secret, datetime.now(UTC))
        except InvalidReplyToken as exc:
            reason = _TOKEN_REASONS.get(exc.reason, "malformed_token")
            what = {"malformed_token": "not a reply address engage signed",
                    "bad_signature": "forged or altered reply address",
                    "expired": "this reply address has expired; answer the latest check-in mail"}[reason]
            return self._refuse(ip, reason, f"550 5.7.1 {what} ({reason})")
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    def _refuse(self, ip: str, reason: str, reply: str) -> str:
        self.limits.refused(ip)
        self._count_rejection(reason)
        log.info("recipient refused", peer=ip, reason=reason)
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        # aiosmtpd's idle timer runs through DATA; apply_reply may wait for its workflow update this long.
        server._reset_timeout(UPDATE_TIMEOUT.total_seconds() + 30)
        # Parsed here, capped and off the event loop, so a message that breaks a cap is refused naming it, and
        # apply_reply gets the parsed message (it would parse with the same parse_limited otherwise).
        try:
            message = await parse_limited(raw, timeout=self.settings.inbound_parse_timeout_s)
        except UnparseableMessage as exc:
            self._count_rejection("unparseable")
            log.info("message refused", peer=_peer_ip(session), reason=exc.reason)
            return exc.smtp_response()
        except ParserBusy:
            return "451 4.3.2 too busy to read the message, try again later"
        try:
            result = await apply_reply(raw, envelope.mail_from, list(envelope.rcpt_tos), self.settings,
                                       self.client, self.pool, message=message)
        except Exception:  # noqa: BLE001 - a bug must not lose the reply: the relay keeps it and retries
            log.exception("reply failed", peer=str(session.peer))
            return "451 4.3.0 temporary failure, try again later"
        if result.outcome == "rejected":
            self._count_rejection(result.reason or "unknown")
        return result.smtp_response()

    def _count_rejection(self, reason: str) -> None:
        runtime = self.client.service_client.config.runtime
        if runtime is None:
            return
        name, description = REPLIES_REJECTED
        runtime.metric_meter.create_counter(name, description).add(1, {"reason": reason})


class InboundServer:
    """The inbound SMTP server, in the caller's asyncio loop (the loop the Temporal client lives on).

    `port=0` binds a free port (see `.port` after start). Without a pool, one is created from settings and
    closed on stop."""

    def __init__(self, settings: Settings, client: Client, pool: asyncpg.Pool | None = None, *,
                 host: str | None = None, port: int | None = None) -> None:
        self.settings = settings
        self.client = client
        self.host = host if host is not None else settings.inbound_host
        self.port = port if port is not None else settings.inbound_port
        self._pool = pool
        self._own_pool = pool is None
        self._server: asyncio.AbstractServer | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self.limits: ClientLimits | None = None

    @property
    def address(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    async def start(self) -> None:
        from devstack.process import PortInUse

        if self._pool is None:
            from store.db import create_pool

            self._pool = await create_pool(self.settings)
        handler = ReplyHandler(self.settings, self.client, self._pool)
        self.limits = handler.limits
        loop = asyncio.get_running_loop()
        await warm_up()

        def protocol() -> SMTP:
            smtp = LimitedSMTP(handler, hostname=self.settings.inbound_domain, data_size_limit=MAX_MESSAGE_BYTES,
                               enable_SMTPUTF8=True, timeout=self.settings.inbound_command_timeout_s, loop=loop)
            self._sessions.add(smtp)
            return smtp

        try:
            self._server = await loop.create_server(protocol, host=self.host, port=self.port)
        except OSError as exc:
            if self._own_pool:
                await self._pool.close()
                self._pool = None
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(self.port, "Inbound mail", "ENGAGE_INBOUND_PORT") from exc
            raise
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("inbound mail server listening", address=self.address, domain=self.settings.inbound_domain)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for smtp in list(self._sessions):
                if smtp.transport is not None:
                    smtp.transport.close()
            await self._server.wait_closed()
            self._server = None
            shutdown_parsers()
        if self._own_pool and self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def __aenter__(self) -> InboundServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()


# ---------------------------------------------------------------------------------------------------------
# `engage inbox`
# ---------------------------------------------------------------------------------------------------------


@asynccontextmanager
async def inbox_services(settings: Settings) -> AsyncIterator[tuple[Client, asyncpg.Pool, asyncio.Event]]:
    """What `engage inbox` needs, over SMTP (serve below) or IMAP (adapters/imap_inbox.py): the Temporal client, the
    pool with the migrations applied (closed on the way out), and an event set by SIGINT or SIGTERM."""
    from adapters.temporal import connect, runtime_for
    from store.db import create_pool
    from store.migrate import migrate

    # Its own metrics port (ENGAGE_INBOUND_METRICS_PORT): it runs beside the worker, which has ENGAGE_METRICS_PORT.
    client = await connect(settings, runtime_for(settings.model_copy(
        update={"metrics_port": settings.inbound_metrics_port})))
    pool = await create_pool(settings)
    try:
        await migrate(pool)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        yield client, pool, stop
    finally:
        await pool.close()


async def serve(settings: Settings) -> None:
    """Run the inbound server until SIGINT or SIGTERM."""
    async with inbox_services(settings) as (client, pool, stop), InboundServer(settings, client, pool):
        await stop.wait()
        log.info("inbound mail server stopping")


def main() -> None:
    from adapters.logging import configure_logging
    from schemas.settings import get_settings

    settings = get_settings()
    settings.refuse_production_secret("engage inbox")
    configure_logging(settings.log_format)
    asyncio.run(serve(settings))
