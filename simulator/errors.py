"""Errors the simulator answers with, rendered as Flight Control ``Status`` bodies.

``ApiFailure`` is raised anywhere below the routes (state, selectors, handlers) and turned into a
response at one place (``simulator.app``). ``status_body`` builds the JSON exactly as the real server
does: ``api.NewFailureStatus`` for ordinary errors, and the bare ``api.Status{}`` of the rate limiter
(429) and the version negotiator (406), which leave apiVersion, kind and status empty.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

__all__ = ["API_VERSION", "ApiFailure", "status_body"]

API_VERSION = "flightctl.io/v1beta1"

# Codes whose body the real server builds by hand, with empty apiVersion/kind/status.
_BARE_REASONS = {429: "TooManyRequests", 406: ""}


class ApiFailure(Exception):
    """An HTTP error answer: status code, the server's own message, and optionally Retry-After."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return status_body(self.status, self.message)

    def response_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return headers


def _reason(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""


def status_body(code: int, message: str) -> dict[str, Any]:
    """The ``Status`` JSON the real server sends for ``code`` (all six keys, always)."""
    if code in _BARE_REASONS:
        return {
            "apiVersion": "",
            "code": code,
            "kind": "",
            "message": message,
            "reason": _BARE_REASONS[code],
            "status": "",
        }
    return {
        "apiVersion": API_VERSION,
        "code": code,
        "kind": "Status",
        "message": message,
        "reason": _reason(code),
        "status": "Success" if code < 400 else "Failure",
    }
