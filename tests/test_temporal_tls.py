"""The Temporal client's TLS and API key (Temporal Cloud), from settings.

`tls_config` is checked directly. `connect` is checked for real: the time-skipping server speaks plain gRPC, so
a small TLS-terminating proxy (asyncio + ssl, ALPN h2) sits in front of it with a certificate from a CA made by
`openssl` for the test. Through it, `connect` works with an API key and the CA, and with a client certificate
(mTLS: the proxy requires one); without the CA, or without TLS, it is refused. Every failure is
`TemporalUnavailable` naming ENGAGE_TEMPORAL_ADDRESS, never the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from adapters.temporal import TemporalUnavailable, connect, tls_config
from devstack.process import free_port
from schemas.settings import Settings

API_KEY = "tmprl-test-key-Qv8.not-a-real-one"


def settings_with(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


# --- tls_config ------------------------------------------------------------------------------------------


def test_plain_settings_mean_no_tls() -> None:
    assert tls_config(settings_with()) is False


def test_an_api_key_turns_tls_on() -> None:
    assert tls_config(settings_with(temporal_api_key=API_KEY)) is True


def test_the_tls_flag_turns_tls_on_with_the_system_roots() -> None:
    assert tls_config(settings_with(temporal_tls=True)) is True


def test_certificate_paths_become_a_tls_config_with_their_bytes(tmp_path: Path) -> None:
    cert, key, ca = (tmp_path / n for n in ("client.pem", "client.key", "ca.pem"))
    cert.write_bytes(b"-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n")
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n")
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n")
    config = tls_config(settings_with(temporal_tls_cert=str(cert), temporal_tls_key=str(key),
                                      temporal_tls_ca=str(ca), temporal_api_key=API_KEY))
    assert isinstance(config, TLSConfig)
    assert config.client_cert == cert.read_bytes()
    assert config.client_private_key == key.read_bytes()
    assert config.server_root_ca_cert == ca.read_bytes()
    # A CA alone: the server is verified against it, no client certificate.
    only_ca = tls_config(settings_with(temporal_tls_ca=str(ca)))
    assert isinstance(only_ca, TLSConfig)
    assert (only_ca.client_cert, only_ca.client_private_key, only_ca.server_root_ca_cert) == (None, None,
                                                                                               ca.read_bytes())


async def test_an_unreachable_server_names_the_address_not_the_key() -> None:
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(TemporalUnavailable) as failed:
        await connect(settings_with(temporal_address=address, temporal_api_key=API_KEY))
    assert address in str(failed.value) and "ENGAGE_TEMPORAL_ADDRESS" in str(failed.value)
    assert API_KEY not in str(failed.value) and API_KEY not in repr(failed.value.__cause__)


# --- connect, for real, through TLS ------------------------------------------------------------------------


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificates")
    d = tmp_path_factory.mktemp("pki")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=engage test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign", cwd=d)
    for name, extensions in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
                             ("client", "extendedKeyUsage=clientAuth\n")):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN=engage test {name}",
                 cwd=d)
        (d / f"{name}.ext").write_text("basicConstraints=CA:FALSE\n" + extensions)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    return Pki(d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem", d / "client.key")


@dataclass
class TlsProxy:
    address: str
    connections: int = 0
    client_subjects: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def tls_proxy(pki: Pki, upstream: str, *, require_client_cert: bool) -> AsyncIterator[TlsProxy]:
    """TLS (ALPN h2) on a loopback port, plain TCP to `upstream`: what a TLS-terminating load balancer does."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.set_alpn_protocols(["h2"])
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki.ca)
    host, port = upstream.rsplit(":", 1)
    tasks: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        proxy.connections += 1
        peer = writer.get_extra_info("peercert")
        if peer:
            proxy.client_subjects.append(dict(x[0] for x in peer["subject"])["commonName"])
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        both = [asyncio.create_task(pipe(reader, up_writer)), asyncio.create_task(pipe(up_reader, writer))]
        tasks.update(both)
        await asyncio.gather(*both)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    proxy = TlsProxy(f"127.0.0.1:{server.sockets[0].getsockname()[1]}")
    try:
        yield proxy
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def refused(settings: Settings) -> str:
    with pytest.raises(TemporalUnavailable) as failed:
        await asyncio.wait_for(connect(settings), 30)
    message = str(failed.value)
    assert settings.temporal_address in message and "ENGAGE_TEMPORAL_ADDRESS" in message, message
    assert API_KEY not in message and API_KEY not in repr(failed.value.__cause__)
    return message


async def test_connect_over_tls_with_an_api_key_or_a_client_certificate(
    time_skipping_env: WorkflowEnvironment, pki: Pki
) -> None:
    upstream = time_skipping_env.client.service_client.config.target_host

    async with tls_proxy(pki, upstream, require_client_cert=False) as proxy:
        # Temporal Cloud with an API key: TLS verified against the CA, the key on the client.
        client = await asyncio.wait_for(connect(settings_with(
            temporal_address=proxy.address, temporal_api_key=API_KEY, temporal_tls_ca=str(pki.ca))), 30)
        assert client.api_key == API_KEY
        info = await client.workflow_service.get_system_info(GetSystemInfoRequest())
        assert info.capabilities is not None
        assert proxy.connections >= 1
        # The server's certificate is checked: an API key alone trusts only the system roots, not this CA.
        await refused(settings_with(temporal_address=proxy.address, temporal_api_key=API_KEY))
        # Plain gRPC to a TLS port.
        await refused(settings_with(temporal_address=proxy.address))

    async with tls_proxy(pki, upstream, require_client_cert=True) as proxy:
        # mTLS: the client certificate and key from their paths, presented to a proxy that requires one.
        client = await asyncio.wait_for(connect(settings_with(
            temporal_address=proxy.address, temporal_tls_cert=str(pki.client_cert),
            temporal_tls_key=str(pki.client_key), temporal_tls_ca=str(pki.ca))), 30)
        await client.workflow_service.get_system_info(GetSystemInfoRequest())
        assert "engage test client" in proxy.client_subjects
        # Without the client certificate the proxy hangs up.
        await refused(settings_with(temporal_address=proxy.address, temporal_tls_ca=str(pki.ca)))

    # An API key never travels in clear: TLS to the plain server fails instead of sending it.
    await refused(settings_with(temporal_address=upstream, temporal_api_key=API_KEY))
