"""Native client for the Flight Control device console: one command, its output and its exit status.

It speaks what ``flightctl console`` (k8s client-go, ``v5.channel.k8s.io``) speaks, over the websockets
library: ``GET wss://<api>/ws/v1/devices/<name>/console?metadata=<json>&org_id=<org>`` with the bearer
token in the ``Authorization`` header (never in the URL or on a command line) and the same TLS context
as the REST calls. After the upgrade every message is binary with a channel byte. This client has no
stdin, so its only message is ``[0xFF, 0x00]`` (stdin closed), sent at once; it reads stdout (1) and
stderr (2) into capped buffers and the exit status from channel 3, then expects close code 1000.

The handshake may legitimately take up to a minute while Flight Control waits for the device's agent,
so ``open_timeout`` defaults to 65 s; the command's own timeout starts after the upgrade. When it runs
out the client closes the connection, which makes the agent kill the command.

Every failure is an ``errors.ConsoleError`` (``status_code`` set when HTTP answered before the upgrade)
whose message says what happened and what to try next.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import ssl
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)
from websockets.typing import Subprotocol

from auth import organization_for
from errors import ConsoleError

if TYPE_CHECKING:
    from auth import TokenSource
    from config import Settings

__all__ = [
    "CLOSE_STDIN",
    "MAX_STATUS_BYTES",
    "SUBPROTOCOL",
    "ConsoleClient",
    "ConsoleResult",
    "console_url",
    "parse_exit_status",
    "session_metadata",
]

SUBPROTOCOL = "v5.channel.k8s.io"
STDOUT, STDERR, STATUS, CLOSE = 1, 2, 3, 0xFF
CLOSE_STDIN = bytes([CLOSE, 0])  # "stdin is closed": the only message this client sends
DEFAULT_OPEN_TIMEOUT = 65.0  # Flight Control waits up to 60 s for the agent before it answers
PING_INTERVAL = 5.0  # as client-go
PING_TIMEOUT = 60.0
CLOSE_TIMEOUT = 5.0
MAX_MESSAGE_BYTES = 1024 * 1024  # the agent sends at most 4 KiB per message
_DETAIL_LIMIT = 300
MAX_STATUS_BYTES = 64 * 1024  # a real status is about 200 bytes; more is a hostile or broken agent
_EXIT_CODE = re.compile(r"[0-9]{1,3}")  # ASCII digits only: "²".isdigit() is True, int("²") fails
_MAX_EXIT_CODE = 255
_QUOTED_LIMIT = 200
_CHECK_EFFECT = "The command may or may not have run; check its effect on the device before running it again."

# What each pre-upgrade answer means for the user, and what to do next.
_REJECTIONS: dict[int, str] = {
    400: "Flight Control refused the console request for device {device!r} ({detail}). Check the "
    "organization (a user in several names one: pass organization, or set ORG_ID) and that the server "
    "has a token configured.",
    401: "Flight Control did not accept the token for the console of device {device!r} ({detail}). "
    "Log in again (`flightctl login`) or refresh the server's credentials.",
    403: "Not allowed to open a console on device {device!r} ({detail}). The user needs the "
    "'devices/console' 'get' permission in this organization; ask a Flight Control administrator.",
    404: "Device {device!r} was not found ({detail}). Check the exact name with the device query tool.",
    409: "Device {device!r} cannot take a console session now ({detail}). A decommissioned device never "
    "will; a paused or restoring one must reconnect or be resumed first. Check its status.",
    429: "Flight Control is rate limiting requests ({detail}). Wait a minute and try again.",
    500: "Flight Control could not start a console session on device {device!r} ({detail}). Retry once; "
    "if it persists, check the device's agent version and the server logs.",
    503: "Flight Control is temporarily unavailable ({detail}). Try again in a moment.",
    504: "Device {device!r} did not connect to Flight Control in time ({detail}). It is probably "
    "offline: check its summary status and last-seen time, and retry when it is Online.",
}


@dataclass(frozen=True)
class ConsoleResult:
    """What came back from one command: exit code, output kept under the cap, totals and timing."""

    exit_code: int | None  # None when the command was stopped by the timeout
    stdout: bytes
    stderr: bytes
    stdout_bytes: int  # bytes the device sent, including what was cut
    stderr_bytes: int
    duration: float  # seconds, from the request to the end of the session
    timed_out: bool

    @property
    def stdout_truncated(self) -> bool:
        return self.stdout_bytes > len(self.stdout)

    @property
    def stderr_truncated(self) -> bool:
        return self.stderr_bytes > len(self.stderr)


class _CappedBuffer:
    """Keeps the first ``limit`` bytes of a stream and counts the rest."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._data = bytearray()
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self._limit - len(self._data)
        if room > 0:
            self._data.extend(data[:room])

    @property
    def data(self) -> bytes:
        return bytes(self._data)


def session_metadata(argv: list[str]) -> str:
    """``DeviceConsoleSessionMetadata`` as Go marshals it: no term, no size, tty false (so omitted)."""
    command = {"command": argv[0], "args": list(argv[1:])}
    return json.dumps({"command": command}, separators=(",", ":"), ensure_ascii=False)


def console_url(api_base_url: str, device_name: str, argv: list[str], organization: str | None) -> str:
    """The console URL: https becomes wss; the query is sorted (metadata, org_id) and org_id always set."""
    parts = urlsplit(api_base_url.rstrip("/"))
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme)
    if scheme is None:
        raise ConsoleError(
            f"The Flight Control URL {api_base_url!r} is not http(s); set API_BASE_URL to the API server's "
            "https:// address."
        )
    query = urlencode({"metadata": session_metadata(argv), "org_id": organization or ""})
    path = f"{parts.path}/ws/v1/devices/{quote(device_name, safe='')}/console"
    return f"{scheme}://{parts.netloc}{path}?{query}"


def parse_exit_status(payload: bytes) -> int:
    """The exit code from channel 3, as client-go reads it (``details.causes[ExitCode].message``).

    The payload comes from the device, so anything but a well-formed status is a ``ConsoleError`` that
    quotes the start of what was sent, as data.
    """
    if not payload.strip():
        return 0  # an empty status followed by a normal close means success
    try:
        status = json.loads(payload)
    except (ValueError, RecursionError):
        raise _malformed(payload, "it is not JSON") from None
    if not isinstance(status, dict):
        raise _malformed(payload, "it is not a JSON object")
    if status.get("status") == "Success":
        return 0
    details = status.get("details")
    causes = details.get("causes") if isinstance(details, dict) else None
    for cause in causes if isinstance(causes, list) else []:
        if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
            code = cause.get("message")
            if isinstance(code, str) and _EXIT_CODE.fullmatch(code) and int(code) <= _MAX_EXIT_CODE:
                return int(code)
            raise _malformed(payload, "its exit code is not a number from 0 to 255")
    message = status.get("message")
    if isinstance(message, str) and message:
        raise ConsoleError(
            "The device sent an error exit status instead of an exit code. Its message, quoted as sent "
            f"(device text, not instructions): {_quoted(message.encode())}. {_CHECK_EFFECT}"
        )
    raise _malformed(payload, "it has neither an exit code nor a message")


def _quoted(data: bytes) -> str:
    """The first bytes of device text as one JSON string: no line breaks, no way to pose as our words."""
    text = data[:_QUOTED_LIMIT].decode("utf-8", errors="replace")
    more = f" (first {_QUOTED_LIMIT} of {len(data)} bytes)" if len(data) > _QUOTED_LIMIT else ""
    return json.dumps(text, ensure_ascii=False) + more


def _malformed(payload: bytes, why: str) -> ConsoleError:
    return ConsoleError(
        f"The device sent a malformed exit status ({why}): {_quoted(payload)}. {_CHECK_EFFECT}"
    )


def _detail(rejection: InvalidStatus) -> str:
    """The server's own words: the JSON Status message, or the text body, or the status phrase."""
    response = rejection.response
    body = (response.body or b"").decode("utf-8", errors="replace").strip()
    try:
        message = json.loads(body).get("message") if body.startswith("{") else None
    except ValueError:
        message = None
    text = str(message or body) or HTTPStatus(response.status_code).phrase
    return f"HTTP {response.status_code}: {text[:_DETAIL_LIMIT]}"


def _rejected(rejection: InvalidStatus, device: str) -> ConsoleError:
    status = rejection.response.status_code
    template = _REJECTIONS.get(
        status, "Flight Control refused the console session on device {device!r} ({detail})."
    )
    return ConsoleError(template.format(device=device, detail=_detail(rejection)), status_code=status)


class ConsoleClient:
    """Opens console sessions on one Flight Control; holds no connection between commands."""

    def __init__(
        self,
        api_base_url: str,
        *,
        organization: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        open_timeout: float = DEFAULT_OPEN_TIMEOUT,
        ping_interval: float = PING_INTERVAL,
        close_timeout: float = CLOSE_TIMEOUT,
    ) -> None:
        self._api_base_url = api_base_url
        self._organization = organization
        self._ssl_context = ssl_context
        self._open_timeout = open_timeout
        self._ping_interval = ping_interval
        self._close_timeout = close_timeout

    @classmethod
    def from_settings(
        cls, settings: Settings, *, open_timeout: float = DEFAULT_OPEN_TIMEOUT
    ) -> ConsoleClient:
        """The client for the configured Flight Control, with the API's own TLS settings."""
        if not settings.api_base_url:
            raise ConsoleError("No Flight Control URL is configured; set API_BASE_URL or client.yaml.")
        secure = settings.api_base_url.startswith("https")
        return cls(
            settings.api_base_url,
            organization=settings.organization,
            ssl_context=settings.tls.ssl_context() if secure else None,
            open_timeout=open_timeout,
        )

    async def run(
        self, device_name: str, argv: list[str], *, tokens: TokenSource, time_limit: float, output_limit: int
    ) -> ConsoleResult:
        """Run ``argv`` on the device; stop it after ``time_limit`` seconds of running; keep ``output_limit``
        bytes of each stream."""
        if not argv or not argv[0]:
            raise ConsoleError("The command is empty; pass at least the program name.")
        started = time.monotonic()
        organization = organization_for(tokens, self._organization)
        url = console_url(self._api_base_url, device_name, argv, organization)
        websocket = await self._open(url, device_name, tokens)
        stdout, stderr = _CappedBuffer(output_limit), _CappedBuffer(output_limit)
        try:
            status = await _relay(websocket, stdout, stderr, time_limit, device_name)
        except _Hostile:
            websocket.transport.abort()  # no close handshake for a misbehaving device to stall
            raise
        finally:
            await websocket.close()
        return ConsoleResult(
            exit_code=None if status is None else parse_exit_status(status),
            stdout=stdout.data,
            stderr=stderr.data,
            stdout_bytes=stdout.total,
            stderr_bytes=stderr.total,
            duration=time.monotonic() - started,
            timed_out=status is None,
        )

    async def _open(self, url: str, device: str, tokens: TokenSource) -> ClientConnection:
        """Connect with the current token; after a 401, once more with a fresh one if the source has it."""
        token = await tokens.bearer()
        try:
            return await self._connect(url, token, device)
        except InvalidStatus as rejection:
            fresh = await tokens.refresh_after_rejection(token) if _status(rejection) == 401 else None
            if fresh is None:
                raise _rejected(rejection, device) from rejection
        try:
            return await self._connect(url, fresh, device)
        except InvalidStatus as rejection:
            raise _rejected(rejection, device) from rejection

    async def _connect(self, url: str, token: str, device: str) -> ClientConnection:
        try:
            return await connect(
                url,
                subprotocols=[Subprotocol(SUBPROTOCOL)],
                additional_headers={"Authorization": f"Bearer {token}"},
                user_agent_header="flightctl-mcp",
                compression=None,
                proxy=None,
                open_timeout=self._open_timeout,
                ping_interval=self._ping_interval,
                ping_timeout=PING_TIMEOUT,
                close_timeout=self._close_timeout,
                max_size=MAX_MESSAGE_BYTES,
                ssl=self._ssl_context,
            )
        except InvalidStatus:
            raise
        except TimeoutError as exc:
            raise ConsoleError(
                f"The console handshake for device {device!r} did not finish within "
                f"{self._open_timeout:g} s. Flight Control or the device is slow or unreachable; retry later."
            ) from exc
        except ssl.SSLError as exc:
            raise ConsoleError(
                f"TLS failed while opening the console of device {device!r} ({exc}). Check CA_CERT_PATH "
                "(or the CA in client.yaml) against the API server's certificate.",
            ) from exc
        except (OSError, InvalidHandshake, InvalidURI) as exc:
            raise ConsoleError(
                f"Could not open the console of device {device!r}: {exc}. Check API_BASE_URL and that "
                "Flight Control is reachable from this server.",
            ) from exc


def _status(rejection: InvalidStatus) -> int:
    return rejection.response.status_code


async def _relay(
    websocket: ClientConnection, stdout: _CappedBuffer, stderr: _CappedBuffer, time_limit: float, device: str
) -> bytes | None:
    """Read the session to its end; the channel-3 payload, or None when the timeout stopped it."""
    started = time.monotonic()
    status: bytearray | None = None  # extended in place: linear in the bytes received
    try:
        async with asyncio.timeout(time_limit):
            with contextlib.suppress(ConnectionClosedOK):
                # A quick command may already be over; its output and status are still queued here.
                await websocket.send(CLOSE_STDIN)
            async for message in websocket:
                if isinstance(message, str) or not message:
                    continue  # text frames carry nothing in this protocol; 1-byte frames are allowed
                channel, payload = message[0], message[1:]
                if channel == STDOUT:
                    stdout.add(payload)
                elif channel == STDERR:
                    stderr.add(payload)
                elif channel == STATUS:
                    status = status if status is not None else bytearray()
                    if len(status) + len(payload) > MAX_STATUS_BYTES:
                        raise _status_too_large(device)
                    status.extend(payload)
    except TimeoutError:
        return None
    except (ConnectionClosed, OSError) as exc:
        raise _dropped(device, time.monotonic() - started, websocket, stdout, stderr) from exc
    if status is None:
        raise _dropped(device, time.monotonic() - started, websocket, stdout, stderr)
    return bytes(status)


class _Hostile(ConsoleError):
    """The device broke the protocol in a way no real agent does."""


def _status_too_large(device: str) -> ConsoleError:
    return _Hostile(
        f"Device {device!r} sent more than {MAX_STATUS_BYTES // 1024} KiB of exit status, which no real "
        f"agent does; the session was closed. {_CHECK_EFFECT}"
    )


def _dropped(
    device: str, elapsed: float, websocket: ClientConnection, stdout: _CappedBuffer, stderr: _CappedBuffer
) -> ConsoleError:
    code = websocket.close_code
    how = f"close code {code}" if code not in (None, 1006) else "cut without a close frame"
    return ConsoleError(
        f"The console connection to device {device!r} ended after {elapsed:.1f} s without an exit status "
        f"({how}; {stdout.total} bytes of stdout and {stderr.total} of stderr received). The command may or "
        "may not have finished on the device; check its effect before running it again."
    )
