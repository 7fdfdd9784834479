"""console.py, the native console client: exact bytes on the wire, and every answer of the simulator.

The frame-level tests use a tiny raw websockets server on loopback that records what the client sends
and answers with hand-made frames; the rest run against the simulator over real TLS.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request
from websockets.typing import Subprotocol

from conftest import TLSFiles
from console import ConsoleClient, ConsoleResult, parse_exit_status, session_metadata
from errors import ConsoleError
from simulator.state import DEFAULT_ORG
from tests.test_simulator_console import CONSOLE_WAIT, ConsoleSimulator, serve_console_simulator

ORG = "11111111-2222-3333-4444-555555555555"
#: The session time limit where a test does not test it: a hang guard, not reached even on a loaded machine.
NO_LIMIT = 120.0


class Tokens:
    """A TokenSource with a fixed token and, optionally, a fresh one after a 401."""

    def __init__(self, token: str, fresh: str | None = None) -> None:
        self.token, self.fresh = token, fresh
        self.rejected: list[str] = []
        self.identity: str | None = "tester"

    async def bearer(self) -> str:
        return self.token

    async def refresh_after_rejection(self, rejected: str) -> str | None:
        self.rejected.append(rejected)
        return self.fresh


@pytest.fixture(scope="module")
def sim(tls_ca: trustme.CA, simulator_tls_files: TLSFiles) -> Iterator[ConsoleSimulator]:
    with serve_console_simulator(tls_ca, simulator_tls_files) as simulator:
        yield simulator


def _client(sim: ConsoleSimulator, **kwargs: Any) -> ConsoleClient:
    return ConsoleClient(sim.base_url, organization=DEFAULT_ORG, ssl_context=sim.client_ssl(), **kwargs)


async def _run(
    sim: ConsoleSimulator,
    argv: list[str],
    *,
    device: str | None = None,
    limit: int = 65536,
    time_limit: float = NO_LIMIT,
) -> ConsoleResult:
    return await _client(sim).run(
        device or sim.online, argv, tokens=Tokens(sim.token()), time_limit=time_limit, output_limit=limit
    )


# --- the bytes the client sends ------------------------------------------------------------------------


@dataclass
class Capture:
    """What a raw server saw: the handshake request and every message, with its frame type."""

    requests: list[Request] = field(default_factory=list)
    messages: list[bytes | str] = field(default_factory=list)
    close_codes: list[int | None] = field(default_factory=list)
    first_message: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)


Handler = Callable[[ServerConnection, Capture], Awaitable[None]]


async def _answer_success(ws: ServerConnection, capture: Capture) -> None:
    await capture.first_message.wait()  # like a device: stdin first
    await ws.send(b"\x01hello ")
    await ws.send(b"\x01")  # a 1-byte frame: an empty payload is allowed
    await ws.send(b"\x02warn\n")
    await ws.send(b"\x03{")  # the status may arrive split over frames
    await ws.send(b'\x03"metadata":{},"status":"Success"}')
    await ws.close(1000)


async def _serve_raw(answer: Handler, capture: Capture) -> AsyncIterator[str]:
    def pick_protocol(connection: ServerConnection, request: Request) -> None:
        capture.requests.append(request)

    async def handler(ws: ServerConnection) -> None:
        recorder = asyncio.create_task(_record(ws, capture))
        await answer(ws, capture)
        await ws.wait_closed()
        recorder.cancel()
        capture.close_codes.append(ws.close_code)
        capture.closed.set()

    server: Server = await serve(
        handler,
        "127.0.0.1",
        0,
        subprotocols=[Subprotocol("v5.channel.k8s.io")],
        process_request=pick_protocol,
        compression=None,
    )
    async with server:
        port = server.sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"


async def _record(ws: ServerConnection, capture: Capture) -> None:
    async for message in ws:
        capture.messages.append(message)
        capture.first_message.set()


@pytest.fixture
async def raw_server() -> AsyncIterator[tuple[str, Capture]]:
    capture = Capture()
    async for url in _serve_raw(_answer_success, capture):
        yield url, capture


async def test_the_client_sends_exactly_what_the_notes_prescribe(raw_server: tuple[str, Capture]) -> None:
    url, capture = raw_server
    client = ConsoleClient(url, organization=ORG)
    argv = ["journalctl", "-u", "flightctl-agent", "two words", 'q"uote']
    result = await client.run(
        "dev-1", argv, tokens=Tokens("secret-token"), time_limit=NO_LIMIT, output_limit=1000
    )

    request = capture.requests[0]
    # Query keys sorted (metadata, org_id), spaces as '+', metadata as Go marshals it: no term, no tty.
    assert request.path == (
        "/ws/v1/devices/dev-1/console?metadata=%7B%22command%22%3A%7B%22command%22%3A%22journalctl%22%2C"
        "%22args%22%3A%5B%22-u%22%2C%22flightctl-agent%22%2C%22two+words%22%2C%22q%5C%22uote%22%5D%7D%7D"
        f"&org_id={ORG}"
    )
    headers: Headers = request.headers
    assert headers["Authorization"] == "Bearer secret-token"
    assert headers["Sec-WebSocket-Protocol"] == "v5.channel.k8s.io"
    assert "Sec-WebSocket-Extensions" not in headers  # no compression: frames go out as they are
    assert "secret-token" not in request.path
    # One binary message, [0xFF, 0x00] (stdin closed), and then a normal close.
    assert capture.messages == [b"\xff\x00"]
    await capture.closed.wait()
    assert capture.close_codes == [1000]
    assert (result.exit_code, result.stdout, result.stderr) == (0, b"hello ", b"warn\n")


async def test_an_empty_org_is_still_sent_as_org_id(raw_server: tuple[str, Capture]) -> None:
    url, capture = raw_server
    await ConsoleClient(url).run("d", ["true"], tokens=Tokens("t"), time_limit=NO_LIMIT, output_limit=10)
    assert capture.requests[0].path.endswith("&org_id=")


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"", 0),
        (b'{"metadata":{},"status":"Success"}', 0),
        (
            b'{"metadata":{},"status":"Failure","reason":"NonZeroExitCode",'
            b'"details":{"causes":[{"reason":"ExitCode","message":"42"}]},"code":42}',
            42,
        ),
    ],
)
def test_exit_status_is_read_as_client_go_reads_it(payload: bytes, code: int) -> None:
    assert parse_exit_status(payload) == code


async def _drop_mid_session(ws: ServerConnection, capture: Capture) -> None:
    await capture.first_message.wait()  # nothing unread: closing sends FIN after the output, not a reset
    await ws.send(b"\x01partial output")
    ws.transport.close()  # the TCP connection ends without a close frame


async def _close_without_status(ws: ServerConnection, capture: Capture) -> None:
    await ws.send(b"\x01partial output")
    await ws.close(1000)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [(_drop_mid_session, "cut without a close frame"), (_close_without_status, "close code 1000")],
)
async def test_a_session_that_ends_without_an_exit_status_is_an_error(answer: Handler, expected: str) -> None:
    capture = Capture()
    async for url in _serve_raw(answer, capture):
        with pytest.raises(ConsoleError) as caught:
            await ConsoleClient(url).run(
                "dev-1", ["df"], tokens=Tokens("t"), time_limit=NO_LIMIT, output_limit=100
            )
    message = str(caught.value)
    assert caught.value.status_code is None
    assert "without an exit status" in message
    assert expected in message
    assert "14 bytes of stdout" in message


# --- against the simulator -------------------------------------------------------------------------------


async def test_argv_with_quotes_and_spaces_arrives_intact(sim: ConsoleSimulator) -> None:
    argv = ["echo", "a  b", "it's", '"quoted"', "semi;colon", "$(id)"]
    number = sim.sessions(sim.online)
    result = await _run(sim, argv)
    assert sim.wait_for_session(sim.online, number).argv == argv
    assert result.stdout == b'a  b it\'s "quoted" semi;colon $(id)\n'
    assert (result.exit_code, result.stderr, result.timed_out) == (0, b"", False)


async def test_non_zero_exit_and_stderr_kept_apart(sim: ConsoleSimulator) -> None:
    result = await _run(sim, ["systemctl", "status", "nosuch"])
    assert (result.exit_code, result.stdout) == (4, b"")
    assert result.stderr == b"Unit nosuch.service could not be found.\n"


async def test_a_long_command_is_stopped_at_the_timeout(sim: ConsoleSimulator) -> None:
    number = sim.sessions(sim.online)
    result = await _run(sim, ["sleep", "60"], time_limit=0.5)
    assert result.timed_out
    assert result.exit_code is None
    assert result.duration >= 0.5
    # Closing the session is what stops the command on the device.
    assert sim.wait_for_session(sim.online, number).outcome == "client-closed"


async def test_megabytes_of_output_are_cut_at_the_cap(sim: ConsoleSimulator) -> None:
    count = 400_000
    total = sum(len(f"{n}\n") for n in range(1, count + 1))
    result = await _run(sim, ["seq", str(count)], limit=65536)
    assert total > 2_500_000
    assert (result.exit_code, len(result.stdout), result.stdout_bytes) == (0, 65536, total)
    assert result.stdout_truncated
    assert not result.stderr_truncated
    assert result.stdout == "".join(f"{n}\n" for n in range(1, count + 1)).encode()[:65536]


@pytest.mark.parametrize(
    ("role", "user", "status", "words"),
    [
        ("missing", "admin", 404, "was not found"),
        ("decommissioned", "admin", 409, "Device is decommissioned"),
        ("paused", "admin", 409, "Device is paused due to conflicts"),
        ("offline", "admin", 504, "probably offline"),
        ("online", "viewer", 403, "'devices/console' 'get' permission"),
    ],
)
async def test_each_error_answer_says_what_happened(
    sim: ConsoleSimulator, role: str, user: str, status: int, words: str
) -> None:
    device = "no-such-device" if role == "missing" else getattr(sim, role)
    with pytest.raises(ConsoleError) as caught:
        await _client(sim).run(
            device, ["true"], tokens=Tokens(sim.token(user)), time_limit=NO_LIMIT, output_limit=10
        )
    assert caught.value.status_code == status
    assert words in str(caught.value)
    assert device in str(caught.value)


async def test_a_rejected_token_is_refreshed_once(sim: ConsoleSimulator) -> None:
    tokens = Tokens("expired-or-unknown", fresh=sim.token())
    result = await _client(sim).run(sim.online, ["true"], tokens=tokens, time_limit=NO_LIMIT, output_limit=10)
    assert result.exit_code == 0
    assert tokens.rejected == ["expired-or-unknown"]


async def test_a_token_that_cannot_be_refreshed_is_a_401(sim: ConsoleSimulator) -> None:
    with pytest.raises(ConsoleError) as caught:
        await _client(sim).run(
            sim.online, ["true"], tokens=Tokens("nope"), time_limit=NO_LIMIT, output_limit=10
        )
    assert caught.value.status_code == 401
    assert "flightctl login" in str(caught.value)


async def test_an_untrusted_certificate_is_refused(sim: ConsoleSimulator) -> None:
    client = ConsoleClient(sim.base_url, ssl_context=ssl.create_default_context())
    with pytest.raises(ConsoleError, match="TLS failed"):
        await client.run(
            sim.online, ["true"], tokens=Tokens(sim.token()), time_limit=NO_LIMIT, output_limit=10
        )


async def test_the_handshake_wait_is_bounded_by_open_timeout(sim: ConsoleSimulator) -> None:
    client = _client(sim, open_timeout=CONSOLE_WAIT / 3)
    with pytest.raises(ConsoleError, match="did not finish within"):
        await client.run(
            sim.offline, ["true"], tokens=Tokens(sim.token()), time_limit=NO_LIMIT, output_limit=10
        )


async def test_a_connection_dropped_before_the_upgrade_is_a_console_error(sim: ConsoleSimulator) -> None:
    sim.server.faults.drop(1, path_prefix="/ws/")
    with pytest.raises(ConsoleError, match="Could not open the console") as caught:
        await _run(sim, ["true"])
    assert caught.value.status_code is None


def test_metadata_is_what_the_agent_parses() -> None:
    assert json.loads(session_metadata(["ls", "-l", "/"])) == {
        "command": {"command": "ls", "args": ["-l", "/"]}
    }
