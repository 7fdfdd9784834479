"""The device console WebSocket (``/ws/v1/devices/{name}/console``) as Flight Control and its agent answer it.

Before the upgrade the request stays pending while the server checks, in this order: authentication,
organization and RBAC (JSON ``Status`` answers), the ``metadata`` query parameter (500 text
``protocols injection error``), the device (404 / 409 text), then waits for the device's agent to pick a
protocol (504 text after ``console_wait_seconds`` when the device is offline). Text answers are
``text/plain; charset=utf-8`` with a trailing newline, as Go's ``http.Error`` writes them. The denials use
the ASGI WebSocket Denial Response extension, which uvicorn supports.

After the upgrade (subprotocol ``v5.channel.k8s.io``) every message is binary and starts with its channel:
0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize, 255 close. The agent's rules are kept: an unknown
channel, an empty message or a bad close payload aborts the session and kills the command. When the
command exits the status JSON goes out on channel 3, then a close frame with code 1000. When the client
goes away the command is cancelled. Commands come from ``simulator.commands``; nothing runs on the host.

A device may be told to misbehave like a compromised agent, for tests of the client's defences: the
annotation ``simulator.flightctl.io/console-behaviour`` on the Device makes its status channel carry
``exit-status:<text>`` (that text instead of the real status) or ``status-flood:<bytes>`` (that many
bytes of status, in agent-sized frames, before the close). Real agents never do either.

``console_log(state)`` records each session (device, argv, the frames the client sent, how it ended) so
tests can check what reached the device side.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from simulator.commands import CommandIO, DeviceFacts, Stdin, Writer, run_command
from simulator.errors import ApiFailure

__all__ = [
    "HOSTILE_ANNOTATION",
    "SUBPROTOCOL",
    "ConsoleLog",
    "SessionRecord",
    "console_endpoint",
    "console_log",
    "exit_status",
]

SUBPROTOCOL = "v5.channel.k8s.io"
STDIN, STDOUT, STDERR, STATUS, RESIZE, CLOSE = 0, 1, 2, 3, 4, 0xFF
AGENT_FRAME_LIMIT = 4096  # the agent sends at most this many payload bytes per message
_RECORDED_FRAMES = 64
HOSTILE_ANNOTATION = "simulator.flightctl.io/console-behaviour"
_FLOOD_LIMIT = 64 * 1024 * 1024

_log = logging.getLogger("simulator.console")


class _DenialNoise(logging.Filter):
    """uvicorn's sans-I/O WebSocket protocol logs an error after every denial response, although the
    response went out fine (it never marks the handshake complete on that path): drop that one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "ASGI callable returned without completing handshake."


logging.getLogger("uvicorn.error").addFilter(_DenialNoise())

# Summary statuses whose agent is not connected: the server waits for it, then answers 504.
_OFFLINE = frozenset({"Unknown", "PoweredOff", "Rebooting"})
# Summary statuses the server refuses outright, with its own texts.
_CONFLICTS = {
    "ConflictPaused": "Device is paused due to conflicts",
    "AwaitingReconnect": "Device is awaiting reconnection after restore",
}
_DECOMMISSIONED = frozenset({"Decommissioning", "Decommissioned"})


@dataclass
class SessionRecord:
    """One console session as the device side saw it."""

    device: str
    argv: list[str]
    tty: bool
    client_frames: list[bytes] = field(default_factory=list)
    outcome: str = "running"  # exited | client-closed | aborted
    exit_code: int | None = None
    abort_reason: str | None = None
    stdin_closed: bool = False


class ConsoleLog:
    """The sessions one simulator has served; safe to read from the test's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[SessionRecord] = []

    def add(self, record: SessionRecord) -> None:
        with self._lock:
            self._records.append(record)

    @property
    def records(self) -> list[SessionRecord]:
        with self._lock:
            return list(self._records)

    @property
    def active(self) -> int:
        return sum(record.outcome == "running" for record in self.records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


def console_log(state: Any) -> ConsoleLog:
    """The session log of one simulator, kept on its ``SimulatorState`` (created on first use)."""
    log = getattr(state, "console_log", None)
    if not isinstance(log, ConsoleLog):
        log = ConsoleLog()
        state.console_log = log
    return log


def exit_status(code: int) -> bytes:
    """The channel-3 payload the agent sends: Go's ``metav1.Status`` with ``metadata:{}`` always present."""
    if code == 0:
        body: dict[str, Any] = {"metadata": {}, "status": "Success"}
    else:
        body = {
            "metadata": {},
            "status": "Failure",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(abs(code))}]},
            "code": code,
        }
    return json.dumps(body, separators=(",", ":")).encode()


# --- before the upgrade ----------------------------------------------------------------------------


class _Denied(Exception):
    """The handshake is answered with an HTTP error instead of 101."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _text(status: int, message: str) -> _Denied:
    headers = {"X-Content-Type-Options": "nosniff"}
    return _Denied(PlainTextResponse(f"{message}\n", status_code=status, headers=headers))


def _status_json(failure: ApiFailure) -> _Denied:
    response = JSONResponse(failure.body(), status_code=failure.status, headers=failure.response_headers())
    return _Denied(response)


@dataclass(frozen=True)
class _Metadata:
    argv: list[str]
    tty: bool


def _parse_metadata(raw: str | None) -> _Metadata:
    """``api.DeviceConsoleSessionMetadata``; anything Go's json.Unmarshal would reject is a 500."""
    try:
        doc = json.loads(raw) if raw else None
        if not isinstance(doc, dict):
            raise TypeError("metadata is not an object")
        command = doc.get("command") or {}
        argv = [command.get("command", ""), *(command.get("args") or [])] if command else []
        tty = doc.get("tty", False)
        if not isinstance(tty, bool) or not all(isinstance(arg, str) for arg in argv):
            raise TypeError("wrong types")
    except (ValueError, TypeError, AttributeError) as exc:
        raise _text(500, "protocols injection error") from exc
    return _Metadata(argv=argv if argv and argv[0] else [], tty=tty)


def _go_quote(text: str) -> str:
    """Close enough to Go's ``%q`` for device names (ASCII)."""
    return json.dumps(text)


async def _admit(websocket: WebSocket, state: Any, name: str) -> tuple[dict[str, Any], _Metadata]:
    """Every check the server makes before it upgrades, in its order; raises ``_Denied``."""
    try:
        principal = state.authenticate(websocket.headers.get("authorization"))
        org_id = state.resolve_org(principal, websocket.query_params.get("org_id") or None)
        state.authorize(principal, "devices/console", "get")
        metadata = _parse_metadata(websocket.query_params.get("metadata"))
        device = state.find_device(org_id, name)
    except ApiFailure as failure:
        raise _status_json(failure) from failure
    if device is None:
        raise _text(404, f"Device of name {_go_quote(name)} not found")
    status = device.get("status", {}) or {}
    summary = (status.get("summary") or {}).get("status", "Unknown")
    lifecycle = (status.get("lifecycle") or {}).get("status", "")
    if lifecycle in _DECOMMISSIONED or (device.get("spec") or {}).get("decommissioning"):
        raise _text(409, "Device is decommissioned")
    if summary in _CONFLICTS:
        raise _text(409, _CONFLICTS[summary])
    if summary in _OFFLINE:
        await asyncio.sleep(float(state.console_wait_seconds))
        raise _text(504, f"timed out waiting for protocol for device: {name}")
    if SUBPROTOCOL not in websocket.scope.get("subprotocols", []):
        raise _text(500, f"failed selecting protocol for device: {name}")
    return device, metadata


async def console_endpoint(websocket: WebSocket) -> None:
    """The route: answer the handshake like Flight Control, then play the device's side of the session."""
    name = websocket.path_params["name"]
    state = websocket.app.state.simulator
    try:
        device, metadata = await _admit(websocket, state, name)
    except _Denied as denied:
        await websocket.send_denial_response(denied.response)
        return
    await websocket.accept(subprotocol=SUBPROTOCOL)
    record = SessionRecord(device=name, argv=list(metadata.argv), tty=metadata.tty)
    console_log(state).add(record)
    annotations = (device.get("metadata") or {}).get("annotations") or {}
    status = _hostile_status(str(annotations.get(HOSTILE_ANNOTATION, "")))
    await _Session(websocket, DeviceFacts.from_device(device), metadata, record, status).run()


def _hostile_status(behaviour: str) -> list[bytes] | None:
    """The status frames a misbehaving agent sends instead of the real one (None: behave)."""
    kind, _, argument = behaviour.partition(":")
    if kind == "exit-status":
        return [argument.encode()]
    if kind == "status-flood" and argument.isascii() and argument.isdigit():
        size = min(int(argument), _FLOOD_LIMIT)
        body = b'{"metadata":{},"status":"Failure","message":"' + b"x" * size
        return [body[i : i + AGENT_FRAME_LIMIT] for i in range(0, len(body), AGENT_FRAME_LIMIT)]
    return None


# --- after the upgrade -----------------------------------------------------------------------------


class _Abort(Exception):
    """The agent ends the session: the client broke a protocol rule."""


class _Session:
    """One upgraded console connection: relays stdin in, output and the exit status out."""

    def __init__(
        self,
        websocket: WebSocket,
        device: DeviceFacts,
        metadata: _Metadata,
        record: SessionRecord,
        hostile_status: list[bytes] | None = None,
    ):
        self._websocket = websocket
        self._hostile_status = hostile_status
        self._device = device
        self._metadata = metadata
        self._record = record
        self._closed_outputs: set[int] = set()
        self._stdin = Stdin()

    async def run(self) -> None:
        command = asyncio.create_task(self._command())
        reader = asyncio.create_task(self._read())
        done, _ = await asyncio.wait({command, reader}, return_when=asyncio.FIRST_COMPLETED)
        if command in done and not isinstance(command.exception(), WebSocketDisconnect):
            reader.cancel()
            await self._finish(self._exit_code(command))
            return
        for task in (command, reader):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._end_early(reader)

    def _exit_code(self, command: asyncio.Task[int]) -> int:
        """The command's exit code; a simulator bug is reported like the agent's other errors, 255."""
        error = command.exception()
        if error is not None:
            _log.error("simulated command %s failed", self._record.argv, exc_info=error)
            return 255
        return command.result()

    async def _command(self) -> int:
        merged = self._metadata.tty
        io = CommandIO(
            device=self._device,
            stdin=self._stdin,
            stdout=self._writer(STDOUT),
            stderr=self._writer(STDOUT if merged else STDERR),
        )
        if not self._metadata.argv:
            # No command and no tty is `sudo --non-interactive` with nothing to run.
            await io.err("usage: sudo -h | -K | -k | -V\n")
            return 1
        return await run_command(self._metadata.argv, io)

    def _writer(self, channel: int) -> Writer:
        async def write(data: bytes) -> None:
            if channel in self._closed_outputs:
                return
            for start in range(0, len(data), AGENT_FRAME_LIMIT):
                chunk = data[start : start + AGENT_FRAME_LIMIT]
                await self._websocket.send_bytes(bytes([channel]) + chunk)
            await asyncio.sleep(0)  # a chatty command stays cancellable

        return write

    async def _read(self) -> str:
        """Client messages until it goes away ("client-closed") or breaks a rule ("aborted")."""
        try:
            while True:
                message = await self._websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return "client-closed"
                data = message.get("bytes")
                if data is None:
                    _log.warning("ignoring a text message on the console of %s", self._record.device)
                    continue
                if len(self._record.client_frames) < _RECORDED_FRAMES:
                    self._record.client_frames.append(data)
                self._handle(data)
        except _Abort as abort:
            self._record.abort_reason = str(abort)
            return "aborted"
        except WebSocketDisconnect:
            return "client-closed"

    def _handle(self, data: bytes) -> None:
        if not data:
            raise _Abort("empty message")
        channel, payload = data[0], data[1:]
        if channel == STDIN:
            self._stdin.feed(payload)
        elif channel == CLOSE:
            if len(payload) != 1 or payload[0] not in (STDIN, STDOUT, STDERR):
                raise _Abort(f"bad close payload {payload!r}")
            if payload[0] == STDIN:
                self._record.stdin_closed = True
                self._stdin.close()
            else:
                self._closed_outputs.add(payload[0])
        elif channel == RESIZE and self._metadata.tty:
            return
        else:
            raise _Abort(f"unknown channel {channel}")

    async def _finish(self, code: int) -> None:
        self._record.exit_code = code
        self._record.outcome = "exited"
        frames = self._hostile_status or [exit_status(code)]
        with contextlib.suppress(Exception):
            for frame in frames:
                await self._websocket.send_bytes(bytes([STATUS]) + frame)
            await self._websocket.close(1000)

    async def _end_early(self, reader: asyncio.Task[str]) -> None:
        """The client went away or broke a rule: the command is already cancelled; close if we still can."""
        outcome = reader.result() if reader.done() and not reader.cancelled() else "client-closed"
        self._record.outcome = outcome
        if outcome == "aborted":
            with contextlib.suppress(Exception):
                await self._websocket.close(1000)
