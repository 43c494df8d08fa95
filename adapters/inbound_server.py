"""The inbound SMTP server (aiosmtpd) in front of `apply_reply`, and `engage inbox`.

Relays deliver replies to `checkin+TOKEN@ENGAGE_INBOUND_DOMAIN` here; each message is answered with
apply_reply's verdict as an SMTP reply line (adapters/inbound.py says what each code means).
"""

from __future__ import annotations

import asyncio
import errno
import signal
import weakref
from typing import Any

import asyncpg
import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session
from temporalio.client import Client

from adapters.inbound import MAX_MESSAGE_BYTES, ReplyOutcome, apply_reply, reply_token_of
from schemas.settings import Settings
from schemas.telemetry import REPLIES_REJECTED

log = structlog.get_logger(__name__)


# ---------------------------------------------------------------------------------------------------------
# The SMTP server
# ---------------------------------------------------------------------------------------------------------


class ReplyHandler:
    """aiosmtpd handler: accepts mail only for reply addresses, answers each message with apply_reply's verdict."""

    def __init__(self, settings: Settings, client: Client, pool: asyncpg.Pool) -> None:
        self.settings = settings
        self.client = client
        self.pool = pool

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,  # noqa: N802
                          address: str, rcpt_options: list[str]) -> str:
        if reply_token_of(address, self.settings) is None:
            return "550 5.1.1 no such mailbox: replies go to the Reply-To address of the mail"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        try:
            result = await apply_reply(raw, envelope.mail_from, list(envelope.rcpt_tos), self.settings,
                                       self.client, self.pool)
        except Exception:  # noqa: BLE001 - a bug must not lose the reply: the relay keeps it and retries
            log.exception("reply failed", peer=str(session.peer))
            return "451 4.3.0 temporary failure, try again later"
        if result.outcome == "rejected":
            self._count_rejection(result)
        return result.smtp_response()

    def _count_rejection(self, result: ReplyOutcome) -> None:
        runtime = self.client.service_client.config.runtime
        if runtime is None:
            return
        name, description = REPLIES_REJECTED
        reason = result.reason or "unknown"
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

    @property
    def address(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    async def start(self) -> None:
        from devstack.process import PortInUse

        if self._pool is None:
            from store.db import create_pool

            self._pool = await create_pool(self.settings)
        handler = ReplyHandler(self.settings, self.client, self._pool)
        loop = asyncio.get_running_loop()

        def protocol() -> SMTP:
            smtp = SMTP(handler, hostname=self.settings.inbound_domain, data_size_limit=MAX_MESSAGE_BYTES,
                        enable_SMTPUTF8=True, timeout=120, loop=loop)
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


async def serve(settings: Settings) -> None:
    """Run the inbound server until SIGINT or SIGTERM."""
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
        async with InboundServer(settings, client, pool):
            await stop.wait()
            log.info("inbound mail server stopping")
    finally:
        await pool.close()


def main() -> None:
    from adapters.logging import configure_logging
    from schemas.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_format)
    asyncio.run(serve(settings))
