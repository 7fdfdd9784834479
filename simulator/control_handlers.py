"""The test-control API under ``/_sim/``: faults, tokens issued on demand, revocation and expiry, the
clock, and the request log. No authentication: tests drive the simulator through it.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from simulator.credentials import token_response
from simulator.endpoints import JSON
from simulator.state import SimulatorState

__all__ = ["sim_clock", "sim_expire", "sim_faults", "sim_requests", "sim_revoke", "sim_tokens"]


async def _json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body:
        return {}
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


async def sim_faults(request: Request) -> Response:
    state: SimulatorState = request.app.state.simulator
    if request.method == "GET":
        return JSON({"latency_ms": state.faults.latency_ms, "pending": state.faults.pending()})
    try:
        body = await _json_body(request)
        action = body.get("action") or body.get("kind")
        if action in ("expire_token", "revoke_token"):
            token = str(body["token"])
            found = state.expire(token) if action == "expire_token" else state.revoke(token)
            return JSON({"ok": found}, 200 if found else 404)
        state.faults.configure(body)
    except (ValueError, KeyError, TypeError) as exc:
        return JSON({"error": str(exc)}, 400)
    return JSON({"ok": True, "latency_ms": state.faults.latency_ms, "pending": state.faults.pending()})


async def sim_tokens(request: Request) -> Response:
    state: SimulatorState = request.app.state.simulator
    try:
        body = await _json_body(request)
        scopes = body.get("scopes")
        tokens = state.issue_tokens(
            body.get("user", "admin"),
            scopes=scopes,
            access_ttl=body.get("access_ttl"),
            refresh_ttl=body.get("refresh_ttl"),
        )
    except (ValueError, TypeError) as exc:
        return JSON({"error": str(exc)}, 400)
    return JSON(token_response(tokens))


async def sim_revoke(request: Request) -> Response:
    state: SimulatorState = request.app.state.simulator
    body = await _json_body(request)
    found = state.revoke(str(body.get("token", "")))
    return JSON({"ok": found}, 200 if found else 404)


async def sim_expire(request: Request) -> Response:
    state: SimulatorState = request.app.state.simulator
    body = await _json_body(request)
    found = state.expire(str(body.get("token", "")))
    return JSON({"ok": found}, 200 if found else 404)


async def sim_clock(request: Request) -> Response:
    state: SimulatorState = request.app.state.simulator
    if request.method == "POST":
        body = await _json_body(request)
        unknown = set(body) - {"advance", "seconds"}
        if unknown or len(body) != 1:
            return JSON(
                {"error": 'give exactly one of "advance" or "seconds" (seconds to move the clock)'}, 400
            )
        state.clock.advance(float(next(iter(body.values()))))
    return JSON({"now": state.clock.now(), "offset": state.clock.offset})


async def sim_requests(request: Request) -> Response:
    state: SimulatorState = request.app.state.simulator
    if request.method == "DELETE":
        state.clear_requests()
        return JSON({"ok": True})
    return JSON({"requests": state.requests()})
