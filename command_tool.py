"""``run_command_on_device``: the one tool that changes things, so the most guarded one.

It exists only when the operator enables it (``MCP_ENABLE_COMMANDS`` / ``--enable-commands``); main.py
calls ``register_command_tool`` only then, and this module checks again. Before anything reaches a
device the policy runs, in this order: the device name must be a valid resource name; ``command`` becomes
an argv list (a string is split with shell quoting rules, never on bare spaces, and no shell is added);
the argv must start with one of the allowed prefixes when an allow-list is set; the timeout must be within
the operator's maximum; and, when confirmation is required, the user must approve the exact command
through MCP elicitation. Then console.py runs it over the device console WebSocket.

Every attempt, allowed or refused, writes one line to the ``flightctl_mcp.audit`` logger: when, who
(the token's identity), device, argv, outcome, exit code, duration and bytes of output. The output
itself and tokens are never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastmcp import Context
from fastmcp.exceptions import ToolError
from fastmcp.exceptions import ValidationError as ArgumentsRejected
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import ToolResult
from mcp_types import (
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    InputRequiredResult,
    TextContent,
    ToolAnnotations,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import Field

from auth import token_source_for_request
from config import EXACT_COMMAND_MARK
from console import ConsoleClient, ConsoleResult
from errors import CommandRefused, FlightControlError

if TYPE_CHECKING:
    from fastmcp import FastMCP

    from config import CommandSettings
    from services import Services

__all__ = [
    "AUDIT_LOGGER",
    "TOOL_NAME",
    "CommandPolicy",
    "CommandRequest",
    "register_command_tool",
    "render_result",
]

TOOL_NAME = "run_command_on_device"
AUDIT_LOGGER = "flightctl_mcp.audit"
_audit = logging.getLogger(AUDIT_LOGGER)

# Resource names are DNS-1123 subdomains (Flight Control's generic name rule).
_DEVICE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DEVICE_NAME_MAX = 253
# The argv travels in the URL's query string: keep it well under common proxy URL limits.
_ARGV_MAX_BYTES = 4096
_CONFIRM_KEY = "confirm_command"

ANNOTATIONS = ToolAnnotations(
    title="Run a command on a device",
    read_only_hint=False,
    destructive_hint=True,
    idempotent_hint=False,
    open_world_hint=True,
)


@dataclass(frozen=True)
class CommandRequest:
    """A command that passed the policy: where, what, and for how long at most."""

    device: str
    argv: list[str]
    timeout: float

    def fingerprint(self) -> str:
        """Binds a confirmation to this exact command, device and timeout."""
        text = json.dumps([self.device, self.argv, self.timeout], separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def _shown(argv: Sequence[str]) -> str:
    return shlex.join(argv)


def _permits(entry: Sequence[str], argv: Sequence[str]) -> bool:
    """An allow-list entry is an argv prefix compared word by word; ending in a lone $, the exact argv."""
    if entry and entry[-1] == EXACT_COMMAND_MARK:
        return tuple(argv) == tuple(entry[:-1])
    return tuple(argv[: len(entry)]) == tuple(entry)


class CommandPolicy:
    """The checks before anything is sent; each refusal says what to do instead."""

    def __init__(self, settings: CommandSettings) -> None:
        self._settings = settings

    def check(
        self, device_name: str, command: list[str] | str, timeout_seconds: float | None
    ) -> CommandRequest:
        self.check_device_name(device_name)
        argv = self.argv(command)
        self.check_allowed(argv)
        return CommandRequest(device=device_name, argv=argv, timeout=self.timeout(timeout_seconds))

    @staticmethod
    def check_device_name(name: str) -> None:
        if len(name) > _DEVICE_NAME_MAX or not _DEVICE_NAME.fullmatch(name):
            raise CommandRefused(
                f"{name!r} is not a valid device name (lowercase letters, digits, '-' and '.', at most "
                f"{_DEVICE_NAME_MAX} characters). Use the exact metadata.name from the device query tool."
            )

    @staticmethod
    def argv(command: list[str] | str) -> list[str]:
        """The argument list: a list is taken as is, a string is split like a POSIX shell would."""
        if isinstance(command, str):
            try:
                argv = shlex.split(command)
            except ValueError as exc:
                raise CommandRefused(
                    f"The command could not be split into arguments ({exc}). Pass it as a list of strings, "
                    'e.g. ["journalctl", "-u", "flightctl-agent", "-n", "50"].'
                ) from exc
        else:
            argv = list(command)
        if not argv or not argv[0]:
            raise CommandRefused(
                'The command is empty. Pass the program and its arguments, e.g. ["df", "-h"].'
            )
        if any("\x00" in arg for arg in argv):
            raise CommandRefused("An argument contains a NUL character, which no device command accepts.")
        if sum(len(arg.encode()) + 1 for arg in argv) > _ARGV_MAX_BYTES:
            raise CommandRefused(
                f"The command is longer than {_ARGV_MAX_BYTES} bytes. Shorten it; long scripts do not belong "
                "in a console command."
            )
        return argv

    def check_allowed(self, argv: list[str]) -> None:
        prefixes = self._settings.allowed_prefixes
        if not prefixes or any(_permits(prefix, argv) for prefix in prefixes):
            return
        allowed = ", ".join(f"`{_shown(prefix)}`" for prefix in prefixes)
        raise CommandRefused(
            f"`{_shown(argv)}` is not allowed on this server, so it was not sent. Commands must start with "
            f"one of: {allowed}. Use one of these, or ask the operator to extend MCP_COMMAND_ALLOWLIST."
        )

    def timeout(self, requested: float | None) -> float:
        limit = self._settings.max_timeout
        if requested is None:
            return min(self._settings.default_timeout, limit)
        if not 0 < requested <= limit:
            raise CommandRefused(
                f"timeout_seconds must be more than 0 and at most {limit:g} (the operator's maximum); "
                f"got {requested:g}. Leave it out for the default of {self._settings.default_timeout:g} s."
            )
        return float(requested)


# --- results ---------------------------------------------------------------------------------------


def _text(data: bytes, total: int, limit: int) -> str:
    """Decoded output; where the cap cut it, a marker that says how much is missing and how to see it."""
    text = data.decode("utf-8", errors="replace")
    if total <= len(data):
        return text
    return (
        f"{text}\n[output cut here: the first {len(data)} of {total} bytes are shown (limit {limit} bytes "
        "per stream). Narrow the command to see the rest, e.g. `journalctl -n 100` or "
        "`sh -c '<command> | tail -n 50'`.]"
    )


def render_result(request: CommandRequest, result: ConsoleResult, output_limit: int) -> dict[str, Any]:
    """The answer the assistant reads: exit code, both streams, timing and what was cut."""
    answer: dict[str, Any] = {
        "device": request.device,
        "command": request.argv,
        "exit_code": result.exit_code,
        "stdout": _text(result.stdout, result.stdout_bytes, output_limit),
        "stderr": _text(result.stderr, result.stderr_bytes, output_limit),
        "stdout_truncated": result.stdout_truncated,
        "stderr_truncated": result.stderr_truncated,
        "duration_seconds": round(result.duration, 3),
        "timed_out": result.timed_out,
    }
    if result.timed_out:
        answer["note"] = (
            f"Stopped after the {request.timeout:g} s timeout: the session was closed, which ends the "
            "command on the device. Output up to that point is shown. Pass a larger timeout_seconds "
            "(within the server's maximum) if it needs longer."
        )
    return answer


# --- audit -----------------------------------------------------------------------------------------


def _audit_line(
    outcome: str,
    *,
    who: str | None,
    device: str,
    argv: list[str] | str,
    result: ConsoleResult | None = None,
    duration: float,
    reason: str | None = None,
) -> None:
    """One INFO line per attempt; values are JSON-quoted so no argument can forge a second line."""
    record = {
        "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "outcome": outcome,
        "who": who or "unknown",
        "device": device,
        "argv": argv,
        "exit_code": result.exit_code if result else None,
        "duration_seconds": round(result.duration if result else duration, 3),
        "bytes_out": result.stdout_bytes + result.stderr_bytes if result else 0,
    }
    if reason:
        record["reason"] = reason
    _audit.info(
        "%s %s",
        TOOL_NAME,
        " ".join(f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in record.items()),
        extra={"audit": record},
    )


# --- confirmation ----------------------------------------------------------------------------------


def _client_can_elicit(ctx: Context) -> bool:
    try:
        capabilities = ctx.session.client_capabilities
    except RuntimeError:
        return False
    return capabilities is not None and capabilities.elicitation is not None


def _modern(ctx: Context) -> bool:
    context = ctx.request_context
    return context is not None and context.protocol_version in MODERN_PROTOCOL_VERSIONS


def _question(request: CommandRequest) -> str:
    return (
        f"Run `{_shown(request.argv)}` on device {request.device!r} (stopped after {request.timeout:g} s)? "
        "It runs as the device's console user and may change the device."
    )


_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"value": {"type": "boolean", "title": "Run it", "default": False}},
    "required": ["value"],
}


def _approved(answer: ElicitResult | Any) -> bool:
    return (
        isinstance(answer, ElicitResult)
        and answer.action == "accept"
        and bool((answer.content or {}).get("value"))
    )


class _Confirmation:
    """Asks the user before a command runs: ``ctx.elicit`` on handshake-era sessions, or an
    ``InputRequiredResult`` round trip on 2026-07-28 ones. The answer is bound to the exact command."""

    def __init__(self, required: bool) -> None:
        self.required = required

    async def ask(self, ctx: Context, request: CommandRequest) -> InputRequiredResult | None:
        """None when the command may run; an InputRequiredResult to return when the client must ask first.
        Raises CommandRefused when the user said no or cannot be asked."""
        if not self.required:
            return None
        if not _client_can_elicit(ctx):
            raise CommandRefused(
                "This server asks the user to confirm every device command, and this MCP client cannot show "
                "a confirmation (no elicitation support). Use a client that supports elicitation, or ask "
                "the operator to turn off MCP_COMMAND_CONFIRM."
            )
        if _modern(ctx):
            return self._round_trip(ctx, request)
        answer = await ctx.elicit(_question(request), response_type=bool, response_title="Run it")
        if not (answer.action == "accept" and answer.data is True):
            raise CommandRefused("The user did not approve the command, so it was not sent to the device.")
        return None

    def _round_trip(self, ctx: Context, request: CommandRequest) -> InputRequiredResult | None:
        responses = ctx.input_responses
        if responses is None or _CONFIRM_KEY not in responses:
            ask = ElicitRequest(
                params=ElicitRequestFormParams(message=_question(request), requested_schema=_SCHEMA)
            )
            return InputRequiredResult(
                input_requests={_CONFIRM_KEY: ask}, request_state=request.fingerprint()
            )
        if ctx.request_state != request.fingerprint():
            raise CommandRefused(
                "The confirmation was given for a different command; it was not sent. Ask again."
            )
        if not _approved(responses[_CONFIRM_KEY]):
            raise CommandRefused("The user did not approve the command, so it was not sent to the device.")
        return None


# --- the tool --------------------------------------------------------------------------------------

_DESCRIPTION = """Run one command on a Flight Control device through its remote console and return its exit
code, stdout and stderr (each capped at {limit} bytes, with a marker where cut), duration and whether it
timed out. `command` is an argument list such as ["journalctl", "-u", "flightctl-agent", "-n", "50"]; a
string is split with shell quoting rules. No shell is involved: use ["sh", "-c", "a | b"] for pipes.
Runs as the device's unprivileged console user. Timeout: default {default:g} s, at most {maximum:g} s;
a device that is offline makes the call wait up to a minute before it fails.{allowed}"""


def _description(settings: CommandSettings) -> str:
    allowed = ""
    if settings.allowed_prefixes:
        prefixes = ", ".join(f"`{_shown(prefix)}`" for prefix in settings.allowed_prefixes)
        allowed = f" Only commands starting with one of these are allowed: {prefixes}."
    if settings.confirm:
        allowed += " The user is asked to approve each command before it runs."
    return _DESCRIPTION.format(
        limit=settings.output_limit_bytes,
        default=settings.default_timeout,
        maximum=settings.max_timeout,
        allowed=allowed,
    )


class _CommandRunner:
    """One configured tool: policy, confirmation, the console call, and the audit line for each attempt."""

    def __init__(self, services: Services, console: ConsoleClient | None) -> None:
        self._services = services
        self._settings = services.settings.commands
        self._policy = CommandPolicy(self._settings)
        self._confirmation = _Confirmation(self._settings.confirm)
        self._console = console

    def _client(self) -> ConsoleClient:
        """Built on first use, so a missing URL or bad CA fails the call with its message, not start-up."""
        if self._console is None:
            self._console = ConsoleClient.from_settings(self._services.settings)
        return self._console

    async def run(
        self, ctx: Context, device_name: str, command: list[str] | str, timeout_seconds: float | None
    ) -> ToolResult | InputRequiredResult:
        started = time.monotonic()
        who: str | None = None
        argv: list[str] | str = command

        def audit(outcome: str, result: ConsoleResult | None = None, reason: str | None = None) -> None:
            _audit_line(
                outcome,
                who=who,
                device=device_name,
                argv=argv,
                result=result,
                duration=time.monotonic() - started,
                reason=reason,
            )

        try:
            tokens = token_source_for_request(self._services.tokens)
            who = tokens.identity
            request = self._policy.check(device_name, command, timeout_seconds)
            argv = request.argv
            pending = await self._confirmation.ask(ctx, request)
            if pending is not None:
                audit("awaiting-confirmation")
                return pending
            result = await self._client().run(
                request.device,
                request.argv,
                tokens=tokens,
                time_limit=request.timeout,
                output_limit=self._settings.output_limit_bytes,
            )
        except FlightControlError as exc:
            audit("refused" if isinstance(exc, CommandRefused) else "failed", reason=str(exc))
            raise ToolError(str(exc)) from exc
        except BaseException as exc:  # cancelled by the client, or a bug: still one audit line
            audit(
                "cancelled" if isinstance(exc, asyncio.CancelledError) else "failed",
                reason=type(exc).__name__,
            )
            raise
        audit("timed-out" if result.timed_out else "completed", result=result)
        answer = render_result(request, result, self._settings.output_limit_bytes)
        text = json.dumps(answer, separators=(",", ":"), ensure_ascii=False)
        return ToolResult(content=[TextContent(type="text", text=text)])


def register_command_tool(
    mcp: FastMCP[Any], services: Services, *, console: ConsoleClient | None = None
) -> bool:
    """Add ``run_command_on_device`` to ``mcp`` when the operator enabled it; True when added.

    ``console`` replaces the client built from the settings (tests use it for short handshake timeouts).
    """
    settings = services.settings.commands
    if not settings.enabled:
        return False
    runner = _CommandRunner(services, console)

    async def run_command_on_device(
        device_name: Annotated[str, Field(description="Exact device name (metadata.name).")],
        command: Annotated[
            list[str] | str,
            Field(description='Argument list, e.g. ["df", "-h"]; a string is split like a shell would.'),
        ],
        ctx: Context,
        timeout_seconds: Annotated[
            float | None, Field(description="Seconds the command may run; leave out for the default.")
        ] = None,
    ) -> ToolResult | InputRequiredResult:
        return await runner.run(ctx, device_name, command, timeout_seconds)

    mcp.add_middleware(_AuditRejectedArguments(services))
    mcp.tool(
        run_command_on_device,
        name=TOOL_NAME,
        title=ANNOTATIONS.title,
        description=_description(settings),
        annotations=ANNOTATIONS,
        output_schema=None,
        tags={"write"},
    )
    return True


class _AuditRejectedArguments(Middleware):
    """Arguments fastmcp rejects never reach the runner: audit those attempts here, so every one counts."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def on_call_tool(self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]) -> Any:
        if context.message.name != TOOL_NAME:
            return await call_next(context)
        started = time.monotonic()
        try:
            return await call_next(context)
        except ArgumentsRejected as exc:
            arguments = context.message.arguments or {}
            try:
                who = token_source_for_request(self._services.tokens).identity
            except FlightControlError:
                who = None
            _audit_line(
                "refused",
                who=who,
                device=str(arguments.get("device_name", ""))[:253],
                argv=_shown_argument(arguments.get("command")),
                duration=time.monotonic() - started,
                reason=f"invalid arguments: {str(exc)[:300]}",
            )
            raise


def _shown_argument(command: Any) -> list[str] | str:
    """The command as far as it can be shown in an audit line, whatever type the caller sent."""
    if isinstance(command, str):
        return command[:_ARGV_MAX_BYTES]
    if isinstance(command, list):
        return [str(word)[:200] for word in command[:50]]
    return repr(command)[:200]
