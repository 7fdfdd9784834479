"""query_<kind>: the one read every row of resource_queries.KINDS gets, by name or as a list.

The params model and description are generated from the kind's row (selectable fields, examples, view);
the handler lists through answers.list_answer or fetches one object, falling back to its alias after a
404 by name (devices), and adds a device's lastSeen, which the device object does not carry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, create_model

from answers import (
    MAX_LIMIT,
    InvalidRequest,
    ListQuery,
    list_answer,
    single_answer,
)
from auth import TokenSource
from errors import APIError
from hints import unknown_value_notes
from params import DottedPath, Handler, Name, Params, Selector
from resource_queries import ResourceKind

if TYPE_CHECKING:
    from services import Services

__all__ = [
    "COMMON_FIELDS",
    "NAME_OR_ALIAS",
    "by_alias",
    "query_description",
    "query_handler",
    "query_params_model",
]


def query_params_model(kind: ResourceKind) -> type[BaseModel]:
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


def query_description(kind: ResourceKind) -> str:
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


def query_handler(kind: ResourceKind) -> Handler:
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
            if exc.status_code != 404 or NAME_OR_ALIAS not in kind.field_paths:
                raise
            matches = await by_alias(services, tokens, kind, params.name)
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
                f"{params.name!r} (found with field_selector '{NAME_OR_ALIAS}={params.name}')."
            )
    name = str((obj.get("metadata") or {}).get("name") or params.name)
    extra = await _last_seen(services, tokens, name) if kind.name == "devices" else {}
    return single_answer(services, kind, obj, fields=fields, full=params.full, extra=extra, notes=notes)


NAME_OR_ALIAS = "metadata.nameOrAlias"


async def by_alias(
    services: Services, tokens: TokenSource | None, kind: ResourceKind, name: str
) -> list[dict[str, Any]]:
    """After a 404 by name: up to two objects whose name or alias is ``name``."""
    page = await services.api.list_page(kind, tokens, limit=2, field_selector=f"{NAME_OR_ALIAS}={name}")
    return page.items


async def _alias_list(
    services: Services, tokens: TokenSource | None, kind: ResourceKind, params: Any
) -> dict[str, Any]:
    """Several objects share the alias asked for as a name: list them, saying why."""
    selector = f"{NAME_OR_ALIAS}={params.name}"
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
