"""What Flight Control answered: the parsed body, and what a failed answer means for the user.

Every status Flight Control may answer with is turned here into one of errors.py's errors, with advice
that names the real cause (a bad argument, a missing organization, a rate limit, an outage).
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from errors import APIError, AuthenticationError

__all__ = ["Decode", "Response", "auth_error", "parse_json", "retry_after_seconds", "status_error"]

#: Reads a successful body the way its caller needs it (page_decoding: only a view's paths); raises
#: ValueError for what it cannot read, which is then parsed the general way.
Decode = Callable[[bytes], Any]

_MAX_RETRY_AFTER = 3600.0


@dataclass
class Response:
    """One HTTP answer; the body is parsed in the worker thread, never on the event loop."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    data: Any = None
    is_json: bool = False

    @classmethod
    def read(
        cls, status: int, headers: Mapping[str, str], body: bytes, decode: Decode | None = None
    ) -> Response:
        if decode is not None and status == 200 and body:
            try:
                return cls(status, headers, body, decode(body), True)
            except ValueError:
                pass  # read below as any body is: parsed in full, or kept as text
        try:
            return cls(status, headers, body, parse_json(body) if body else None, True)
        except ValueError:
            return cls(status, headers, body)


_DECODER = msgspec.json.Decoder()


def parse_json(body: bytes) -> Any:
    """Parse a body with msgspec (the json module took a third of a list call's CPU); what msgspec refuses
    but the json module takes (NaN, lone surrogates, numbers out of range) still parses."""
    try:
        return _DECODER.decode(body)
    except msgspec.DecodeError:
        return json.loads(body)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    # A finite, non-negative number of seconds, at most an hour, whatever the header said.
    return min(max(0.0, seconds), _MAX_RETRY_AFTER) if math.isfinite(seconds) else None


def _server_message(response: Response) -> str:
    """The Status.message of an error body, or its text when the body is not a Status."""
    body = response.data
    if isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"]:
        return str(body["message"])
    text = response.body.decode("utf-8", "replace").strip()
    return text[:500] or f"HTTP {response.status} with an empty body"


_ADVICE: Mapping[int, str] = {
    400: "Fix the argument the message names, then call again.",
    403: "This account may not read this resource in this organization: ask a Flight Control "
    "administrator for access, or check the organization setting.",
    404: "Check the name.",
    406: "This Flight Control does not serve API version v1beta1; upgrade it or use a matching "
    "flightctl-mcp.",
    409: "The object is changing; retry in a moment.",
    429: "Flight Control is rate limiting this client{retried}; wait {wait} and try again, with fewer calls.",
    503: "Flight Control is unavailable{retried}; wait {wait} and try again; if it persists check its "
    "health.",
}
#: Advice only an assistant calling tools can follow (errors.user_error adds it for that audience only).
_TOOL_HINTS: Mapping[int, str] = {
    400: "Selector grammar and fields are in the server instructions and each tool's description.",
    404: "List existing names with {tool}.",
}


#: Beginnings of the 400 messages Flight Control gives for a bad argument (selector, limit, cursor); other
#: 400s (organization, missing token) are not the arguments' fault and get their own advice.
_ARGUMENT_FAULTS = (
    "failed to parse",
    "unknown or unsupported selector",
    "API Error: parameter",
    "limit cannot",
    "parameters such as",
)
_NOT_ARGUMENT_400: Mapping[str, str] = {
    "invalid organization ID format": "The organization must be a UUID: check ORG_ID or `organization` in "
    "client.yaml.",
    "user belongs to multiple organizations": "Choose an organization: set ORG_ID, or `organization` in "
    "client.yaml (`flightctl config set-organization <id>`).",
    "failed to get auth token": "No bearer token reached Flight Control; check the credentials settings.",
}


def status_error(response: Response, hint_tool: str | None) -> APIError:
    status = response.status
    message = _server_message(response)
    retry_after = retry_after_seconds(response.headers)
    retried = response.headers.get("x-mcp-retried")
    if status == 400 and not message.startswith(_ARGUMENT_FAULTS):
        advice = next(
            (text for start, text in _NOT_ARGUMENT_400.items() if message.startswith(start)),
            "Flight Control refused the request; its message above says why.",
        )
        return APIError(status, f"Flight Control answered 400: {message}. {advice}", retry_after=retry_after)
    advice = _ADVICE.get(status) or (
        "Flight Control failed on its side; retry later, and check the API server's logs if it persists."
        if status >= 500
        else "Check the arguments and the server's message above."
    )
    advice = advice.format(
        retried=f" (retried {retried})" if retried else "",
        wait=f"{retry_after:g} s" if retry_after is not None else "a little",
    )
    hint = _TOOL_HINTS.get(status)
    return APIError(
        status,
        f"Flight Control answered {status}: {message}. {advice}",
        retry_after=retry_after,
        tool_hint=hint.format(tool=hint_tool or "the matching query tool") if hint else None,
    )


_REFUSED_SERVER_CREDENTIALS = (
    "Run `flightctl login` again, or set a fresh REFRESH_TOKEN (or access token) for this server, then retry."
)


def auth_error(response: Response, advice: str | None) -> AuthenticationError:
    """What to do depends on whose token it was (the server's own, or the HTTP caller's)."""
    return AuthenticationError(
        f"Flight Control refused the credentials (401: {_server_message(response)}). "
        + (advice or _REFUSED_SERVER_CREDENTIALS)
    )
