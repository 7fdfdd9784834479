"""The one exception tree of flightctl-mcp.

Every failure the server can explain to a user is one of these, raised with a message that says what
happened and what to do next. Foreign exceptions (urllib3, httpx, websockets, ssl, yaml) are translated
into this tree where they are caught, chained with ``from exc``; tools turn it into an MCP tool error
(``isError``) at one boundary, so the assistant reads the message and never a traceback.

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

__all__ = [
    "APIConnectionError",
    "APIError",
    "AuthenticationError",
    "CommandRefused",
    "ConfigurationError",
    "ConsoleError",
    "FlightControlError",
    "InvalidRequest",
]


class FlightControlError(Exception):
    """Base class: a failure with a message written for the user or the assistant."""


class ConfigurationError(FlightControlError):
    """A setting is missing, malformed or contradictory; raised at start-up, never silently defaulted."""


class AuthenticationError(FlightControlError):
    """No usable credentials, or Flight Control / the identity provider refused them."""


class APIError(FlightControlError):
    """Flight Control answered with an error ``Status``; keeps its code and its own message."""

    def __init__(self, status_code: int, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
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
