"""The outer ASGI layer around the router: it records every request, applies latency and faults
(429/503 answers, dropped connections) and negotiates ``Flightctl-API-Version`` before the Starlette
router runs; ``/_sim/`` passes straight through.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.types import Message, Receive, Scope, Send

from simulator.endpoints import failure_response
from simulator.errors import ApiFailure
from simulator.state import SimulatorState

__all__ = ["SimulatorApp"]


_SUPPORTED_VERSIONS = ("v1beta1",)


class SimulatorApp:
    """Records requests, applies faults, latency and version negotiation, then runs the router."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    @property
    def state(self) -> State:
        return self.app.state

    @property
    def simulator(self) -> SimulatorState:
        state: SimulatorState = self.app.state.simulator
        return state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"].startswith("/_sim/"):
            await self.app(scope, receive, send)
            return
        state = self.simulator
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        entry = state.record_request(
            scope.get("method", "GET") if scope["type"] == "http" else "WEBSOCKET",
            scope["path"],
            scope.get("query_string", b"").decode("latin-1"),
            headers,
        )
        scope.setdefault("state", {})["sim_entry"] = entry
        await state.faults.delay()
        fault = state.faults.take(scope["path"], scope.get("query_string", b"").decode("latin-1"))
        if fault is not None and fault.kind == "drop":
            entry["status"] = "dropped"
            _drop_connection(send)
            return
        if fault is not None:
            entry["status"] = fault.status
            message = fault.message or (
                "Rate limit exceeded, please try again later"
                if fault.status == 429
                else "Authorization server unavailable"
            )
            failure = ApiFailure(fault.status, message, retry_after=fault.retry_after)
            await _send_failure(scope, receive, send, failure)
            return
        if scope["type"] == "http" and scope["path"].startswith("/api/v1/"):
            wanted = headers.get("flightctl-api-version")
            if wanted and wanted not in _SUPPORTED_VERSIONS:
                entry["status"] = 406
                failure = ApiFailure(
                    406,
                    "Requested API version is not supported for this endpoint. Supported versions: "
                    + ", ".join(_SUPPORTED_VERSIONS),
                    headers={"Flightctl-API-Versions-Supported": ", ".join(_SUPPORTED_VERSIONS)},
                )
                await failure_response(failure)(scope, receive, send)
                return
            send = _negotiated(send, entry)
        else:
            send = _recording(send, entry)
        await self.app(scope, receive, send)
        entry["org"] = (scope.get("state") or {}).get("sim_org")


def _recording(send: Send, entry: dict[str, Any]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] in ("http.response.start", "websocket.http.response.start"):
            entry["status"] = message["status"]
        elif message["type"] == "websocket.accept":
            entry["status"] = 101
        await send(message)

    return wrapped


def _negotiated(send: Send, entry: dict[str, Any]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            entry["status"] = message["status"]
            headers = list(message.get("headers", []))
            headers.append((b"flightctl-api-version", b"v1beta1"))
            headers.append((b"vary", b"Flightctl-API-Version"))
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


async def _send_failure(scope: Scope, receive: Receive, send: Send, failure: ApiFailure) -> None:
    response = failure_response(failure)
    if scope["type"] == "http":
        await response(scope, receive, send)
        return
    # WebSocket: refuse before the upgrade with an HTTP answer (ASGI websocket denial response).
    await send(
        {
            "type": "websocket.http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "websocket.http.response.body", "body": response.body, "more_body": False})


def _drop_connection(send: Send) -> None:
    """Close the socket without answering (uvicorn's protocol object sits behind its send callable)."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if cycle is None or transport is None:
        raise ConnectionAbortedError("simulated dropped connection")
    cycle.disconnected = True
    transport.abort()
