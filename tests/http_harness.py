"""Helpers for the HTTP-transport tests: settings aimed at a simulator, the real HTTP app served by
uvicorn in a thread, and ``python main.py`` as a subprocess.

Every server under test gets a loopback socket this module bound to port 0 and already listens on
(``listening_socket``): the port is known before the server starts and cannot be taken by anyone else,
and a request sent early waits in the socket's backlog until the server answers it. So readiness is one
``GET /healthz`` (``wait_ready``): no guessed free port, no printed line, no sleep.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import resource
import signal
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastmcp.client.client import CallToolResult
from mcp_types import TextContent

import http_server
from config import Settings, load_settings
from main import build_server
from services import Services
from simulator.harness import SimulatorServer
from tests.query_support import https_simulator

ROOT = Path(__file__).resolve().parent.parent
#: How long a server under test may take to start on a loaded machine: a hang guard, not a speed target.
START_TIMEOUT = 120.0


@dataclasses.dataclass(frozen=True)
class Simulated:
    """A running HTTPS simulator, the file holding its CA, and a scratch HOME for servers under test."""

    sim: SimulatorServer
    ca_file: Path
    home: Path

    def token(self, user: str = "admin") -> str:
        return self.sim.issue_access_token(user, ttl=3600)

    def environ(self, **overrides: str) -> dict[str, str]:
        """Environment for an HTTP server against this simulator (pass-through on loopback by default)."""
        return http_environ(self.sim.base_url, self.ca_file, self.home, **overrides)

    def validations(self) -> int:
        """How many times Flight Control was asked to validate a token so far."""
        return sum(1 for r in self.sim.state.requests() if r["path"] == "/api/v1/auth/validate")

    def ssl_context(self) -> ssl.SSLContext:
        """Trusts exactly the simulator's test CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def device_names(self, token: str) -> set[str]:
        """What Flight Control itself lists for this token: the ground truth for RBAC tests."""
        response = httpx.get(
            self.sim.api_url + "/devices",
            params={"limit": 1000},
            headers=bearer(token),
            verify=self.ssl_context(),
        )
        response.raise_for_status()
        return {item["metadata"]["name"] for item in response.json()["items"]}


@contextlib.contextmanager
def simulated(tmp: Path, **options: Any) -> Iterator[Simulated]:
    """A small HTTPS simulator for one test module."""
    options.setdefault("devices", 20)
    with https_simulator(tmp, **options) as (sim, ca):
        ca_file = tmp / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        home = tmp / "home"
        home.mkdir()
        yield Simulated(sim, ca_file, home)


def http_environ(api_url: str, ca_file: Path, home: Path, **overrides: str) -> dict[str, str]:
    """Environment for an HTTP server against the simulator at ``api_url``; overrides by variable name."""
    environ = {
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "PATH": os.environ.get("PATH", ""),
        "API_BASE_URL": api_url,
        "CA_CERT_PATH": str(ca_file),
        "REQUEST_TIMEOUT": "5",
        "MCP_TRANSPORT": "streamable-http",
        "MCP_HOST": "127.0.0.1",
        "MCP_AUTH_MODE": "passthrough",
        "FASTMCP_SHOW_SERVER_BANNER": "false",
        "FASTMCP_CHECK_FOR_UPDATES": "off",
    }
    environ.update(overrides)
    return environ


def settings_from(environ: Mapping[str, str]) -> Settings:
    """Settings exactly as the server would build them from this environment, bound to port 0."""
    return dataclasses.replace(load_settings({}, environ), port=0)


@dataclasses.dataclass
class ServedApp:
    """The complete HTTP app (MCP endpoint, REST, health, every hardening layer) on a real socket."""

    settings: Settings
    url: str
    services: Services

    @property
    def mcp_url(self) -> str:
        return self.url + self.settings.path


@contextlib.contextmanager
def serve_in_thread(settings: Settings, **uvicorn_overrides: Any) -> Iterator[ServedApp]:
    """Serve ``settings`` like main.serve does, in a thread, until the block ends."""
    services = Services.from_settings(settings)
    app = http_server.build_http_app(settings, build_server(settings, services), services)
    config = http_server.uvicorn_config(settings, app)
    for name, value in uvicorn_overrides.items():
        setattr(config, name, value)
    scheme = "https" if settings.http.tls_cert else "http"
    with listening_socket() as sock:
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="http-under-test", daemon=True
        )
        thread.start()
        url = f"{scheme}://127.0.0.1:{sock.getsockname()[1]}"
        try:
            wait_ready(url, lambda: "the in-thread server" + ("" if thread.is_alive() else " exited"))
            yield ServedApp(settings, url, services)
        finally:
            server.should_exit = True
            thread.join(timeout=15)
            services.api.close()  # idle pooled connections would hold the simulator's shutdown
            if thread.is_alive():  # said, not left behind: its loop and sockets would stay open
                raise RuntimeError("the in-thread server did not stop within 15 s")


@contextlib.contextmanager
def listening_socket() -> Iterator[socket.socket]:
    """A loopback TCP socket on a port the kernel picked, already listening, closed when the block ends.

    Hand it to the server under test (uvicorn ``sockets=``, or ``MCP_LISTEN_FD`` for a subprocess);
    connections made before the server runs wait in its backlog instead of being refused.
    """
    # IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        yield sock
    finally:
        sock.close()


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port where connections are refused: bound but not listening, held so no one takes it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        yield port


def wait_ready(url: str, describe_failure: Callable[[], str]) -> None:
    """One ``GET /healthz`` that waits (in the listening socket's backlog) until the server answers it."""
    try:
        response = httpx.get(url + "/healthz", timeout=START_TIMEOUT, verify=False)
    except httpx.HTTPError as exc:
        raise RuntimeError(f"{url}/healthz got no answer ({exc!r}):\n{describe_failure()}") from exc
    if response.status_code != 200:
        raise RuntimeError(f"{url}/healthz answered {response.status_code}:\n{describe_failure()}")


def main_process(
    environ: Mapping[str, str], *args: str, output: Path | None = None, open_files: int | None = None
) -> contextlib.AbstractContextManager[tuple[subprocess.Popen[bytes], str]]:
    """``python main.py [args]`` serving HTTP, as ``serving_process`` runs it."""
    command = [sys.executable, str(ROOT / "main.py"), *args]
    return serving_process(command, environ, output=output, open_files=open_files)


@contextlib.contextmanager
def serving_process(
    command: Sequence[str],
    environ: Mapping[str, str],
    *,
    output: Path | None = None,
    cwd: Path = ROOT,
    open_files: int | None = None,
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The server ``command`` with this environment, serving HTTP on a socket bound for it; yields the
    process and its base URL once /healthz answered, and stops it with SIGTERM (as podman stop does).

    stdout and stderr go to ``output`` when given, else to pipes read after the process ends; the
    process may open at most ``open_files`` files when that is given.
    """

    def limit_files() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(output.open("wb")) if output is not None else None
        with listening_socket() as sock:
            process = subprocess.Popen(
                list(command),
                cwd=cwd,
                env={**environ, "MCP_LISTEN_FD": str(sock.fileno())},
                pass_fds=(sock.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=sink or subprocess.PIPE,
                stderr=sink or subprocess.PIPE,
                preexec_fn=limit_files if open_files is not None else None,
            )
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        # Only the server holds the socket now: if it exits, connecting is refused instead of hanging.
        try:
            wait_ready(url, lambda: _exit_report(process, output))
            yield process, url
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()


def _exit_report(process: subprocess.Popen[bytes], output: Path | None) -> str:
    if process.poll() is None:
        return "the server is still running"
    if output is not None:
        text = output.read_text(errors="replace")
    else:
        text = process.stderr.read().decode(errors="replace") if process.stderr else ""
    return f"the server exited with {process.returncode}:\n{text}"


def text_of(result: CallToolResult) -> str:
    """The JSON text of a tool answer (the server sends every answer as one text block)."""
    block = result.content[0]
    assert isinstance(block, TextContent), block
    return block.text


#: A raw MCP initialize request and the headers a streamable-http POST needs, for tests below the client.
INITIALIZE: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
