"""The read-only REST API: every operation in ``operations.OPERATIONS`` as a GET route, plus its OpenAPI.

Reports and scripts that do not speak MCP get the same queries with the same answers: each route
validates its query string with the operation's own pydantic model and calls the operation's own
handler, so a REST answer is the same JSON text as the tool's answer. Paths:

    /rest/v1/<kind>                  query_<kind>: query_devices -> /rest/v1/devices
    /rest/v1/<kind>/{name}           query_<kind> for one object by name
    /rest/v1/<resource>              the other operations, named as resources (see _PATHS)
    /openapi.json                    the OpenAPI 3.1 document, also kept in docs/openapi.json

Errors are ``{"error": message}`` with a status that fits: 400 bad parameters, 401/403/404/429 as Flight
Control said, 502 when Flight Control failed or could not be reached, 500 for anything else.

scripts/gen_docs.py writes docs/openapi.json and the endpoint table of docs/rest-api.md from here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from answers import dumps
from call_credentials import token_source_for_request
from errors import InvalidRequest, user_error
from http_limits import json_error

if TYPE_CHECKING:
    from operations import Operation
    from services import Services

__all__ = [
    "OPENAPI_PATH",
    "REST_PREFIX",
    "RestEndpoint",
    "endpoint_table",
    "endpoints",
    "openapi_document",
    "render_openapi_json",
    "render_rest_doc",
    "rest_routes",
]


REST_PREFIX = "/rest/v1"
OPENAPI_PATH = "/openapi.json"
API_VERSION = "v1"
DOCS_DIR = Path(__file__).resolve().parent / "docs"

# Operations that are not a plain query_<kind> get a path that reads as a resource, not a verb.
_PATHS: Mapping[str, str] = {
    "count_devices": "/device-counts",
    "list_device_labels": "/device-labels",
    "get_device_rendered_config": "/devices/{name}/rendered-config",
    "find_unseen_devices": "/unseen-devices",
    "get_fleet_rollout": "/fleets/{fleet}/rollout",
    "list_organizations": "/organizations",
    "get_my_permissions": "/permissions",
    "get_server_info": "/server-info",
}


# One object by name: only the arguments that shape a single object make sense beside it.
_ITEM_QUERY = ("fields", "full")


@dataclass(frozen=True)
class RestEndpoint:
    """One REST route of an operation: path, OpenAPI operationId, and the arguments it takes."""

    operation: Operation
    path: str
    operation_id: str
    query_params: tuple[str, ...]

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(re.findall(r"{(\w+)}", self.path))


def _endpoint(
    op: Operation, path: str, operation_id: str, query: tuple[str, ...] | None = None
) -> RestEndpoint:
    in_path = set(re.findall(r"{(\w+)}", path))
    allowed = tuple(p for p in op.params.model_fields if p not in in_path and (query is None or p in query))
    return RestEndpoint(op, REST_PREFIX + path, operation_id, allowed)


def _endpoints_of(op: Operation) -> list[RestEndpoint]:
    """query_<kind>: the collection and one object by name; others: their path from _PATHS."""
    fields = op.params.model_fields
    if op.name in _PATHS:
        return [_endpoint(op, _PATHS[op.name], op.name)]
    if op.kind is not None and op.name == op.kind.tool:
        parent = op.kind.parent_kind
        under = f"/{parent.name.replace('_', '-')}/{{{op.kind.parent_arg}}}" if parent else ""
        collection = under + "/" + op.kind.name.replace("_", "-")
        found = [_endpoint(op, collection, op.name)]
        if "name" in fields:
            found.append(_endpoint(op, collection + "/{name}", op.name + "_by_name", _ITEM_QUERY))
        return found
    path = "/" + op.name.replace("_", "-")
    if "name" in fields and fields["name"].is_required():
        path += "/{name}"
    return [_endpoint(op, path, op.name)]


def endpoints(operations: tuple[Operation, ...] | None = None) -> tuple[RestEndpoint, ...]:
    """Every REST endpoint, in the order of ``operations.OPERATIONS``: read-only operations only."""
    if operations is None:
        from operations import OPERATIONS

        operations = OPERATIONS
    return tuple(endpoint for op in operations if op.read_only for endpoint in _endpoints_of(op))


# --- requests -------------------------------------------------------------------------------------


def _is_array(schema: Mapping[str, Any]) -> bool:
    if schema.get("type") == "array":
        return True
    return any(_is_array(s) for s in schema.get("anyOf", ()))


def _array_params(model: type[BaseModel]) -> frozenset[str]:
    properties = model.model_json_schema().get("properties", {})
    return frozenset(name for name, schema in properties.items() if _is_array(schema))


def _arguments(endpoint: RestEndpoint, request: Request, arrays: frozenset[str]) -> dict[str, Any]:
    """The operation's arguments from the path and the query string; unknown parameters are refused."""
    known = set(endpoint.query_params)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise InvalidRequest(
            f"Unknown query parameter {', '.join(repr(u) for u in unknown)}; "
            f"this endpoint takes: {', '.join(sorted(known)) or 'none'}."
        )
    arguments: dict[str, Any] = dict(request.path_params)
    for name in known & set(request.query_params):
        values = request.query_params.getlist(name)
        if name in arrays:
            arguments[name] = values
        elif len(values) > 1:
            raise InvalidRequest(f"Query parameter {name!r} was given {len(values)} times; give it once.")
        else:
            arguments[name] = values[0]
    return arguments


def _failure_response(exc: Exception, operation_id: str) -> JSONResponse:
    """The HTTP face of errors.user_error; Flight Control's own 4xx verdicts pass through."""
    failure = user_error(exc, "rest", operation=operation_id)
    headers: dict[str, str] = {}
    if failure.status == 401:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    if failure.status == 429:
        headers["Retry-After"] = str(max(1, round(failure.retry_after or 1)))
    return json_error(failure.message, failure.status, headers)


def _handler_app(endpoint: RestEndpoint, services: Services) -> ASGIApp:
    model = endpoint.operation.params
    arrays = _array_params(model)

    async def handle(request: Request) -> Response:
        try:
            params = model.model_validate(_arguments(endpoint, request, arrays))
            tokens = token_source_for_request(services.tokens)
            result = await endpoint.operation.run(services, tokens, params)
        except Exception as exc:
            return _failure_response(exc, endpoint.operation_id)
        return Response(dumps(result), media_type="application/json")

    return request_response(handle)


def rest_routes(services: Services, protect: Callable[[ASGIApp], ASGIApp]) -> list[BaseRoute]:
    """The GET routes (each wrapped by ``protect``, the MCP endpoint's auth) and the open OpenAPI route."""
    document = render_openapi_json().encode()

    async def openapi(request: Request) -> Response:
        return Response(document, media_type="application/json")

    routes: list[BaseRoute] = [Route(OPENAPI_PATH, openapi, methods=["GET"])]
    from operations import offered

    for endpoint in endpoints(offered(services.settings)):
        app = _Served(protect(_handler_app(endpoint, services)))
        routes.append(Route(endpoint.path, app, methods=["GET"], name=endpoint.operation_id))
    return routes


class _Served:
    """An ASGI app as a Route endpoint: Route would wrap a plain function again as a request handler."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


# --- OpenAPI --------------------------------------------------------------------------------------

_ERROR_SCHEMA_REF = {"$ref": "#/components/schemas/Error"}
_RESPONSES: tuple[tuple[str, str], ...] = (
    ("400", "Invalid parameters, or Flight Control refused the selector (the message explains why)."),
    ("401", "No bearer token, or it was refused; see WWW-Authenticate."),
    ("403", "Flight Control's RBAC does not allow this caller to read this resource."),
    ("404", "No such object."),
    ("413", "Request body too large."),
    ("429", "Too many requests from this caller; wait Retry-After seconds."),
    ("502", "Flight Control failed or could not be reached."),
    ("500", "The server failed or is misconfigured; the message (and the server log) says what to fix."),
    ("503", "The bearer token could not be verified right now; retry shortly."),
)


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_SCHEMA_REF}}}


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter cannot be null, only absent: drop the ``null`` branch pydantic writes."""
    variants = [_without_null(s) for s in schema.get("anyOf", ()) if s.get("type") != "null"]
    result = {k: v for k, v in schema.items() if k not in ("anyOf", "title", "description")}
    if variants:
        result.update(variants[0] if len(variants) == 1 else {"anyOf": variants})
    if result.get("default", 0) is None:
        del result["default"]
    return result


def _parameter(name: str, schema: dict[str, Any], *, in_path: bool, required: bool) -> dict[str, Any]:
    parameter: dict[str, Any] = {
        "name": name,
        "in": "path" if in_path else "query",
        "required": in_path or required,
        "schema": _without_null(schema),
    }
    if schema.get("description"):
        parameter["description"] = schema["description"]
    if _is_array(schema):
        parameter.update(style="form", explode=True)
    return parameter


def _operation_object(endpoint: RestEndpoint, components: dict[str, Any]) -> dict[str, Any]:
    op = endpoint.operation
    schema = op.params.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    required = set(schema.get("required", ()))
    taken = set(endpoint.path_params) | set(endpoint.query_params)
    parameters = [
        _parameter(name, prop, in_path=name in endpoint.path_params, required=name in required)
        for name, prop in schema.get("properties", {}).items()
        if name in taken
    ]
    responses: dict[str, Any] = {
        "200": {
            "description": f"The same JSON the MCP tool {op.name} returns.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Answer"}}},
        }
    }
    responses.update({code: _error_response(text) for code, text in _RESPONSES})
    return {
        "operationId": endpoint.operation_id,
        "summary": op.title,
        "description": op.description,
        "parameters": parameters,
        "responses": responses,
    }


def _health_paths() -> dict[str, Any]:
    status = {"type": "object", "properties": {"status": {"type": "string"}}, "required": ["status"]}

    def ok(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": status}}}

    return {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "The process is up",
                "security": [],
                "responses": {"200": ok("Always, while the process runs.")},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "The server can serve callers: Flight Control answers (and accepts the server's "
                "credentials unless in pass-through) and is not rate-limiting token checks",
                "security": [],
                "responses": {
                    "200": ok("Ready to serve."),
                    "503": {
                        "description": 'Not ready (`{"status": "not ready"}`); the server\'s log says why.',
                        "content": {"application/json": {"schema": status}},
                    },
                },
            }
        },
    }


def openapi_document(operations: tuple[Operation, ...] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the REST API, generated from the operations' own models."""
    components: dict[str, Any] = {
        "Error": {
            "type": "object",
            "properties": {"error": {"type": "string", "description": "What happened, then what to do."}},
            "required": ["error"],
        },
        "Answer": {
            "type": "object",
            "description": "The operation's answer; identical to the MCP tool's structured result.",
        },
    }
    paths: dict[str, Any] = {}
    for endpoint in endpoints(operations):
        paths[endpoint.path] = {"get": _operation_object(endpoint, components)}
    paths.update(_health_paths())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "flightctl-mcp REST API",
            "version": API_VERSION,
            "description": (
                "Read-only queries over a Flight Control fleet, the same as the MCP tools. Send "
                "`Authorization: Bearer <token>`: your own Flight Control token in pass-through mode, "
                "or the operator's shared secret."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearerAuth": []}],
    }


def render_openapi_json(operations: tuple[Operation, ...] | None = None) -> str:
    """docs/openapi.json exactly as it is served."""
    return json.dumps(openapi_document(operations), indent=2, sort_keys=False) + "\n"


_TABLE_START = "<!-- endpoints: generated by `python scripts/gen_docs.py`; edit the prose, not this table -->"
_TABLE_END = "<!-- end of generated endpoints -->"


def endpoint_table(operations: tuple[Operation, ...] | None = None) -> str:
    """The endpoint table of docs/rest-api.md, generated so it cannot drift from the code."""
    lines = ["| Path | MCP tool | Query parameters |", "|---|---|---|"]
    for endpoint in endpoints(operations):
        query = ", ".join(f"`{p}`" for p in endpoint.query_params) or "none"
        lines.append(f"| `GET {endpoint.path}` | `{endpoint.operation.name}` | {query} |")
    return "\n".join(lines)


def render_rest_doc(current: str, operations: tuple[Operation, ...] | None = None) -> str:
    """docs/rest-api.md with its endpoint table (between the markers) regenerated; the prose is kept."""
    start, end = current.find(_TABLE_START), current.find(_TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"docs/rest-api.md lost its table markers: {_TABLE_START!r} ... {_TABLE_END!r}")
    head, tail = current[: start + len(_TABLE_START)], current[end:]
    return f"{head}\n{endpoint_table(operations)}\n{tail}"
