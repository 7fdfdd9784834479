"""Shared pytest fixtures: a trusted test CA, TLS files, and the Flight Control simulator.

- ``tls_ca``: a trustme CA for the whole session (``tls_ca.configure_trust(ssl_context)`` trusts it).
- ``simulator_tls_files``: ``TLSFiles(cert, key, ca)``: a localhost/127.0.0.1 certificate from ``tls_ca``.
- ``simulator``: one HTTPS simulator for the session (60 devices, seed 1, console_wait_seconds=0.5); do not
  leave faults or revoked shared tokens behind: use ``make_simulator`` for those.
- ``make_simulator``: factory ``make_simulator(**kwargs) -> SimulatorServer`` (HTTPS unless ``tls=False``),
  each stopped at the end of the test; keywords as ``SimulatorServer``.
- ``simulator_ssl_context``: an ``ssl.SSLContext`` that trusts ``tls_ca`` (pass as httpx ``verify=``).
- ``simulator_client``: ``httpx.Client`` on the shared ``simulator`` (base_url set, TLS trusted, no token).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
import trustme

from simulator.harness import SimulatorServer


class TLSFiles(NamedTuple):
    cert: Path
    key: Path
    ca: Path


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    """A throwaway certificate authority trusted by the tests (never by the system)."""
    return trustme.CA()


@pytest.fixture(scope="session")
def simulator_tls_files(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """Certificate and key for localhost/127.0.0.1/::1 signed by ``tls_ca``, plus the CA, as PEM files."""
    directory = tmp_path_factory.mktemp("simulator-tls")
    cert = tls_ca.issue_cert("localhost", "127.0.0.1", "::1")
    files = TLSFiles(directory / "server.pem", directory / "server.key", directory / "ca.pem")
    cert.cert_chain_pems[0].write_to_path(str(files.cert))
    for extra in cert.cert_chain_pems[1:]:
        with files.cert.open("ab") as handle:
            handle.write(extra.bytes())
    cert.private_key_pem.write_to_path(str(files.key))
    tls_ca.cert_pem.write_to_path(str(files.ca))
    return files


@pytest.fixture(scope="session")
def simulator(simulator_tls_files: TLSFiles) -> Iterator[SimulatorServer]:
    """The shared HTTPS simulator: 60 devices of every status, seed 1, console waits 0.5 s."""
    with SimulatorServer(
        devices=60,
        seed=1,
        tls_cert=simulator_tls_files.cert,
        tls_key=simulator_tls_files.key,
        console_wait_seconds=0.5,
    ) as server:
        yield server


@pytest.fixture
def make_simulator(simulator_tls_files: TLSFiles) -> Iterator[Callable[..., SimulatorServer]]:
    """Factory for a private simulator (HTTPS by default, ``tls=False`` for HTTP), stopped after the test."""
    started: list[SimulatorServer] = []

    def make(*, tls: bool = True, **kwargs: Any) -> SimulatorServer:
        kwargs.setdefault("devices", 60)
        kwargs.setdefault("console_wait_seconds", 0.5)
        if tls:
            kwargs.setdefault("tls_cert", simulator_tls_files.cert)
            kwargs.setdefault("tls_key", simulator_tls_files.key)
        server = SimulatorServer(**kwargs)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def simulator_ssl_context(tls_ca: trustme.CA) -> ssl.SSLContext:
    """A client SSL context trusting the session CA."""
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    return context


@pytest.fixture
def simulator_client(
    simulator: SimulatorServer, simulator_ssl_context: ssl.SSLContext
) -> Iterator[httpx.Client]:
    """An httpx client for the shared simulator; add ``headers=simulator.auth_headers(...)`` per request."""
    with httpx.Client(base_url=simulator.base_url, verify=simulator_ssl_context, timeout=30) as client:
        yield client
