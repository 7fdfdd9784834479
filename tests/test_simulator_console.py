"""The simulator's device console answers like Flight Control and its agent, byte for byte.

A raw websockets client (not our console.py) talks to the console route over TLS on loopback, so these
tests pin the simulator to the protocol notes independently of the client they later check.
``serve_console_simulator`` is shared with test_console.py and test_command_tool.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import trustme
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedOK, InvalidStatus
from websockets.typing import Subprotocol

from conftest import TLSFiles
from simulator.console import ConsoleLog, SessionRecord, console_log, exit_status
from simulator.harness import SimulatorServer
from simulator.state import DEFAULT_ORG, LAB_ORG, SimulatorState

CONSOLE_WAIT = 0.3  # seconds an offline device makes the handshake wait before 504
HANG_GUARD = 60.0  # seconds: only a hung session or handshake reaches it, even on a loaded machine
PROTOCOL = Subprotocol("v5.channel.k8s.io")


@dataclass
class ConsoleSimulator:
    """The simulator over TLS on 127.0.0.1, with one device in each state the console cares about."""

    server: SimulatorServer
    ca: trustme.CA
    ca_file: str
    online: str  # an Online, enrolled device
    offline: str
    paused: str
    awaiting: str
    decommissioned: str

    @property
    def state(self) -> SimulatorState:
        return self.server.state

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def log(self) -> ConsoleLog:
        return console_log(self.state)

    def client_ssl(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def token(self, user: str = "admin") -> str:
        return self.server.issue_access_token(user)

    def sessions(self, device: str) -> int:
        return sum(record.device == device for record in self.log.records)

    def wait_for_session(
        self, device: str, number: int, *, ended: bool = True, timeout: float = HANG_GUARD
    ) -> SessionRecord:
        """Session ``number`` (0-based) on ``device``, once it exists (and has ended, unless told)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            records = [r for r in self.log.records if r.device == device]
            if len(records) > number and (not ended or records[number].outcome != "running"):
                return records[number]
            time.sleep(0.01)
        raise AssertionError(f"console session {number} on {device} did not {'end' if ended else 'start'}")


_ROLES = (
    ("online", "Online", "Enrolled"),
    ("offline", "Unknown", "Enrolled"),
    ("paused", "ConflictPaused", "Enrolled"),
    ("awaiting", "AwaitingReconnect", "Enrolled"),
    ("decommissioned", "Unknown", "Decommissioned"),
)


@contextlib.contextmanager
def serve_console_simulator(tls_ca: trustme.CA, tls_files: TLSFiles) -> Iterator[ConsoleSimulator]:
    """A small HTTPS simulator (the session's test CA) with a short offline wait, until the block ends."""
    with SimulatorServer(
        devices=8,
        lab_devices=1,
        tls_cert=tls_files.cert,
        tls_key=tls_files.key,
        console_wait_seconds=CONSOLE_WAIT,
    ) as server:
        roles: dict[str, str] = {}
        for (role, summary, lifecycle), name in zip(
            _ROLES, server.state.device_names(DEFAULT_ORG), strict=False
        ):
            record = server.state.device_record(DEFAULT_ORG, name)
            assert record is not None
            record.summary, record.lifecycle = summary, lifecycle
            roles[role] = name
        yield ConsoleSimulator(server=server, ca=tls_ca, ca_file=str(tls_files.ca), **roles)


@pytest.fixture(scope="module")
def sim(tls_ca: trustme.CA, simulator_tls_files: TLSFiles) -> Iterator[ConsoleSimulator]:
    with serve_console_simulator(tls_ca, simulator_tls_files) as simulator:
        yield simulator


# --- a raw client, so the simulator is checked against the notes rather than against console.py ----------


def _url(sim: ConsoleSimulator, device: str, metadata: Any = None, org_id: str | None = DEFAULT_ORG) -> str:
    if metadata is None:
        metadata = {"command": {"command": "true", "args": []}}
    meta = metadata if isinstance(metadata, str) else json.dumps(metadata, separators=(",", ":"))
    query = urlencode({"metadata": meta, "org_id": org_id or ""})
    return f"{sim.base_url.replace('https', 'wss')}/ws/v1/devices/{device}/console?{query}"


async def _open(
    sim: ConsoleSimulator,
    device: str,
    argv: list[str] | None = None,
    *,
    user: str | None = "admin",
    metadata: Any = None,
    org_id: str | None = DEFAULT_ORG,
    protocols: list[Subprotocol] | None = None,
) -> ClientConnection:
    if argv is not None:
        metadata = {"command": {"command": argv[0], "args": argv[1:]}}
    headers = {"Authorization": f"Bearer {sim.token(user)}"} if user else {}
    return await connect(
        _url(sim, device, metadata, org_id),
        subprotocols=[PROTOCOL] if protocols is None else protocols,
        additional_headers=headers,
        ssl=sim.client_ssl(),
        compression=None,
        open_timeout=HANG_GUARD,
        max_size=None,
    )


@dataclass
class Session:
    frames: list[bytes]
    close_code: int | None

    def stream(self, channel: int) -> bytes:
        return b"".join(frame[1:] for frame in self.frames if frame[:1] == bytes([channel]))


async def _drain(ws: ClientConnection) -> list[bytes]:
    frames = [frame async for frame in ws]
    binary = [frame for frame in frames if isinstance(frame, bytes)]
    assert binary == frames, "the console sends binary messages only"
    return binary


async def _run(sim: ConsoleSimulator, device: str, argv: list[str], stdin: bytes = b"") -> Session:
    async with await _open(sim, device, argv) as ws:
        assert ws.subprotocol == PROTOCOL
        with contextlib.suppress(ConnectionClosedOK):  # a quick command may be over already
            if stdin:
                await ws.send(b"\x00" + stdin)
            await ws.send(b"\xff\x00")
        frames = await _drain(ws)
        return Session(frames, ws.close_code)


async def _rejection(sim: ConsoleSimulator, device: str, **kwargs: Any) -> tuple[int, str, str]:
    with pytest.raises(InvalidStatus) as caught:
        await _open(sim, device, **kwargs)
    response = caught.value.response
    return response.status_code, response.headers.get("Content-Type", ""), (response.body or b"").decode()


# --- before the upgrade --------------------------------------------------------------------------------


def _status_json(code: int, message: str) -> dict[str, Any]:
    reasons = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden"}
    return {
        "apiVersion": "flightctl.io/v1beta1",
        "kind": "Status",
        "code": code,
        "message": message,
        "reason": reasons[code],
        "status": "Failure",
    }


@pytest.mark.parametrize(
    ("case", "kwargs", "code", "message"),
    [
        ("no token", {"user": None}, 400, "failed to get auth token"),
        ("viewer lacks devices/console", {"user": "viewer"}, 403, "Forbidden"),
        ("bad org_id", {"org_id": "not-a-uuid"}, 400, "invalid organization ID format"),
        (
            "not a member of the org",
            {"user": "operator", "org_id": LAB_ORG},
            403,
            "access denied to organization",
        ),
    ],
)
async def test_auth_org_and_rbac_answers_are_json_status(
    sim: ConsoleSimulator, case: str, kwargs: dict[str, Any], code: int, message: str
) -> None:
    status, content_type, body = await _rejection(sim, sim.online, **kwargs)
    assert (status, content_type) == (code, "application/json")
    assert json.loads(body) == _status_json(code, message)


async def test_an_unknown_token_is_401(sim: ConsoleSimulator) -> None:
    with pytest.raises(InvalidStatus) as caught:
        await connect(
            _url(sim, sim.online),
            subprotocols=[PROTOCOL],
            additional_headers={"Authorization": "Bearer not-a-token-the-simulator-issued"},
            ssl=sim.client_ssl(),
        )
    assert caught.value.response.status_code == 401
    assert json.loads(caught.value.response.body or b"") == _status_json(401, "failed to validate token")


@pytest.mark.parametrize(
    ("role", "code", "text"),
    [
        ("missing", 404, 'Device of name "no-such-device" not found\n'),
        ("decommissioned", 409, "Device is decommissioned\n"),
        ("paused", 409, "Device is paused due to conflicts\n"),
        ("awaiting", 409, "Device is awaiting reconnection after restore\n"),
    ],
)
async def test_device_answers_are_plain_text_with_a_newline(
    sim: ConsoleSimulator, role: str, code: int, text: str
) -> None:
    device = "no-such-device" if role == "missing" else getattr(sim, role)
    assert await _rejection(sim, device) == (code, "text/plain; charset=utf-8", text)


async def test_an_offline_device_makes_the_handshake_wait_then_504(sim: ConsoleSimulator) -> None:
    started = time.monotonic()
    status, content_type, body = await _rejection(sim, sim.offline)
    assert time.monotonic() - started >= CONSOLE_WAIT
    assert (status, content_type) == (504, "text/plain; charset=utf-8")
    assert body == f"timed out waiting for protocol for device: {sim.offline}\n"


@pytest.mark.parametrize("metadata", ["", "{not json", '"a string"', '{"command":{"command":1}}'])
async def test_bad_metadata_is_a_protocols_injection_error(sim: ConsoleSimulator, metadata: str) -> None:
    url = _url(sim, sim.online).split("?")[0] + "?" + urlencode({"metadata": metadata, "org_id": DEFAULT_ORG})
    with pytest.raises(InvalidStatus) as caught:
        await connect(
            url,
            subprotocols=[PROTOCOL],
            additional_headers={"Authorization": f"Bearer {sim.token()}"},
            ssl=sim.client_ssl(),
        )
    assert caught.value.response.status_code == 500
    assert caught.value.response.body == b"protocols injection error\n"


async def test_a_client_without_the_v5_protocol_gets_no_session(sim: ConsoleSimulator) -> None:
    status, _, body = await _rejection(sim, sim.online, protocols=[Subprotocol("v4.channel.k8s.io")])
    assert (status, body) == (500, f"failed selecting protocol for device: {sim.online}\n")


# --- after the upgrade ---------------------------------------------------------------------------------


async def test_argv_arrives_intact_and_exit_0_is_a_success_status(sim: ConsoleSimulator) -> None:
    argv = ["echo", "two  spaces", "it's", 'say "hi"', "$HOME", "*", ""]
    number = sim.sessions(sim.online)
    session = await _run(sim, sim.online, argv)
    assert session.stream(1) == b'two  spaces it\'s say "hi" $HOME * \n'
    assert session.frames[-1] == b'\x03{"metadata":{},"status":"Success"}'
    assert session.close_code == 1000
    assert sim.wait_for_session(sim.online, number).argv == argv


async def test_a_failing_command_reports_its_exit_code_and_keeps_stderr_apart(sim: ConsoleSimulator) -> None:
    session = await _run(sim, sim.online, ["ls", "/nonexistent"])
    assert session.stream(1) == b""
    assert session.stream(2) == b"ls: cannot access '/nonexistent': No such file or directory\n"
    status = json.loads(session.frames[-1][1:])
    assert status == {
        "metadata": {},
        "status": "Failure",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "2"}]},
        "code": 2,
    }
    assert session.frames[-1][1:] == exit_status(2)


async def test_an_unknown_command_is_127_and_nothing_runs_on_the_host(sim: ConsoleSimulator) -> None:
    session = await _run(sim, sim.online, ["rm", "-rf", "/"])
    assert session.stream(2) == b"bash: rm: command not found\n"
    assert json.loads(session.frames[-1][1:])["code"] == 127


async def test_cat_echoes_stdin_until_it_is_closed(sim: ConsoleSimulator) -> None:
    number = sim.sessions(sim.online)
    session = await _run(sim, sim.online, ["cat"], stdin=b"hello\x00 device\n")
    assert session.stream(1) == b"hello\x00 device\n"
    assert sim.wait_for_session(sim.online, number).stdin_closed


async def test_output_comes_in_frames_of_at_most_4096_bytes(sim: ConsoleSimulator) -> None:
    session = await _run(sim, sim.online, ["seq", "20000"])
    expected = "".join(f"{n}\n" for n in range(1, 20001)).encode()
    assert session.stream(1) == expected
    assert max(len(frame) - 1 for frame in session.frames) <= 4096


async def test_sh_c_runs_its_small_safe_subset(sim: ConsoleSimulator) -> None:
    session = await _run(sim, sim.online, ["sh", "-c", "echo out; echo err >&2; seq 50 | tail -n 2; exit 7"])
    assert (session.stream(1), session.stream(2)) == (b"out\n49\n50\n", b"err\n")
    assert json.loads(session.frames[-1][1:])["code"] == 7


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"", "empty message"),
        (b"\x07abc", "unknown channel 7"),
        (b"\x04{}", "unknown channel 4"),  # resize is only valid with a tty
        (b"\xff", "bad close payload"),
        (b"\xff\x00\x01", "bad close payload"),
        (b"\xff\x09", "bad close payload"),
    ],
)
async def test_a_protocol_violation_aborts_the_session_and_kills_the_command(
    sim: ConsoleSimulator, frame: bytes, reason: str
) -> None:
    number = sim.sessions(sim.online)
    async with await _open(sim, sim.online, ["sleep", "30"]) as ws:
        sim.wait_for_session(sim.online, number, ended=False)
        await ws.send(frame)
        frames = await asyncio.wait_for(_drain(ws), timeout=HANG_GUARD)
        assert ws.close_code == 1000
    assert not [f for f in frames if f[:1] == b"\x03"]  # no exit status: the command did not finish
    record = sim.wait_for_session(sim.online, number)
    assert record.outcome == "aborted"
    assert (record.abort_reason or "").startswith(reason)


async def test_the_command_is_cancelled_when_the_client_goes(sim: ConsoleSimulator) -> None:
    number = sim.sessions(sim.online)
    ws = await _open(sim, sim.online, ["sleep", "30"])
    await ws.send(b"\xff\x00")
    assert sim.wait_for_session(sim.online, number, ended=False).outcome == "running"
    await ws.close()
    record = sim.wait_for_session(sim.online, number)
    assert (record.outcome, record.exit_code) == ("client-closed", None)


# --- what the canned commands say about the device ------------------------------------------------------

# uname -m spells the architecture the way the kernel does; the agent reports Go's GOARCH.
_UNAME_ARCH = {"amd64": "x86_64", "arm64": "aarch64"}


def _device_json(sim: ConsoleSimulator, device: str) -> dict[str, Any]:
    """The device as the API serves it, over HTTPS like any client would read it."""
    with httpx.Client(base_url=sim.base_url, verify=sim.client_ssl(), timeout=10) as client:
        response = client.get(f"/api/v1/devices/{device}", headers={"Authorization": f"Bearer {sim.token()}"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _os_release_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        fields[key] = value.strip('"')
    return fields


async def _ok(sim: ConsoleSimulator, argv: list[str]) -> str:
    session = await _run(sim, sim.online, argv)
    assert session.frames[-1] == b'\x03{"metadata":{},"status":"Success"}', (argv, session.stream(2))
    assert session.stream(2) == b"", argv
    return session.stream(1).decode()


async def test_canned_commands_describe_the_device(sim: ConsoleSimulator) -> None:
    device = _device_json(sim, sim.online)
    assert device["status"]["summary"]["status"] == "Online"
    info = device["status"]["systemInfo"]
    hostname = info.get("hostname") or device["metadata"]["name"]

    assert await _ok(sim, ["hostname"]) == f"{hostname}\n"

    words = (await _ok(sim, ["uname", "-a"])).split()
    assert words[:2] == ["Linux", hostname]
    if info.get("kernel"):
        assert words[2] == info["kernel"]
    assert words[-1] == "GNU/Linux"
    if info.get("architecture"):
        arch = _UNAME_ARCH.get(info["architecture"], info["architecture"])
        assert words[-4:-1] == [arch, arch, arch]  # machine, processor, hardware platform

    os_release = _os_release_fields(await _ok(sim, ["cat", "/etc/os-release"]))
    if info.get("distroName"):
        assert os_release["NAME"] == info["distroName"]
        assert os_release["PRETTY_NAME"].startswith(info["distroName"])
    if info.get("distroVersion"):
        assert os_release["VERSION"] == info["distroVersion"]
        assert os_release["PRETTY_NAME"].endswith(info["distroVersion"])
        # VERSION_ID's exact form: test_os_release_version_id_is_a_version. No canned command prints
        # status.os.image (there is no bootc/rpm-ostree), so the image cannot be compared here.

    df = (await _ok(sim, ["df", "-h"])).splitlines()
    assert df[0].split() == ["Filesystem", "Size", "Used", "Avail", "Use%", "Mounted", "on"]
    mounts = {row.split()[-1]: row.split() for row in df[1:]}
    assert "/" in mounts
    for row in mounts.values():
        assert len(row) == 6, row
        assert 0 <= int(row[4].rstrip("%")) <= 100, row

    journal = (await _ok(sim, ["journalctl", "-u", "flightctl-agent"])).splitlines()
    assert journal
    assert all(f" {hostname} flightctl-agent[" in line for line in journal), journal
    if info.get("agentVersion"):
        assert any(info["agentVersion"] in line for line in journal), journal

    unit = (await _ok(sim, ["systemctl", "status", "flightctl-agent"])).splitlines()
    assert unit[0].startswith("● flightctl-agent.service - ")
    assert any(line.split()[:3] == ["Active:", "active", "(running)"] for line in unit), unit
    systemd = {entry["unit"]: entry for entry in device["status"].get("systemd", [])}
    if "flightctl-agent.service" in systemd:
        assert systemd["flightctl-agent.service"]["activeState"] == "active"


async def test_no_command_touches_the_host(sim: ConsoleSimulator, tmp_path: Path) -> None:
    touched, redirected = tmp_path / "x", tmp_path / "y"
    for argv in (["touch", str(touched)], ["sh", "-c", f"echo hi > {redirected}"]):
        session = await _run(sim, sim.online, argv)
        assert session.frames[-1][:1] == b"\x03", argv  # the session ran to an exit status
        assert json.loads(session.frames[-1][1:])["status"] == "Failure", argv
        assert session.stream(2), argv  # and said why it did nothing
    assert not touched.exists()
    assert not redirected.exists()


async def test_os_release_version_id_is_a_version(sim: ConsoleSimulator) -> None:
    """os-release(5): VERSION_ID is only 0-9, a-z, ".", "_" and "-" (RHEL 9.6 says "9.6", not "9.6 (Plow)");
    scripts compare it, so a device's must be the bare version from status.systemInfo.distroVersion."""
    info = _device_json(sim, sim.online)["status"]["systemInfo"]
    os_release = _os_release_fields(await _ok(sim, ["cat", "/etc/os-release"]))
    assert re.fullmatch(r"[0-9a-z._-]+", os_release["VERSION_ID"]), os_release
    assert os_release["VERSION_ID"] == info["distroVersion"].split()[0]
    assert " " not in os_release["CPE_NAME"], os_release
