"""Who may call the simulator: its organizations, its users with their roles (as upstream's StaticAuthZ
writes them), and the Principal a request acts as (a user, narrowed by the scopes of the token used).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "DEFAULT_ORG",
    "LAB_ORG",
    "ORGANIZATIONS",
    "READ_RESOURCES",
    "USERS",
    "Principal",
    "Role",
    "User",
]

DEFAULT_ORG = "00000000-0000-0000-0000-000000000000"
LAB_ORG = "7e3a4b52-1c1d-4a8e-9f0a-2b6c8d9e0f11"
ORGANIZATIONS: dict[str, dict[str, str]] = {
    DEFAULT_ORG: {"externalId": "default", "displayName": "Default"},
    LAB_ORG: {"externalId": "lab", "displayName": "Lab"},
}

# Every read resource (the spec's x-resource names) and the verbs a read uses.
READ_RESOURCES = (
    "devices",
    "devices/status",
    "devices/rendered",
    "devices/lastseen",
    "fleets",
    "fleets/status",
    "fleets/templateversions",
    "enrollmentrequests",
    "enrollmentrequests/status",
    "repositories",
    "resourcesyncs",
    "events",
    "labels",
    "organizations",
    "certificatesigningrequests",
    "authproviders",
    "enrollmentconfig",
    "version",
)
#: A role as upstream's StaticAuthZ writes it: resource -> verbs, ``*`` for any resource or verb; a
#: specific entry overrides ``*``, and an empty tuple is an explicit denial.
Role = Mapping[str, tuple[str, ...]]

_READER: Role = {"*": ("get", "list"), "devices/console": ()}
_CONSOLE_READER: Role = {"*": ("get", "list"), "devices/console": ("get",)}
#: Reads of devices, fleets, enrollment requests, repositories, resource syncs, labels, organizations
#: and version; events, CSRs, auth providers, enrollment config and the console are denied.
_VIEWER: Role = {
    "*": ("get", "list"),
    **dict.fromkeys(("events", "certificatesigningrequests", "authproviders", "enrollmentconfig"), ()),
    "devices/console": (),
}


@dataclass(frozen=True)
class User:
    name: str
    orgs: tuple[str, ...]
    permissions: Role
    display_name: str = ""


USERS: dict[str, User] = {
    u.name: u
    for u in (
        User("admin", (DEFAULT_ORG,), {"*": ("*",)}, "Fleet Administrator"),
        User("viewer", (DEFAULT_ORG,), _VIEWER, "Read-only Viewer"),
        User("operator", (DEFAULT_ORG,), _CONSOLE_READER, "Field Operator"),
        User("lab", (LAB_ORG,), _CONSOLE_READER, "Lab Engineer"),
        User("multi", (DEFAULT_ORG, LAB_ORG), _READER, "Multi-org Auditor"),
        User("nobody", (), _READER, "No Organization"),
    )
}


def _role_permits(role: Role, resource: str, verb: str) -> bool:
    verbs = role.get(resource, role.get("*", ()))
    return "*" in verbs or verb in verbs


def _permits(granted: Iterable[str], wanted: str) -> bool:
    resource = wanted.split(":", 1)[0]
    return any(g in ("*", wanted, f"{resource}:*") for g in granted)


@dataclass(frozen=True)
class Principal:
    """Who made a request: the user, their organizations, and the scopes of the token used."""

    user: str
    orgs: tuple[str, ...]
    permissions: Role
    scopes: frozenset[str] | None
    token_kind: str = "access"

    def can(self, resource: str, verb: str) -> bool:
        if not _role_permits(self.permissions, resource, verb):
            return False
        return self.scopes is None or _permits(self.scopes, f"{resource}:{verb}")
