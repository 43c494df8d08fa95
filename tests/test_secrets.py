"""Secrets never reach the logs or an error line: the SMTP password, the reply secret, the Temporal API key and
the Postgres password.

Logging is configured as the worker configures it (JSON lines; DEBUG here, a superset of the worker's INFO),
and everything written to file descriptors 1 and 2 is captured (`capfd`: structlog, the standard library's
handlers, the Rust core of the Temporal SDK), with every standard-library record at DEBUG and above as well
(`caplog`). Then the code paths that hold the secrets run for real: settings from the environment, a message
through a dead SMTP port and through real SMTP servers (one requiring AUTH with the password), a reply token
signed and verified, forged and spoofed replies through `apply_reply`, a Temporal connection with an API key to
a dead address, the settings printed, and the `engage` CLI failing against an unreachable Postgres and
Temporal whose URLs carry the secrets.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import structlog
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from adapters.email.send import Mailer
from adapters.inbound import apply_reply
from adapters.logging import configure_logging
from adapters.temporal import TemporalUnavailable, connect
from adapters.tokens import sign_reply_token, verify_reply_token
from devstack.mailsink import EmlWriter, MailSink
from devstack.process import free_port
from schemas.events import MessageKind
from schemas.messages import MessageContext, OutboundMessage, Recipient, ReplyScope
from schemas.settings import Settings
from tests.conftest import unique_id

ROOT = Path(__file__).resolve().parent.parent
ENGAGE = str(Path(sys.executable).parent / "engage")

SMTP_PASSWORD = "s3cr3t-smtp-Hq7"
REPLY_SECRET = "reply-s3cret-Zt9-0123456789abcdef"
API_KEY = "tmprl-api-k3y-Wx4.eyJhbGciOiJFUzI1NiJ9"
PG_PASSWORD = "pg-s3cret-Lm2"
SECRETS = (SMTP_PASSWORD, REPLY_SECRET, API_KEY, PG_PASSWORD)
# The SMTP password as it travels in AUTH LOGIN and AUTH PLAIN: a debug log of the conversation would show these.
ENCODED = (base64.b64encode(SMTP_PASSWORD.encode()).decode(),
           base64.b64encode(f"\0user\0{SMTP_PASSWORD}".encode()).decode())


def leaks(text: str) -> list[str]:
    return [s for s in (*SECRETS, *ENCODED) if s in text]


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """ENGAGE_* variables carrying every secret; each service address is a port nothing listens on."""
    ports = {"smtp": free_port(), "temporal": free_port(), "postgres": free_port()}
    for name in [n for n in os.environ if n.startswith("ENGAGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ENGAGE_SMTP_URL", f"smtp://user:{SMTP_PASSWORD}@127.0.0.1:{ports['smtp']}")
    monkeypatch.setenv("ENGAGE_REPLY_SECRET", REPLY_SECRET)
    monkeypatch.setenv("ENGAGE_TEMPORAL_API_KEY", API_KEY)
    monkeypatch.setenv("ENGAGE_TEMPORAL_ADDRESS", f"127.0.0.1:{ports['temporal']}")
    monkeypatch.setenv("ENGAGE_DATABASE_URL", f"postgresql://u:{PG_PASSWORD}@127.0.0.1:{ports['postgres']}/x")
    yield ports


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """structlog's configuration is global: put back what was there."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


class _PasswordAuth:
    """aiosmtpd authenticator: the one user and password, as a relay would check them."""

    def __call__(self, server: object, session: object, envelope: object, mechanism: str,
                 auth_data: object) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == b"user"
              and auth_data.password == SMTP_PASSWORD.encode())
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def auth_sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, Path]]:
    """A real SMTP server on loopback that requires AUTH over STARTTLS (the Mailer sends credentials only over
    TLS), with a throwaway certificate the client trusts through SSL_CERT_FILE."""
    port = free_port()
    folder = tmp_path / "auth-mail"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], cwd=tmp_path, check=True, capture_output=True,
                   timeout=30)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "cert.pem"))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    controller = Controller(EmlWriter(folder), hostname="127.0.0.1", port=port, authenticator=_PasswordAuth(),
                            auth_required=True, tls_context=tls, require_starttls=True, ready_timeout=10)
    controller.start()
    yield port, folder
    controller.stop()


def message(engagement_id: str, key: str) -> OutboundMessage:
    """A check-in request: its Reply-To carries a token signed with the reply secret."""
    return OutboundMessage(
        engagement_id=engagement_id, key=f"{engagement_id}/{key}", kind=MessageKind.checkin_request,
        to=Recipient(name="Ben Wu", email="ben@acme.example", timezone="Europe/Berlin"),
        context=MessageContext(client="Acme Corp", engagement_id=engagement_id, recipient_name="Ben Wu",
                               consultant_name="Dana Reyes", action_id="A1", action_title="Launch",
                               metric_name="Signups", unit="signups", baseline=0, target=200, checkin_number=1),
        reply=ReplyScope(action_id="A1", number=1, expires_at=datetime.now(UTC) + timedelta(days=30)),
        action_id="A1", summary="Check-in 1 of A1")


def reply_mail(to: str, sender: str, text: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, "Re: Check-in"
    msg["Message-ID"] = make_msgid(domain="acme.example")
    msg.set_content(text)
    return msg.as_bytes()


async def engage(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(ENGAGE, *args, env=env, cwd=ROOT / "tests",
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_no_secret_reaches_the_logs_or_an_error_line(
    secret_env: dict[str, int], restore_logging: None, settings: Settings, pool: asyncpg.Pool,
    mail_sink: MailSink, auth_sink: tuple[int, Path], capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # As worker.py does, in the test's own phase: structlog keeps the sys.stderr of the moment (capfd's).
    configure_logging("json", logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    log = structlog.get_logger("test_secrets")
    eid = unique_id("secrets")

    # Settings from the environment, as every process reads them; logged and printed whole.
    configured = Settings(_env_file=None)  # type: ignore[call-arg]
    assert configured.smtp_url.get_secret_value().endswith(f":{SMTP_PASSWORD}@127.0.0.1:{secret_env['smtp']}")
    assert configured.reply_secret.get_secret_value() == REPLY_SECRET
    assert configured.temporal_api_key is not None and configured.temporal_api_key.get_secret_value() == API_KEY
    assert PG_PASSWORD in configured.database_dsn()
    log.info("settings loaded", settings=configured, dump=configured.model_dump())
    print(repr(configured))
    print(str(configured))
    print(configured.model_dump_json())
    print(configured.database_label())

    # SMTP: the password URL against a dead port (the error path, logged as the worker logs a failed activity).
    dead = Mailer(configured, pool)
    with pytest.raises(Exception) as failed:  # noqa: PT011 - whichever error aiosmtplib raises
        await dead.send(message(eid, "dead/1"))
    assert not leaks(str(failed.value)), failed.value
    log.exception("send_message failed", exc_info=failed.value)
    logging.getLogger("temporalio.activity").warning("Completing activity as failed", exc_info=failed.value)

    # SMTP: the same password, accepted by a relay that requires AUTH; and the plain sink of the test session.
    port, folder = auth_sink
    # The mail sender process marks messages in the settings' database (adapters/email/sender.py): the pool's.
    with_auth = configured.model_copy(update={"database_url": settings.database_url,
                                              "smtp_url": type(configured.smtp_url)(
                                                  f"smtp://user:{SMTP_PASSWORD}@127.0.0.1:{port}")})
    sent = await Mailer(with_auth, pool).send(message(eid, "auth/1"))
    assert sent.delivered_now and len(list(folder.glob("*.eml"))) == 1
    plain = configured.model_copy(update={"database_url": settings.database_url, "smtp_url": settings.smtp_url})
    before = len(mail_sink.messages())
    sent = await Mailer(plain, pool).send(message(eid, "sink/1"))
    assert sent.delivered_now and len(mail_sink.messages()) == before + 1
    for path in [*folder.glob("*.eml"), *mail_sink.messages()[before:]]:
        assert not leaks(path.read_text(errors="replace")), f"{path.name} carries a secret"

    # Reply tokens: signed and verified with the secret; forged and spoofed replies rejected (and logged).
    scope = ReplyScope(action_id="A1", number=1, expires_at=datetime.now(UTC) + timedelta(days=30))
    token = sign_reply_token(eid, scope, "ben@acme.example", configured.reply_secret)
    assert verify_reply_token(token, configured.reply_secret, datetime.now(UTC)).engagement_id == eid
    genuine = f"checkin+{token}@{configured.inbound_domain}"
    forged = f"checkin+{sign_reply_token(eid, scope, 'ben@acme.example', 'guessed')}@{configured.inbound_domain}"
    nowhere = await Client.connect(f"127.0.0.1:{secret_env['temporal']}", lazy=True, api_key=API_KEY, tls=True,
                                   data_converter=pydantic_data_converter)
    for rcpt, sender, reason in [(forged, "ben@acme.example", "bad_signature"),
                                 (genuine, "mallory@evil.example", "spoofed_sender")]:
        outcome = await apply_reply(reply_mail(rcpt, sender, "42"), sender, [rcpt], configured, nowhere, pool)
        assert (outcome.outcome, outcome.reason) == ("rejected", reason), outcome
        assert not leaks(outcome.model_dump_json() + outcome.smtp_response())
    # A genuine reply reaches for Temporal (API key, nothing listening): deferred, and logged as such.
    outcome = await apply_reply(reply_mail(genuine, "ben@acme.example", "42"), "ben@acme.example", [genuine],
                                configured, nowhere, pool, timeout=timedelta(seconds=3))
    assert (outcome.outcome, outcome.reason) == ("deferred", "temporal_unavailable"), outcome

    # Temporal with an API key at a dead address: the error names the address, never the key.
    with pytest.raises(TemporalUnavailable) as unreachable:
        await connect(configured)
    assert "ENGAGE_TEMPORAL_ADDRESS" in str(unreachable.value)
    assert not leaks(str(unreachable.value)) and not leaks(repr(unreachable.value.__cause__))
    log.exception("cannot start the worker", exc_info=unreachable.value)

    # The CLI's one error line, for an unreachable Postgres and an unreachable Temporal.
    env = {k: v for k, v in os.environ.items() if k.startswith("ENGAGE_") or k in ("PATH", "HOME", "LANG")}
    code, out, err = await engage(env, "list")
    assert code == 3 and "Postgres" in err and "ENGAGE_DATABASE_URL" in err, (code, out, err)
    print(out, err)
    code, out, err = await engage(env, "status", "acme-2027-q1")
    assert code == 3 and "ENGAGE_TEMPORAL_ADDRESS" in err, (code, out, err)
    print(out, err)

    captured = capfd.readouterr()
    everything = captured.out + captured.err + caplog.text + "\n".join(
        f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    # The capture saw what it should: the structlog lines, the rejections, the CLI's error lines.
    for expected in ("settings loaded", "send_message failed", "reply rejected", "bad_signature",
                     "spoofed_sender", "reply deferred", "cannot reach Postgres", "cannot reach Temporal",
                     "**********"):
        assert expected in everything, f"{expected!r} not captured"
    found = leaks(everything)
    assert not found, f"secrets in the output: {found}"


# ---------------------------------------------------------------------------------------------------------
# The development secret: only `engage dev` (ENGAGE_DEV_STACK=1) and the tests may run with it
# ---------------------------------------------------------------------------------------------------------


def test_the_development_secret_and_short_secrets_are_refused_outside_the_dev_stack() -> None:
    def error(**values: Any) -> str | None:
        return Settings(_env_file=None, **values).production_secret_error()  # type: ignore[call-arg]

    dev = error()
    assert dev is not None and "ENGAGE_REPLY_SECRET" in dev and "development" in dev and "openssl rand -hex 32" in dev
    short = error(reply_secret="x" * 31)
    assert short is not None and "shorter than 32 bytes" in short and "x" * 31 not in short
    assert error(reply_secret="x" * 32) is None
    assert error(reply_secret=REPLY_SECRET) is None
    assert error(dev_stack=True) is None and error(dev_stack=True, reply_secret="short") is None


@pytest.mark.parametrize("command", [[ENGAGE, "worker"], [ENGAGE, "inbox"], [sys.executable, "-m", "worker"]])
async def test_the_worker_and_the_inbox_refuse_to_start_with_the_development_secret(
    command: list[str], secret_env: dict[str, int],
) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith("ENGAGE_") or k in ("PATH", "HOME", "LANG")}
    for secret, problem in [(None, "built-in development secret"), ("too-short", "shorter than 32 bytes")]:
        env.pop("ENGAGE_REPLY_SECRET", None)
        if secret is not None:
            env["ENGAGE_REPLY_SECRET"] = secret
        proc = await asyncio.create_subprocess_exec(*command, env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        lines = [line for line in err.decode().splitlines() if line.strip()]
        assert proc.returncode == 2, (command, proc.returncode, out, err)
        assert len(lines) == 1 and problem in lines[0] and "openssl rand -hex 32" in lines[0], lines
    # Started by `engage dev` (or a test), the same secret is allowed: the process goes on to reach Temporal,
    # which is not there (exit 3, not 2).
    env.pop("ENGAGE_REPLY_SECRET")
    env["ENGAGE_DEV_STACK"] = "1"
    proc = await asyncio.create_subprocess_exec(*command, env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode != 2 and b"development secret" not in err, (command, proc.returncode, err)
