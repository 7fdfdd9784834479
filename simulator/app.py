"""The Starlette application: Flight Control v1beta1 reads, auth endpoints, the OIDC issuer, the
test-control API under ``/_sim/``, and the device console WebSocket route.

``create_app(state)`` returns a :class:`SimulatorApp`: an outer ASGI layer that records requests and
applies faults, latency and ``Flightctl-API-Version`` negotiation before the Starlette router runs.
Handlers raise ``ApiFailure``; one place turns it into a ``Status`` response.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Message, Receive, Scope, Send

from simulator.accounts import ORGANIZATIONS, READ_RESOURCES, USERS, Principal
from simulator.console import console_endpoint
from simulator.credentials import CLIENT_ID, PROVIDER_NAME, OAuthError, token_response
from simulator.errors import API_VERSION, ApiFailure, status_body
from simulator.generator import SERVICE_CA_PEM, DeviceRecord, device_spec
from simulator.kinds import KINDS, LABEL_FIELDS
from simulator.oidc import grant_tokens, oidc_routes
from simulator.resources import MAX_LIMIT, KindSpec, decode_continue, encode_continue, rfc3339, summarize
from simulator.selectors import Predicate, compile_field_selector, compile_label_selector
from simulator.spec_paths import SPEC_OPERATIONS
from simulator.state import SimulatorState

__all__ = ["SimulatorApp", "create_app"]

log = logging.getLogger("simulator")


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


# ------------------------------------------------------------------------------- query parameters


def _api_error(name: str, detail: str) -> ApiFailure:
    return ApiFailure(400, f'API Error: parameter "{name}" in query has an error: {detail}')


def _query_value(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value if value not in (None, "") else None


def _int_param(request: Request, name: str, *, minimum: int = 0, maximum: int = MAX_LIMIT) -> int | None:
    raw = _query_value(request, name)
    if raw is None:
        return None
    if not re.fullmatch(r"[+-]?\d+", raw):
        raise _api_error(name, f"value {raw}: an invalid integer: invalid syntax")
    value = int(raw)
    if value > 2**31 - 1 or value < -(2**31):
        raise _api_error(name, f"value {raw}: an invalid integer: value out of range")
    if value > maximum:
        raise _api_error(name, f"number must be at most {maximum}")
    if value < minimum:
        raise _api_error(name, f"number must be at least {minimum}")
    return value


def _bool_param(request: Request, name: str) -> bool:
    raw = _query_value(request, name)
    if raw is None:
        return False
    if raw in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if raw in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise _api_error(name, f"value {raw}: an invalid boolean: invalid syntax")


def _enum_param(
    request: Request, name: str, allowed: tuple[str, ...], *, required: bool = False
) -> str | None:
    raw = _query_value(request, name)
    if raw is None:
        if required:
            raise _api_error(name, "value is required but missing")
        return None
    if raw not in allowed:
        listing = ",".join(json.dumps(a) for a in allowed)
        raise _api_error(name, f"value is not one of the allowed values [{listing}]")
    return raw


_CVE_RE = re.compile(r"^CVE-[0-9]{4}-[0-9]{4,}$")


def _list_meta(next_names: list[str] | None, remaining: int | None) -> dict[str, Any]:
    if next_names is None or remaining is None:
        return {}
    return {"continue": encode_continue(next_names, remaining), "remainingItemCount": remaining}


def _combine(*predicates: Predicate | None) -> Predicate | None:
    active = [p for p in predicates if p is not None]
    if not active:
        return None
    if len(active) == 1:
        return active[0]
    return lambda record: all(p(record) for p in active)


# ----------------------------------------------------------------------------------- the handlers

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


def _not_found(kind: str, name: str) -> ApiFailure:
    return ApiFailure(404, f'{kind} of name "{name}" not found')


def _list_params(request: Request) -> tuple[int, list[str] | None, int | None]:
    limit = _int_param(request, "limit") or MAX_LIMIT
    token = request.query_params.get("continue")
    if token is None:
        return limit, None, None
    names, count = decode_continue(token)
    return limit, names, count


def _selectors(request: Request, plural: str, *, labels: bool = True) -> Predicate | None:
    spec = KINDS[plural]
    field_pred = compile_field_selector(request.query_params.get("fieldSelector"), spec.fields)
    label_pred = (
        compile_label_selector(request.query_params.get("labelSelector"), lambda r: r.labels)
        if labels
        else None
    )
    return _combine(label_pred, field_pred)


async def _run(func: Callable[[], Any]) -> Any:
    """Run CPU-bound list work off the event loop so big pages do not stall other connections."""
    return await asyncio.to_thread(func)


def _parent_filter(request: Request, spec: KindSpec) -> Predicate | None:
    """A nested kind lists only its parent's objects (upstream adds ``metadata.owner=<parent>``)."""
    if spec.parent is None:
        return None
    parent = request.path_params[spec.parent]
    owner = spec.fields["metadata.owner"].getter
    return lambda record: bool(owner(record) == parent)


def _generic_list(plural: str) -> Handler:
    spec = KINDS[plural]

    async def handler(request: Request, ctx: Context) -> Response:
        limit, names, count = _list_params(request)
        predicate = _combine(
            _parent_filter(request, spec), _selectors(request, plural, labels=spec.labels_selectable)
        )
        descending = spec.by_time and (
            not spec.order_param or _enum_param(request, "order", ("asc", "desc")) != "asc"
        )
        collection = ctx.state.org(ctx.org_id).collections[plural]

        def build() -> dict[str, Any]:
            page = collection.page(predicate, limit, names, count, descending=descending)
            return {
                "apiVersion": API_VERSION,
                "kind": spec.list_kind,
                "metadata": _list_meta(page.next_names, page.remaining),
                "items": [ctx.state.render(ctx.org_id, plural, r) for r in page.items],
            }

        return JSON(await _run(build))

    handler.__name__ = f"list_{plural}"
    return handler


def _generic_get(plural: str) -> Handler:
    spec = KINDS[plural]

    async def handler(request: Request, ctx: Context) -> Response:
        name = request.path_params["name"]
        record = ctx.state.org(ctx.org_id).collections[plural].get(name)
        in_parent = _parent_filter(request, spec)
        if record is None or (in_parent is not None and not in_parent(record)):
            raise _not_found(spec.kind, name)
        return JSON(ctx.state.render(ctx.org_id, plural, record))

    handler.__name__ = f"get_{plural}"
    return handler


async def list_devices(request: Request, ctx: Context) -> Response:
    summary_only = _bool_param(request, "summaryOnly")
    cve = _query_value(request, "cveId")
    if cve is not None and (len(cve) > 64 or not _CVE_RE.fullmatch(cve)):
        raise _api_error("cveId", f'string doesn\'t match the regular expression "{_CVE_RE.pattern}"')
    limit, names, count = _list_params(request) if not summary_only else (MAX_LIMIT, None, None)
    if summary_only and ("limit" in request.query_params or "continue" in request.query_params):
        raise ApiFailure(
            400, "parameters such as 'limit', and 'continue' are not supported when 'summaryOnly' is true"
        )
    predicate = _selectors(request, "devices")
    devices = ctx.state.org(ctx.org_id).devices

    def build() -> dict[str, Any]:
        if summary_only:
            return {
                "apiVersion": API_VERSION,
                "kind": "DeviceList",
                "metadata": {},
                "items": [],
                "summary": summarize(devices.filtered(predicate)),
            }
        page = devices.page(predicate, limit, names, count)
        return {
            "apiVersion": API_VERSION,
            "kind": "DeviceList",
            "metadata": _list_meta(page.next_names, page.remaining),
            "items": [ctx.state.render(ctx.org_id, "devices", r) for r in page.items],
            "summary": summarize(page.items),
        }

    return JSON(await _run(build))


def _device(ctx: Context, name: str) -> DeviceRecord:
    record = ctx.state.org(ctx.org_id).devices.get(name)
    if record is None:
        raise _not_found("Device", name)
    assert isinstance(record, DeviceRecord)
    return record


async def get_device(request: Request, ctx: Context) -> Response:
    record = _device(ctx, request.path_params["name"])
    return JSON(ctx.state.render(ctx.org_id, "devices", record))


async def get_device_rendered(request: Request, ctx: Context) -> Response:
    record = _device(ctx, request.path_params["name"])
    device = ctx.state.render(ctx.org_id, "devices", record)
    version = (device.get("metadata", {}).get("annotations") or {}).get(
        "device-controller/renderedVersion", "1"
    )
    if request.query_params.get("knownRenderedVersion") == version:
        return Response(status_code=204)
    spec = device.get("spec") or (device_spec(record, ctx.state.org(ctx.org_id).generated.fleets))
    rendered = {
        "apiVersion": API_VERSION,
        "kind": "Device",
        "metadata": {
            "name": record.name,
            "annotations": {"device-controller/renderedVersion": version},
        },
        "spec": spec,
    }
    return JSON(rendered)


async def get_device_lastseen(request: Request, ctx: Context) -> Response:
    record = _device(ctx, request.path_params["name"])
    seen = ctx.state.last_seen(record)
    if seen is None:
        return Response(status_code=204)
    return JSON({"lastSeen": rfc3339(seen)})


async def list_fleets(request: Request, ctx: Context) -> Response:
    add_summary = _bool_param(request, "addDevicesSummary")
    limit, names, count = _list_params(request)
    predicate = _selectors(request, "fleets")
    org = ctx.state.org(ctx.org_id)

    def build() -> dict[str, Any]:
        page = org.collections["fleets"].page(predicate, limit, names, count)
        items = [r.render() for r in page.items]
        if add_summary:
            owners = {f"Fleet/{item['metadata']['name']}" for item in items}
            grouped: dict[str, list[Any]] = {owner: [] for owner in owners}
            for device in org.devices:
                if device.owner in grouped:
                    grouped[device.owner].append(device)
            items = [
                _with_summary(item, summarize(grouped[f"Fleet/{item['metadata']['name']}"])) for item in items
            ]
        return {
            "apiVersion": API_VERSION,
            "kind": "FleetList",
            "metadata": _list_meta(page.next_names, page.remaining),
            "items": items,
        }

    return JSON(await _run(build))


def _with_summary(fleet: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    copy = dict(fleet)
    copy["status"] = {**(fleet.get("status") or {"conditions": []}), "devicesSummary": summary}
    return copy


async def get_fleet(request: Request, ctx: Context) -> Response:
    name = request.path_params["name"]
    record = ctx.state.org(ctx.org_id).collections["fleets"].get(name)
    if record is None:
        raise _not_found("Fleet", name)
    fleet = record.render()
    if _bool_param(request, "addDevicesSummary"):
        fleet = _with_summary(fleet, ctx.state.devices_summary(ctx.org_id, f"Fleet/{name}"))
    return JSON(fleet)


async def list_labels(request: Request, ctx: Context) -> Response:
    _enum_param(request, "kind", ("Device",), required=True)
    limit = _int_param(request, "limit") or MAX_LIMIT
    device_pred = compile_label_selector(request.query_params.get("labelSelector"), lambda r: r.labels)
    row_pred = compile_field_selector(request.query_params.get("fieldSelector"), LABEL_FIELDS)
    devices = ctx.state.org(ctx.org_id).devices

    def build() -> list[str]:
        seen: set[str] = set()
        for record in devices.filtered(device_pred):
            for key, value in record.labels.items():
                if row_pred is None or row_pred((record, key, value)):
                    seen.add(f"{key}={value}")
        return sorted(seen)[:limit]

    return JSON(await _run(build))


_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _organization(org_id: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Organization",
        "metadata": {"name": org_id},
        "spec": dict(ORGANIZATIONS[org_id]),
    }


async def list_organizations(request: Request, ctx: Context) -> Response:
    assert ctx.principal is not None
    orgs = list(ctx.principal.orgs)
    selector = request.query_params.get("fieldSelector")
    if selector:
        wanted = {m.lower() for m in _UUID_RE.findall(selector)}
        orgs = [o for o in orgs if o in wanted]
    return JSON(
        {
            "apiVersion": API_VERSION,
            "kind": "OrganizationList",
            "metadata": {},
            "items": [_organization(o) for o in orgs],
        }
    )


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def get_enrollment_config(request: Request, ctx: Context) -> Response:
    """``EnrollmentConfig``: how an agent reaches the enrollment service; a named CSR's certificate."""
    certificate = ""
    name = _query_value(request, "csr")
    if name is not None:
        csr = ctx.state.org(ctx.org_id).collections["certificatesigningrequests"].get(name)
        if csr is None:
            raise _not_found("CertificateSigningRequest", name)
        issued = (csr.doc.get("status") or {}).get("certificate")
        certificate = issued if isinstance(issued, str) else ""
    host = urlsplit(ctx.state.base_url).hostname or "127.0.0.1"
    return JSON(
        {
            "enrollment-service": {
                "authentication": {"client-certificate-data": certificate, "client-key-data": ""},
                "service": {
                    "certificate-authority-data": _b64(SERVICE_CA_PEM),
                    "server": f"https://{host}:7443",
                },
                "enrollment-ui-endpoint": f"https://{host}:9000",
            }
        }
    )


async def get_version(request: Request, ctx: Context) -> Response:
    return JSON({"version": ctx.state.version})


async def legacy_version(request: Request) -> Response:
    return JSON({"version": request.app.state.simulator.version})


# ------------------------------------------------------------------------------------------- auth


def _auth_provider(state: SimulatorState) -> dict[str, Any]:
    return {
        "apiVersion": "v1beta1",
        "kind": "AuthProvider",
        "metadata": {"name": PROVIDER_NAME},
        "spec": {
            "providerType": "oidc",
            "displayName": "Flight Control simulator",
            "issuer": state.issuer,
            "clientId": CLIENT_ID,
            "clientSecret": "*****",
            "enabled": True,
            "scopes": ["openid", "profile", "email", "offline_access"],
            "usernameClaim": ["preferred_username"],
            "organizationAssignment": {"type": "static", "organizationName": "default"},
            "roleAssignment": {"type": "static", "roles": ["flightctl-admin"]},
        },
    }


async def auth_config(request: Request, ctx: Context) -> Response:
    return JSON(
        {
            "apiVersion": "v1beta1",
            "providers": [_auth_provider(ctx.state)],
            "defaultProvider": PROVIDER_NAME,
            "organizationsEnabled": True,
        }
    )


async def auth_validate(request: Request, ctx: Context) -> Response:
    return JSON(status_body(200, ""))


def _auth_rate_limited(endpoint: Endpoint) -> Endpoint:
    """Flight Control's stricter limiter on /auth/validate (rateLimit.authRequests per authWindow, per
    client IP), which answers before authentication."""

    async def limited(request: Request) -> Response:
        state: SimulatorState = request.app.state.simulator
        window = state.auth_check_allowed(request.client.host if request.client else "")
        if not window:
            return await endpoint(request)
        body = {"apiVersion": "", "code": 429, "kind": "", "reason": "TooManyRequests", "status": ""}
        body["message"] = "Login rate limit exceeded, please try again later"
        return JSON(body, 429, headers={"Retry-After": str(int(window))})

    return limited


async def auth_userinfo(request: Request, ctx: Context) -> Response:
    assert ctx.principal is not None
    user = USERS[ctx.principal.user]
    return JSON(
        {
            "sub": ctx.state.subject(user.name),
            "preferred_username": user.name,
            "name": user.display_name,
            "organizations": [_organization(o) for o in user.orgs],
        }
    )


async def auth_permissions(request: Request, ctx: Context) -> Response:
    """The caller's roles in the organization as upstream's StaticAuthZ lists them: a resource ``*``
    wildcard, specific entries that override it, and an empty list for an explicit denial. A token
    narrowed by scopes lists exactly what it may still do."""
    assert ctx.principal is not None
    principal = ctx.principal
    if principal.scopes is None:
        permissions = [
            {"resource": resource, "operations": sorted(principal.permissions[resource])}
            for resource in sorted(principal.permissions)
        ]
        return JSON({"permissions": permissions})
    listed = []
    for resource in (*READ_RESOURCES, "devices/console"):
        operations = [verb for verb in ("get", "list") if principal.can(resource, verb)]
        if operations:
            listed.append({"resource": resource, "operations": operations})
    return JSON({"permissions": listed})


async def _form_or_json(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "")
    body = await request.body()
    if "application/json" in content_type:
        try:
            data = json.loads(body or b"{}")
        except json.JSONDecodeError:
            return {}
        return data if isinstance(data, dict) else {}
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


async def auth_token_proxy(request: Request, ctx: Context) -> Response:
    """``POST /api/v1/auth/{providername}/token``: TokenRequest in, TokenResponse out (400 on error)."""
    provider = request.path_params["providername"]
    form = await _form_or_json(request)
    if provider != PROVIDER_NAME:
        return JSON({"error": "invalid_request", "error_description": f"provider {provider} not found"}, 400)
    grant = form.get("grant_type")
    if grant not in ("refresh_token", "authorization_code"):
        return JSON({"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"}, 400)
    if not form.get("client_id"):
        return JSON({"error": "invalid_request", "error_description": "client_id is required"}, 400)
    try:
        tokens = grant_tokens(ctx.state, form)
    except OAuthError as exc:
        return JSON(exc.body(), 400)
    return JSON(token_response(tokens))


# ------------------------------------------------------------------------- test-control (/_sim/)


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
        Route(f"{v1}/auth/validate", _auth_rate_limited(api(None, org=False)(auth_validate))),
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
        routes.append(Route(v1 + spec.list_path, api(spec.resource, "list")(_generic_list(plural))))
        if spec.get:
            get = api(spec.resource, "get")(_generic_get(plural))
            routes.append(Route(v1 + spec.list_path + "/{name}", get))
    routes.append(
        Route(
            f"{v1}/enrollmentrequests/{{name}}/status",
            api("enrollmentrequests/status", "get")(_generic_get("enrollmentrequests")),
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


# ----------------------------------------------------------------------------- the outer ASGI layer

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


def create_app(state: SimulatorState) -> SimulatorApp:
    app = Starlette(routes=_routes())
    app.state.simulator = state
    return SimulatorApp(app)


def describe_routes() -> Mapping[str, str]:  # pragma: no cover - documentation helper
    return {getattr(r, "path", ""): getattr(r, "name", "") for r in _routes()}
