"""Replies in: a real inbound SMTP server in front of a running engagement on the time-skipping server.

The check-in and pre-read mails are the ones the workflow sent to the SMTP sink; the replies go back through
aiosmtplib to `InboundServer`, exactly as a relay would deliver them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib
import asyncpg
import pytest_asyncio
from structlog.testing import capture_logs
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from adapters.email.headers import message_id_for
from adapters.inbound import apply_reply
from adapters.inbound_server import InboundServer
from adapters.reply_reading import html_to_text
from adapters.tokens import sign_reply_token
from devstack.mailsink import MailSink
from devstack.process import free_port
from schemas.events import MessageSent, MetricReported
from schemas.messages import ReplyScope
from schemas.settings import Settings
from schemas.updates import AddPreread, ScheduleSession
from schemas.views import ActionView, EngagementStatus
from store import inbound as inbound_store
from store.events import read_log
from tests.conftest import unique_id
from tests.lifecycle import action, into_follow_through, scheduled, scoping, snapshot, started, until
from tests.mailbox import ANA, BEN, MAIL_DOMAIN, mail_at_sink, reply, reply_address
from workflows.engagement import EngagementWorkflow as EW


@pytest_asyncio.fixture(loop_scope="session")
async def inbound_server(time_skipping_env: WorkflowEnvironment, settings: Settings,
                         pool: asyncpg.Pool) -> AsyncIterator[InboundServer]:
    async with InboundServer(settings, time_skipping_env.client, pool, host="127.0.0.1", port=0) as server:
        yield server


async def send(server: InboundServer, msg: EmailMessage | bytes, envelope_from: str, rcpt: str) -> tuple[int, str]:
    """(SMTP code, text) of the inbound server's answer to the message's DATA."""
    try:
        _, response = await aiosmtplib.send(msg, hostname=server.host, port=server.port, sender=envelope_from,
                                            recipients=[rcpt], timeout=30)
    except aiosmtplib.SMTPDataError as exc:
        return exc.code, exc.message
    except aiosmtplib.SMTPRecipientsRefused as exc:  # a forged or expired token is refused at RCPT, before DATA
        return exc.recipients[0].code, exc.recipients[0].message
    return 250, response


async def logged(pool: asyncpg.Pool, eid: str, kind: str, count: int, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        sent = [e for e in await read_log(pool, eid) if isinstance(e.event, MessageSent) and e.event.kind == kind]
        if len(sent) >= count:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{count} {kind} messages never logged"
        await asyncio.sleep(0.05)


def a1(status: EngagementStatus) -> ActionView:
    return next(a for a in status.actions if a.action_id == "A1")


async def test_a_reply_to_a_checkin_reports_the_value_and_nothing_forged_changes_anything(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool, mail_sink: MailSink,
    inbound_server: InboundServer,
) -> None:
    env, server = time_skipping_env, inbound_server
    eid = unique_id("inbound")
    async with started(env.client, settings, pool, scoping(eid, cadence="14d", horizon="90d")) as handle:
        plan = await into_follow_through(env, handle, date(2027, 2, 11), timedelta(hours=1),
            action("A1", *BEN, "Europe/Berlin", date(2027, 5, 31), 0, 200))
        await env.sleep(until(await env.get_current_time(), datetime(2027, 2, 25, 12, tzinfo=UTC)))

        checkin = await mail_at_sink(mail_sink, message_id_for(f"{eid}/A1/checkin/1", MAIL_DOMAIN))
        address = reply_address(checkin)
        assert address.startswith("checkin+") and address.endswith(f"@{settings.inbound_domain}")
        assert a1(await handle.query(EW.status)).status.value == "no_data"

        # The owner answers 42; the quoted original below it (baseline 0, target 200) is ignored.
        first = reply(checkin, BEN, "42 - the Nordics pipeline is filling up")
        code, text = await send(server, first, BEN[1], address)
        assert code == 250 and "applied" in text, text
        view = a1(await handle.query(EW.status))
        assert (view.last_value, view.values_received, view.status.value) == (42, 1, "on_track")
        reported = [e.event for e in await read_log(pool, eid) if isinstance(e.event, MetricReported)]
        assert [(r.value, r.source) for r in reported] == [(42, "email")]
        row = await inbound_store.status_of(pool, first["Message-ID"])
        assert row is not None and (row["status"], row["engagement_id"], row["command"]) == ("applied", eid, "value")

        before = await snapshot(handle, pool, eid)
        token = address.split("+", 1)[1].split("@", 1)[0]
        scope = ReplyScope(action_id="A1", number=1, expires_at=plan.starts_at + timedelta(days=200))

        def to(token_: str) -> str:
            return f"checkin+{token_}@{settings.inbound_domain}"

        forged = to(sign_reply_token(eid, scope, BEN[1], "not-the-real-secret"))
        middle = len(token) // 2
        tampered = to(token[:middle] + ("a" if token[middle] != "a" else "b") + token[middle + 1:])
        past = scope.model_copy(update={"expires_at": datetime.now(UTC) - timedelta(hours=1)})
        expired = to(sign_reply_token(eid, past, BEN[1], settings.reply_secret))
        mallory = ("Mallory", "mallory@evil.example")
        cases = [
            ("forged token", reply(checkin, BEN, "200", to=forged), BEN[1], forged, 550, ["bad_signature"]),
            ("tampered token", reply(checkin, BEN, "200", to=tampered), BEN[1], tampered, 550,
             ["bad_signature", "malformed_token"]),
            ("expired token", reply(checkin, BEN, "200", to=expired), BEN[1], expired, 550, ["expired"]),
            ("spoofed sender", reply(checkin, mallory, "200"), mallory[1], address, 550, ["spoofed_sender"]),
            ("spoofed envelope", reply(checkin, BEN, "200"), mallory[1], address, 550, ["spoofed_sender"]),
            ("spoofed From header", reply(checkin, mallory, "200"), BEN[1], address, 550, ["spoofed_sender"]),
            ("replayed reply", first, BEN[1], address, 250, ["duplicate"]),
            # Genuine but unusable: answered (250, and an answer mail says why), never bounced.
            ("`read` to a check-in", reply(checkin, BEN, "read"), BEN[1], address, 250, ["wrong_scope"]),
            ("nothing usable", reply(checkin, BEN, "will send numbers next week"), BEN[1], address, 250,
             ["unreadable"]),
        ]
        for name, msg, envelope_from, rcpt, want_code, reasons in cases:
            with capture_logs() as logs:
                code, text = await send(server, msg, envelope_from, rcpt)
            assert code == want_code, (name, code, text)
            assert any(r in text for r in reasons), (name, text)
            entries = [e for e in logs if e["event"] in ("reply rejected", "recipient refused")]
            assert len(entries) == 1 and entries[0]["reason"] in reasons, (name, logs)
            assert token not in repr(logs) and settings.reply_secret.get_secret_value() not in repr(logs), name
            if reasons[0] in ("spoofed_sender", "duplicate", "wrong_scope", "unreadable"):
                assert entries[0]["engagement_id"] == eid, name  # the token was genuine: say whose it was
            assert await snapshot(handle, pool, eid) == before, f"{name} changed the engagement"

        # The replay, checked directly: the same function the server calls says why.
        outcome = await apply_reply(first.as_bytes(), BEN[1], [address], settings, env.client, pool)
        assert (outcome.outcome, outcome.reason, outcome.engagement_id) == ("rejected", "duplicate", eid)
        row = await inbound_store.status_of(pool, first["Message-ID"])
        assert row is not None and (row["status"], row["attempts"]) == ("applied", 1)

        # Temporal unreachable: 451, nothing recorded as final, and the relay's retry applies it once.
        later = reply(checkin, BEN, "60")
        unreachable = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True,  # nothing listens there
                                           data_converter=pydantic_data_converter)
        outcome = await apply_reply(later.as_bytes(), BEN[1], [address], settings, unreachable, pool,
                                    timeout=timedelta(seconds=3))
        assert (outcome.outcome, outcome.reason) == ("deferred", "temporal_unavailable"), outcome
        assert outcome.smtp_response().startswith("451 ")
        assert await snapshot(handle, pool, eid) == before
        code, text = await send(server, later, BEN[1], address)
        assert code == 250 and "applied" in text, text
        view = a1(await handle.query(EW.status))
        assert (view.last_value, view.values_received) == (60, 2)
        row = await inbound_store.status_of(pool, later["Message-ID"])
        assert row is not None and (row["status"], row["attempts"]) == ("applied", 2)

        # An HTML-only reply: the text outside the quote counts, the quoted 99 does not.
        html = reply(checkin, BEN, "", html="<div dir=ltr>55<br></div><div class=gmail_quote>On Thu wrote:"
                                            "<blockquote>99</blockquote></div>")
        code, text = await send(server, html, BEN[1], address)
        assert code == 250, text
        assert a1(await handle.query(EW.status)).last_value == 55

        # `snooze 7` moves the next check-in by a week, at the same local time.
        next_before = a1(await handle.query(EW.status)).next_checkin_at
        assert next_before is not None
        code, text = await send(server, reply(checkin, BEN, "snooze 7"), BEN[1], address)
        assert code == 250 and "Snoozed 'Action A1' for 7 days" in text, text
        view = a1(await handle.query(EW.status))
        assert view.next_checkin_at == next_before + timedelta(days=7)
        assert view.snoozes == 1
        await handle.terminate("test done")


async def test_read_in_a_reply_to_a_preread_acknowledges_it(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool, mail_sink: MailSink,
    inbound_server: InboundServer,
) -> None:
    env, server = time_skipping_env, inbound_server
    eid = unique_id("inbound-pr")
    async with started(env.client, settings, pool, scoping(eid)) as handle:
        await scheduled(handle, ScheduleSession(on=date(2027, 2, 11)))
        # 90 days before the session is already past: the pre-read goes out at once.
        await handle.execute_update(EW.add_preread, AddPreread(title="Market memo", url="https://x.example/m",
                                                               days_before=90))
        preread = await mail_at_sink(mail_sink, message_id_for(f"{eid}/preread/P1/{ANA[1]}", MAIL_DOMAIN))
        address = reply_address(preread)
        await logged(pool, eid, "preread", 3)  # every participant's copy is out: the workflow waits again
        before = await snapshot(handle, pool, eid)

        for name, msg, envelope_from, want, want_code in [
            ("a number", reply(preread, ANA, "42"), ANA[1], "wrong_scope", 250),
            ("someone else", reply(preread, BEN, "read"), BEN[1], "spoofed_sender", 550),
        ]:
            code, text = await send(server, msg, envelope_from, address)
            assert code == want_code and want in text, (name, text)
            assert await snapshot(handle, pool, eid) == before, name

        code, text = await send(server, reply(preread, ANA, "Read, thanks!"), ANA[1], address)
        assert code == 250 and "applied" in text, text
        status: EngagementStatus = await handle.query(EW.status)
        assert status.prereads[0].acknowledged == [ANA[1]]
        assert ANA[1] not in status.prereads[0].missing
        log = await read_log(pool, eid)
        assert [e.event.email for e in log if e.event.type == "preread_acknowledged"] == [ANA[1]]
        await handle.terminate("test done")


async def test_only_reply_addresses_are_accepted(inbound_server: InboundServer) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = BEN[1], "postmaster@engage.localhost", "hello"
    msg.set_content("42")
    try:
        await aiosmtplib.send(msg, hostname=inbound_server.host, port=inbound_server.port, timeout=10)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        assert exc.recipients[0].code == 550
    else:
        raise AssertionError("a mail to any other address must be refused")


def test_html_replies_lose_their_quotes() -> None:
    outlook = ("<html><head><style>p{}</style></head><body><p>12,5</p><div id=appendonsend></div><hr>"
               "<div id=divRplyFwdMsg>From: engage</div><p>target 200</p></body></html>")
    assert html_to_text(outlook) == "12,5"
    assert html_to_text("<p>snooze&nbsp;3</p><blockquote>42</blockquote><p>thanks</p>") == "snooze 3\n\nthanks"


async def test_rejections_before_any_workflow_is_asked(settings: Settings, pool: asyncpg.Pool) -> None:
    """Checks that answer without Temporal: the client below could not reach anything."""
    nobody = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True, data_converter=pydantic_data_converter)
    scope = ReplyScope(action_id="A1", number=1, expires_at=datetime.now(UTC) + timedelta(days=30))
    address = f"checkin+{sign_reply_token('acme-x', scope, BEN[1], settings.reply_secret)}@{settings.inbound_domain}"

    def mail(text: str, **headers: str) -> bytes:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = BEN[1], address, "Re: Check-in"
        msg["Message-ID"] = make_msgid(domain="acme.example")
        for name, value in headers.items():
            msg[name.replace("_", "-")] = value
        msg.set_content(text)
        return msg.as_bytes()

    for raw, rcpts, reason, code in [
        (mail("I am out of office until Monday, 42 unread", Precedence="auto_reply"), [address], "auto_reply", "250"),
        (mail("42", Auto_Submitted="auto-replied"), [address], "auto_reply", "250"),
        (mail("9" * 400), [address], "unreadable", "250"),  # a number too large: answered, never bounced
        (mail("42"), ["someone@engage.localhost"], "no_reply_address", "550"),
        (mail("42"), [address.replace(settings.inbound_domain, "elsewhere.example")], "no_reply_address", "550"),
    ]:
        outcome = await apply_reply(raw, BEN[1], rcpts, settings, nobody, pool)
        assert (outcome.outcome, outcome.reason) == ("rejected", reason), outcome
        assert outcome.smtp_response().startswith(code), outcome.smtp_response()
