"""Which Flight Control organization a call acts in, and what to say when that is not clear.

A user may belong to several organizations. Every operation takes an optional ``organization`` argument
(an id or a display name) that overrides the configured one (ORG_ID, client.yaml's ``organization``, or a
pass-through caller's ``Flightctl-Org-Id`` header) for that call only; Flight Control itself refuses an
organization the caller does not belong to. When none is chosen and Flight Control says the user belongs
to several, the error lists them (id and display name) and the ways to choose one.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from auth import OrganizationScoped, PassThroughTokenSource, TokenSource
from errors import APIError, FlightControlError, InvalidRequest

if TYPE_CHECKING:
    from flightctl_api import FlightControlAPI

__all__ = [
    "Organization",
    "in_organization",
    "list_organizations",
    "resolve_organization",
    "run_in_organization",
]

T = TypeVar("T")

#: Flight Control's 400 message when a user in several organizations names none (ExtractAndValidateOrg).
MULTIPLE_ORGANIZATIONS = "user belongs to multiple organizations but no organization specified"


class Organization(NamedTuple):
    """One organization the caller belongs to."""

    id: str
    display_name: str
    external_id: str

    def shown(self) -> str:
        return f"{self.id} ({self.display_name or self.external_id or 'no display name'})"


async def list_organizations(api: FlightControlAPI, tokens: TokenSource | None) -> list[Organization]:
    """The caller's organizations, from GET /api/v1/organizations (not paginated, no org_id needed)."""
    body = await api.get_path("OrganizationApi", "list_organizations_without_preload_content", tokens)
    found = []
    for item in body.get("items") or [] if isinstance(body, dict) else []:
        if not isinstance(item, dict):
            continue
        name = (item.get("metadata") or {}).get("name")
        spec = item.get("spec") or {}
        if isinstance(name, str) and name:
            found.append(
                Organization(name, str(spec.get("displayName") or ""), str(spec.get("externalId") or ""))
            )
    return found


async def resolve_organization(api: FlightControlAPI, tokens: TokenSource | None, wanted: str) -> str:
    """An organization id as given, or the id of the one organization whose display name (or external id)
    is ``wanted``, ignoring case."""
    wanted = wanted.strip()
    try:
        return str(uuid.UUID(wanted))
    except ValueError:
        pass
    known = await list_organizations(api, tokens)
    folded = wanted.casefold()
    matches = [o for o in known if folded in (o.display_name.casefold(), o.external_id.casefold())]
    if len(matches) == 1:
        return matches[0].id
    listing = ", ".join(o.shown() for o in known) or "none"
    if matches:
        raise InvalidRequest(
            f"Several of your organizations are called {wanted[:60]!r}: "
            + ", ".join(o.shown() for o in matches)
            + ". Pass the id of the one you mean as organization."
        )
    raise InvalidRequest(
        f"You belong to no organization called {wanted[:60]!r}; yours are: {listing}. "
        "Pass one of these ids or names as organization."
    )


async def in_organization(api: FlightControlAPI, tokens: TokenSource, wanted: str) -> OrganizationScoped:
    """``tokens`` for calls in the organization ``wanted`` names (an id or a display name)."""
    return OrganizationScoped(tokens, await resolve_organization(api, tokens, wanted))


async def run_in_organization(
    api: FlightControlAPI,
    tokens: TokenSource | None,
    organization: str | None,
    call: Callable[[TokenSource | None], Awaitable[T]],
) -> T:
    """Run ``call`` in the organization this call names, if any; explain "several organizations"."""
    if organization and tokens is not None:
        tokens = await in_organization(api, tokens, organization)
    try:
        return await call(tokens)
    except APIError as exc:
        if exc.status_code == 400 and MULTIPLE_ORGANIZATIONS in exc.message:
            raise await several_organizations_error(api, tokens) from exc
        raise


async def several_organizations_error(api: FlightControlAPI, tokens: TokenSource | None) -> APIError:
    """The caller belongs to several organizations and none was chosen: name them and the ways to choose."""
    try:
        known = await list_organizations(api, tokens)
    except FlightControlError:
        known = []
    listing = " Yours: " + ", ".join(o.shown() for o in known) + "." if known else ""
    if isinstance(tokens, PassThroughTokenSource):
        ways = "Choose one with the Flightctl-Org-Id request header (an id above)."
    else:
        ways = (
            "Choose one: set ORG_ID to its id, or put `organization: <id>` in client.yaml (`flightctl config "
            "set-organization <id>` writes it)."
        )
    return APIError(
        400,
        f"Flight Control answered 400: {MULTIPLE_ORGANIZATIONS}.{listing} {ways}",
        tool_hint="Or pass organization (an id or display name) to this tool for one call.",
    )
