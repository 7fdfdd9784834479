"""The Starlette application: the route table of Flight Control v1beta1 reads, the auth endpoints, the
OIDC issuer, the test-control API under ``/_sim/`` and the device console WebSocket, with the fallbacks
(501 for a spec path the simulator does not implement, 405, 404).

``create_app(state)`` returns a :class:`SimulatorApp` (outer_layer.py): an outer ASGI layer that records
requests and applies faults, latency and ``Flightctl-API-Version`` negotiation before the Starlette router
runs. Handlers raise ``ApiFailure``; one place (endpoints.py) turns it into a ``Status`` response.
"""

from __future__ import annotations

import re

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from simulator.auth_handlers import (
    auth_config,
    auth_permissions,
    auth_rate_limited,
    auth_token_proxy,
    auth_userinfo,
    auth_validate,
)
from simulator.console import console_endpoint
from simulator.control_handlers import sim_clock, sim_expire, sim_faults, sim_requests, sim_revoke, sim_tokens
from simulator.endpoints import JSON, api
from simulator.errors import status_body
from simulator.kinds import KINDS
from simulator.oidc import oidc_routes
from simulator.outer_layer import SimulatorApp
from simulator.resource_handlers import (
    generic_get,
    generic_list,
    get_device,
    get_device_lastseen,
    get_device_rendered,
    get_enrollment_config,
    get_fleet,
    get_version,
    legacy_version,
    list_devices,
    list_fleets,
    list_labels,
    list_organizations,
)
from simulator.spec_paths import SPEC_OPERATIONS
from simulator.state import SimulatorState

__all__ = ["create_app"]


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


# ------------------------------------------------------------------------------- fallbacks, routes

_SPEC_PATTERNS = [
    (method, re.compile("^/api/v1" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"))
    for method, path in SPEC_OPERATIONS
    if not path.startswith("/ws/")
]


async def not_implemented(request: Request) -> Response:
    path = request.url.path
    known = [method for method, pattern in _SPEC_PATTERNS if pattern.fullmatch(path)]
    if request.method in known:
        return JSON(
            status_body(501, f"{request.method} {path} is not implemented by the Flight Control simulator"),
            501,
        )
    if known:
        return Response(status_code=405, headers={"Allow": ", ".join(sorted(set(known)))})
    return PlainTextResponse("404 page not found\n", 404)


def _routes() -> list[BaseRoute]:
    v1 = "/api/v1"
    routes: list[BaseRoute] = [
        Route(f"{v1}/devices", api("devices", "list")(list_devices)),
        Route(f"{v1}/devices/{{name}}", api("devices", "get")(get_device)),
        Route(f"{v1}/devices/{{name}}/status", api("devices/status", "get")(get_device)),
        Route(f"{v1}/devices/{{name}}/rendered", api("devices/rendered", "get")(get_device_rendered)),
        Route(f"{v1}/devices/{{name}}/lastseen", api("devices/lastseen", "get")(get_device_lastseen)),
        Route(f"{v1}/fleets", api("fleets", "list")(list_fleets)),
        Route(f"{v1}/fleets/{{name}}", api("fleets", "get")(get_fleet)),
        Route(f"{v1}/fleets/{{name}}/status", api("fleets/status", "get")(get_fleet)),
        Route(f"{v1}/labels", api("labels", "list")(list_labels)),
        Route(f"{v1}/organizations", api("organizations", "list", org=False)(list_organizations)),
        Route(f"{v1}/version", api("version", "get")(get_version)),
        Route(f"{v1}/enrollmentconfig", api("enrollmentconfig", "get")(get_enrollment_config)),
        Route(f"{v1}/auth/config", api(None, auth=False, org=False)(auth_config)),
        Route(f"{v1}/auth/validate", auth_rate_limited(api(None, org=False)(auth_validate))),
        Route(f"{v1}/auth/userinfo", api(None, org=False)(auth_userinfo)),
        Route(f"{v1}/auth/permissions", api(None)(auth_permissions)),
        Route(
            f"{v1}/auth/{{providername}}/token",
            api(None, auth=False, org=False)(auth_token_proxy),
            methods=["POST"],
        ),
    ]
    for plural, spec in KINDS.items():  # every kind without a handler of its own, from its row
        if plural in ("devices", "fleets"):
            continue
        routes.append(Route(v1 + spec.list_path, api(spec.resource, "list")(generic_list(plural))))
        if spec.get:
            get = api(spec.resource, "get")(generic_get(plural))
            routes.append(Route(v1 + spec.list_path + "/{name}", get))
    routes.append(
        Route(
            f"{v1}/enrollmentrequests/{{name}}/status",
            api("enrollmentrequests/status", "get")(generic_get("enrollmentrequests")),
        )
    )
    routes += [
        Route("/api/version", legacy_version),
        Route("/healthz", healthz),
        Route("/readyz", healthz),
        *oidc_routes(),
        Route("/_sim/faults", sim_faults, methods=["GET", "POST"]),
        Route("/_sim/tokens", sim_tokens, methods=["POST"]),
        Route("/_sim/revoke", sim_revoke, methods=["POST"]),
        Route("/_sim/expire", sim_expire, methods=["POST"]),
        Route("/_sim/clock", sim_clock, methods=["GET", "POST"]),
        Route("/_sim/requests", sim_requests, methods=["GET", "DELETE"]),
    ]
    routes.append(WebSocketRoute("/ws/v1/devices/{name}/console", console_endpoint))
    routes.append(
        Route("/api/v1/{rest:path}", not_implemented, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    )
    return routes


def create_app(state: SimulatorState) -> SimulatorApp:
    app = Starlette(routes=_routes())
    app.state.simulator = state
    return SimulatorApp(app)
