"""Once only: the send activity against a real SMTP sink and Postgres, retried the ways Temporal retries it.

(a) a failure before sending, (b) a failure after the outbox commit, (c) the one remaining window: the relay
accepted the message but the row was never marked sent (a duplicate, with the same Message-ID), (d) SMTP down
under a running workflow: retries with backoff, then one delivery, (e) the worker killed while the relay holds
its 250: the mail sender process finishes, marks, and the retry sends nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session
from pydantic import SecretStr
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.notify import NotifyActivities
from adapters.email import send as send_module
from adapters.email.headers import message_id_for
from adapters.email.mime import build_email
from adapters.email.send import Mailer
from adapters.email.smtp import converse
from devstack.mailsink import EmlWriter, MailSink
from devstack.postgres import EmbeddedPostgres
from devstack.process import free_port
from domain.format import recommend
from schemas import events as ev
from schemas.messages import MessageContext, OutboundMessage, Recipient, ReplyScope
from schemas.settings import Settings
from schemas.updates import ChooseFormat, ScheduleSession
from store import outbox
from store.db import create_pool
from store.events import EventWriter, append, read_log
from store.migrate import migrate
from tests.conftest import unique_id
from tests.lifecycle import running_worker, scoping, start
from workflows.engagement import EngagementWorkflow as EW

NOW = datetime(2027, 2, 25, 8, tzinfo=UTC)


def smtp_on(settings: Settings, port: int) -> Settings:
    return settings.model_copy(update={"smtp_url": SecretStr(f"smtp://127.0.0.1:{port}")})


def checkin(engagement_id: str) -> OutboundMessage:
    return OutboundMessage(
        engagement_id=engagement_id, key=f"{engagement_id}/A1/checkin/1", kind=ev.MessageKind.checkin_request,
        to=Recipient(name="Ben Wu", email="ben@acme.example", timezone="Europe/Berlin"), action_id="A1",
        reply=ReplyScope(action_id="A1", number=1, expires_at=NOW + timedelta(days=90)),
        context=MessageContext(client="Acme Corp", engagement_id=engagement_id, recipient_name="Ben Wu",
                               consultant_name="Dana Reyes", action_id="A1", action_title="Open the Nordics",
                               metric_name="Pipeline", unit="deals", baseline=0, target=200, checkin_number=1),
    )


async def begin(pool: asyncpg.Pool, engagement_id: str) -> None:
    """The engagement's first event: its read-model row, which the message_sent projection refers to."""
    s = scoping(engagement_id)
    await append(pool, engagement_id, [ev.NewEvent(key=f"{engagement_id}/started", occurred_at=NOW,
                                                   event=ev.EngagementStarted(scoping=s, recommendation=recommend(s)))])


def activity_env(engagement_id: str) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, activity_type="send_message", workflow_id=f"engagement/{engagement_id}",
                                   current_attempt_scheduled_time=NOW)
    return env


def retry(env: ActivityEnvironment) -> None:
    env.info = dataclasses.replace(env.info, attempt=env.info.attempt + 1)


def copies(sink: MailSink, message_id: str) -> list[email.message.EmailMessage]:
    found = []
    for path in sink.messages():
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if msg["Message-ID"] == message_id:
            found.append(msg)
    return found  # type: ignore[return-value]


async def sent_events(pool: asyncpg.Pool, engagement_id: str) -> list[ev.MessageSent]:
    return [e.event for e in await read_log(pool, engagement_id) if isinstance(e.event, ev.MessageSent)]


async def test_a_failure_before_sending_then_a_retry_delivers_once(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    eid = unique_id("once-a")
    await begin(pool, eid)
    port = free_port()
    settings = smtp_on(settings, port)
    acts = NotifyActivities(EventWriter(pool), Mailer(settings, pool))
    message = checkin(eid)
    message_id = acts.mailer.message_id(message)
    env = activity_env(eid)

    # Attempt 1: the relay is down. The row is there (pending), nothing was sent, nothing is in the log.
    with pytest.raises((aiosmtplib.SMTPException, OSError)):
        await env.run(acts.send_message, message)
    row = await outbox.status_of(pool, message_id)
    assert row is not None and (row["status"], row["attempts"]) == ("pending", 1)
    assert await sent_events(pool, eid) == []

    sink = MailSink(tmp_path / "mail", port)
    sink.start()
    try:
        retry(env)
        assert (await env.run(acts.send_message, message)).delivered_now is True
        retry(env)
        assert (await env.run(acts.send_message, message)).delivered_now is False
        assert len(sink.messages()) == 1 and len(copies(sink, message_id)) == 1
    finally:
        sink.stop()
    row = await outbox.status_of(pool, message_id)
    assert row is not None and (row["status"], row["attempts"]) == ("sent", 2)
    assert [m.message_id for m in await sent_events(pool, eid)] == [message_id]


async def test_a_failure_after_the_commit_then_a_retry_sends_nothing(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    eid = unique_id("once-b")
    sink = MailSink(tmp_path / "mail", free_port())
    sink.start()
    try:
        settings = smtp_on(settings, sink.port)
        acts = NotifyActivities(EventWriter(pool), Mailer(settings, pool))
        message = checkin(eid)
        message_id = acts.mailer.message_id(message)
        env = activity_env(eid)

        # Attempt 1 sends and commits the outbox row, then fails writing its event: Postgres refuses the
        # message_sent row (its engagement has no read-model row yet), a real failure after the commit.
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await env.run(acts.send_message, message)
        row = await outbox.status_of(pool, message_id)
        assert row is not None and row["status"] == "sent"
        assert len(copies(sink, message_id)) == 1

        # Temporal retries; this time the event is written, and the row says sent: nothing is sent again.
        await begin(pool, eid)
        retry(env)
        result = await env.run(acts.send_message, message)
        assert (result.message_id, result.delivered_now) == (message_id, False)
        assert len(sink.messages()) == 1 and len(copies(sink, message_id)) == 1
        assert [m.message_id for m in await sent_events(pool, eid)] == [message_id]
        row = await outbox.status_of(pool, message_id)
        assert row is not None and (row["status"], row["attempts"]) == ("sent", 1)
    finally:
        sink.stop()


async def test_the_crash_window_sends_a_duplicate_with_the_same_message_id(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """The documented window (docs/email.md): the relay said 250, the worker died before `mark_sent`."""
    eid = unique_id("once-c")
    await begin(pool, eid)
    sink = MailSink(tmp_path / "mail", free_port())
    sink.start()
    try:
        settings = smtp_on(settings, sink.port)
        mailer = Mailer(settings, pool)
        acts = NotifyActivities(EventWriter(pool), mailer)
        message = checkin(eid)
        message_id = mailer.message_id(message)

        # Attempt 1, step by step as Mailer.send takes them, stopping where a crash would.
        mime = build_email(message, settings, message_id)
        async with outbox.sending(pool, message_id) as conn:
            status = await outbox.reserve(conn, message_id=message_id, engagement_id=eid, key=message.key,
                                          kind=message.kind.value, recipients=[message.to.email],
                                          subject=str(mime["Subject"]))
            assert status == "pending"
            await converse(mailer.target, mime, "engage@engage.localhost", [message.to.email])
            # -- the worker dies here: the relay has the message, the row still says pending --
        row = await outbox.status_of(pool, message_id)
        assert row is not None and row["status"] == "pending"

        env = activity_env(eid)
        retry(env)
        assert (await env.run(acts.send_message, message)).delivered_now is True
        both = copies(sink, message_id)
        assert len(both) == 2, "the window: a second copy"
        assert {m["Message-ID"] for m in both} == {message_id}, "the same Message-ID, so clients fold the two"
        assert [m.message_id for m in await sent_events(pool, eid)] == [message_id], "logged once"
        row = await outbox.status_of(pool, message_id)
        assert row is not None and (row["status"], row["attempts"]) == ("sent", 2)
    finally:
        sink.stop()


async def test_smtp_down_the_workflow_retries_with_backoff_then_delivers_once(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    env = time_skipping_env
    eid = unique_id("once-d")
    port = free_port()
    down = smtp_on(settings, port)
    async with running_worker(env.client, down, pool) as tq:
        handle = await start(env.client, tq, scoping(eid))
        await handle.execute_update(EW.choose_format, ChooseFormat(format="combined"))
        await handle.execute_update(EW.schedule_session, ScheduleSession(on=date(2027, 2, 11)))

        # Four invitations (three participants, the consultant's copy), each failing against the closed port and
        # retried at 1, 2, 4, 8 ... s.
        await env.sleep(timedelta(seconds=20))
        # The raw call: the SDK's describe() cannot decode the time-skipping server's search attributes.
        described = await env.client.workflow_service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
            namespace=env.client.namespace, execution=WorkflowExecution(workflow_id=handle.id)))
        pending = [p for p in described.pending_activities if p.activity_type.name == "send_message"]
        assert len(pending) == 4, pending
        for p in pending:
            assert p.attempt >= 3, p
            assert "refused" in p.last_failure.message.lower() or "connect" in p.last_failure.message.lower(), p
        domain = Mailer(down, pool).domain
        invitees = [*scoping(eid).participants, scoping(eid).consultant]
        ids = [message_id_for(f"{eid}/invitation/0/{p.email}", domain) for p in invitees]
        for message_id in ids:
            row = await outbox.status_of(pool, message_id)
            assert row is not None and row["status"] == "pending" and row["attempts"] >= 3

        sink = MailSink(tmp_path / "mail", port)
        sink.start()
        try:
            await env.sleep(timedelta(seconds=45))  # past the next backoff (at most 30 s)
            deadline = asyncio.get_running_loop().time() + 10
            while len(sink.messages()) < 4 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
            await env.sleep(timedelta(minutes=5))  # more time: nothing more may arrive
            assert len(sink.messages()) == 4
            assert sorted(len(copies(sink, m)) for m in ids) == [1, 1, 1, 1]
        finally:
            sink.stop()

        history = await handle.fetch_history()
        scheduled = {e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
                     for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED}
        attempts = [e.activity_task_started_event_attributes.attempt for e in history.events
                    if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
                    and scheduled[e.activity_task_started_event_attributes.scheduled_event_id] == "send_message"]
        assert len(attempts) == 4 and min(attempts) >= 4, attempts
        for message_id in ids:
            row = await outbox.status_of(pool, message_id)
            assert row is not None and row["status"] == "sent" and row["attempts"] >= 4
        assert sorted(m.message_id for m in await sent_events(pool, eid)) == sorted(ids)
        await handle.terminate("test done")


class StopsPostgresBeforeAccepting(EmlWriter):
    """A relay that takes the message, then, before its 250 reaches the worker, Postgres goes away: the moment
    the chaos run's Postgres outage once caught two invitations in (docs/RELIABILITY.md, session 6)."""

    def __init__(self, folder: Path, postgres: EmbeddedPostgres) -> None:
        super().__init__(folder)
        self.postgres = postgres

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        self.postgres.stop()
        return answer


async def test_postgres_away_at_the_250_the_heartbeat_keeps_the_retry_from_sending_again(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relay said 250 and Postgres could not be told: the attempt says so in its heartbeat, which Temporal
    gives the next attempt; that attempt marks the row and sends nothing (activities/notify.py)."""
    monkeypatch.setattr(send_module, "MARK_PATIENCE_S", 1.0)  # the activity's 25 s, shortened
    postgres = EmbeddedPostgres(tmp_path / "pg", free_port(), durable=False)
    (tmp_path / "pg").mkdir()
    own = settings.model_copy(update={"database_url": SecretStr(postgres.start())})
    relay = Controller(StopsPostgresBeforeAccepting(tmp_path / "mail", postgres), hostname="127.0.0.1",
                       port=free_port(), ready_timeout=10)
    relay.start()
    try:
        own = smtp_on(own, relay.port)
        pool = await create_pool(own)
        await migrate(pool)
        eid = unique_id("once-e")
        await begin(pool, eid)
        acts = NotifyActivities(EventWriter(pool), Mailer(own, pool))
        message = checkin(eid)
        message_id = acts.mailer.message_id(message)
        heartbeats: list[tuple[Any, ...]] = []
        env = activity_env(eid)
        env.on_heartbeat = lambda *details: heartbeats.append(details)

        with pytest.raises(OSError):  # the patient mark gave up: Postgres is still away
            await env.run(acts.send_message, message)
        delivered = sorted((tmp_path / "mail").glob("*.eml"))
        assert len(delivered) == 1
        assert heartbeats == [(message_id,)], "the 250 is kept where the retry finds it"

        postgres.start()
        row = await outbox.status_of(pool, message_id)
        assert row is not None and row["status"] == "pending", "Postgres never heard of the 250"
        retry(env)
        env.info = dataclasses.replace(env.info, heartbeat_details=[message_id])  # as Temporal hands them over
        result = await env.run(acts.send_message, message)
        assert (result.message_id, result.delivered_now) == (message_id, True)
        assert sorted((tmp_path / "mail").glob("*.eml")) == delivered, "not sent a second time"
        row = await outbox.status_of(pool, message_id)
        assert row is not None and (row["status"], row["attempts"]) == ("sent", 2)
        assert [m.message_id for m in await sent_events(pool, eid)] == [message_id], "logged once"
        await pool.close()
    finally:
        relay.stop()
        postgres.stop()


class HoldsTheFirstAnswer(EmlWriter):
    """A relay that stores the first message, then holds its 250 until the test says: the moment a SIGKILL of
    the worker falls between the relay's acceptance and the outbox mark. Later messages are answered at once."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.arrived = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        if not self.arrived.is_set():
            self.arrived.set()
            await asyncio.to_thread(self.release.wait, 60)
        return answer


# A worker in miniature: one Mailer.send, in a process the test can SIGKILL (as bench/chaos.py kills the worker).
_ONE_SEND = """
import asyncio, sys
from adapters.email.send import Mailer
from schemas.messages import OutboundMessage
from schemas.settings import Settings
from store.db import create_pool

async def main() -> None:
    settings = Settings(_env_file=None)
    await Mailer(settings, await create_pool(settings)).send(OutboundMessage.model_validate_json(sys.argv[1]))

asyncio.run(main())
"""


async def test_the_worker_killed_before_the_relays_250_the_sender_marks_and_the_retry_sends_nothing(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """The worker dies between the relay's acceptance and the mark. Its mail sender process outlives it for the
    conversation in hand: it hears the 250 and marks the row. The retry, started at once, waits for that
    conversation (store/outbox.py `conversing`), finds the row sent and sends nothing (adapters/email/sender.py)."""
    relay_handler = HoldsTheFirstAnswer(tmp_path / "mail")
    relay = Controller(relay_handler, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    relay.start()
    worker: subprocess.Popen[bytes] | None = None
    try:
        own = smtp_on(settings, relay.port)
        eid = unique_id("once-e")
        await begin(pool, eid)
        message = checkin(eid)
        message_id = message_id_for(message.key, "engage.localhost")
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "ENGAGE_DEV_STACK": "1",
               "ENGAGE_DATABASE_URL": own.database_dsn(), "ENGAGE_SMTP_URL": own.smtp_url.get_secret_value()}
        with open(tmp_path / "worker.log", "wb") as log:
            worker = subprocess.Popen([sys.executable, "-c", _ONE_SEND, message.model_dump_json()], env=env,
                                      stdout=log, stderr=subprocess.STDOUT)
        assert await asyncio.to_thread(relay_handler.arrived.wait, 60), (tmp_path / "worker.log").read_text()
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(10) == -signal.SIGKILL
        row = await outbox.status_of(pool, message_id)
        assert row is not None and row["status"] == "pending", "killed before the relay's 250"

        # Temporal's retry, at once (sooner than its 30 s would bring it): it waits for the conversation in hand.
        retried = asyncio.create_task(Mailer(own, pool).send(message))
        await asyncio.sleep(1.0)
        assert not retried.done(), "the retry went ahead while the dead worker's conversation was still going on"
        relay_handler.release.set()
        result = await asyncio.wait_for(retried, 60)

        assert (result.message_id, result.delivered_now) == (message_id, False), "the retry sent nothing"
        assert len(list((tmp_path / "mail").glob("*.eml"))) == 1, "one copy at the relay"
        row = await outbox.status_of(pool, message_id)
        assert row is not None and (row["status"], row["attempts"]) == ("sent", 1), "marked by the sender process"
    finally:
        relay_handler.release.set()
        if worker is not None and worker.poll() is None:
            worker.kill()
        relay.stop()


def test_a_request_cut_short_by_the_workers_death_is_dropped_and_the_sender_exits_cleanly() -> None:
    """A worker killed in the middle of writing a request leaves half a line in the pipe (seen in a chaos run:
    the sender died on it, and with it the conversations it had in hand). Half a request was never in hand:
    the sender drops it and exits quietly."""
    root = Path(__file__).resolve().parents[1]
    half = b'{"id": 3, "smtp_url": "smtp://127.0.0.1:1", "database_url": "postgresql://x@127.0.0.1:1/x", "mime": "gASV'
    done = subprocess.run([sys.executable, "-m", "adapters.email.sender"], input=half, capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(root)}, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert b"Traceback" not in done.stderr and b"mid-request" in done.stderr


class RefusesSomeRecipients(EmlWriter):
    """A relay that refuses one address for good (550) and another for now (451, until told otherwise), as
    Postfix answers an unknown mailbox and a greylisted one (RFC 5321 4.2.2, RFC 6647)."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.greylisting = True

    async def handle_RCPT(self, server: Any, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address.startswith("gone@"):
            return "550 5.1.1 <gone@acme.example>: Recipient address rejected: User unknown"
        if address.startswith("busy@") and self.greylisting:
            return "451 4.7.1 <busy@acme.example>: Recipient address rejected: Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


async def test_a_round_sends_each_message_once_whatever_its_neighbours_meet(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """A check-in loop's round goes out all at once (activities/notify.py `send_messages`): a refusal for good is
    that message's own result, a refusal for now fails the attempt only after the others are settled, and the
    retry sends only what did not go out."""
    relay_handler = RefusesSomeRecipients(tmp_path / "mail")
    relay = Controller(relay_handler, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    relay.start()
    try:
        eid = unique_id("once-round")
        await begin(pool, eid)
        acts = NotifyActivities(EventWriter(pool), Mailer(smtp_on(settings, relay.port), pool))
        addresses = ["ben@acme.example", "gone@acme.example", "busy@acme.example", "cy@acme.example"]
        round_ = [checkin(eid).model_copy(update={
            "key": f"{eid}/A{i}/checkin/1", "action_id": f"A{i}",
            "to": Recipient(name=f"Owner {i}", email=address, timezone="Europe/Berlin")})
            for i, address in enumerate(addresses, start=1)]
        ids = [acts.mailer.message_id(m) for m in round_]
        env = activity_env(eid)

        with pytest.raises(aiosmtplib.SMTPException):  # busy@ is greylisted: the attempt fails, to be retried
            await env.run(acts.send_messages, round_)
        delivered = {str(m["Message-ID"]) for m in (email.message_from_bytes(p.read_bytes(),
                                                                              policy=email.policy.default)
                                                   for p in sorted((tmp_path / "mail").glob("*.eml")))}
        assert delivered == {ids[0], ids[3]}, "the two the relay took went out, though a neighbour failed"

        relay_handler.greylisting = False
        retry(env)
        results = await env.run(acts.send_messages, round_)
        assert [r.message_id for r in results] == ids, "a result per message, in the round's order"
        assert [r.delivered_now for r in results] == [False, False, True, False]
        assert results[1].refused is not None and "550" in results[1].refused
        assert all(r.refused is None for i, r in enumerate(results) if i != 1)
        assert len(list((tmp_path / "mail").glob("*.eml"))) == 3, "nothing sent twice, gone@ never"
        assert sorted(m.message_id for m in await sent_events(pool, eid)) == sorted([ids[0], ids[2], ids[3]])
    finally:
        relay.stop()
