"""MCP_WORKERS: several server processes on one port, any of which answers any request.

``python main.py`` with MCP_WORKERS=2 against the simulator: the parent starts two worker processes on
one listening socket. Pausing one worker (SIGSTOP) leaves the other to accept every new connection, so
calls that succeed while A is paused were answered by B, and the other way round; a worker that dies is
replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastmcp import Client

import cli
from config import load_settings
from errors import ConfigurationError
from tests import http_harness
from tests.http_harness import Simulated, main_process, simulated, text_of

STARTUP = 120.0  # two fresh interpreters importing the server on a shared 2-core machine


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulated]:
    with simulated(tmp_path_factory.mktemp("workers")) as running:
        yield running


def _workers(parent: int) -> list[int]:
    """The worker processes of ``parent`` (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


async def _calls(url: str, token: str, count: int) -> list[str]:
    """``count`` calls, each over a new client (a new connection), at once."""

    async def one() -> str:
        async with Client(url, auth=token) as client:
            return text_of(await client.call_tool("count_devices", {}))

    return await asyncio.gather(*(one() for _ in range(count)))


@contextlib.contextmanager
def _paused(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_two_workers_each_answer_and_a_dead_one_is_replaced(
    sim: Simulated, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_harness, "START_TIMEOUT", STARTUP)
    environ = sim.environ(MCP_WORKERS="2", MCP_AUTH_MODE="passthrough")
    with main_process(environ) as (process, url):
        workers = _workers(process.pid)
        assert len(workers) == 2
        token = sim.token("admin")
        for paused, other in (workers, workers[::-1]):
            with _paused(paused):
                answers = asyncio.run(_calls(url + "/mcp", token, 4))  # all accepted by ``other``
            assert all('"total":' in a for a in answers), (other, answers)
        os.kill(workers[0], signal.SIGKILL)
        answers = asyncio.run(_calls(url + "/mcp", token, 2))
        assert all('"total":' in a for a in answers)
        deadline = time.monotonic() + STARTUP
        while len(_workers(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        replaced = _workers(process.pid)
        assert len(replaced) == 2
        assert workers[0] not in replaced
        assert workers[1] in replaced
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in replaced), "workers stop with the parent"


def test_more_than_one_worker_runs_stateless(tmp_path: Path) -> None:
    settings = load_settings(
        {"MCP_TRANSPORT": "streamable-http", "MCP_WORKERS": "3"}, {"HOME": str(tmp_path)}
    )
    assert settings.http.workers == 3
    assert settings.http.stateless, "any worker may get any request of a session"
    assert not load_settings({"MCP_TRANSPORT": "streamable-http"}, {"HOME": str(tmp_path)}).http.stateless


@pytest.mark.parametrize("transport", ["stdio", "sse"])
def test_workers_need_streamable_http(tmp_path: Path, transport: str) -> None:
    with pytest.raises(ConfigurationError, match="MCP_WORKERS=2 needs MCP_TRANSPORT=streamable-http"):
        load_settings({"MCP_TRANSPORT": transport, "MCP_WORKERS": "2"}, {"HOME": str(tmp_path)})


def test_workers_is_one_command_line_flag(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--workers` on the command line, refused with the reason when the transport cannot have them."""
    monkeypatch.delenv("MCP_TRANSPORT", raising=False)
    assert cli.main(["--transport", "sse", "--workers", "2"]) == 2
    assert "MCP_WORKERS=2 needs MCP_TRANSPORT=streamable-http" in capsys.readouterr().err
