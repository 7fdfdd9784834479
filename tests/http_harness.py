"""Helpers for the HTTP-transport tests: settings aimed at a simulator, the real HTTP app served by
uvicorn in a thread on a free loopback port, and ``python main.py`` as a subprocess.

Everything binds 127.0.0.1; in-thread servers bind port 0 and report the port they got.
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
import time
from collections.abc import Iterator, Mapping
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
START_TIMEOUT = 20.0


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
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="http-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the HTTP server under test did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    scheme = "https" if settings.http.tls_cert else "http"
    try:
        yield ServedApp(settings, f"{scheme}://127.0.0.1:{port}", services)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        services.api.close()  # idle pooled connections would hold the simulator's shutdown


def free_port() -> int:
    """A port that was free a moment ago, for subprocesses whose settings cannot say "port 0"."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def main_process(
    environ: Mapping[str, str], *, open_files: int | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``python main.py`` with this environment on a free port (and at most ``open_files`` open files);
    yields the process and its base URL once /healthz answers."""
    port = free_port()
    env = {**environ, "MCP_PORT": str(port)}

    def limit_files() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    process = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py")],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=limit_files if open_files is not None else None,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, url)
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


def wait_healthy(process: subprocess.Popen[bytes], url: str) -> None:
    """Poll /healthz until it answers 200; fail with the server's stderr when it exits first."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"main.py exited with {process.returncode} before serving:\n{stderr}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"main.py did not answer {url}/healthz within {START_TIMEOUT} s")


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
