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

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field, create_model

import command_tool
import diagnostics
from answers import (
    DATA,
    MAX_LIMIT,
    InvalidRequest,
    ListQuery,
    dumps,
    fits,
    link,
    list_answer,
    project,
    single_answer,
)
from auth import TokenSource
from errors import APIError
from hints import unknown_value_notes
from organizations import run_in_organization
from params import NAME_PATTERN, DottedPath, Name, Params, Selector
from resource_queries import KINDS, KINDS_BY_NAME, MAX_PAGE_SIZE, ResourceKind

if TYPE_CHECKING:
    from fastmcp.tools import Tool

    from config import Settings
    from services import Services

__all__ = ["COMMON_FIELDS", "OPERATIONS", "OPERATIONS_BY_NAME", "Handler", "Operation", "exposes", "offered"]

Handler = Callable[["Services", TokenSource | None, Any], Awaitable[dict[str, Any]]]
ToolFactory = Callable[["Operation", "Services"], "Tool"]


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
    toolset: str = "core"  # toolsets.TOOLSETS
    needs: tuple[tuple[str, str], ...] = ()  # Flight Control permissions (resource, verb) it uses

    async def run(self, services: Services, tokens: TokenSource | None, params: Any) -> dict[str, Any]:
        """The handler, in the organization the call names (``organization``) if it names one."""
        organization = getattr(params, "organization", None)
        return await run_in_organization(
            services.api, tokens, organization, lambda scoped: self.handler(services, scoped, params)
        )

    @property
    def annotations(self) -> dict[str, Any]:
        """MCP tool annotations, every hint stated (clients never guess a default); the title is the
        tool's own ``title`` (not repeated here: tools/list stays small)."""
        return {
            "readOnlyHint": self.read_only,
            "destructiveHint": self.destructive,
            "idempotentHint": self.idempotent,
            "openWorldHint": self.open_world,
        }


# --- query_<kind> ---------------------------------------------------------------------------------------


def _query_params_model(kind: ResourceKind) -> type[BaseModel]:
    """The params of query_<kind>: the parent of a nested kind, label_selector only where the API has
    one, order only for events; the descriptions are short because the server instructions explain
    selectors, views, limits and cursors once."""
    fields: dict[str, Any] = {}
    if kind.parent_arg:
        fields[kind.parent_arg] = (Name, Field(description=f"The {kind.parent_arg}."))
    fields["name"] = (Name | None, None)
    if kind.label_selector:
        fields["label_selector"] = (Selector | None, None)
    fields["field_selector"] = (Selector | None, None)
    if kind.order:
        fields["order"] = (Literal["asc", "desc"] | None, Field(None, description="Default desc."))
    fields.update(
        limit=(int | None, Field(None, ge=1, le=MAX_LIMIT)),
        fields=(list[DottedPath] | None, Field(None, max_length=50)),
        full=(bool, False),
        cursor=(str | None, Field(None, max_length=4096)),
    )
    model: type[BaseModel] = create_model(f"Query{kind.kind}Params", __base__=Params, **fields)
    return model


#: Fields every kind but noted exceptions selects; the server instructions name them once.
COMMON_FIELDS = ("metadata.name", "metadata.owner", "metadata.creationTimestamp")
_LEAF_PREFIXES = ("metadata.", "status.", "spec.")


def _view_summary(paths: tuple[str, ...]) -> str:
    """The compact view in few words: ``status.summary`` reads ``summary``; conditions once."""
    out: list[str] = []
    for path in paths:
        short = "conditions" if path.startswith("status.conditions") else path
        for prefix in _LEAF_PREFIXES:
            short = short.removeprefix(prefix)
        if short not in out:
            out.append(short)
    return ", ".join(out)


def _query_description(kind: ResourceKind) -> str:
    """Generated from the row: what the kind is, its own selectable fields, valid examples, the view."""
    own = [f.path for f in kind.fields if f.path not in COMMON_FIELDS]  # spec/status: no contains
    about = kind.about[0].upper() + kind.about[1:]
    text = f"The {kind.plural} of one {kind.parent_arg}: {kind.about}." if kind.parent_arg else f"{about}."
    if own:
        text += f" Fields: {', '.join(own)}."
    missing = [p for p in COMMON_FIELDS if p not in kind.field_paths]
    if missing:
        text += f" Not selectable here: {', '.join(missing)}."
    examples = [f"field_selector='{f.example}'" for f in kind.fields if f.path in kind.featured]
    if kind.label_selector and kind.label_example and kind.name == "devices":
        examples.append(f"label_selector='{kind.label_example}'")
    if examples:
        text += f" E.g. {'; '.join(examples)}."
    return text + f" View: {_view_summary(kind.view)}."


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
            arguments={k: v for k, v in args.items() if k != "full" or v},
            notes=tuple(unknown_value_notes(kind, args.get("field_selector"))),
            parent=_parent_of(kind, params),
            page_extra={"parent": _parent_of(kind, params)} if kind.parent_arg else {},
        )
        return await list_answer(services, tokens, kind, query)

    return handle


def _parent_of(kind: ResourceKind, params: Any) -> str | None:
    """The parent a nested kind's query names (``fleet``), part of the API path and of the cursor."""
    return getattr(params, kind.parent_arg) if kind.parent_arg else None


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
    notes: list[str] = []
    if not kind.get_method:
        obj = await _find_by_name(services, tokens, kind, params.name)
    else:
        try:
            obj = await services.api.get(kind, params.name, tokens, parent=_parent_of(kind, params))
        except APIError as exc:
            if exc.status_code != 404 or _NAME_OR_ALIAS not in kind.field_paths:
                raise
            matches = await _by_alias(services, tokens, kind, params.name)
            if not matches:
                raise APIError(
                    404,
                    f"{exc} No {kind.singular} has it as its alias either.",
                    tool_hint=f"{exc.tool_hint or ''} For part of an alias try "
                    f"{kind.tool}(field_selector='metadata.alias contains {params.name}').".strip(),
                ) from exc
            if len(matches) > 1:
                return await _alias_list(services, tokens, kind, params)
            obj = matches[0]
            notes.append(
                f"No {kind.singular} is named {params.name!r}; this is the one whose alias is "
                f"{params.name!r} (found with field_selector '{_NAME_OR_ALIAS}={params.name}')."
            )
    name = str((obj.get("metadata") or {}).get("name") or params.name)
    extra = await _last_seen(services, tokens, name) if kind.name == "devices" else {}
    return single_answer(services, kind, obj, fields=fields, full=params.full, extra=extra, notes=notes)


_NAME_OR_ALIAS = "metadata.nameOrAlias"


async def _by_alias(
    services: Services, tokens: TokenSource | None, kind: ResourceKind, name: str
) -> list[dict[str, Any]]:
    """After a 404 by name: up to two objects whose name or alias is ``name``."""
    page = await services.api.list_page(kind, tokens, limit=2, field_selector=f"{_NAME_OR_ALIAS}={name}")
    return page.items


async def _alias_list(
    services: Services, tokens: TokenSource | None, kind: ResourceKind, params: Any
) -> dict[str, Any]:
    """Several objects share the alias asked for as a name: list them, saying why."""
    selector = f"{_NAME_OR_ALIAS}={params.name}"
    query = ListQuery(
        field_selector=selector,
        fields=tuple(params.fields) if params.fields else None,
        full=params.full,
        arguments={"field_selector": selector},
        notes=(f"No {kind.singular} is named {params.name!r}; these have it as their alias.",),
    )
    return await list_answer(services, tokens, kind, query)


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


class CountDevicesParams(Params):
    label_selector: Selector | None = Field(None, description="Label selector.")
    field_selector: Selector | None = Field(None, description="Field selector over query_devices' fields.")


_DEVICES = KINDS_BY_NAME["devices"]


async def _count_devices(services: Services, tokens: TokenSource | None, params: Any) -> dict[str, Any]:
    """Numbers and Flight Control's status enum values only: no device text, so no ``data`` envelope."""
    selectors = params.model_dump(exclude_none=True, exclude={"organization"})
    summary = await services.api.summary(tokens, **selectors)
    capabilities = summary.get("capabilities")
    answer: dict[str, Any] = {
        "kind": "DeviceCount",
        "selectors": selectors,
        "total": _count(summary.get("total")),
        "summaryStatus": _counts(summary.get("summaryStatus")),
        "applicationStatus": _counts(summary.get("applicationStatus")),
        "updateStatus": _counts(summary.get("updateStatus")),
        "osMode": _counts(capabilities.get("osMode") if isinstance(capabilities, dict) else None),
        "links": {"devices": link(_DEVICES.tool, **params.model_dump(exclude_none=True))},
    }
    notes = unknown_value_notes(_DEVICES, params.field_selector)
    if notes:
        answer["note"] = " ".join(notes)
    return answer


_ENUM_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,39}$")


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _counts(value: Any) -> dict[str, int]:
    """Status counts as Flight Control's enum names to integers; anything else is not passed on."""
    if not isinstance(value, dict):
        return {}
    return {str(k): _count(v) for k, v in value.items() if _ENUM_KEY.fullmatch(str(k))}


class ListDeviceLabelsParams(Params):
    label_selector: Selector | None = Field(None, description="Only labels of devices matching this.")
    field_selector: Selector | None = Field(None, description="Only labels of devices matching this.")
    key: str | None = Field(
        None, max_length=317, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$", description="Only this label key."
    )


_LABELS_CAP = MAX_PAGE_SIZE  # Flight Control returns at most this many pairs and no continue token
_LABEL_WALK_PAGES = 20  # when the cap is hit: read at most this many pages of devices instead


async def _list_device_labels(services: Services, tokens: TokenSource | None, params: Any) -> dict[str, Any]:
    """Label values, filtered by key on the server; past Flight Control's cap, read from the devices."""
    key_selector = f"metadata.labels.key={params.key}" if params.key else None
    field_selector = ",".join(s for s in (params.field_selector, key_selector) if s) or None
    body = await services.api.get_path(
        "LabelApi",
        "list_labels_without_preload_content",
        tokens,
        kind="Device",
        label_selector=params.label_selector,
        field_selector=field_selector,
        limit=_LABELS_CAP,
    )
    pairs = [str(p) for p in body] if isinstance(body, list) else []
    notes: list[str] = []
    grouped: dict[str, set[str]] = {}
    if len(pairs) < _LABELS_CAP:
        for pair in pairs:
            key, _, value = pair.partition("=")
            grouped.setdefault(key, set()).add(value)
    else:
        grouped, walk_note = await _labels_from_devices(services, tokens, params)
        notes.append(walk_note)
    labels = {k: sorted(v) for k, v in sorted(grouped.items())}
    return _labels_answer(services, labels, notes, params.key)


async def _labels_from_devices(
    services: Services, tokens: TokenSource | None, params: Any
) -> tuple[dict[str, set[str]], str]:
    """Every label of the selected devices, read page by page (bounded), and what was left unread."""
    label_selector = ",".join(s for s in (params.label_selector, params.key) if s) or None
    grouped: dict[str, set[str]] = {}
    token: str | None = None
    read, left = 0, None
    for _ in range(_LABEL_WALK_PAGES):
        page = await services.api.list_page(
            _DEVICES,
            tokens,
            limit=MAX_PAGE_SIZE,
            continue_token=token,
            label_selector=label_selector,
            field_selector=params.field_selector,
        )
        read += len(page.items)
        for device in page.items:
            for key, value in ((device.get("metadata") or {}).get("labels") or {}).items():
                if params.key is None or key == params.key:
                    grouped.setdefault(key, set()).add(str(value))
        token = page.continue_token
        if not token:
            return grouped, (
                f"Flight Control lists at most {_LABELS_CAP} label pairs per request, so these were read "
                f"from all {read} matching devices."
            )
        left = page.remaining
    unread = f"{left} more devices" if left is not None else "more devices"
    return grouped, (
        f"Read the labels of the first {read} matching devices only; {unread} were not read, so values "
        "only they carry are missing. Narrow with label_selector or field_selector to see them."
    )


def _labels_answer(
    services: Services, labels: dict[str, list[str]], notes: list[str], key: str | None
) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "kind": "DeviceLabels",
        "keys": len(labels),
        "pairs": sum(len(v) for v in labels.values()),
        "usage": "query_devices(label_selector='key=value') lists the devices; count_devices counts them.",
    }
    if notes:
        answer["note"] = " ".join(notes)
    answer[DATA] = labels
    budget = services.settings.response_token_budget
    if fits(answer, budget):
        return answer
    if key is None:
        answer[DATA] = {k: f"{len(v)} values" for k, v in labels.items()}
        notes.append(
            "Too many values to show; call list_device_labels with key='<key>' for one key's values."
        )
        answer["note"] = " ".join(notes)
        return answer
    values = labels.get(key, [])
    shown = _fitting_prefix(values, budget * 4 - len(dumps(answer).encode()) + len(dumps(values).encode()))
    notes.append(
        f"Showing {len(shown)} of {len(values)} values of {key!r} (sorted), all the response budget holds; "
        f"the other {len(values) - len(shown)} are not shown. Narrow with label_selector to see them."
    )
    answer["note"] = " ".join(notes)
    answer[DATA] = {key: shown}
    return answer


def _fitting_prefix(values: list[str], room: int) -> list[str]:
    """The longest prefix of ``values`` whose JSON list fits ``room`` bytes, less room for the note."""
    used, out = 2 + 400, []
    for value in values:
        used += len(dumps(value).encode()) + 1
        if used > room:
            break
        out.append(value)
    return out


class RenderedConfigParams(Params):
    name: Annotated[str, Field(pattern=NAME_PATTERN, description="Device name (an alias also works).")]
    fields: list[DottedPath] | None = Field(
        None, max_length=50, description="Dotted paths to return instead of spec (e.g. spec.config)."
    )


_RENDERED_KEY = "renderedVersion"


async def _rendered_config(services: Services, tokens: TokenSource | None, params: Any) -> dict[str, Any]:
    asked = params.name
    try:
        obj = await services.api.get_path(
            "DeviceApi", "get_rendered_device_without_preload_content", tokens, name=params.name
        )
    except APIError as exc:
        matches = await _by_alias(services, tokens, _DEVICES, params.name) if exc.status_code == 404 else []
        if len(matches) != 1:
            raise
        name = matches[0]["metadata"]["name"]
        obj = await services.api.get_path(
            "DeviceApi", "get_rendered_device_without_preload_content", tokens, name=name
        )
        params = params.model_copy(update={"name": name})
    obj = obj if isinstance(obj, dict) else {}
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    version = next((v for k, v in annotations.items() if k.endswith(_RENDERED_KEY)), None)
    rendered = project(obj, params.fields or ["spec"])
    answer: dict[str, Any] = {
        "kind": "RenderedDeviceConfig",
        "name": params.name,
        "links": {"device": link(_DEVICES.tool, name=params.name)},
        DATA: {
            "renderedVersion": version or (obj.get("status") or {}).get("config", {}).get(_RENDERED_KEY),
            **rendered,
        },
    }
    if params.name != asked:
        answer["note"] = f"No device is named {asked!r}; this is the one whose alias it is."
    if fits(answer, services.settings.response_token_budget):
        return answer
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    answer[DATA] = {
        "renderedVersion": answer[DATA]["renderedVersion"],
        "sizes": {f"spec.{k}": f"{len(dumps(v))} bytes" for k, v in (spec or {}).items()},
    }
    answer["note"] = (
        answer.get("note", "") + " The rendered configuration is over the response budget; sizes are "
        "shown instead. Ask for parts with "
        f"get_device_rendered_config(name='{params.name}', fields=['spec.config'])."
    ).strip()
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
        toolset=kind.toolset,
        needs=((kind.resource, "list"),),
    )


async def _get_my_permissions(services: Services, tokens: TokenSource | None, params: Any) -> dict[str, Any]:
    """diagnostics.get_my_permissions over the operations this server offers (decided below)."""
    return await diagnostics.get_my_permissions(services, tokens, params, offered(services.settings))


OPERATIONS: tuple[Operation, ...] = (
    *(_query_operation(kind) for kind in KINDS),
    Operation(
        name="count_devices",
        title="Devices: count by status",
        description=(
            "Count devices matching selectors by summary, application and update status and OS mode: "
            "'how many are offline/degraded/out of date' in one small call. Selectors as in query_devices."
        ),
        params=CountDevicesParams,
        handler=_count_devices,
        kind=_DEVICES,
        needs=(("devices", "list"),),
    ),
    Operation(
        name="list_device_labels",
        title="Devices: label keys and values",
        description="Discover the label keys and values in use on devices (optionally over a selector), "
        "to build label selectors.",
        params=ListDeviceLabelsParams,
        handler=_list_device_labels,
        kind=_DEVICES,
        needs=(("labels", "list"),),
    ),
    Operation(
        name="get_device_rendered_config",
        title="Devices: rendered configuration",
        description="The configuration Flight Control rendered for one device (OS image, config sources, "
        "applications) and its renderedVersion.",
        params=RenderedConfigParams,
        handler=_rendered_config,
        kind=_DEVICES,
        needs=(("devices/rendered", "get"),),
    ),
    Operation(
        name="find_unseen_devices",
        title="Devices: not seen lately",
        description="Devices not seen for `hours` (default 24) and their lastSeen, which no selector "
        "reaches: each candidate is checked (Online ones skipped) and the answer says how many.",
        params=diagnostics.UnseenDevicesParams,
        handler=diagnostics.find_unseen_devices,
        kind=_DEVICES,
        toolset="fleet-ops",
        needs=(("devices", "list"), ("devices/lastseen", "get")),
    ),
    Operation(
        name="get_fleet_rollout",
        title="Fleets: rollout state",
        description="Is this fleet's rollout stuck? One call: verdict, template version (and the previous "
        "one), batch and approval, last batch report, conditions, device update counts, links.",
        params=diagnostics.FleetRolloutParams,
        handler=diagnostics.get_fleet_rollout,
        kind=KINDS_BY_NAME["fleets"],
        toolset="fleet-ops",
        needs=(("fleets", "get"), ("fleets/templateversions", "list")),
    ),
    Operation(
        name="list_organizations",
        title="Organizations",
        description="The organizations the caller may use: id (for ORG_ID or the Flightctl-Org-Id header) "
        "and display name.",
        params=diagnostics.EmptyParams,
        handler=diagnostics.list_organizations,
        toolset="admin",
        needs=(("organizations", "list"),),
    ),
    Operation(
        name="get_my_permissions",
        title="Permissions of the caller",
        description="The caller's Flight Control permissions and which of these tools will work with them.",
        params=diagnostics.EmptyParams,
        handler=_get_my_permissions,
        toolset="admin",
    ),
    Operation(
        name="get_server_info",
        title="Flight Control version and enrollment service",
        description="Flight Control's version, API URL, organization and enrollment service, for a "
        "diagnosis.",
        params=diagnostics.EmptyParams,
        handler=diagnostics.get_server_info,
        toolset="admin",
        needs=(("version", "get"),),
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
        toolset="commands",
        needs=(("devices/console", "get"),),  # the console WebSocket's x-rbac
    ),
)

OPERATIONS_BY_NAME: Mapping[str, Operation] = {op.name: op for op in OPERATIONS}


def exposes(settings: Settings, *, toolset: str, read_only: bool) -> bool:
    """The one exposure rule at start-up: the toolset is chosen (--toolsets) and the tool is annotated
    read-only or --read-only is off. Per caller, toolsets.PermissionFilter then hides what Flight
    Control's permissions rule out."""
    return toolset in settings.toolsets and (read_only or not settings.read_only)


def offered(settings: Settings) -> tuple[Operation, ...]:
    """The operations this server exposes (as tools; REST serves the read-only ones): ``exposes`` for
    each, and opt-in ones only when switched on. Decided here only."""
    return tuple(
        op
        for op in OPERATIONS
        if exposes(settings, toolset=op.toolset, read_only=op.read_only)
        and (op.offered_when is None or op.offered_when(settings))
    )
