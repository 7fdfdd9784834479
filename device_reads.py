"""The device reads beyond query_devices: counts by status, label keys and values, rendered configuration.

Handlers for operations.py's table (``(services, tokens, params) -> dict``) with their params models.
Counts carry only numbers and Flight Control's enum values; labels and the rendered configuration are
device text, so they sit under ``data`` like every other answer.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from answers import (
    DATA,
    dumps,
    fits,
    link,
    project,
)
from auth import TokenSource
from errors import APIError
from hints import unknown_value_notes
from params import NAME_PATTERN, DottedPath, Params, Selector
from resource_queries import KINDS_BY_NAME, MAX_PAGE_SIZE

if TYPE_CHECKING:
    from services import Services
from kind_queries import by_alias

__all__ = [
    "CountDevicesParams",
    "ListDeviceLabelsParams",
    "RenderedConfigParams",
    "count_devices",
    "list_device_labels",
    "rendered_config",
]

_DEVICES = KINDS_BY_NAME["devices"]


class CountDevicesParams(Params):
    label_selector: Selector | None = Field(None, description="Label selector.")
    field_selector: Selector | None = Field(None, description="Field selector over query_devices' fields.")


async def count_devices(services: Services, tokens: TokenSource | None, params: Any) -> dict[str, Any]:
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


async def list_device_labels(services: Services, tokens: TokenSource | None, params: Any) -> dict[str, Any]:
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


async def rendered_config(services: Services, tokens: TokenSource | None, params: Any) -> dict[str, Any]:
    asked = params.name
    try:
        obj = await services.api.get_path(
            "DeviceApi", "get_rendered_device_without_preload_content", tokens, name=params.name
        )
    except APIError as exc:
        matches = await by_alias(services, tokens, _DEVICES, params.name) if exc.status_code == 404 else []
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
