"""Many answers at once to one action: each is recorded, or its sender is told it was not; never both, never
neither. The log, the ledger and the answer mails agree.

Replies go through the real inbound SMTP server to a running engagement on the time-skipping server; the
check-in mail and the answer mails are the real ones in the SMTP sink.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage

import asyncpg
import pytest_asyncio
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from adapters.email.headers import message_id_for
from adapters.inbound_server import InboundServer
from devstack.mailsink import MailSink
from schemas.events import ActionClosed, MetricReported
from schemas.settings import Settings
from schemas.updates import ReportMetric
from schemas.views import EngagementStatus
from store import inbound as ledger
from store.events import read_log
from tests.conftest import unique_id
from tests.lifecycle import action, into_follow_through, scoping, started, until
from tests.mailbox import BEN, MAIL_DOMAIN, mail_at_sink, reply, reply_address, sink_mails, text_of
from tests.test_inbound import send
from workflows.engagement import EngagementWorkflow as EW

ANSWERS = 20


@pytest_asyncio.fixture(loop_scope="session")
async def inbound_server(time_skipping_env: WorkflowEnvironment, settings: Settings,
                         pool: asyncpg.Pool) -> AsyncIterator[InboundServer]:
    # One relay delivering twenty replies at once opens twenty connections: allowed from this one address.
    relay = settings.model_copy(update={"inbound_max_connections_per_ip": ANSWERS + 5})
    async with InboundServer(relay, time_skipping_env.client, pool, host="127.0.0.1", port=0) as server:
        yield server


def answers_to(sink: MailSink, reply_ids: set[str]) -> dict[str, EmailMessage]:
    """The answer mails in the sink, by the Message-ID of the reply each answers (In-Reply-To)."""
    found: dict[str, EmailMessage] = {}
    for msg in sink_mails(sink):
        if msg["X-Engage-Kind"] == "answer" and msg["In-Reply-To"] in reply_ids:
            assert msg["In-Reply-To"] not in found, f"two answers to {msg['In-Reply-To']}"
            found[str(msg["In-Reply-To"])] = msg
    return found


def text(msg: EmailMessage) -> str:
    return " ".join(text_of(msg).split())


async def test_twenty_concurrent_answers_one_achieving_each_recorded_or_refused_by_name(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool, mail_sink: MailSink,
    inbound_server: InboundServer,
) -> None:
    env = time_skipping_env
    eid = unique_id("answers")
    async with started(env.client, settings, pool, scoping(eid, cadence="14d", horizon="90d")) as handle:
        # A2 keeps the engagement running once A1 has closed.
        await into_follow_through(env, handle, date(2027, 2, 11), timedelta(hours=1),
                                  action("A1", *BEN, "Europe/Berlin", date(2027, 5, 31), 0, 200),
                                  action("A2", "Ana Lima", "ana@acme.example", "Europe/Lisbon",
                                         date(2027, 5, 31), 0, 9))
        await env.sleep(until(await env.get_current_time(), datetime(2027, 2, 25, 12, tzinfo=UTC)))
        checkin = await mail_at_sink(mail_sink, message_id_for(f"{eid}/A1/checkin/1", MAIL_DOMAIN))
        address = reply_address(checkin)

        # Twenty replies within a second; the one of 250 reaches the target (200) and closes the action.
        values = [*range(10, 20), 250, *range(20, 10 + ANSWERS - 1)]
        replies = [reply(checkin, BEN, str(v)) for v in values]
        results = await asyncio.gather(*(send(inbound_server, r, BEN[1], address) for r in replies))
        assert all(code == 250 for code, _ in results), results  # every one handled: none left to a retry

        reply_ids = {str(r["Message-ID"]): v for r, v in zip(replies, values, strict=True)}
        rows = {mid: await ledger.status_of(pool, mid) for mid in reply_ids}
        assert all(row is not None and row["status"] in ("applied", "rejected") for row in rows.values()), rows
        applied = {mid for mid, row in rows.items() if row is not None and row["status"] == "applied"}
        refused = set(reply_ids) - applied

        # The log: one metric_reported per applied answer, under its answer id; none for a refused one.
        log = await read_log(pool, eid)
        reported = {e.event.answer_id: e.event.value for e in log if isinstance(e.event, MetricReported)}

        def answer_id(mid: str) -> str:
            return "email-reply/" + hashlib.sha256(mid.encode()).hexdigest()[:32]

        assert reported == {answer_id(mid): float(reply_ids[mid]) for mid in applied}
        assert answer_id(str(replies[10]["Message-ID"])) in reported  # the achieving value was recorded
        assert [e.event.reason for e in log if isinstance(e.event, ActionClosed)] == ["achieved"]

        # The answer mails: one per reply, threaded under it, saying what the ledger says.
        deadline = asyncio.get_running_loop().time() + 20
        while len(mails := answers_to(mail_sink, set(reply_ids))) < ANSWERS:
            assert asyncio.get_running_loop().time() < deadline, f"{len(mails)} of {ANSWERS} answers arrived"
            await asyncio.sleep(0.1)
        for mid in applied:
            assert str(mails[mid]["Subject"]).startswith("Recorded:"), mails[mid]["Subject"]
            assert f"Recorded {reply_ids[mid]} units for 'Action A1'" in text(mails[mid])
        for mid in refused:
            assert str(mails[mid]["Subject"]).startswith("Not recorded:"), mails[mid]["Subject"]
            assert "A1" in text(mails[mid]) and "closed (achieved)" in text(mails[mid]), text(mails[mid])
            row = rows[mid]
            assert row is not None and row["reason"] == "not_accepted" and "closed (achieved)" in row["detail"]

        status: EngagementStatus = await handle.query(EW.status)
        view = next(a for a in status.actions if a.action_id == "A1")
        assert view.values_received == len(applied) and view.closed_reason == "achieved"

        # After the close, the CLI's way in is refused by name too (the CLI exits 2 on this error).
        try:
            await handle.execute_update(EW.report_metric, ReportMetric(action_id="A1", value=5))
        except WorkflowUpdateFailedError as exc:
            assert "A1 is closed (achieved)" in str(exc.cause)
        else:
            raise AssertionError("a value after the close must be refused")
        print(f"{len(applied)} applied, {len(refused)} refused by name")  # noqa: T201 - the split, for the log
        await handle.terminate("test done")
