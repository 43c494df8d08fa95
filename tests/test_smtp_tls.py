"""SMTP credentials travel only over TLS, and a message is marked sent before QUIT.

Real aiosmtpd relays on loopback that require AUTH: one without STARTTLS (behind a proxy that records every
byte the client writes, i.e. the wire), one offering STARTTLS and one with implicit TLS (`smtps`), both with
a certificate from a throwaway CA that the client trusts through SSL_CERT_FILE, as an operator would trust a
private relay's CA.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import subprocess
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr
from structlog.testing import capture_logs

from adapters.email.send import Mailer
from adapters.email.smtp import InsecureRelayError
from devstack.mailsink import EmlWriter
from devstack.process import free_port
from schemas.events import MessageKind
from schemas.messages import MessageContext, OutboundMessage, Recipient
from schemas.settings import Settings
from store import outbox

PASSWORD = "tls-only-Pw9-secret"
# The password as AUTH PLAIN and AUTH LOGIN carry it.
ON_THE_WIRE = (PASSWORD.encode(), base64.b64encode(f"\0mailer\0{PASSWORD}".encode()),
               base64.b64encode(PASSWORD.encode()))

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


class RecordingAuth:
    """aiosmtpd authenticator: records every attempt, accepts mailer / PASSWORD."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, bytes]] = []

    def __call__(self, server: object, session: object, envelope: object, mechanism: str,
                 auth_data: object) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        self.attempts.append((mechanism, auth_data.password))
        return AuthResult(success=auth_data.login == b"mailer" and auth_data.password == PASSWORD.encode())


class HeldQuit(EmlWriter):
    """A sink that, at QUIT, signals and waits to be released, then answers 421 instead of 221 (a failed QUIT)."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.quit_seen = threading.Event()
        self.release = threading.Event()

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.quit_seen.set()
        await asyncio.to_thread(self.release.wait, 10)
        return "421 4.3.0 closing without a goodbye"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: its own CA."""
    folder = tmp_path_factory.mktemp("smtp-tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], cwd=folder, check=True, capture_output=True,
                   timeout=30)
    return folder / "cert.pem", folder / "key.pem"


@pytest.fixture
def trusted(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """The client trusts the test CA (SSL_CERT_FILE, read by OpenSSL for every default context)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Any]:
    """Starts aiosmtpd relays requiring AUTH; each call returns (port, authenticator, mail folder, handler)."""
    started: list[Controller] = []

    def start(handler_class: type[EmlWriter] = EmlWriter, **kwargs: Any) -> tuple[int, RecordingAuth, Path, Any]:
        port, auth = free_port(), RecordingAuth()
        folder = tmp_path / f"mail-{port}"
        handler = handler_class(folder)
        controller = Controller(handler, hostname="127.0.0.1", port=port, authenticator=auth, auth_required=True,
                                ready_timeout=10, **kwargs)
        controller.start()
        started.append(controller)
        return port, auth, folder, handler

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture
async def wire_tap() -> AsyncIterator[Any]:
    """A TCP proxy on loopback recording every byte the client sends to the relay behind it."""
    servers: list[asyncio.Server] = []

    async def tap(upstream_port: int) -> tuple[int, bytearray]:
        sent = bytearray()

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bool) -> None:
            try:
                while data := await reader.read(65536):
                    if record:
                        sent.extend(data)
                    writer.write(data)
                    await writer.drain()
            except ConnectionError:
                pass
            finally:
                writer.close()

        async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
            relay_r, relay_w = await asyncio.open_connection("127.0.0.1", upstream_port)
            await asyncio.gather(pipe(client_r, relay_w, True), pipe(relay_r, client_w, False))

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        return server.sockets[0].getsockname()[1], sent

    yield tap
    for server in servers:
        server.close()
        await server.wait_closed()


def with_smtp(settings: Settings, url: str) -> Settings:
    return settings.model_copy(update={"smtp_url": SecretStr(url)})


def message() -> OutboundMessage:
    key = f"tls-{uuid.uuid4().hex[:8]}"
    return OutboundMessage(
        engagement_id="tls-2027", key=f"tls-2027/{key}", kind=MessageKind.report,
        to=Recipient(name="Ana Silva", email="ana@acme.example", timezone="Europe/Berlin"),
        context=MessageContext(client="Acme", engagement_id="tls-2027", recipient_name="Ana Silva",
                               consultant_name="Cora Consultant"),
    )


async def test_credentials_are_never_sent_to_a_relay_without_tls(
    settings: Settings, pool: asyncpg.Pool, relay: Any, wire_tap: Any, trusted: ssl.SSLContext,
) -> None:
    port, auth, folder, _ = relay(auth_require_tls=False)  # a relay that would take the password in clear
    tapped, wire = await wire_tap(port)
    mailer = Mailer(with_smtp(settings, f"smtp://mailer:{PASSWORD}@127.0.0.1:{tapped}"), pool)
    msg = message()
    with capture_logs() as logs, pytest.raises(InsecureRelayError) as refused:
        await mailer.send(msg)

    assert "ENGAGE_SMTP_URL" in str(refused.value) and "STARTTLS" in str(refused.value)
    assert PASSWORD not in str(refused.value)
    errors = [e for e in logs if e["log_level"] == "error"]
    assert len(errors) == 1 and "ENGAGE_SMTP_URL" in errors[0]["event"], logs
    assert b"EHLO" in wire, "the tap saw the conversation"
    assert b"AUTH" not in wire.upper() and not any(p in wire for p in ON_THE_WIRE), bytes(wire)
    assert auth.attempts == [] and not list(folder.glob("*.eml"))
    row = await outbox.status_of(pool, mailer.message_id(msg))
    assert row is not None and row["status"] == "pending", "retryable: it goes out once the relay is fixed"

    # The operator fixes the relay (it now offers STARTTLS): the retry delivers the one copy.
    fixed_port, fixed_auth, fixed_folder, _ = relay(tls_context=trusted, require_starttls=True)
    fixed = Mailer(with_smtp(settings, f"smtp://mailer:{PASSWORD}@127.0.0.1:{fixed_port}"), pool)
    assert (await fixed.send(msg)).delivered_now
    assert (await fixed.send(msg)).delivered_now is False
    assert len(list(fixed_folder.glob("*.eml"))) == 1 and len(fixed_auth.attempts) == 1


async def test_credentials_go_over_starttls(
    settings: Settings, pool: asyncpg.Pool, relay: Any, wire_tap: Any, trusted: ssl.SSLContext,
) -> None:
    port, auth, folder, _ = relay(tls_context=trusted, require_starttls=True)
    tapped, wire = await wire_tap(port)
    mailer = Mailer(with_smtp(settings, f"smtp://mailer:{PASSWORD}@127.0.0.1:{tapped}"), pool)
    assert (await mailer.send(message())).delivered_now
    assert auth.attempts and auth.attempts[-1][1] == PASSWORD.encode()
    assert len(list(folder.glob("*.eml"))) == 1
    assert b"STARTTLS" in wire and not any(p in wire for p in ON_THE_WIRE)


async def test_credentials_go_over_smtps(
    settings: Settings, pool: asyncpg.Pool, relay: Any, trusted: ssl.SSLContext,
) -> None:
    # aiosmtpd does not count implicit TLS as TLS for its own AUTH check: the client's check is the one tested.
    port, auth, folder, _ = relay(ssl_context=trusted, auth_require_tls=False)
    mailer = Mailer(with_smtp(settings, f"smtps://mailer:{PASSWORD}@127.0.0.1:{port}"), pool)
    assert (await mailer.send(message())).delivered_now
    assert auth.attempts and len(list(folder.glob("*.eml"))) == 1


async def test_a_relay_without_tls_and_without_credentials_still_works(settings: Settings, pool: asyncpg.Pool,
                                                                       tmp_path: Path) -> None:
    """No credentials, nothing to protect: a local sink or a relay that trusts the network (as `engage dev`)."""
    port = free_port()
    controller = Controller(EmlWriter(tmp_path / "plain"), hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        mailer = Mailer(with_smtp(settings, f"smtp://127.0.0.1:{port}"), pool)
        assert (await mailer.send(message())).delivered_now
    finally:
        controller.stop()


async def test_the_message_is_marked_sent_before_quit_and_a_failed_quit_changes_nothing(
    settings: Settings, pool: asyncpg.Pool, relay: Any, trusted: ssl.SSLContext,
) -> None:
    port, _, folder, handler = relay(HeldQuit, tls_context=trusted, require_starttls=True)
    mailer = Mailer(with_smtp(settings, f"smtp://mailer:{PASSWORD}@127.0.0.1:{port}"), pool)
    msg = message()
    sending = asyncio.create_task(mailer.send(msg))
    try:
        assert await asyncio.to_thread(handler.quit_seen.wait, 10), "the client said QUIT"
        # The relay holds QUIT: the message is at the relay and the outbox already says sent.
        row = await outbox.status_of(pool, mailer.message_id(msg))
        assert row is not None and row["status"] == "sent" and row["attempts"] == 1
        assert not sending.done()
    finally:
        handler.release.set()
    result = await asyncio.wait_for(sending, 10)  # the 421 to QUIT is not an error: the relay has the message
    assert result.delivered_now and len(list(folder.glob("*.eml"))) == 1
    assert (await mailer.send(msg)).delivered_now is False
    timing = mailer.recent_timings[-1]
    assert timing.message_id == mailer.message_id(msg) and 0 <= timing.window_s < 1 and timing.quit_s > 0
