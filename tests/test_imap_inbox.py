"""Replies without an MX: `engage inbox --imap URL` against a real Dovecot on loopback, in front of a running
engagement on the time-skipping server with a real worker.

The replies answer the real check-in mails of the SMTP sink (their Reply-To), and are put into the mailbox with
IMAP APPEND, as delivery would, with the Return-Path and Delivered-To headers a delivery writes.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr
from pathlib import Path

import asyncpg
import pytest
from imapclient import IMAPClient
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from adapters.email.headers import message_id_for
from adapters.imap_inbox import ImapInbox, ImapUrlError, envelope_of, parse_imap_url
from devstack.mailsink import MailSink
from devstack.process import free_port
from devstack.process import stop as stop_process
from schemas.events import ActionSnoozed, MetricReported
from schemas.settings import Settings
from schemas.views import ActionView, EngagementStatus
from store import inbound as inbound_store
from store.events import read_log
from tests.conftest import unique_id
from tests.dovecot import PASSWORD, USER, Dovecot
from tests.lifecycle import action, into_follow_through, running_worker, scoping, start, until
from tests.mailbox import ANA, BEN, MAIL_DOMAIN, mail_at_sink
from workflows.engagement import EngagementWorkflow as EW

MALLORY = ("Mallory", "mallory@evil.example")
PROCESSED = "engage-processed"
# What an older server announces: no IDLE (so the reader polls), no MOVE (so it copies, flags and expunges).
WITHOUT_IDLE_AND_MOVE = "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE NAMESPACE CHILDREN UIDPLUS UNSELECT"
ENGAGE = Path(sys.executable).parent / "engage"


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with Dovecot() as server:
        yield server


async def checkin_mail(sink: MailSink, key: str, timeout: float = 10.0) -> EmailMessage:
    return await mail_at_sink(sink, message_id_for(key, MAIL_DOMAIN), timeout)


def delivered(original: EmailMessage, sender: tuple[str, str], text: str, *, to: str | None = None) -> bytes:
    """A reply as it lands in the shared mailbox: the delivery's Return-Path and Delivered-To on top of what the
    mail client sent (the answer on top, the original quoted below with its own numbers)."""
    body = original.get_body(preferencelist=("plain",))
    assert body is not None
    quoted = "\n".join(f"> {line}" for line in body.get_content().splitlines())
    msg = EmailMessage()
    msg["Return-Path"] = f"<{sender[1]}>"
    msg["Delivered-To"] = USER
    msg["From"] = f"{sender[0]} <{sender[1]}>"
    msg["To"] = to or parseaddr(str(original["Reply-To"]))[1]
    msg["Subject"] = f"Re: {original['Subject']}"
    msg["In-Reply-To"] = original["Message-ID"]
    msg["Message-ID"] = make_msgid(domain=sender[1].split("@")[1])
    msg.set_content(f"{text}\n\nOn Thu, 25 Feb 2027 at 09:00, engage <engage@{MAIL_DOMAIN}> wrote:\n{quoted}\n")
    return msg.as_bytes()


class Mailbox:
    """The test's own view of the mailbox, over IMAP like any mail client."""

    def __init__(self, server: Dovecot) -> None:
        self.server = server

    def _client(self) -> IMAPClient:
        client = IMAPClient(self.server.host, self.server.port, ssl=False, timeout=10)
        client.login(USER, PASSWORD)
        return client

    def _append(self, messages: list[bytes]) -> None:
        client = self._client()
        try:
            for raw in messages:
                client.append("INBOX", raw)
        finally:
            client.logout()

    def _ids(self, folder: str) -> list[str]:
        client = self._client()
        try:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            uids = client.search(["UNDELETED"])
            fetched = client.fetch(uids, [b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]) if uids else {}
            return [email.message_from_bytes(fetched[uid][b"BODY[HEADER.FIELDS (MESSAGE-ID)]"])["Message-ID"]
                    for uid in sorted(fetched)]
        finally:
            client.logout()

    async def append(self, *messages: bytes) -> None:
        await asyncio.to_thread(self._append, list(messages))

    async def ids(self, folder: str = "INBOX") -> list[str]:
        return await asyncio.to_thread(self._ids, folder)

    async def until(self, folder: str, count: int, *, timeout: float, proc: subprocess.Popen | None = None,
                    log: Path | None = None) -> float:
        """Seconds until `folder` holds `count` messages (and INBOX none, for the processed folder)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            done = len(await self.ids(folder)) == count and (folder == "INBOX" or not await self.ids("INBOX"))
            if done:
                return loop.time() - started
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"engage inbox exited with {proc.returncode}: {log.read_text() if log else ''}")
            if loop.time() - started > timeout:
                raise AssertionError(f"{folder} never held {count}: INBOX {await self.ids()}, {folder} "
                                     f"{await self.ids(folder)}\n{log.read_text() if log else ''}")
            await asyncio.sleep(0.1)


def engage_env(settings: Settings, temporal_address: str) -> dict[str, str]:
    """The test's settings as the ENGAGE_* variables a deployment would set, and nothing else of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"ENGAGE_{name.upper()}"] = str(value)
    env["ENGAGE_TEMPORAL_ADDRESS"] = temporal_address
    env["ENGAGE_DEV_STACK"] = "1"  # the tests' reply secret is the development one
    env["ENGAGE_LOG_FORMAT"] = "json"
    return env


def run_inbox(url: str, env: dict[str, str], log: Path, *, from_env: bool = False) -> subprocess.Popen:
    """`engage inbox --imap URL`, or `engage inbox` with ENGAGE_INBOUND_IMAP_URL (how compose runs it)."""
    args, env = ([], {**env, "ENGAGE_INBOUND_IMAP_URL": url}) if from_env else (["--imap", url], env)
    out = log.open("ab")
    try:
        return subprocess.Popen([str(ENGAGE), "inbox", *args], env=env, cwd=log.parent,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    finally:
        out.close()


def applied(log: str) -> int:
    return sum('"imap message moved"' in line and '"outcome": "applied"' in line for line in log.splitlines())


def a(status: EngagementStatus, action_id: str) -> ActionView:
    return next(v for v in status.actions if v.action_id == action_id)


async def test_replies_in_a_mailbox_are_applied_once_across_an_inbox_restart(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool, mail_sink: MailSink,
    dovecot: Dovecot, tmp_path: Path,
) -> None:
    env = time_skipping_env
    mailbox = Mailbox(dovecot)
    eid = unique_id("imap")
    async with running_worker(env.client, settings, pool) as tq:
        handle = await start(env.client, tq, scoping(eid, cadence="14d", horizon="90d"))
        await into_follow_through(env, handle, date(2027, 2, 11), timedelta(hours=1),
                                  action("A1", *BEN, "Europe/Berlin", date(2027, 5, 31), 0, 200),
                                  action("A2", *ANA, "Europe/Berlin", date(2027, 5, 31), 0, 50))
        await env.sleep(until(await env.get_current_time(), datetime(2027, 2, 25, 12, tzinfo=UTC)))
        to_ben = await checkin_mail(mail_sink, f"{eid}/A1/checkin/1")
        to_ana = await checkin_mail(mail_sink, f"{eid}/A2/checkin/1")

        ben_42 = delivered(to_ben, BEN, "42 - the Nordics pipeline is filling up")
        ana_snooze = delivered(to_ana, ANA, "snooze 7 days")
        spam = delivered(to_ben, MALLORY, "200", to=USER)  # to the shared mailbox, no reply address: unsigned
        forged = delivered(to_ben, MALLORY, "200")  # Ben's genuine reply address, someone else's mail
        await mailbox.append(ben_42, ana_snooze, spam, forged, ben_42)  # the last: the same reply delivered twice
        sender, recipients = envelope_of(forged)
        assert sender == MALLORY[1] and recipients == [USER, parseaddr(str(to_ben["Reply-To"]))[1]]

        # Temporal down: the genuine replies are deferred and stay in INBOX; the unsigned and the forged one
        # are rejected for good and moved. Nothing changes.
        unreachable = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True,
                                           data_converter=pydantic_data_converter)
        inbox = ImapInbox(settings, unreachable, pool, url=dovecot.url(processed=PROCESSED, poll="60"),
                          update_timeout=timedelta(seconds=2))
        await inbox.start()
        try:
            for _ in range(300):
                if len(inbox.handled) >= 5:
                    break
                await asyncio.sleep(0.05)
        finally:
            await inbox.stop()
        outcomes = sorted((h.outcome, h.reason or "") for h in inbox.handled)
        assert outcomes == [("deferred", "temporal_unavailable")] * 3 + [
            ("rejected", "no_reply_address"), ("rejected", "spoofed_sender")], outcomes
        id_of = {raw: email.message_from_bytes(raw)["Message-ID"] for raw in (ben_42, ana_snooze, spam, forged)}
        assert await mailbox.ids() == [id_of[ben_42], id_of[ana_snooze], id_of[ben_42]]
        assert await mailbox.ids(PROCESSED) == [id_of[spam], id_of[forged]]
        assert a(await handle.query(EW.status), "A1").values_received == 0

        # `engage inbox --imap` as deployed, on a server with IDLE and MOVE: the deferred replies are applied,
        # the second delivery of Ben's is a duplicate; a reply arriving while it runs is picked up at once.
        temporal = env.client.service_client.config.target_host
        environment = engage_env(settings, temporal)
        log = tmp_path / "inbox.log"
        proc = run_inbox(dovecot.url(processed=PROCESSED, poll="60"), environment, log)
        try:
            await mailbox.until(PROCESSED, 5, timeout=30, proc=proc, log=log)
            ben_50 = delivered(to_ben, BEN, "50")
            await mailbox.append(ben_50)
            picked_up = await mailbox.until(PROCESSED, 6, timeout=10, proc=proc, log=log)
            assert picked_up < 10, "IDLE, not the 60 s poll, must bring a new reply in"
        finally:
            code = stop_process(proc, signal.SIGTERM)
        assert code == 0, log.read_text()
        first_run = log.read_text()
        assert '"idle": true' in first_run and applied(first_run) == 3, first_run
        status = await handle.query(EW.status)
        assert (a(status, "A1").last_value, a(status, "A1").values_received) == (50, 2)
        assert a(status, "A2").snoozes == 1

        # Stopped: more mail arrives, among it copies of replies already applied (a relay's second delivery,
        # or a reader that crashed after applying and before moving). The server restarts without IDLE and MOVE.
        ben_60 = delivered(to_ben, BEN, "60")
        await mailbox.append(ana_snooze, ben_60, ben_50)
        dovecot.stop()
        dovecot.capabilities = WITHOUT_IDLE_AND_MOVE
        dovecot.start()
        proc = run_inbox(dovecot.url(processed=PROCESSED, poll="0.2"), environment, log, from_env=True)
        try:
            await mailbox.until(PROCESSED, 9, timeout=30, proc=proc, log=log)
            await mailbox.append(ben_60)  # one more copy, while it polls
            await mailbox.until(PROCESSED, 10, timeout=10, proc=proc, log=log)
        finally:
            code = stop_process(proc, signal.SIGTERM)
        assert code == 0, log.read_text()
        second_run = log.read_text()[len(first_run):]
        assert '"idle": false' in second_run and applied(second_run) == 1, second_run

        # Each reply applied once: the workflow, the event log and the ledger agree.
        status = await handle.query(EW.status)
        assert (a(status, "A1").last_value, a(status, "A1").values_received) == (60, 3)
        assert a(status, "A2").snoozes == 1
        events = [e.event for e in await read_log(pool, eid)]
        assert [(e.action_id, e.value) for e in events if isinstance(e, MetricReported) and e.source == "email"] == [
            ("A1", 42), ("A1", 50), ("A1", 60)]
        assert [(e.action_id, e.days) for e in events if isinstance(e, ActionSnoozed)] == [("A2", 7)]
        for raw in (ben_42, ana_snooze, ben_50, ben_60):
            row = await inbound_store.status_of(pool, email.message_from_bytes(raw)["Message-ID"])
            assert row is not None and row["status"] == "applied", row
        for raw in (spam, forged):
            assert await inbound_store.status_of(pool, email.message_from_bytes(raw)["Message-ID"]) is None

        # Every message handled is in the processed folder, in arrival order; nothing is left in INBOX.
        assert await mailbox.ids() == []
        assert await mailbox.ids(PROCESSED) == [
            id_of[spam], id_of[forged], id_of[ben_42], id_of[ana_snooze], id_of[ben_42],
            email.message_from_bytes(ben_50)["Message-ID"], id_of[ana_snooze],
            email.message_from_bytes(ben_60)["Message-ID"], email.message_from_bytes(ben_50)["Message-ID"],
            email.message_from_bytes(ben_60)["Message-ID"]]
        await handle.terminate("test done")


@pytest.mark.parametrize(("url", "words"), [
    ("http://u:p@host/", "imaps:// or imap://"),
    ("imaps://host/INBOX", "no user"),
    ("imaps://u@host/INBOX", "no password"),
    ("imaps://u:p@host:99999/", "port"),
    ("imaps://u:p@host/INBOX?processed=INBOX", "processed folder"),
    ("imaps://u:p@host/INBOX?every=5", "unknown parameter 'every'"),
    ("imaps://u:p@host/INBOX?poll=0", "poll="),
])
def test_a_bad_url_names_the_problem(url: str, words: str) -> None:
    with pytest.raises(ImapUrlError, match=re.escape(words)) as raised:
        parse_imap_url(url)
    assert ":p@" not in str(raised.value)


def test_a_bad_url_exits_2_and_an_unreachable_server_3(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}, "ENGAGE_DEV_STACK": "1"}
    for url, code, words in [
        ("imaps://u@host/INBOX", 2, "error: the --imap URL has no password"),
        (f"imap://u:p@127.0.0.1:{free_port()}/INBOX", 3, "error: cannot reach the IMAP server imap://127.0.0.1:"),
    ]:
        done = subprocess.run([str(ENGAGE), "inbox", "--imap", url], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=30)
        lines = done.stderr.strip().splitlines()
        assert (done.returncode, len(lines)) == (code, 1), (url, done.stderr)
        assert lines[0].startswith(words), (url, lines[0])


def test_a_wrong_password_exits_2_naming_the_server(dovecot: Dovecot, tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}, "ENGAGE_DEV_STACK": "1"}
    url = dovecot.url().replace(":s3cret", ":wrong")
    done = subprocess.run([str(ENGAGE), "inbox", "--imap", url], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2, done.stderr
    assert f"{dovecot.host}:{dovecot.port}" in done.stderr and "refused the login" in done.stderr, done.stderr
    assert "wrong" not in done.stderr


def test_the_url_names_the_mailbox_the_folder_and_the_poll_interval() -> None:
    url = parse_imap_url("imaps://checkins%40firm.example:p%40ss%2Fw0rd@outlook.office365.com/Replies"
                         "?processed=Done%2Fengage&poll=45")
    assert (url.scheme, url.host, url.port, url.user, url.password) == (
        "imaps", "outlook.office365.com", 993, "checkins@firm.example", "p@ss/w0rd")
    assert (url.mailbox, url.processed, url.poll_seconds, url.idle) == ("Replies", "Done/engage", 45.0, True)
    assert "p@ss" not in repr(url) and "p@ss" not in url.label
    plain = parse_imap_url("imap://u:p@localhost?idle=no")
    assert (plain.port, plain.mailbox, plain.processed, plain.idle) == (143, "INBOX", "engage-processed", False)
    # An unencoded @ in the user name still works: the last @ ends the credentials.
    assert parse_imap_url("imaps://checkins@firm.example:pw@imap.gmail.com/").user == "checkins@firm.example"
