"""Diagnostic answers that combine several Flight Control reads into the one view an operator asks for.

``get_fleet_rollout`` ("is this rollout stuck?"), ``find_unseen_devices`` (``lastSeen`` is not a
selectable field, so the server checks it per device, over pages, and says how much it checked),
``list_organizations``, ``get_my_permissions`` ("which tools will work for me?") and
``get_server_info`` (version and enrollment service, for a diagnosis). operations.py lists them.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import Field

from answers import DATA, link
from auth import TokenSource, organization_for
from errors import FlightControlError
from params import Name, Params, Selector
from resource_queries import KINDS_BY_NAME
from toolsets import PERMISSIONS_PATH, Grants

if TYPE_CHECKING:
    from operations import Operation
    from services import Services

__all__ = [
    "EmptyParams",
    "FleetRolloutParams",
    "UnseenDevicesParams",
    "find_unseen_devices",
    "get_fleet_rollout",
    "get_my_permissions",
    "get_server_info",
    "list_organizations",
]

_FLEETS = KINDS_BY_NAME["fleets"]
_DEVICES = KINDS_BY_NAME["devices"]
_TEMPLATE_VERSIONS = KINDS_BY_NAME["template_versions"]
_ANNOTATION = "fleet-controller/"
_LASTSEEN_CONCURRENCY = 16
_PAGE = 200
_ONLINE_MEANS_SEEN_MINUTES = 10  # twice upstream's DeviceDisconnectedTimeout
_POLICY = ("successThreshold", "defaultUpdateTimeout", "disruptionBudget")
_LAGGING = "status.updated.status!=UpToDate"
_PERCENT = re.compile(r"\d{1,3}%")


class EmptyParams(Params):
    pass


# --- organizations, permissions, server ----------------------------------------------------------------


async def list_organizations(services: Services, tokens: TokenSource | None, params: Any) -> dict[str, Any]:
    """Every organization the caller may use: id (what ORG_ID / Flightctl-Org-Id take) and display name."""
    body = await services.api.get_path(
        "OrganizationApi", "list_organizations_without_preload_content", tokens
    )
    items = [i for i in (body.get("items") if isinstance(body, dict) else None) or [] if isinstance(i, dict)]
    organizations = [
        {
            "id": (item.get("metadata") or {}).get("name"),
            "displayName": (item.get("spec") or {}).get("displayName"),
            "externalId": (item.get("spec") or {}).get("externalId"),
        }
        for item in items
    ]
    current = organization_for(tokens, services.settings.organization)
    return {
        "kind": "OrganizationList",
        "current": current or ("the only one" if len(organizations) == 1 else None),
        DATA: organizations,
    }


async def get_my_permissions(
    services: Services, tokens: TokenSource | None, params: Any, offered: Sequence[Operation]
) -> dict[str, Any]:
    """The caller's Flight Control permissions and, from them, which of the ``offered`` tools will work."""
    body = await services.api.read_path(PERMISSIONS_PATH, tokens)
    grants = Grants.parse(body)
    if grants is None:
        return {
            "kind": "Permissions",
            "note": "Flight Control did not list permissions; every tool is offered.",
        }
    usable: list[str] = []
    denied: dict[str, str] = {}
    for op in offered:
        missing = [f"{verb} {resource}" for resource, verb in op.needs if not grants.allows(resource, verb)]
        if missing:
            denied[op.name] = "needs " + ", ".join(missing)
        else:
            usable.append(op.name)
    listed = {r: sorted(v) for r, v in sorted(grants.by_resource.items())}
    return {
        "kind": "Permissions",
        "usableTools": usable,
        "unusableTools": denied,
        DATA: {"permissions": listed},
    }


async def get_server_info(services: Services, tokens: TokenSource | None, params: Any) -> dict[str, Any]:
    """Flight Control's version and enrollment service, and this server's view of the connection."""
    from version import __version__

    version, enrollment = await asyncio.gather(
        _or_error(services.api.get_path("VersionApi", "get_version_without_preload_content", tokens)),
        _or_error(
            services.api.get_path(
                "EnrollmentrequestApi", "get_enrollment_config_without_preload_content", tokens
            )
        ),
    )
    said: dict[str, Any] = {
        "flightctlVersion": version.get("version", version) if isinstance(version, dict) else version
    }
    service = enrollment.get("enrollment-service") if isinstance(enrollment, dict) else None
    if isinstance(service, dict):
        ca = (service.get("service") or {}).get("certificate-authority-data") or ""
        said["enrollmentService"] = {
            "server": (service.get("service") or {}).get("server"),
            "uiEndpoint": service.get("enrollment-ui-endpoint"),
            "certificateAuthority": f"{len(ca)} bytes of base64 PEM" if ca else "none",
        }
    else:
        said["enrollmentService"] = enrollment
    return {
        "kind": "ServerInfo",
        "apiUrl": services.settings.api_base_url,
        "apiVersion": "v1beta1",
        "organization": organization_for(tokens, services.settings.organization),
        "mcpServerVersion": __version__,
        DATA: said,
    }


async def _or_error(call: Any) -> Any:
    """The read's answer, or the reason it failed (one missing permission does not sink the view)."""
    try:
        return await call
    except FlightControlError as exc:
        return {"unavailable": str(exc)}


# --- rollout -------------------------------------------------------------------------------------------


class FleetRolloutParams(Params):
    fleet: Name


async def get_fleet_rollout(services: Services, tokens: TokenSource | None, params: Any) -> dict[str, Any]:
    """Template version, batch, approval, last batch report, conditions and device update counts in one."""
    fleet, versions = await asyncio.gather(
        services.api.get(_FLEETS, params.fleet, tokens),
        services.api.list_page(_TEMPLATE_VERSIONS, tokens, limit=2, parent=params.fleet),
    )
    metadata = fleet.get("metadata") or {}
    annotations = {
        k.removeprefix(_ANNOTATION): v
        for k, v in (metadata.get("annotations") or {}).items()
        if k.startswith(_ANNOTATION)
    }
    status = fleet.get("status") or {}
    spec = fleet.get("spec") or {}
    policy = spec.get("rolloutPolicy") or {}
    sequence = ((policy.get("deviceSelection") or {}).get("sequence")) or []
    report = _json(annotations.get("lastBatchCompletionReport"))
    conditions = [
        {k: c.get(k) for k in ("type", "status", "reason", "message") if c.get(k)}
        for c in status.get("conditions") or []
        if isinstance(c, dict)
    ]
    summary = status.get("devicesSummary") or {}
    selector = f"metadata.owner=Fleet/{params.fleet}"
    involved = f"involvedObject.name={params.fleet}"
    return {
        "kind": "FleetRollout",
        "fleet": params.fleet,
        "verdict": _verdict(conditions, annotations, report, policy, summary, len(sequence)),
        "links": {
            "not_up_to_date": link(_DEVICES.tool, field_selector=f"{selector},{_LAGGING}"),
            "events": link("query_events", field_selector=f"involvedObject.kind=Fleet,{involved}"),
            "template_versions": link(_TEMPLATE_VERSIONS.tool, fleet=params.fleet),
        },
        DATA: _rollout_data(fleet, versions.items, annotations, report, conditions, summary, len(sequence)),
    }


def _rollout_data(
    fleet: dict[str, Any],
    versions: list[dict[str, Any]],
    annotations: dict[str, str],
    report: Any,
    conditions: list[dict[str, Any]],
    summary: dict[str, Any],
    batches: int,
) -> dict[str, Any]:
    """What Flight Control says about the rollout (its words, so under ``data``)."""
    spec = fleet.get("spec") or {}
    status = fleet.get("status") or {}
    policy = spec.get("rolloutPolicy") or {}
    return {
        "templateVersion": annotations.get("templateVersion"),
        "deployingTemplateVersion": annotations.get("deployingTemplateVersion"),
        "image": ((spec.get("template") or {}).get("spec") or {}).get("os", {}).get("image"),
        "previousVersion": _previous(versions),
        "batch": {
            "current": (status.get("rollout") or {}).get("currentBatch"),
            "of": batches or None,
            "approved": annotations.get("rolloutApproved"),
            "approvalMethod": annotations.get("rolloutApprovalMethod"),
            "lastBatchReport": report,
        },
        "policy": {k: policy[k] for k in _POLICY if k in policy},
        "conditions": conditions,
        "devices": {k: summary.get(k) for k in ("total", "updateStatus", "summaryStatus") if k in summary},
    }


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _previous(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    if len(items) < 2:
        return None
    older = items[1]
    return {
        "name": (older.get("metadata") or {}).get("name"),
        "image": ((older.get("status") or {}).get("os") or {}).get("image"),
    }


def _verdict(
    conditions: list[dict[str, Any]],
    annotations: dict[str, str],
    report: Any,
    policy: dict[str, Any],
    summary: dict[str, Any],
    batches: int,
) -> str:
    """One sentence: rolling, stuck (and why), or idle (and whether devices still lag)."""
    rollout = next((c for c in conditions if c.get("type") == "RolloutInProgress"), {})
    updates = summary.get("updateStatus") or {}
    lagging = sum(n for s, n in updates.items() if s != "UpToDate" and isinstance(n, int))
    if rollout.get("status") != "True":
        if lagging:
            return f"No rollout in progress, but {lagging} device(s) are not up to date."
        return "No rollout in progress; every device is up to date."
    if rollout.get("reason") in ("Suspended", "Waiting") or annotations.get("rolloutApproved") == "false":
        why = "the rollout is suspended or waits for approval of the next batch"
        percent = report.get("successPercentage") if isinstance(report, dict) else None
        if isinstance(percent, int | float) and not isinstance(percent, bool):
            threshold = policy.get("successThreshold")
            shown = threshold if isinstance(threshold, str) and _PERCENT.fullmatch(threshold) else "unset"
            why += f"; last batch {percent:g}% succeeded, threshold {shown}"
        return (
            f"Stuck: {why} (the RolloutInProgress condition is under data). Approve the next batch or fix "
            "the failing devices."
        )
    batch = annotations.get("batchNumber", "?")
    batch = batch if batch.isdigit() else "?"
    return f"Rolling out: batch {batch} of {batches or '?'}; {lagging} device(s) not yet up to date."


# --- devices not seen ----------------------------------------------------------------------------------


class UnseenDevicesParams(Params):
    hours: float = Field(24, gt=0, le=24 * 365)
    label_selector: Selector | None = None
    field_selector: Selector | None = None
    max_devices: int = Field(300, ge=1, le=2000, description="Most devices checked.")


async def find_unseen_devices(services: Services, tokens: TokenSource | None, params: Any) -> dict[str, Any]:
    """Devices not seen for ``hours``: lastSeen is no selectable field, so each candidate's /lastseen is
    read (16 at a time). Devices reported Online have been seen within minutes and are skipped."""
    since = datetime.now(UTC) - timedelta(hours=params.hours)
    # Flight Control marks a device Unknown 5 minutes after its last contact: for longer silences an
    # Online device cannot match, so it is not worth a /lastseen call.
    skip_online = "status.summary.status!=Online" if params.hours * 60 > _ONLINE_MEANS_SEEN_MINUTES else None
    selector = ",".join(s for s in (params.field_selector, skip_online) if s)
    scanned = 0
    total: int | None = None
    token: str | None = None
    found: list[dict[str, Any]] = []
    gate = asyncio.Semaphore(_LASTSEEN_CONCURRENCY)
    while scanned < params.max_devices:
        page = await services.api.list_page(
            _DEVICES,
            tokens,
            limit=min(_PAGE, params.max_devices - scanned),
            continue_token=token,
            label_selector=params.label_selector,
            field_selector=selector,
        )
        if total is None:
            total = len(page.items) + (page.remaining or 0)
        seen = await asyncio.gather(*(_seen(services, tokens, d, gate) for d in page.items))
        for device, when in zip(page.items, seen, strict=True):
            if when is None or when < since:
                found.append(_unseen(device, when))
        scanned += len(page.items)
        token = page.continue_token
        if not token:
            break
    complete = token is None
    answer: dict[str, Any] = {
        "kind": "UnseenDevices",
        "notSeenSince": since.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "candidates": total or 0,
        "scanned": scanned,
        "complete": complete,
        "returned": len(found),
        DATA: found,
    }
    if not complete:
        answer["note"] = (
            f"Checked {scanned} of {total} candidate devices. Narrow the selectors (e.g. "
            "metadata.owner=Fleet/<name>) or raise max_devices (up to 2000) to check the rest."
        )
    return answer


async def _seen(
    services: Services, tokens: TokenSource | None, device: dict[str, Any], gate: asyncio.Semaphore
) -> datetime | None:
    name = (device.get("metadata") or {}).get("name")
    async with gate:
        body = await services.api.get_path(
            "DeviceApi", "get_device_last_seen_without_preload_content", tokens, name=name
        )
    text = body.get("lastSeen") if isinstance(body, dict) else None
    if not isinstance(text, str):
        return None
    # RFC 3339 with up to nanoseconds: Python reads at most microseconds.
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00").replace("z", "+00:00")
    try:
        return datetime.fromisoformat(trimmed)
    except ValueError:
        return None


def _unseen(device: dict[str, Any], when: datetime | None) -> dict[str, Any]:
    metadata = device.get("metadata") or {}
    status = device.get("status") or {}
    return {
        "name": metadata.get("name"),
        "alias": (metadata.get("labels") or {}).get("alias"),
        "owner": metadata.get("owner"),
        "summaryStatus": (status.get("summary") or {}).get("status"),
        "lastSeen": when.isoformat(timespec="seconds").replace("+00:00", "Z") if when else "never",
    }
