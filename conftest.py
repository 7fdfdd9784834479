"""Shared pytest fixtures: a trusted test CA, TLS files, and the Flight Control simulator.

- ``tls_ca``: a trustme CA for the whole session (``tls_ca.configure_trust(ssl_context)`` trusts it).
- ``simulator_tls_files``: ``TLSFiles(cert, key, ca)``: a localhost/127.0.0.1 certificate from ``tls_ca``.
- ``simulator``: one HTTPS simulator for the session (60 devices, seed 1, console_wait_seconds=0.5); do not
  leave faults or revoked shared tokens behind: use ``make_simulator`` for those.
- ``make_simulator``: factory ``make_simulator(**kwargs) -> SimulatorServer`` (HTTPS unless ``tls=False``),
  each stopped at the end of the test; keywords as ``SimulatorServer``.
- ``simulator_ssl_context``: an ``ssl.SSLContext`` that trusts ``tls_ca`` (pass as httpx ``verify=``).
- ``simulator_client``: ``httpx.Client`` on the shared ``simulator`` (base_url set, TLS trusted, no token).
- ``home``: an empty home directory; ``env``: ``{"HOME": home}``, an environment for ``load_settings`` in
  which no real client.yaml is found; ``write_client_yaml(home, document)`` puts one at its default place.
- ``clean_environment``: for code that reads the real process environment (the CLI): an empty HOME (returned)
  and none of the server's variables; the CLI test modules use it for every test through ``pytestmark``.

For the end-to-end suites (test_flightctl_mcp.py, tests/test_e2e_*.py; helpers in tests/e2e_harness.py):

- ``sim``: one HTTPS simulator per test module (30 devices); modules that define a ``sim`` of their own
  use theirs. Modules whose tests add faults mark themselves
  ``pytestmark = pytest.mark.usefixtures("no_faults_left_behind")``.
- ``ca_file``: the CA file that signed ``sim``'s certificate.
- ``http_servers``: ``python main.py`` serving sse and streamable-http against ``sim``, one pair per
  module: ``{"sse": base_url, "streamable-http": base_url}``.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
import trustme
import yaml

from config import OPTIONS
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


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty home directory, so no real ~/.config/flightctl/client.yaml leaks into a test."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    return {"HOME": str(home)}


def write_client_yaml(home: Path, document: dict[str, Any]) -> Path:
    path = home / ".config" / "flightctl" / "client.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The CLI reads the real process environment: give it an empty home and none of our variables."""
    for option in OPTIONS:
        monkeypatch.delenv(option.env, raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


# --- the end-to-end suites ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim(simulator_tls_files: TLSFiles) -> Iterator[SimulatorServer]:
    """This module's HTTPS simulator (30 devices); tests that add faults have them cleared afterwards."""
    with SimulatorServer(
        devices=30, tls_cert=simulator_tls_files.cert, tls_key=simulator_tls_files.key
    ) as server:
        yield server


@pytest.fixture
def no_faults_left_behind(sim: SimulatorServer) -> Iterator[None]:
    yield
    sim.faults.clear()


@pytest.fixture(scope="module")
def ca_file(simulator_tls_files: TLSFiles) -> Path:
    return simulator_tls_files.ca


@pytest.fixture(scope="module")
def http_servers(
    sim: SimulatorServer, ca_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """`python main.py` serving sse and streamable-http (the module's shared subprocesses)."""
    # Imported here: the harness pulls in the server and fastmcp's client, which suites that only
    # exercise the simulator never need at collection.
    from tests.e2e_harness import env_only, http_main_py

    work = tmp_path_factory.mktemp("http-servers")
    environments = {
        transport: env_only(sim, ca_file, work / transport, MCP_TRANSPORT=transport, MCP_HOST="127.0.0.1")
        for transport in ("sse", "streamable-http")
    }
    with http_main_py(environments, work) as urls:
        yield urls
