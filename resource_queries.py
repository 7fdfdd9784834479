"""The table of resource kinds: everything kind-specific, declared once.

``KINDS`` holds each kind's tool name, API path, flightctl-client call, selectable fields, default
view and related links; tools, queries, docs, REST, the simulator and tests read it instead of
repeating per-kind code. The HTTP client that runs these calls is flightctl_api.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "API_VERSION",
    "KINDS",
    "KINDS_BY_KIND",
    "KINDS_BY_NAME",
    "MAX_PAGE_SIZE",
    "RelatedLink",
    "ResourceKind",
    "SelectableField",
]

API_VERSION = "v1beta1"
MAX_PAGE_SIZE = 1000

FieldType = Literal["string", "spec/status string", "timestamp", "boolean"]


@dataclass(frozen=True)
class SelectableField:
    """A field the API accepts in ``fieldSelector`` for one kind (notes §2.1), with a valid example."""

    path: str
    type: FieldType
    example: str
    values: tuple[str, ...] = ()  # the API's enum, when the field has one: unknown values get a hint


@dataclass(frozen=True)
class RelatedLink:
    """A link from an object to a related resource: a tool and arguments that fetch it.

    Argument values are templates: ``{dotted.path}`` is read from the object, ``{owner.kind}`` and
    ``{owner.name}`` come from ``metadata.owner`` (``Fleet/east``). ``tool`` may be ``@{dotted.path}``
    naming a Kind whose query tool is used (an event's involved object). ``when_owner_kind`` skips the
    link unless the object is owned by that kind. A link whose template cannot be filled is left out.
    """

    rel: str
    tool: str
    arguments: tuple[tuple[str, str], ...]
    when_owner_kind: str | None = None
    in_lists: bool = True  # False: only on single-object answers, to keep list items small


def _events_of(kind: str) -> RelatedLink:
    return RelatedLink(
        "events",
        "query_events",
        (("field_selector", f"involvedObject.kind={kind},involvedObject.name={{metadata.name}}"),),
    )


_COMMON_FIELDS = (
    SelectableField("metadata.name", "string", "metadata.name in (a,b)"),
    SelectableField("metadata.owner", "string", "metadata.owner=Fleet/default"),
    SelectableField(
        "metadata.creationTimestamp", "timestamp", "metadata.creationTimestamp>=2025-01-01T00:00:00Z"
    ),
)

_CONDITIONS = (
    "status.conditions.type",
    "status.conditions.status",
    "status.conditions.reason",
    "status.conditions.message",
)


@dataclass(frozen=True)
class ResourceKind:
    """One row of the kinds table: everything the server knows about a resource kind."""

    name: str  # plural, as in the URI flightctl://devices/{name}
    kind: str  # the API's Kind
    tool: str
    path: str
    api_class: str
    list_method: str
    get_method: str
    fields: tuple[SelectableField, ...]
    view: tuple[str, ...]
    links: tuple[RelatedLink, ...]
    label_selector: bool = True
    order: bool = False
    label_example: str = ""
    featured: tuple[str, ...] = ()  # fields whose examples the tool description shows
    get_query: Mapping[str, Any] = field(default_factory=dict)
    parent: str | None = None  # a nested kind: the ``name`` of the kind whose objects own it ("fleets")
    toolset: str = "core"  # the group its tools belong to (toolsets.py)
    about: str = ""  # one clause on what the kind is, for descriptions and docs

    @property
    def parent_kind(self) -> ResourceKind | None:
        """The kind that owns this one (a fleet for its template versions)."""
        return KINDS_BY_NAME[self.parent] if self.parent else None

    @property
    def parent_arg(self) -> str | None:
        """The argument naming the parent ("fleet"); part of every query and of its cursor."""
        parent = self.parent_kind
        return parent.singular if parent else None

    @property
    def resource(self) -> str:
        """The RBAC resource of its reads (the spec's x-resource): "devices", "fleets/templateversions"."""
        return re.sub(r"/\{[^}]+\}", "", self.path).strip("/")

    @property
    def plural(self) -> str:
        """Human name of the kind ("enrollment requests")."""
        return self.name.replace("_", " ")

    @property
    def singular(self) -> str:
        """Human name of one object ("enrollment request", "repository")."""
        plural = self.plural
        return plural[:-3] + "y" if plural.endswith("ies") else plural.removesuffix("s")

    @property
    def field_paths(self) -> tuple[str, ...]:
        return tuple(f.path for f in self.fields)


KINDS: tuple[ResourceKind, ...] = (
    ResourceKind(
        name="devices",
        kind="Device",
        tool="query_devices",
        path="/devices",
        api_class="DeviceApi",
        list_method="list_devices_without_preload_content",
        get_method="get_device_without_preload_content",
        fields=(
            *_COMMON_FIELDS,
            SelectableField("metadata.alias", "string", "metadata.alias contains kiosk"),
            SelectableField("metadata.nameOrAlias", "string", "metadata.nameOrAlias=store-12"),
            SelectableField(
                "status.summary.status",
                "spec/status string",
                "status.summary.status in (Degraded,Error,Unknown)",
                (
                    "Online",
                    "Degraded",
                    "Error",
                    "Rebooting",
                    "PoweredOff",
                    "Unknown",
                    "AwaitingReconnect",
                    "ConflictPaused",
                ),
            ),
            SelectableField(
                "status.applicationsSummary.status",
                "spec/status string",
                "status.applicationsSummary.status=Degraded",
                ("Healthy", "Degraded", "Error", "Unknown", "NoApplications"),
            ),
            SelectableField(
                "status.updated.status",
                "spec/status string",
                "status.updated.status!=UpToDate",
                ("UpToDate", "OutOfDate", "Updating", "Unknown"),
            ),
            SelectableField(
                "status.lifecycle.status",
                "spec/status string",
                "status.lifecycle.status=Enrolled",
                ("Unknown", "Enrolled", "Decommissioning", "Decommissioned"),
            ),
            SelectableField(
                "status.capabilities.osMode",
                "spec/status string",
                "status.capabilities.osMode=image",
                ("image", "package"),
            ),
        ),
        view=(
            "metadata.name",
            "metadata.owner",
            "metadata.labels",
            "status.summary",
            "status.updated",
            "status.applicationsSummary",
            "status.lifecycle.status",
            "status.os.image",
            "status.systemInfo.agentVersion",
        ),
        links=(
            RelatedLink("fleet", "query_fleets", (("name", "{owner.name}"),), when_owner_kind="Fleet"),
            _events_of("Device"),
            RelatedLink(
                # a selector, not name=: a device may have no enrollment request (any more)
                "enrollment_request",
                "query_enrollment_requests",
                (("field_selector", "metadata.name={metadata.name}"),),
                in_lists=False,
            ),
            RelatedLink(
                "rendered_config",
                "get_device_rendered_config",
                (("name", "{metadata.name}"),),
                in_lists=False,
            ),
        ),
        label_example="region in (eu-west,us-east),!decommissioned",
        featured=("status.summary.status", "metadata.owner"),
        about="edge devices: status, updates, applications, lifecycle",
    ),
    ResourceKind(
        name="fleets",
        kind="Fleet",
        tool="query_fleets",
        path="/fleets",
        api_class="FleetApi",
        list_method="list_fleets_without_preload_content",
        get_method="get_fleet_without_preload_content",
        fields=(
            *_COMMON_FIELDS,
            SelectableField(
                "spec.template.spec.os.image",
                "spec/status string",
                "spec.template.spec.os.image=quay.io/org/os:1.2",
            ),
        ),
        view=(
            "metadata.name",
            "metadata.labels",
            "metadata.annotations.fleet-controller/templateVersion",
            "spec.selector.matchLabels",
            "spec.template.spec.os.image",
            "spec.rolloutPolicy",
            "status.rollout",
            *_CONDITIONS,
            "status.devicesSummary",
        ),
        links=(
            RelatedLink(
                "devices", "query_devices", (("field_selector", "metadata.owner=Fleet/{metadata.name}"),)
            ),
            RelatedLink(
                "device_counts",
                "count_devices",
                (("field_selector", "metadata.owner=Fleet/{metadata.name}"),),
            ),
            _events_of("Fleet"),
            RelatedLink("template_versions", "query_template_versions", (("fleet", "{metadata.name}"),)),
            RelatedLink("rollout", "get_fleet_rollout", (("fleet", "{metadata.name}"),), in_lists=False),
        ),
        label_example="env=prod",
        featured=("spec.template.spec.os.image",),
        get_query={"add_devices_summary": True},
        about="groups of devices sharing a template and rollout policy",
    ),
    ResourceKind(
        name="events",
        kind="Event",
        tool="query_events",
        path="/events",
        api_class="EventApi",
        list_method="list_events_without_preload_content",
        get_method="",
        fields=(
            *_COMMON_FIELDS,
            SelectableField("reason", "string", "reason=DeviceDisconnected"),
            SelectableField("actor", "string", "actor=user:admin"),
            SelectableField("type", "string", "type=Warning", ("Normal", "Warning")),
            SelectableField("involvedObject.name", "string", "involvedObject.name=store-12"),
            SelectableField("involvedObject.kind", "string", "involvedObject.kind=Fleet"),
        ),
        view=(
            "metadata.name",
            "metadata.creationTimestamp",
            "involvedObject",
            "type",
            "reason",
            "message",
            "actor",
        ),
        links=(
            RelatedLink("involved_object", "@{involvedObject.kind}", (("name", "{involvedObject.name}"),)),
        ),
        label_selector=False,
        order=True,
        featured=("involvedObject.kind", "type"),
        about="what happened to any object, newest first",
    ),
    ResourceKind(
        name="enrollment_requests",
        kind="EnrollmentRequest",
        tool="query_enrollment_requests",
        path="/enrollmentrequests",
        api_class="EnrollmentrequestApi",
        list_method="list_enrollment_requests_without_preload_content",
        get_method="get_enrollment_request_without_preload_content",
        fields=(
            *_COMMON_FIELDS,
            # pending = no decision yet: the approval is absent (a denied request has approved=false)
            SelectableField("status.approval.approved", "boolean", "!status.approval.approved"),
            SelectableField("status.certificate", "string", "!status.certificate"),
        ),
        view=(
            "metadata.name",
            "metadata.creationTimestamp",
            "spec.labels",
            "status.approval",
            *_CONDITIONS,
        ),
        links=(
            # a selector, not name=: a request not yet approved has no device
            RelatedLink("device", "query_devices", (("field_selector", "metadata.name={metadata.name}"),)),
            _events_of("EnrollmentRequest"),
        ),
        label_example="site=lab",
        featured=("status.approval.approved",),
        toolset="pki",
        about="devices asking to join; pending ones have no approval",
    ),
    ResourceKind(
        name="repositories",
        kind="Repository",
        tool="query_repositories",
        path="/repositories",
        api_class="RepositoryApi",
        list_method="list_repositories_without_preload_content",
        get_method="get_repository_without_preload_content",
        fields=(
            *_COMMON_FIELDS,
            SelectableField("spec.type", "spec/status string", "spec.type=git", ("git", "http", "oci")),
            SelectableField(
                "spec.url", "spec/status string", "spec.url=https://github.com/org/fleet-config.git"
            ),
            SelectableField("spec.registry", "spec/status string", "spec.registry=quay.io"),
            SelectableField("spec.accessMode", "spec/status string", "spec.accessMode=Read"),
        ),
        view=(
            "metadata.name",
            "spec.type",
            "spec.url",
            "spec.registry",
            "spec.accessMode",
            *_CONDITIONS,
        ),
        links=(
            RelatedLink(
                "resource_syncs",
                "query_resource_syncs",
                (("field_selector", "spec.repository={metadata.name}"),),
            ),
            _events_of("Repository"),
        ),
        label_example="team=platform",
        featured=("spec.type",),
        toolset="fleet-ops",
        about="git, http and OCI sources of configuration",
    ),
    ResourceKind(
        name="resource_syncs",
        kind="ResourceSync",
        tool="query_resource_syncs",
        path="/resourcesyncs",
        api_class="ResourcesyncApi",
        list_method="list_resource_syncs_without_preload_content",
        get_method="get_resource_sync_without_preload_content",
        fields=(
            *_COMMON_FIELDS,
            SelectableField("spec.repository", "spec/status string", "spec.repository=fleet-config"),
            SelectableField("spec.type", "spec/status string", "spec.type=fleet", ("fleet", "catalog")),
        ),
        view=(
            "metadata.name",
            "spec.repository",
            "spec.type",
            "spec.targetRevision",
            "spec.path",
            "status.observedCommit",
            *_CONDITIONS,
        ),
        links=(
            RelatedLink("repository", "query_repositories", (("name", "{spec.repository}"),)),
            _events_of("ResourceSync"),
        ),
        label_example="team=platform",
        featured=("spec.repository",),
        toolset="fleet-ops",
        about="fleets synced from a repository path",
    ),
    ResourceKind(
        name="template_versions",
        kind="TemplateVersion",
        tool="query_template_versions",
        path="/fleets/{fleet}/templateversions",
        api_class="FleetApi",
        list_method="list_template_versions_without_preload_content",
        get_method="get_template_version_without_preload_content",
        fields=(
            SelectableField("metadata.name", "string", "metadata.name in (a,b)"),
            SelectableField(
                "metadata.creationTimestamp", "timestamp", "metadata.creationTimestamp>=2025-01-01T00:00:00Z"
            ),
        ),
        view=(
            "metadata.name",
            "metadata.creationTimestamp",
            "spec.fleet",
            "status.os.image",
            "status.config.name",
            "status.applications.name",
            "status.updatedAt",
            *_CONDITIONS,
        ),
        links=(RelatedLink("fleet", "query_fleets", (("name", "{spec.fleet}"),)),),
        label_example="env=prod",
        featured=("metadata.creationTimestamp",),
        parent="fleets",
        toolset="fleet-ops",
        about="what a fleet rolls out, newest first",
    ),
    ResourceKind(
        name="certificate_signing_requests",
        kind="CertificateSigningRequest",
        tool="query_certificate_signing_requests",
        path="/certificatesigningrequests",
        api_class="CertificatesigningrequestApi",
        list_method="list_certificate_signing_requests_without_preload_content",
        get_method="get_certificate_signing_request_without_preload_content",
        fields=(
            *_COMMON_FIELDS,
            SelectableField("status.certificate", "spec/status string", "!status.certificate"),
        ),
        view=(
            "metadata.name",
            "metadata.creationTimestamp",
            "spec.signerName",
            "spec.username",
            "spec.expirationSeconds",
            *_CONDITIONS,
        ),
        links=(_events_of("CertificateSigningRequest"),),
        label_example="purpose=device",
        featured=("status.certificate",),
        toolset="pki",
        about="device and client certificate requests; pending ones have no condition and no certificate",
    ),
)

KINDS_BY_NAME: Mapping[str, ResourceKind] = {k.name: k for k in KINDS}
KINDS_BY_KIND: Mapping[str, ResourceKind] = {k.kind: k for k in KINDS}
