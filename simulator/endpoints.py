"""What every API handler shares: compact JSON answers, the ``Status`` answer of an ``ApiFailure``,
and the ``api`` wrapper that authenticates, resolves the organization and checks RBAC in the server's
order before the handler runs with a :class:`Context`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from simulator.accounts import Principal
from simulator.errors import ApiFailure
from simulator.state import SimulatorState

__all__ = ["JSON", "Context", "Endpoint", "Handler", "api", "failure_response"]


class JSON(Response):
    """Compact JSON like Go's encoder (no spaces)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()


def failure_response(failure: ApiFailure) -> Response:
    headers = failure.response_headers()
    if failure.status == 406:
        return Response(
            json.dumps(failure.body(), separators=(",", ":")),
            failure.status,
            headers=headers,
            media_type="application/json; charset=utf-8",
        )
    return JSON(failure.body(), failure.status, headers=headers)


Handler = Callable[[Request, "Context"], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


class Context:
    """What a handler knows after the middlewares: the state, the principal and the organization."""

    def __init__(self, state: SimulatorState, principal: Principal | None, org_id: str | None) -> None:
        self.state = state
        self.principal = principal
        self.org_id = org_id or ""


def api(
    resource: str | None, verb: str = "get", *, auth: bool = True, org: bool = True
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a handler with authentication, the org_id rules and RBAC, in the server's order."""

    def decorate(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            state: SimulatorState = request.app.state.simulator
            try:
                principal = state.authenticate(request.headers.get("authorization")) if auth else None
                org_id = None
                if principal is not None and org:
                    org_id = state.resolve_org(principal, request.query_params.get("org_id"))
                    scope_state = request.scope.setdefault("state", {})
                    scope_state["sim_org"] = org_id
                    if "sim_entry" in scope_state:  # logged before the answer goes out, not after
                        scope_state["sim_entry"]["org"] = org_id
                if principal is not None and resource is not None:
                    state.authorize(principal, resource, verb)
                return await handler(request, Context(state, principal, org_id))
            except ApiFailure as failure:
                return failure_response(failure)

        endpoint.__name__ = handler.__name__
        return endpoint

    return decorate
