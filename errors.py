"""The one exception tree of flightctl-mcp.

Every failure the server can explain to a user is one of these, raised with a message that says what
happened and what to do next. Foreign exceptions (urllib3, httpx, websockets, ssl, yaml) are translated
into this tree where they are caught, chained with ``from exc``. ``user_error`` is the one place any
exception becomes what a caller reads (an MCP tool error, a REST error body, a command-line line), so the
assistant reads the message and never a traceback, and a REST or CLI caller never gets a tool hint.

    FlightControlError              anything this server can explain
    ├── ConfigurationError          bad setting at start-up (names the variable, the value, the valid ones)
    ├── AuthenticationError         no usable credentials, or they were refused (401, invalid_grant)
    ├── APIError                    Flight Control answered with an error Status (status_code, message)
    ├── APIConnectionError          no answer: connection refused or dropped, TLS failure, timeout
    ├── InvalidRequest              arguments that cannot be answered as given (bad cursor, contradictions)
    ├── CommandRefused              run_command_on_device refused a command before it ran (policy)
    └── ConsoleError                the device console session failed (status_code when before upgrade)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "APIConnectionError",
    "APIError",
    "Audience",
    "AuthenticationError",
    "CommandRefused",
    "ConfigurationError",
    "ConsoleError",
    "FlightControlError",
    "InvalidRequest",
    "UserError",
    "user_error",
]

_log = logging.getLogger("flightctl_mcp.errors")

#: Who reads the message: an assistant calling MCP tools, a REST client, or a person at the command line.
Audience = Literal["tool", "rest", "cli"]


class FlightControlError(Exception):
    """Base class: a failure with a message written for the user or the assistant.

    ``tool_hint`` is advice that only makes sense to an assistant calling tools ("list names with
    query_devices"); ``user_error`` adds it for the tool audience only.
    """

    def __init__(self, *args: object, tool_hint: str | None = None) -> None:
        super().__init__(*args)
        self.tool_hint = tool_hint


class ConfigurationError(FlightControlError):
    """A setting is missing, malformed or contradictory; raised at start-up, never silently defaulted."""


class AuthenticationError(FlightControlError):
    """No usable credentials, or Flight Control / the identity provider refused them."""


class APIError(FlightControlError):
    """Flight Control answered with an error ``Status``; keeps its code and its own message."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        retry_after: float | None = None,
        tool_hint: str | None = None,
    ) -> None:
        super().__init__(message, tool_hint=tool_hint)
        self.status_code = status_code
        self.message = message
        self.retry_after = retry_after


class APIConnectionError(FlightControlError):
    """Flight Control could not be reached or did not answer in time (network, TLS, timeout)."""


class InvalidRequest(FlightControlError):
    """The arguments cannot be answered as given (bad cursor, contradictory options); says how to fix."""


class CommandRefused(FlightControlError):
    """run_command_on_device refused the command by policy; nothing was sent to the device."""


class ConsoleError(FlightControlError):
    """The console session could not start or broke; ``status_code`` is set when HTTP answered."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


# --------------------------------------------------------------------------------------------------
# The one adapter: exception -> what the caller reads
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserError:
    """What a caller is told about one failure: the message, the HTTP status that fits, when to retry."""

    message: str
    status: int
    retry_after: float | None = None


INTERNAL_ERROR = "Internal error; the server log has the details."
_STATUS_BY_ERROR: tuple[tuple[type[FlightControlError], int], ...] = (
    (InvalidRequest, 400),
    (AuthenticationError, 401),
    (APIConnectionError, 502),
)
#: Flight Control's own verdicts a REST caller gets as they are; other API statuses become 502.
_PASSED_THROUGH = frozenset({400, 401, 403, 404, 429})


def user_error(exc: BaseException, audience: Audience, *, operation: str = "") -> UserError:
    """The one mapping from any exception to the message a caller reads (and its HTTP status).

    Explained failures (errors.py's tree, invalid arguments) keep their message; a tool hint is added
    only for the ``tool`` audience. Anything else is a bug: it is logged with its traceback and the
    caller reads a generic line, never the foreign exception's text.
    """
    if _is_validation_error(exc):
        return UserError(_argument_message(exc, audience, operation), 400)
    if not isinstance(exc, FlightControlError):
        _log.error("%s failed unexpectedly", operation or audience, exc_info=exc)
        return UserError(INTERNAL_ERROR, 500)
    _log.info("%s failed: %s", operation or audience, exc)
    message = str(exc)
    if audience == "tool" and exc.tool_hint:
        message = f"{message} {exc.tool_hint}"
    if isinstance(exc, APIError):
        status = exc.status_code if exc.status_code in _PASSED_THROUGH else 502
        return UserError(message, status, exc.retry_after)
    return UserError(message, next((code for cls, code in _STATUS_BY_ERROR if isinstance(exc, cls)), 500))


def _is_validation_error(exc: BaseException) -> bool:
    import pydantic  # lazily: this module is imported before anything heavy

    return isinstance(exc, pydantic.ValidationError)


def _argument_message(exc: BaseException, audience: Audience, operation: str) -> str:
    """Name each bad argument and the rule it broke, without echoing input values (long, or secret)."""
    import pydantic

    assert isinstance(exc, pydantic.ValidationError)
    noun = "arguments" if audience == "tool" else "parameters"
    problems = [
        f"{'.'.join(str(p) for p in error['loc']) or noun}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False)
    ]
    if audience == "tool":
        return f"Invalid arguments for {operation}: " + "; ".join(problems) + ". Fix them and call again."
    return "Invalid parameters: " + "; ".join(problems) + "."
