"""Asking the user before a device command runs (MCP_COMMAND_CONFIRM), bound to that exact command.

``ctx.elicit`` on handshake-era sessions, an ``InputRequiredResult`` round trip on 2026-07-28 ones; a late
or missing answer counts as refused.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastmcp import Context
from mcp_types import ElicitRequest, ElicitRequestFormParams, ElicitResult, InputRequiredResult
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from allowlist import shown_argv
from command_policy import CommandRequest
from errors import CommandRefused

__all__ = ["Confirmation"]


_CONFIRM_KEY = "confirm_command"


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
    where = f" in organization {request.organization}" if request.organization else ""
    return (
        f"Run {shown_argv(request.argv)} on device {request.device!r}{where} (stopped after "
        f"{request.timeout:g} s)? It runs as the device's console user and may change the device."
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


_DECLINED = "The user did not approve the command, so it was not sent to the device."


class Confirmation:
    """Asks the user before a command runs: ``ctx.elicit`` on handshake-era sessions, or an
    ``InputRequiredResult`` round trip on 2026-07-28 ones. The answer is bound to the exact command and
    must come within ``timeout`` seconds; a late or missing answer counts as refused."""

    def __init__(self, required: bool, timeout: float) -> None:
        self.required = required
        self.timeout = timeout

    def _too_late(self) -> CommandRefused:
        return CommandRefused(
            f"The user did not answer the confirmation within {self.timeout:g} s "
            "(MCP_COMMAND_CONFIRM_TIMEOUT), so the command was not sent. Ask again when the user is there."
        )

    async def ask(self, ctx: Context, request: CommandRequest) -> InputRequiredResult | None:
        """None when the command may run; an InputRequiredResult to return when the client must ask first.
        Raises CommandRefused when the user said no, did not answer in time or cannot be asked."""
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
        try:
            async with asyncio.timeout(self.timeout):
                answer = await ctx.elicit(_question(request), response_type=bool, response_title="Run it")
        except TimeoutError:
            raise self._too_late() from None
        if not (answer.action == "accept" and answer.data is True):
            raise CommandRefused(_DECLINED)
        return None

    def _round_trip(self, ctx: Context, request: CommandRequest) -> InputRequiredResult | None:
        """The request state (sealed by the SDK) carries the command's fingerprint and when it was asked."""
        responses = ctx.input_responses
        if responses is None or _CONFIRM_KEY not in responses:
            ask = ElicitRequest(
                params=ElicitRequestFormParams(message=_question(request), requested_schema=_SCHEMA)
            )
            state = f"{request.fingerprint()}:{time.time():.3f}"
            return InputRequiredResult(input_requests={_CONFIRM_KEY: ask}, request_state=state)
        fingerprint, _, asked = (ctx.request_state or "").partition(":")
        if fingerprint != request.fingerprint():
            raise CommandRefused(
                "The confirmation was given for a different command; it was not sent. Ask again."
            )
        try:
            waited = time.time() - float(asked)
        except ValueError:
            raise CommandRefused("The confirmation carries no time of asking; ask again.") from None
        if not 0 <= waited <= self.timeout:
            raise self._too_late()
        if not _approved(responses[_CONFIRM_KEY]):
            raise CommandRefused(_DECLINED)
        return None
