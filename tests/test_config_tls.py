"""config.py's TLS settings over a real loopback TLS socket: each way to trust the API server's CA works, in
its order of priority, a wrong CA and the system bundle are refused, tls-server-name is what is verified.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from config import TLSSettings, load_settings
from conftest import write_client_yaml
from errors import ConfigurationError

# --------------------------------------------------------------------------------------------------
# TLS, over a real loopback TLS socket
# --------------------------------------------------------------------------------------------------


@dataclass
class TLSServer:
    port: int
    ca_pem: Path
    other_ca_pem: Path


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSServer]:
    """A loopback TLS server whose certificate names only 'api.flightctl.test' and 127.0.0.1."""
    import threading

    directory = tmp_path_factory.mktemp("tls")
    ca, other_ca = trustme.CA(), trustme.CA()
    cert = ca.issue_cert("api.flightctl.test", "127.0.0.1")
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    other_ca.cert_pem.write_to_path(str(directory / "other.pem"))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    loop = asyncio.new_event_loop()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello")
        await writer.drain()
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()

    server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield TLSServer(server.sockets[0].getsockname()[1], directory / "ca.pem", directory / "other.pem")
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.run_until_complete(server.wait_closed())
        loop.close()


async def handshake(tls: TLSSettings, port: int, host: str = "127.0.0.1") -> bytes:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=tls.ssl_context(), server_hostname=host), 5
    )
    data = await reader.read(5)
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
    return data


def _ca_data_yaml(home: Path, ca_pem: Path, **service: Any) -> None:
    data = base64.b64encode(ca_pem.read_bytes()).decode()
    write_client_yaml(
        home, {"service": {"server": "https://127.0.0.1", "certificate-authority-data": data, **service}}
    )


TLSCase = Callable[[TLSServer, Path, dict[str, str]], dict[str, str]]


def _ca_cert_path(server: TLSServer, home: Path, env: dict[str, str]) -> dict[str, str]:
    _ca_data_yaml(home, server.other_ca_pem)  # CA_CERT_PATH wins over a wrong client.yaml CA
    return env | {"CA_CERT_PATH": str(server.ca_pem)}


def _insecure(server: TLSServer, home: Path, env: dict[str, str]) -> dict[str, str]:
    _ca_data_yaml(home, server.other_ca_pem)  # INSECURE_SKIP_VERIFY wins over a client.yaml CA
    return env | {"INSECURE_SKIP_VERIFY": "true"}


def _file_ca_data(server: TLSServer, home: Path, env: dict[str, str]) -> dict[str, str]:
    _ca_data_yaml(home, server.ca_pem)
    return env


def _file_ca_path(server: TLSServer, home: Path, env: dict[str, str]) -> dict[str, str]:
    write_client_yaml(home, {"service": {"server": "https://x", "certificate-authority": str(server.ca_pem)}})
    return env


@pytest.mark.parametrize(
    ("case", "source"),
    [
        (_ca_cert_path, "CA_CERT_PATH"),
        (_insecure, "INSECURE_SKIP_VERIFY"),
        (_file_ca_data, "certificate-authority-data"),
        (_file_ca_path, "service.certificate-authority"),
    ],
    ids=["ca-cert-path", "insecure", "client-yaml-ca-data", "client-yaml-ca-file"],
)
async def test_each_tls_mode_reaches_the_server(
    tls_server: TLSServer, home: Path, env: dict[str, str], case: TLSCase, source: str
) -> None:
    settings = load_settings({}, case(tls_server, home, env))
    assert source in settings.tls.source
    assert await handshake(settings.tls, tls_server.port) == b"hello"


@pytest.mark.parametrize("how", ["env", "client-yaml"])
async def test_a_wrong_ca_is_refused(
    tls_server: TLSServer, home: Path, env: dict[str, str], how: str
) -> None:
    if how == "env":
        env = env | {"CA_CERT_PATH": str(tls_server.other_ca_pem)}
    else:
        _ca_data_yaml(home, tls_server.other_ca_pem)
    settings = load_settings({}, env)
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(settings.tls, tls_server.port)


async def test_the_system_bundle_does_not_trust_a_private_ca(
    tls_server: TLSServer, env: dict[str, str]
) -> None:
    settings = load_settings({}, env)
    assert settings.tls.source == "system CA bundle"
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(settings.tls, tls_server.port)


async def test_tls_server_name_is_verified_instead_of_the_url_host(
    tls_server: TLSServer, home: Path, env: dict[str, str], tmp_path: Path
) -> None:
    # The certificate names api.flightctl.test and 127.0.0.1, not "localhost".
    _ca_data_yaml(home, tls_server.ca_pem, **{"tls-server-name": "api.flightctl.test"})
    settings = load_settings({}, env)
    assert await handshake(settings.tls, tls_server.port, host="localhost") == b"hello"
    _ca_data_yaml(home, tls_server.ca_pem, **{"tls-server-name": "elsewhere.test"})
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(load_settings({}, env).tls, tls_server.port)


def test_ssl_context_is_built_once(tls_server: TLSServer) -> None:
    tls = TLSSettings(ca_file=tls_server.ca_pem, source="test")
    assert tls.ssl_context() is TLSSettings(ca_file=tls_server.ca_pem, source="test").ssl_context()


def test_an_unreadable_ca_is_a_configuration_error(tmp_path: Path, env: dict[str, str]) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate")
    settings = load_settings({}, env | {"CA_CERT_PATH": str(bogus)})
    with pytest.raises(ConfigurationError, match="CA_CERT_PATH"):
        settings.tls.ssl_context()
