"""The read handlers of the resources: the generic list and get of every kind in kinds.py, and the
handlers of their own for devices (summary, rendered, lastseen), fleets (devices summary), labels,
organizations, the enrollment config and the version.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from simulator.accounts import ORGANIZATIONS
from simulator.endpoints import JSON, Context, Handler
from simulator.errors import API_VERSION, ApiFailure
from simulator.generator import SERVICE_CA_PEM, DeviceRecord, device_spec
from simulator.kinds import KINDS, LABEL_FIELDS
from simulator.query_params import (
    api_error,
    bool_param,
    combine,
    enum_param,
    int_param,
    list_meta,
    list_params,
    parent_filter,
    query_value,
    request_selectors,
)
from simulator.resources import MAX_LIMIT, rfc3339, summarize
from simulator.selectors import compile_field_selector, compile_label_selector

__all__ = [
    "generic_get",
    "generic_list",
    "get_device",
    "get_device_lastseen",
    "get_device_rendered",
    "get_enrollment_config",
    "get_fleet",
    "get_version",
    "legacy_version",
    "list_devices",
    "list_fleets",
    "list_labels",
    "list_organizations",
    "organization_resource",
]


_CVE_RE = re.compile(r"^CVE-[0-9]{4}-[0-9]{4,}$")


def _not_found(kind: str, name: str) -> ApiFailure:
    return ApiFailure(404, f'{kind} of name "{name}" not found')


async def _run(func: Callable[[], Any]) -> Any:
    """Run CPU-bound list work off the event loop so big pages do not stall other connections."""
    return await asyncio.to_thread(func)


def generic_list(plural: str) -> Handler:
    """The list handler of a kind served from its kinds.py row alone."""
    spec = KINDS[plural]

    async def handler(request: Request, ctx: Context) -> Response:
        limit, names, count = list_params(request)
        predicate = combine(
            parent_filter(request, spec), request_selectors(request, plural, labels=spec.labels_selectable)
        )
        descending = spec.by_time and (
            not spec.order_param or enum_param(request, "order", ("asc", "desc")) != "asc"
        )
        collection = ctx.state.org(ctx.org_id).collections[plural]

        def build() -> dict[str, Any]:
            page = collection.page(predicate, limit, names, count, descending=descending)
            return {
                "apiVersion": API_VERSION,
                "kind": spec.list_kind,
                "metadata": list_meta(page.next_names, page.remaining),
                "items": [ctx.state.render(ctx.org_id, plural, r) for r in page.items],
            }

        return JSON(await _run(build))

    handler.__name__ = f"list_{plural}"
    return handler


def generic_get(plural: str) -> Handler:
    """The get handler of a kind served from its kinds.py row alone."""
    spec = KINDS[plural]

    async def handler(request: Request, ctx: Context) -> Response:
        name = request.path_params["name"]
        record = ctx.state.org(ctx.org_id).collections[plural].get(name)
        in_parent = parent_filter(request, spec)
        if record is None or (in_parent is not None and not in_parent(record)):
            raise _not_found(spec.kind, name)
        return JSON(ctx.state.render(ctx.org_id, plural, record))

    handler.__name__ = f"get_{plural}"
    return handler


async def list_devices(request: Request, ctx: Context) -> Response:
    summary_only = bool_param(request, "summaryOnly")
    cve = query_value(request, "cveId")
    if cve is not None and (len(cve) > 64 or not _CVE_RE.fullmatch(cve)):
        raise api_error("cveId", f'string doesn\'t match the regular expression "{_CVE_RE.pattern}"')
    limit, names, count = list_params(request) if not summary_only else (MAX_LIMIT, None, None)
    if summary_only and ("limit" in request.query_params or "continue" in request.query_params):
        raise ApiFailure(
            400, "parameters such as 'limit', and 'continue' are not supported when 'summaryOnly' is true"
        )
    predicate = request_selectors(request, "devices")
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
            "metadata": list_meta(page.next_names, page.remaining),
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
    add_summary = bool_param(request, "addDevicesSummary")
    limit, names, count = list_params(request)
    predicate = request_selectors(request, "fleets")
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
            "metadata": list_meta(page.next_names, page.remaining),
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
    if bool_param(request, "addDevicesSummary"):
        fleet = _with_summary(fleet, ctx.state.devices_summary(ctx.org_id, f"Fleet/{name}"))
    return JSON(fleet)


async def list_labels(request: Request, ctx: Context) -> Response:
    enum_param(request, "kind", ("Device",), required=True)
    limit = int_param(request, "limit") or MAX_LIMIT
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


def organization_resource(org_id: str) -> dict[str, Any]:
    """An Organization as the API shows it, in its list and in userinfo."""
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
            "items": [organization_resource(o) for o in orgs],
        }
    )


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def get_enrollment_config(request: Request, ctx: Context) -> Response:
    """``EnrollmentConfig``: how an agent reaches the enrollment service; a named CSR's certificate."""
    certificate = ""
    name = query_value(request, "csr")
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
