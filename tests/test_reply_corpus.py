"""The reply corpus (tests/replies/*.eml, shaped like what each mail client sends) through the real inbound SMTP
server into a running engagement: every reply is recorded as its writer meant, or answered with why it was not.
None is misread, none is swallowed.

tests/test_reply_reading.py checks the readings alone; this test checks that each reading becomes the change
(or the answer) it should, end to end: token, sender, ledger, workflow update, event log, answer mail.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg
import pytest_asyncio
import yaml
from temporalio.testing import WorkflowEnvironment

from adapters.email.headers import message_id_for
from adapters.inbound_server import InboundServer
from devstack.mailsink import MailSink
from schemas.events import ActionBlocked, ActionSnoozed, MetricReported
from schemas.settings import Settings
from store import inbound as ledger
from store.events import read_log
from tests.conftest import unique_id
from tests.lifecycle import action, into_follow_through, running_worker, scoping, start, until
from tests.mailbox import BEN, MAIL_DOMAIN, mail_at_sink, reply_address, sink_mails

CORPUS = Path(__file__).parent / "replies"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((CORPUS / "expected.yaml").read_text())
PLACEHOLDER = b"checkin+TOKEN@engage.localhost"


@pytest_asyncio.fixture(loop_scope="session")
async def relay_server(time_skipping_env: WorkflowEnvironment, settings: Settings,
                       pool: asyncpg.Pool) -> AsyncIterator[InboundServer]:
    # The corpus arrives from one relay on loopback, faster than an owner types: exempt from the per-address rates.
    relay = settings.model_copy(update={"inbound_exempt_networks": "127.0.0.0/8"})
    async with InboundServer(relay, time_skipping_env.client, pool, host="127.0.0.1", port=0) as server:
        yield server


def answer_id(message_id: str) -> str:
    return "email-reply/" + hashlib.sha256(message_id.encode()).hexdigest()[:32]


def answers_in(sink: MailSink) -> dict[str, EmailMessage]:
    return {str(m["In-Reply-To"]): m for m in sink_mails(sink) if m["X-Engage-Kind"] == "answer" and m["In-Reply-To"]}


async def test_every_corpus_reply_is_recorded_as_meant_or_answered(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool, mail_sink: MailSink,
    relay_server: InboundServer,
) -> None:
    assert len(EXPECTED) >= 60
    env = time_skipping_env
    eid = unique_id("corpus")
    async with running_worker(env.client, settings, pool) as tq:
        handle = await start(env.client, tq, scoping(eid, cadence="14d", horizon="365d"))
        # A target no reply reaches, so that every value is recorded and the action stays open.
        await into_follow_through(env, handle, date(2027, 2, 11), timedelta(hours=1),
                                  action("A1", *BEN, "Europe/Berlin", date(2027, 12, 31), -1e6, 1e15))
        await env.sleep(until(await env.get_current_time(), datetime(2027, 2, 25, 12, tzinfo=UTC)))
        checkin = await mail_at_sink(mail_sink, message_id_for(f"{eid}/A1/checkin/1", MAIL_DOMAIN))
        address = reply_address(checkin).encode()

        sent: dict[str, str] = {}  # file -> Message-ID
        for name in sorted(EXPECTED):
            raw = (CORPUS / name).read_bytes()
            assert PLACEHOLDER in raw, name
            raw = raw.replace(PLACEHOLDER, address)
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            async with aiosmtplib.SMTP(hostname=relay_server.host, port=relay_server.port, timeout=60) as smtp:
                await smtp.sendmail(BEN[1], [address.decode()], raw)  # a 5xx raises: the test fails, naming it
            sent[name] = str(parsed["Message-ID"])

        log = await read_log(pool, eid)
        by_answer = {e.event.answer_id: e.event for e in log
                     if isinstance(e.event, MetricReported | ActionSnoozed | ActionBlocked)}
        deadline = asyncio.get_running_loop().time() + 30
        while len(answers := answers_in(mail_sink)) < len(sent) or not set(sent.values()) <= set(answers):
            assert asyncio.get_running_loop().time() < deadline, "some replies were never answered"
            await asyncio.sleep(0.2)

        wrong: list[str] = []
        for name, message_id in sent.items():
            want = EXPECTED[name]
            row = await ledger.status_of(pool, message_id)
            event = by_answer.pop(answer_id(message_id), None)
            answer = answers[message_id]
            got: tuple[Any, ...]
            if row is None:
                wrong.append(f"{name}: no ledger row")
                continue
            if want["kind"] == "value":
                got = (row["status"], type(event).__name__, getattr(event, "value", None))
                ok = got[:2] == ("applied", "MetricReported") and abs(got[2] - float(want["value"])) < 1e-9
            elif want["kind"] == "snooze":
                got = (row["status"], type(event).__name__, getattr(event, "days", None))
                ok = got == ("applied", "ActionSnoozed", want["days"])
            elif want["kind"] == "blocked":
                got = (row["status"], type(event).__name__, getattr(event, "reason", None))
                ok = got[:2] == ("applied", "ActionBlocked") and got[2] == " ".join(want["reason"].split())
            else:  # none, or `read`/`done` to a check-in: nothing recorded, and the owner told why
                got = (row["status"], row["reason"], event)
                ok = got == ("rejected", "unreadable" if want["kind"] == "none" else "wrong_scope", None)
            subject = str(answer["Subject"])
            ok = ok and subject.startswith("Recorded:" if row["status"] == "applied" else "Not recorded:")
            if not ok:
                wrong.append(f"{name}: expected {want}, got {got}, answer {subject!r}")
        assert not wrong, "\n".join(wrong)
        assert not by_answer, f"changes no corpus reply asked for: {by_answer}"
        await handle.terminate("test done")
