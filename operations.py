"""Every operation the server offers, as data: ``OPERATIONS``.

One ``query_<kind>`` per row of ``resource_queries.KINDS`` plus the device extras (counts, labels,
rendered configuration) and the one operation that changes things, ``run_command_on_device``, which is
opt-in: ``offered(settings)`` is the one place that decides which operations a server exposes. Each
operation has a pydantic params model (bounds and descriptions live in the schema), an async handler
``(services, tokens, params) -> dict``, a title and all four annotation hints. main.py turns each into an
MCP tool (or calls the operation's own ``tool`` factory) and rest_api.py turns the read-only ones into
GET routes, so the answers are the same.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

import command_tool
from answers import InvalidRequest, ListQuery, dumps, fits, link, list_answer, project, single_answer
from auth import TokenSource
from errors import APIError
from resource_queries import KINDS, KINDS_BY_NAME, MAX_PAGE_SIZE, ResourceKind

if TYPE_CHECKING:
    from fastmcp.tools import Tool

    from config import Settings
    from services import Services

__all__ = ["OPERATIONS", "OPERATIONS_BY_NAME", "Handler", "Operation", "offered", "tool_schema"]

Handler = Callable[["Services", TokenSource | None, Any], Awaitable[dict[str, Any]]]
ToolFactory = Callable[["Operation", "Services"], "Tool"]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$"
PATH_PATTERN = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_/-]+)*$"
DEFAULT_LIMIT = 40  # about what fits the default budget in the compact device view

Name = Annotated[str, Field(pattern=NAME_PATTERN, description="Object name.")]
Selector = Annotated[str, Field(min_length=1, max_length=2048)]
DottedPath = Annotated[str, Field(pattern=PATH_PATTERN, max_length=200)]


@dataclass(frozen=True)
class Operation:
    """One read: its tool name, what the assistant is told, its params model and handler."""

    name: str
    title: str
    description: str
    params: type[BaseModel]
    handler: Handler
    kind: ResourceKind | None = None
    read_only: bool = True
    destructive: bool = False
    idempotent: bool = True
    open_world: bool = True
    tool: ToolFactory | None = None  # its own MCP adapter, for an operation that needs the MCP context
    offered_when: Callable[[Settings], bool] | None = None  # opt-in: offered only when this is true

    @property
    def annotations(self) -> dict[str, Any]:
        """MCP tool annotations, every hint stated (clients never guess a default)."""
        return {
            "title": self.title,
            "readOnlyHint": self.read_only,
            "destructiveHint": self.destructive,
            "idempotentHint": self.idempotent,
            "openWorldHint": self.open_world,
        }


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- query_<kind> ---------------------------------------------------------------------------------------


def _query_params_model(kind: ResourceKind) -> type[BaseModel]:
    """The params of query_<kind>: label_selector only where the API has one, order only for events."""
    fields: dict[str, Any] = {
        "name": (
            Name | None,
            Field(
                None,
                pattern=NAME_PATTERN,
                description=f"Get one {kind.singular} by name (other filters unused).",
            ),
        ),
    }
    if kind.label_selector:
        fields["label_selector"] = (Selector | None, Field(None, description="Label selector."))
    fields["field_selector"] = (
        Selector | None,
        Field(None, description="Field selector over the fields listed above."),
    )
    if kind.order:
        fields["order"] = (
            Literal["asc", "desc"] | None,
            Field(None, description="By creation time; default desc (newest first)."),
        )
    fields.update(
        limit=(
            int,
            Field(
                DEFAULT_LIMIT,
                ge=1,
                le=1000,
                description="Most items in this answer (the budget may return fewer).",
            ),
        ),
        fields=(
            list[DottedPath] | None,
            Field(None, max_length=50, description="Dotted paths to return instead of the compact view."),
        ),
        full=(bool, Field(False, description="Return whole objects (large: prefer fields).")),
        cursor=(
            str | None,
            Field(None, max_length=4096, description="From next.arguments of the previous answer."),
        ),
    )
    model: type[BaseModel] = create_model(f"Query{kind.kind}Params", __base__=_Params, **fields)
    return model


_TYPE_NOTES: Mapping[str, str] = {
    "string": "strings",
    "spec/status string": "spec/status strings (no contains)",
    "timestamp": "timestamps",
    "boolean": "booleans",
}


def _view_summary(paths: tuple[str, ...]) -> str:
    """``a.b.x, a.b.y`` reads as ``a.b (x, y)``: the same view in fewer tokens."""
    groups: dict[str, list[str]] = {}
    for path in paths:
        parent, _, leaf = path.rpartition(".")
        groups.setdefault(parent if parent.startswith("status.conditions") else path, []).append(leaf)
    return ", ".join(
        f"{key} ({', '.join(leaves)})" if len(leaves) > 1 else key for key, leaves in groups.items()
    )


def _query_description(kind: ResourceKind) -> str:
    """Names this kind's own selectable fields (grouped by type) and examples valid for it."""
    groups = [
        f"{note}: {', '.join(f.path for f in kind.fields if f.type == ftype)}"
        for ftype, note in _TYPE_NOTES.items()
        if any(f.type == ftype for f in kind.fields)
    ]
    examples = [f"field_selector='{f.example}'" for f in kind.fields if f.path in kind.featured]
    if kind.label_selector:
        examples.append(f"label_selector='{kind.label_example}'")
    if kind.order:
        examples.append("order='asc' (oldest first)")
    return (
        f"List Flight Control {kind.plural} matching selectors, or get one by name. "
        f"Selectable fields: {'; '.join(groups)}. Examples: {'; '.join(examples)}. "
        f"Items show {_view_summary(kind.view)}, and links to related tools."
    )


def _query_handler(kind: ResourceKind) -> Handler:
    async def handle(services: Services, tokens: TokenSource | None, params: Any) -> dict[str, Any]:
        args = params.model_dump(exclude_none=True)
        if params.name:
            return await _get_one(services, tokens, kind, params)
        query = ListQuery(
            limit=params.limit,
            label_selector=args.get("label_selector"),
            field_selector=args.get("field_selector"),
            order=args.get("order"),
            fields=tuple(params.fields) if params.fields else None,
            full=params.full,
            cursor=params.cursor,
            arguments={k: v for k, v in args.items() if k not in ("limit", "full") or v != _default(k)},
        )
        return await list_answer(services, tokens, kind, query)

    return handle


def _default(name: str) -> Any:
    return {"limit": DEFAULT_LIMIT, "full": False}[name]


async def _get_one(
    services: Services, tokens: TokenSource | None, kind: ResourceKind, params: Any
) -> dict[str, Any]:
    extra_args = {
        a for a in ("label_selector", "field_selector", "cursor", "order") if getattr(params, a, None)
    }
    if extra_args:
        raise InvalidRequest(
            f"{kind.tool}: name fetches exactly one {kind.singular}; "
            f"drop {', '.join(sorted(extra_args))} or drop "
            "name to list."
        )
    fields = tuple(params.fields) if params.fields else None
    if not kind.get_method:
        obj = await _find_by_name(services, tokens, kind, params.name)
    else:
        obj = await services.api.get(kind, params.name, tokens)
    extra = await _last_seen(services, tokens, params.name) if kind.name == "devices" else {}
    return single_answer(services, kind, obj, fields=fields, full=params.full, extra=extra)


async def _find_by_name(
    services: Services, tokens: TokenSource | None, kind: ResourceKind, name: str
) -> dict[str, Any]:
    """Kinds without a get endpoint (events): the one item whose metadata.name matches."""
    page = await services.api.list_page(kind, tokens, limit=1, field_selector=f"metadata.name={name}")
    if not page.items:
        raise APIError(
            404, f"{kind.kind} of name {name!r} not found.", tool_hint=f"List names with {kind.tool}."
        )
    return page.items[0]


async def _last_seen(services: Services, tokens: TokenSource | None, name: str) -> dict[str, Any]:
    """``lastSeen`` is not in the Device object (x-go-json-ignore); /lastseen answers 204 when never seen."""
    body = await services.api.get_path(
        "DeviceApi", "get_device_last_seen_without_preload_content", tokens, name=name
    )
    seen = body.get("lastSeen") if isinstance(body, dict) else None
    return {"lastSeen": seen or "never"}


# --- device extras --------------------------------------------------------------------------------------


class CountDevicesParams(_Params):
    label_selector: Selector | None = Field(None, description="Label selector.")
    field_selector: Selector | None = Field(None, description="Field selector over query_devices' fields.")


_DEVICES = KINDS_BY_NAME["devices"]


async def _count_devices(services: Services, tokens: TokenSource | None, params: Any) -> dict[str, Any]:
    selectors = params.model_dump(exclude_none=True)
    summary = await services.api.summary(tokens, **selectors)
    capabilities = summary.get("capabilities")
    return {
        "kind": "DeviceCount",
        "selectors": selectors,
        "total": summary.get("total", 0),
        "summaryStatus": summary.get("summaryStatus", {}),
        "applicationStatus": summary.get("applicationStatus", {}),
        "updateStatus": summary.get("updateStatus", {}),
        "osMode": (capabilities or {}).get("osMode", {}) if isinstance(capabilities, dict) else {},
        "links": {"devices": link(_DEVICES.tool, **selectors)},
    }


class ListDeviceLabelsParams(_Params):
    label_selector: Selector | None = Field(None, description="Only labels of devices matching this.")
    field_selector: Selector | None = Field(None, description="Only labels of devices matching this.")
    key: str | None = Field(None, max_length=317, description="Only this label key.")
    limit: int = Field(MAX_PAGE_SIZE, ge=1, le=1000, description="Most key=value pairs to read.")


async def _list_device_labels(services: Services, tokens: TokenSource | None, params: Any) -> dict[str, Any]:
    body = await services.api.get_path(
        "LabelApi",
        "list_labels_without_preload_content",
        tokens,
        kind="Device",
        label_selector=params.label_selector,
        field_selector=params.field_selector,
        limit=params.limit,
    )
    grouped: dict[str, list[str]] = {}
    for pair in body if isinstance(body, list) else []:
        key, _, value = str(pair).partition("=")
        if params.key is None or key == params.key:
            grouped.setdefault(key, []).append(value)
    labels = {k: sorted(v) for k, v in sorted(grouped.items())}
    answer: dict[str, Any] = {
        "kind": "DeviceLabels",
        "keys": len(labels),
        "pairs": sum(len(v) for v in labels.values()),
        "labels": labels,
        "usage": "query_devices(label_selector='key=value') lists the devices; count_devices counts them.",
    }
    if not fits(answer, services.settings.response_token_budget):
        answer["labels"] = {k: f"{len(v)} values" for k, v in labels.items()}
        answer["note"] = (
            "Too many values to show; call list_device_labels with key='<key>' to see one key's values."
        )
    return answer


class RenderedConfigParams(_Params):
    name: Name
    fields: list[DottedPath] | None = Field(
        None, max_length=50, description="Dotted paths to return instead of spec (e.g. spec.config)."
    )


_RENDERED_KEY = "renderedVersion"


async def _rendered_config(services: Services, tokens: TokenSource | None, params: Any) -> dict[str, Any]:
    obj = await services.api.get_path(
        "DeviceApi", "get_rendered_device_without_preload_content", tokens, name=params.name
    )
    obj = obj if isinstance(obj, dict) else {}
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    version = next((v for k, v in annotations.items() if k.endswith(_RENDERED_KEY)), None)
    answer: dict[str, Any] = {
        "kind": "RenderedDeviceConfig",
        "name": params.name,
        "renderedVersion": version or (obj.get("status") or {}).get("config", {}).get(_RENDERED_KEY),
        "rendered": project(obj, params.fields or ["spec"]),
        "links": {"device": link(_DEVICES.tool, name=params.name)},
    }
    if fits(answer, services.settings.response_token_budget):
        return answer
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    answer["rendered"] = {f"spec.{k}": f"{len(dumps(v))} bytes" for k, v in (spec or {}).items()}
    answer["note"] = (
        "The rendered configuration is over the response budget; sizes are shown instead. Ask for parts with "
        f"get_device_rendered_config(name='{params.name}', fields=['spec.config'])."
    )
    return answer


# --- the table ------------------------------------------------------------------------------------------


def _query_operation(kind: ResourceKind) -> Operation:
    return Operation(
        name=kind.tool,
        title=f"{kind.plural.capitalize()}: query",
        description=_query_description(kind),
        params=_query_params_model(kind),
        handler=_query_handler(kind),
        kind=kind,
    )


OPERATIONS: tuple[Operation, ...] = (
    *(_query_operation(kind) for kind in KINDS),
    Operation(
        name="count_devices",
        title="Devices: count by status",
        description=(
            "Count devices matching selectors in one small call: totals by summary status, application "
            "status, update status and OS mode. Use it for 'how many are offline/degraded/out of date' "
            "instead of listing. "
            "Selectors as in query_devices."
        ),
        params=CountDevicesParams,
        handler=_count_devices,
        kind=_DEVICES,
    ),
    Operation(
        name="list_device_labels",
        title="Devices: label keys and values",
        description="Discover the label keys and values in use on devices (optionally over a selector), "
        "to build label selectors.",
        params=ListDeviceLabelsParams,
        handler=_list_device_labels,
        kind=_DEVICES,
    ),
    Operation(
        name="get_device_rendered_config",
        title="Devices: rendered configuration",
        description="The configuration Flight Control rendered for one device (OS image, config sources, "
        "applications) and its renderedVersion.",
        params=RenderedConfigParams,
        handler=_rendered_config,
        kind=_DEVICES,
    ),
    Operation(
        name=command_tool.TOOL_NAME,
        title=command_tool.ANNOTATIONS.title or "",
        description=command_tool.SUMMARY,
        params=command_tool.CommandParams,
        handler=command_tool.refuse_outside_mcp,
        kind=_DEVICES,
        read_only=False,
        destructive=True,
        idempotent=False,
        tool=command_tool.CommandTool.create,
        offered_when=command_tool.enabled,
    ),
)

OPERATIONS_BY_NAME: Mapping[str, Operation] = {op.name: op for op in OPERATIONS}


def _lean(schema: Any) -> Any:
    """Drop pydantic's titles and collapse Optional[X] to X so tools/list stays small."""
    if isinstance(schema, list):
        return [_lean(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _lean(v) for k, v in schema.items() if k != "title" or not isinstance(v, str)}
    variants = out.get("anyOf")
    if isinstance(variants, list) and {"type": "null"} in variants and out.get("default", ...) is None:
        rest = [v for v in variants if v != {"type": "null"}]
        if len(rest) == 1:
            del out["anyOf"], out["default"]
            out = {**rest[0], **out}
    return out


def tool_schema(operation: Operation) -> dict[str, Any]:
    """The input schema the assistant sees for one operation."""
    schema: dict[str, Any] = _lean(operation.params.model_json_schema())
    return schema


def offered(settings: Settings) -> tuple[Operation, ...]:
    """The operations this server exposes (as tools; REST serves the read-only ones): decided here only."""
    return tuple(op for op in OPERATIONS if op.offered_when is None or op.offered_when(settings))
