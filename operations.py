"""Every operation the server offers, as data: ``OPERATIONS``.

One ``query_<kind>`` per row of ``resource_queries.KINDS`` (kind_queries.py) plus the device extras
(device_reads.py: counts, labels, rendered configuration), the diagnostics (diagnostics.py) and the one
operation that changes things, ``run_command_on_device`` (command_tool.py), which is
opt-in: ``offered(settings)`` is the one place that decides which operations a server exposes. Each
operation has a pydantic params model (bounds and descriptions live in the schema), an async handler
``(services, tokens, params) -> dict``, a title and all four annotation hints. main.py turns each into an
MCP tool (or calls the operation's own ``tool`` factory) and rest_api.py turns the read-only ones into
GET routes, so the answers are the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

import command_tool
import device_reads
import diagnostics
from auth import TokenSource
from kind_queries import query_description, query_handler, query_params_model
from organizations import run_in_organization
from params import Handler
from resource_queries import KINDS, KINDS_BY_NAME, ResourceKind

if TYPE_CHECKING:
    from fastmcp.tools import Tool

    from config import Settings
    from services import Services

__all__ = ["OPERATIONS", "OPERATIONS_BY_NAME", "Operation", "exposes", "offered"]

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


_DEVICES = KINDS_BY_NAME["devices"]


# --- the table ------------------------------------------------------------------------------------------


def _query_operation(kind: ResourceKind) -> Operation:
    return Operation(
        name=kind.tool,
        title=f"{kind.plural.capitalize()}: query",
        description=query_description(kind),
        params=query_params_model(kind),
        handler=query_handler(kind),
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
        params=device_reads.CountDevicesParams,
        handler=device_reads.count_devices,
        kind=_DEVICES,
        needs=(("devices", "list"),),
    ),
    Operation(
        name="list_device_labels",
        title="Devices: label keys and values",
        description="Discover the label keys and values in use on devices (optionally over a selector), "
        "to build label selectors.",
        params=device_reads.ListDeviceLabelsParams,
        handler=device_reads.list_device_labels,
        kind=_DEVICES,
        needs=(("labels", "list"),),
    ),
    Operation(
        name="get_device_rendered_config",
        title="Devices: rendered configuration",
        description="The configuration Flight Control rendered for one device (OS image, config sources, "
        "applications) and its renderedVersion.",
        params=device_reads.RenderedConfigParams,
        handler=device_reads.rendered_config,
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
