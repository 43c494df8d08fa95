"""Abuse against the real inbound SMTP server on loopback: it must neither stall nor be fooled.

Throughout each attack another client (a probe on its own source address, 127.0.0.2) opens a fresh connection
every 200 ms and must get the 220 greeting within a second. Each attacker has its own loopback source address,
so the limits one attack trips do not bleed into the next. Replies reach apply_reply only through a spy that
records every outcome: no attack may get anything applied.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.utils import make_msgid
from typing import Any

import aiosmtplib
import asyncpg
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

import adapters.inbound_server as inbound_server
from adapters.inbound import ReplyOutcome
from adapters.inbound_server import InboundServer
from adapters.mime_limits import MAX_MIME_DEPTH, UnparseableMessage, parse_limited, parse_now
from adapters.rate_limits import ClientLimits, Limits
from adapters.tokens import sign_token
from devstack.process import free_port
from schemas.settings import Settings

PROBE_IP = "127.0.0.2"
BANNER_DEADLINE_S = 1.0


def genuine_address(settings: Settings) -> str:
    """A reply address with a valid MAC (it passes RCPT); its scope is unknown, so nothing can be applied."""
    token = sign_token(os.urandom(8), datetime.now(UTC) + timedelta(days=7), "reply", settings.reply_secret)
    return f"checkin+{token}@{settings.inbound_domain}"


def forged_address(settings: Settings) -> str:
    token = sign_token(os.urandom(8), datetime.now(UTC) + timedelta(days=7), "reply", "guessed-secret")
    return f"checkin+{token}@{settings.inbound_domain}"


def mail(to: str, *, headers: bytes = b"", body: bytes = b"42\r\n") -> bytes:
    return (b"From: Ben Wu <ben@acme.example>\r\nTo: " + to.encode() + b"\r\nSubject: Re: Check-in\r\n"
            b"Message-ID: " + make_msgid(domain="acme.example").encode() + b"\r\n" + headers + b"\r\n" + body)


def deep_multipart(depth: int) -> tuple[bytes, bytes]:
    """The headers and body of `depth` multiparts, each the only part of the one around it."""
    headers = b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b0"\r\n'
    body = b"--b0\r\n" + b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
                                   for i in range(1, depth))
    body += b"Content-Type: text/plain\r\n\r\n42" + b"".join(b"\r\n--b%d--" % i for i in reversed(range(depth)))
    return headers, body + b"\r\n"


class Probe:
    """Another client: a fresh connection every 200 ms, timed from connect to the 220 greeting."""

    def __init__(self, server: InboundServer) -> None:
        self.server = server
        self.waits: list[float] = []
        self.failures: list[str] = []

    async def once(self) -> None:
        started = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                self.server.host, self.server.port, local_addr=(PROBE_IP, 0)), BANNER_DEADLINE_S)
            greeting = await asyncio.wait_for(reader.readline(), BANNER_DEADLINE_S)
        except (TimeoutError, OSError) as exc:
            self.failures.append(f"{type(exc).__name__} after {time.monotonic() - started:.2f} s")
            return
        self.waits.append(time.monotonic() - started)
        if not greeting.startswith(b"220 "):
            self.failures.append(greeting.decode(errors="replace"))
        writer.write(b"QUIT\r\n")
        writer.close()

    async def run(self) -> None:
        while True:
            asyncio.create_task(self.once())  # noqa: RUF006 - awaited through the waits it records
            await asyncio.sleep(0.2)


@asynccontextmanager
async def probed(server: InboundServer) -> AsyncIterator[Probe]:
    probe = Probe(server)
    task = asyncio.create_task(probe.run())
    try:
        yield probe
        while len(probe.waits) + len(probe.failures) < 3:  # a fast attack still gets a few probes
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.sleep(BANNER_DEADLINE_S + 0.1)  # the last probes finish
    assert not probe.failures, probe.failures
    assert max(probe.waits) < BANNER_DEADLINE_S, f"a greeting took {max(probe.waits):.2f} s"


@pytest.fixture
def applied(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[ReplyOutcome]]:
    """Every outcome of apply_reply behind the server."""
    outcomes: list[ReplyOutcome] = []
    real: Callable[..., Awaitable[ReplyOutcome]] = inbound_server.apply_reply

    async def spy(*args: Any, **kwargs: Any) -> ReplyOutcome:
        outcome = await real(*args, **kwargs)
        outcomes.append(outcome)
        return outcome

    monkeypatch.setattr(inbound_server, "apply_reply", spy)
    yield outcomes
    assert not [o for o in outcomes if o.outcome == "applied"], outcomes


@pytest_asyncio.fixture
async def server(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[InboundServer]:
    # Temporal is never reached: nothing an attacker sends gets past the checks before the workflow update.
    nowhere = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True, data_converter=pydantic_data_converter)
    async with InboundServer(settings, nowhere, pool, host="127.0.0.1", port=0) as inbound:
        yield inbound


async def smtp(server: InboundServer, source_ip: str) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(hostname=server.host, port=server.port, source_address=(source_ip, 0), timeout=10)
    await client.connect()
    await client.ehlo()
    return client


async def send_data(server: InboundServer, source_ip: str, raw: bytes, rcpt: str) -> tuple[int, str]:
    client = await smtp(server, source_ip)
    try:
        await client.mail("ben@acme.example")
        await client.rcpt(rcpt)
        try:
            response = await client.data(raw)
        except aiosmtplib.SMTPDataError as exc:
            return exc.code, exc.message
        except aiosmtplib.SMTPResponseException as exc:
            return exc.code, exc.message
        return response.code, response.message
    finally:
        client.close()


async def test_a_one_mib_header_is_refused_with_550_and_stalls_no_one(
    server: InboundServer, settings: Settings, applied: list[ReplyOutcome],
) -> None:
    rcpt = genuine_address(settings)
    folded = b"Message-ID: <" + b"x" * 900 + b"".join(b"\r\n " + b"x" * 900 for _ in range(1165)) + b"@a>\r\n"
    assert len(folded) > 1024 * 1024
    async with probed(server):
        code, text = await send_data(server, "127.0.0.3", mail(rcpt, headers=folded), rcpt)
        assert code == 550 and "5.6.0" in text and "header_block_too_large" in text, text
        # Within the block's cap, but one header over its own.
        long_id = b"Message-ID: <" + b"x" * 900 + b"".join(b"\r\n " + b"x" * 900 for _ in range(10)) + b"@a>\r\n"
        code, text = await send_data(server, "127.0.0.3", mail(rcpt, headers=long_id), rcpt)
        assert code == 550 and "header_too_long" in text, text
        # Short, but the parser cannot read it (nested comments: RecursionError in the standard library).
        parens = b"(" * 2000 + b")" * 2000
        nested = b"Reply-To: " + b"\r\n ".join(parens[i:i + 900] for i in range(0, len(parens), 900)) + b" b@c.d\r\n"
        code, text = await send_data(server, "127.0.0.3", mail(rcpt, headers=nested), rcpt)
        assert code == 550 and "5.6.0" in text and "unparseable" in text, text
        # One unfolded 1 MiB line: aiosmtpd refuses it (RFC 5321 4.5.3.1.6), permanently too.
        code, text = await send_data(server, "127.0.0.3", mail(rcpt, headers=b"X-Long: " + b"y" * 2**20 + b"\r\n"),
                                     rcpt)
        assert code == 500, text
    assert applied == []


async def test_two_thousand_recipients_get_twenty_and_a_forger_is_cut_off(
    server: InboundServer, settings: Settings, applied: list[ReplyOutcome],
) -> None:
    async with probed(server):
        client = await smtp(server, "127.0.0.4")
        await client.mail("ben@acme.example")
        codes: list[int] = []
        for _ in range(2000):
            try:
                codes.append((await client.rcpt(genuine_address(settings))).code)
            except aiosmtplib.SMTPRecipientRefused as exc:
                codes.append(exc.code)
        assert codes.count(250) == settings.inbound_max_recipients and codes.count(452) == 2000 - codes.count(250)
        client.close()

        # 2,000 forged recipients: refused (550), and after 20 refusals the address is cut off (421).
        client = await smtp(server, "127.0.0.5")
        await client.mail("ben@acme.example")
        codes = []
        for _ in range(2000):
            try:
                codes.append((await client.rcpt(forged_address(settings))).code)
            except aiosmtplib.SMTPRecipientRefused as exc:
                codes.append(exc.code)
            except aiosmtplib.SMTPServerDisconnected:
                break
        assert codes.count(550) == settings.inbound_max_refused_recipients and codes[-1] == 421, codes[-3:]
        with pytest.raises(aiosmtplib.SMTPConnectError):
            await smtp(server, "127.0.0.5")  # still blocked: refused at the greeting
    assert applied == []


async def test_five_hundred_forged_messages_trip_the_limits_and_nothing_is_applied(
    server: InboundServer, settings: Settings, applied: list[ReplyOutcome],
) -> None:
    results: list[str] = []

    async def forged(source_ip: str, rcpt: str) -> None:
        try:
            client = await smtp(server, source_ip)
        except aiosmtplib.SMTPConnectResponseError as exc:  # the greeting was a refusal
            results.append(f"connect {exc.code}")
            return
        try:
            await client.mail("ben@acme.example")
            await client.rcpt(rcpt)
            await client.data(mail(rcpt))
            results.append("data 250")
        except aiosmtplib.SMTPResponseException as exc:
            results.append(f"{type(exc).__name__} {exc.code}")
        except aiosmtplib.SMTPServerDisconnected:
            results.append("disconnected")
        finally:
            client.close()

    async with probed(server):
        # Forged signatures, ten at a time from one address: refused at RCPT, then the address is blocked.
        for _ in range(50):
            await asyncio.gather(*(forged("127.0.0.6", forged_address(settings)) for _ in range(10)))
        refused_at_rcpt = results.count("SMTPRecipientRefused 550")
        assert refused_at_rcpt <= settings.inbound_max_refused_recipients + 10, results[:40]
        assert results.count("connect 421") >= 450, sorted(set(results))

        # Correctly signed addresses (scopes we never issued) from another address: the message rate limit.
        results.clear()
        for _ in range(100):  # five at a time: under the connection limit, which is not what this is about
            await asyncio.gather(*(forged("127.0.0.7", genuine_address(settings)) for _ in range(5)))
        reached = len(applied)
        assert reached <= settings.inbound_max_messages_per_minute, reached
        assert results.count("SMTPSenderRefused 450") >= 500 - settings.inbound_max_messages_per_minute
        assert {o.reason for o in applied} <= {"unknown_scope"}, {o.reason for o in applied}


async def test_a_thousand_deep_multipart_is_refused_with_550_before_the_parser_recurses(
    server: InboundServer, settings: Settings, applied: list[ReplyOutcome],
) -> None:
    rcpt = genuine_address(settings)
    headers, body = deep_multipart(1000)
    started = time.monotonic()
    with pytest.raises(UnparseableMessage) as refused:
        await parse_limited(mail(rcpt, headers=headers, body=body))
    assert refused.value.reason == "mime_too_deep" and time.monotonic() - started < 0.5
    async with probed(server):
        code, text = await send_data(server, "127.0.0.8", mail(rcpt, headers=headers, body=body), rcpt)
        assert code == 550 and "5.6.0" in text and "mime_too_deep" in text, text
        # At the cap it is read (and refused by apply_reply: the scope was never issued).
        headers, body = deep_multipart(MAX_MIME_DEPTH)
        code, text = await send_data(server, "127.0.0.8", mail(rcpt, headers=headers, body=body), rcpt)
        assert code == 550 and "unknown_scope" in text, text
    assert [o.reason for o in applied] == ["unknown_scope"]


async def test_a_parse_past_its_time_limit_is_killed_and_refused() -> None:
    # Within every cap, yet seconds of CPU in the standard library's address parser (quadratic).
    heavy = b"From: a@b.c\r\n" + (b"To: " + b"a@b.c,\r\n " * 800 + b"a@b.c\r\n") * 7 + b"\r\nhi\r\n"
    started = time.monotonic()
    with pytest.raises(UnparseableMessage) as refused:
        await parse_limited(heavy, timeout=0.2)
    assert refused.value.reason == "parse_timeout" and time.monotonic() - started < 1.0
    message = await parse_limited(b"From: Ben <ben@acme.example>\r\nSubject: x\r\n\r\n42\r\n")
    assert message["From"].addresses[0].addr_spec == "ben@acme.example"


def test_caps_name_what_they_refuse() -> None:
    ok = parse_now(b"From: ben@acme.example\r\n" + b"X-A: 1\r\n" * 150 + b"\r\n42\r\n")
    assert ok.get_body(preferencelist=("plain",)) is not None
    with pytest.raises(UnparseableMessage, match="too_many_headers"):
        parse_now(b"From: ben@acme.example\r\n" + b"X-A: 1\r\n" * 250 + b"\r\n42\r\n")
    parts = b"".join(b"--p\r\nContent-Type: text/plain\r\n\r\n%d\r\n" % i for i in range(150))
    with pytest.raises(UnparseableMessage, match="too_many_parts"):
        parse_now(b'Content-Type: multipart/mixed; boundary="p"\r\n\r\n' + parts + b"--p--\r\n")
    # Siblings are not depth: ten multiparts side by side are one level.
    siblings = b"".join(b'--o\r\nContent-Type: multipart/alternative; boundary="i%d"\r\n\r\n--i%d\r\n'
                        b"Content-Type: text/plain\r\n\r\nx\r\n--i%d--\r\n" % (i, i, i) for i in range(12))
    parse_now(b'Content-Type: multipart/mixed; boundary="o"\r\n\r\n' + siblings + b"--o--\r\n")


def test_limits_block_an_address_for_a_while_and_forget_it() -> None:
    now = [0.0]
    limits = ClientLimits(Limits(connections_per_ip=2, messages_per_minute=3, refused_recipients=3,
                                 refused_window_s=600, block_s=900), clock=lambda: now[0])
    assert limits.connect("192.0.2.1") is None and limits.connect("192.0.2.1") is None
    assert (limits.connect("192.0.2.1") or "").startswith("421 ")
    limits.disconnect("192.0.2.1")
    assert limits.connect("192.0.2.1") is None
    assert [limits.message("192.0.2.1") for _ in range(3)] == [None] * 3
    assert (limits.message("192.0.2.1") or "").startswith("450 ")
    now[0] += 61
    assert limits.message("192.0.2.1") is None
    for _ in range(3):
        limits.refused("192.0.2.9")
    assert (limits.recipient("192.0.2.9") or "").startswith("421 ")
    assert limits.recipient("192.0.2.1") is None
    now[0] += 901
    assert limits.recipient("192.0.2.9") is None
    exempt = ClientLimits(Limits(1, 1, 1, 600, 900, Limits.from_settings(Settings(
        _env_file=None, inbound_exempt_networks="10.0.0.0/8, ::1"))  # type: ignore[call-arg]
        .exempt))
    assert all(exempt.connect("10.1.2.3") is None for _ in range(5))
    exempt.refused("10.1.2.3")
    assert exempt.recipient("10.1.2.3") is None
