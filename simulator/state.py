"""SimulatorState: organizations, users, tokens, resources per organization, and a settable clock.

This is the contract the routes (and the console endpoint) code against:

- ``authenticate(authorization_header) -> Principal`` raises ``ApiFailure(400 "failed to get auth
  token" | 401 "failed to validate token")``;
- ``authorize(principal, resource, verb)`` raises ``ApiFailure(403 "Forbidden")``;
- ``resolve_org(principal, org_id) -> str`` applies the real ``org_id`` rules;
- ``find_device(org_id, name) -> dict | None`` gives the full Device JSON;
- ``console_wait_seconds``, ``faults`` and ``record_request(...)``.
"""

from __future__ import annotations

import collections
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.errors import ApiFailure
from simulator.faults import Faults
from simulator.generator import DeviceRecord, GeneratedData, generate, render_device
from simulator.kinds import KINDS
from simulator.resources import Collection, summarize
from simulator.tokens import (
    AccessToken,
    AuthorizationCode,
    RefreshToken,
    SigningKey,
    TokenSet,
    new_refresh_token,
    s256,
)

__all__ = [
    "DEFAULT_ORG",
    "LAB_ORG",
    "ORGANIZATIONS",
    "USERS",
    "Clock",
    "OrgData",
    "Principal",
    "SimulatorState",
    "User",
]

DEFAULT_ORG = "00000000-0000-0000-0000-000000000000"
LAB_ORG = "7e3a4b52-1c1d-4a8e-9f0a-2b6c8d9e0f11"
ORGANIZATIONS: dict[str, dict[str, str]] = {
    DEFAULT_ORG: {"externalId": "default", "displayName": "Default"},
    LAB_ORG: {"externalId": "lab", "displayName": "Lab"},
}
REALM = "flightctl"
CLIENT_ID = "flightctl"
PROVIDER_NAME = "flightctl-sim"

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


class Clock:
    """Wall-clock time plus an offset tests can advance (token expiry follows it)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def now_micros(self) -> int:
        return int(self.now() * 1_000_000)

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class OrgData:
    """All resources of one organization."""

    org_id: str
    generated: GeneratedData
    collections: dict[str, Collection] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for plural, spec in KINDS.items():
            self.collections[plural] = Collection(spec)

    @property
    def devices(self) -> Collection:
        return self.collections["devices"]


class SimulatorState:
    """Everything the simulator knows; one instance per server."""

    def __init__(
        self,
        *,
        devices: int = 200,
        seed: int = 1,
        load: Iterable[str | Path] = (),
        anchor: float | None = None,
        lab_devices: int = 5,
        access_token_ttl: float = 300.0,
        refresh_token_ttl: float = 1800.0,
        refresh_token_rotation: bool = True,
        console_wait_seconds: float = 60.0,
        latency_ms: float = 0.0,
        full_devices: bool = False,
        version: str = "v1.3.0-sim",
        login_user: str | None = None,
        auth_rate_limit: tuple[int, float] | None = None,
    ) -> None:
        self.clock = Clock()
        self.seed = seed
        self.version = version
        start = anchor if anchor is not None else time.time()
        # The default anchor is the start time floored to the hour: same seed, same data within the hour.
        self.anchor_micros = (
            int(start // 3600 * 3600 * 1_000_000) if anchor is None else int(start * 1_000_000)
        )
        self.access_token_ttl = access_token_ttl
        self.refresh_token_ttl = refresh_token_ttl
        # Keycloak's "Revoke Refresh Token": each refresh token works once (max reuse 0).
        self.refresh_token_rotation = refresh_token_rotation
        self.console_wait_seconds = console_wait_seconds
        self.faults = Faults(latency_ms)
        self.base_url = ""
        self.signing_key = SigningKey()
        #: The user the authorization endpoint logs in without asking (a pre-authorised test login).
        self.login_user = login_user
        #: Flight Control's rateLimit.authRequests/authWindow on /auth/validate, per client IP; None = off.
        self.auth_rate_limit = auth_rate_limit
        self._auth_hits: dict[str, collections.deque[float]] = {}
        self._codes: dict[str, AuthorizationCode] = {}
        self._lock = threading.RLock()
        self._access: dict[str, AccessToken] = {}
        self._refresh: dict[str, RefreshToken] = {}
        self._requests: collections.deque[dict[str, Any]] = collections.deque(maxlen=1000)
        self.orgs: dict[str, OrgData] = {}
        self._populate(DEFAULT_ORG, generate(seed, devices, self.anchor_micros, full_devices=full_devices))
        self._populate(LAB_ORG, generate(seed + 7919, lab_devices, self.anchor_micros, prefix="lab"))
        if load:
            from simulator.loader import load_files

            load_files(self, [Path(p) for p in load], DEFAULT_ORG)
        for org in self.orgs.values():
            for collection in org.collections.values():
                collection.sort()

    # ------------------------------------------------------------------------------------ resources

    def _populate(self, org_id: str, data: GeneratedData) -> None:
        org = OrgData(org_id, data)
        records: dict[str, list[Any]] = {
            "devices": list(data.devices),
            "fleets": data.fleet_records,
            "events": data.events,
            "enrollmentrequests": data.enrollment_requests,
            "repositories": data.repositories,
            "resourcesyncs": data.resourcesyncs,
            "templateversions": data.template_versions,
            "certificatesigningrequests": data.certificate_signing_requests,
        }
        for plural, collection in org.collections.items():
            collection.bulk_load(records[plural])  # a KeyError here: a new kind without generated data
        self.orgs[org_id] = org

    def org(self, org_id: str) -> OrgData:
        return self.orgs[org_id]

    def render(self, org_id: str, plural: str, record: Any) -> dict[str, Any]:
        if plural == "devices":
            return render_device(record, self.orgs[org_id].generated, self.clock.now_micros())
        doc: dict[str, Any] = record.render()
        return doc

    def find_device(self, org_id: str, name: str) -> dict[str, Any] | None:
        """The full Device JSON of ``name`` in ``org_id``, or None."""
        org = self.orgs.get(org_id)
        record = org.devices.get(name) if org else None
        return None if record is None else self.render(org_id, "devices", record)

    def device_record(self, org_id: str, name: str) -> DeviceRecord | None:
        org = self.orgs.get(org_id)
        record = org.devices.get(name) if org else None
        return record if isinstance(record, DeviceRecord) else None

    def device_names(self, org_id: str = DEFAULT_ORG) -> list[str]:
        return [r.name for r in self.orgs[org_id].devices]

    def pick_device(self, org_id: str = DEFAULT_ORG, **wanted: Any) -> str:
        """The first device (by name) whose record attributes equal ``wanted``, e.g.
        ``pick_device(summary="Online", lifecycle="Enrolled")``, ``pick_device(seen=None)``."""
        for record in self.orgs[org_id].devices:
            if all(getattr(record, key) == value for key, value in wanted.items()):
                return str(record.name)
        raise LookupError(f"no device in {org_id} with {wanted}")

    def devices_summary(self, org_id: str, owner: str | None = None) -> dict[str, Any]:
        records = self.orgs[org_id].devices
        return summarize(r for r in records if owner is None or r.owner == owner)

    def last_seen(self, record: DeviceRecord) -> int | None:
        """Microseconds of the device's last contact, or None when it was never seen."""
        if record.seen is None:
            return None
        if record.seen < 0:
            return self.clock.now_micros() + record.seen * 1_000_000
        return record.seen

    # --------------------------------------------------------------------------------------- tokens

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/realms/{REALM}"

    def _claims(
        self, user: str, scopes: frozenset[str] | None, ttl: float | None, kind: str
    ) -> dict[str, Any]:
        now = int(self.clock.now())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.subject(user),
            "preferred_username": user,
            "aud": CLIENT_ID if kind == "id" else "account",
            "azp": CLIENT_ID,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "typ": "ID" if kind == "id" else "Bearer",
            "scope": " ".join(sorted(scopes)) if scopes is not None else "openid profile email",
        }
        if ttl is not None:
            claims["exp"] = now + int(ttl)
        return claims

    def subject(self, user: str) -> str:
        """The stable ``sub`` claim of a user."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"flightctl-sim/{user}"))

    def _user(self, user: str) -> User:
        if user not in USERS:
            raise ValueError(f"unknown user {user!r}; the simulator knows {', '.join(USERS)}")
        return USERS[user]

    def issue_access_token(
        self, user: str = "admin", scopes: Iterable[str] | None = None, ttl: float | None = None
    ) -> str:
        """A fresh access token (JWT) for ``user``; ``ttl`` seconds (default access_token_ttl)."""
        self._user(user)
        scope_set = frozenset(scopes) if scopes is not None else None
        lifetime = self.access_token_ttl if ttl is None else ttl
        token = self.signing_key.sign(self._claims(user, scope_set, lifetime, "access"))
        with self._lock:
            self._access[token] = AccessToken(user, scope_set, self.clock.now() + lifetime)
        return token

    def add_static_token(self, token: str, user: str = "admin", scopes: Iterable[str] | None = None) -> None:
        """Accept ``token`` (any string) as a bearer for ``user`` until revoked; never expires."""
        self._user(user)
        with self._lock:
            self._access[token] = AccessToken(
                user, frozenset(scopes) if scopes is not None else None, None, kind="static"
            )

    def issue_tokens(
        self,
        user: str = "admin",
        scopes: Iterable[str] | None = None,
        access_ttl: float | None = None,
        refresh_token: str | None = None,
        refresh_ttl: float | None = None,
    ) -> TokenSet:
        """Access, id and refresh tokens as a login would give them."""
        self._user(user)
        scope_set = frozenset(scopes) if scopes is not None else None
        lifetime = self.access_token_ttl if access_ttl is None else access_ttl
        access = self.issue_access_token(user, scope_set, lifetime)
        id_token = self.signing_key.sign(self._claims(user, scope_set, lifetime, "id"))
        refresh = refresh_token or new_refresh_token()
        refresh_life = self.refresh_token_ttl if refresh_ttl is None else refresh_ttl
        with self._lock:
            self._access[id_token] = AccessToken(user, scope_set, self.clock.now() + lifetime, kind="id")
            self._refresh[refresh] = RefreshToken(
                user, scope_set, self.clock.now() + refresh_life, access_ttl=access_ttl
            )
        return TokenSet(access, refresh, id_token, int(lifetime))

    def refresh(self, refresh_token: str | None, client_id: str | None) -> TokenSet:
        """The refresh grant. With rotation (the default) a used refresh token is refused from then on,
        as Keycloak does with "Revoke Refresh Token" on; without it, it stays valid. Raises OAuthError."""
        if client_id != CLIENT_ID:
            raise OAuthError(401, "invalid_client", "Invalid client or Invalid client credentials")
        if not refresh_token:
            raise OAuthError(400, "invalid_request", "Missing parameter: refresh_token")
        with self._lock:
            record = self._refresh.get(refresh_token)
            if record is None or record.revoked:
                raise OAuthError(400, "invalid_grant", "Invalid refresh token")
            if record.used:
                raise OAuthError(400, "invalid_grant", "Maximum allowed refresh token reuse exceeded")
            if record.expires_at is not None and record.expires_at <= self.clock.now():
                raise OAuthError(400, "invalid_grant", "Token is not active")
            record.used = self.refresh_token_rotation
        return self.issue_tokens(record.user, record.scopes, record.access_ttl)

    def issue_code(self, user: str, client_id: str, redirect_uri: str, code_challenge: str) -> str:
        """An authorization code for a completed login; it lives 60 s and is redeemed once."""
        self._user(user)
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = AuthorizationCode(
                user, client_id, redirect_uri, code_challenge, self.clock.now() + 60
            )
        return code

    def redeem_code(
        self, code: str | None, client_id: str | None, redirect_uri: str | None, verifier: str | None
    ) -> TokenSet:
        """The authorization_code grant with PKCE (S256), Keycloak's errors. Raises OAuthError."""
        if client_id != CLIENT_ID:
            raise OAuthError(401, "invalid_client", "Invalid client or Invalid client credentials")
        with self._lock:
            grant = self._codes.pop(code or "", None)
        if grant is None or grant.expires_at <= self.clock.now():
            raise OAuthError(400, "invalid_grant", "Code not valid")
        if grant.client_id != client_id:
            raise OAuthError(400, "invalid_grant", "Auth error")
        if redirect_uri != grant.redirect_uri:
            raise OAuthError(400, "invalid_grant", "Incorrect redirect_uri")
        if not verifier:
            raise OAuthError(400, "invalid_grant", "PKCE code verifier not specified")
        if s256(verifier) != grant.code_challenge:
            raise OAuthError(400, "invalid_grant", "PKCE verification failed: Code mismatch")
        return self.issue_tokens(grant.user)

    def auth_check_allowed(self, client: str) -> float | None:
        """Count a /auth/validate call from ``client``; the Retry-After (window) when over the limit."""
        if self.auth_rate_limit is None:
            return None
        limit, window = self.auth_rate_limit
        now = self.clock.now()
        with self._lock:
            hits = self._auth_hits.setdefault(client, collections.deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= limit:
                return window
            hits.append(now)
        return None

    def revoke(self, token: str) -> bool:
        """Revoke an access, id, static or refresh token; True when it was known."""
        with self._lock:
            found = False
            if token in self._access:
                self._access[token].revoked = True
                found = True
            if token in self._refresh:
                self._refresh[token].revoked = True
                found = True
            return found

    def expire(self, token: str) -> bool:
        """Make a token expired now (as if its lifetime had passed)."""
        with self._lock:
            now = self.clock.now() - 1
            if token in self._access:
                self._access[token].expires_at = now
                return True
            if token in self._refresh:
                self._refresh[token].expires_at = now
                return True
            return False

    # ----------------------------------------------------------------------------- the checks

    def authenticate(self, authorization_header: str | None) -> Principal:
        """The principal behind ``Authorization: Bearer <token>``."""
        if not authorization_header or not authorization_header.startswith("Bearer "):
            raise ApiFailure(400, "failed to get auth token")
        token = authorization_header[len("Bearer ") :].strip()
        if not token:
            raise ApiFailure(400, "failed to get auth token")
        with self._lock:
            record = self._access.get(token)
        if record is None or record.revoked:
            raise ApiFailure(401, "failed to validate token")
        if record.expires_at is not None and record.expires_at <= self.clock.now():
            raise ApiFailure(401, "failed to validate token")
        user = USERS[record.user]
        return Principal(user.name, user.orgs, user.permissions, record.scopes, record.kind)

    def authorize(self, principal: Principal, resource: str, verb: str) -> None:
        if not principal.can(resource, verb):
            raise ApiFailure(403, "Forbidden")

    def resolve_org(self, principal: Principal, org_id: str | None) -> str:
        """The organization a request acts on, by the server's rules for the ``org_id`` parameter."""
        if org_id:
            try:
                wanted = str(uuid.UUID(org_id))
            except ValueError as exc:
                raise ApiFailure(400, "invalid organization ID format") from exc
            if wanted not in principal.orgs:
                raise ApiFailure(403, "access denied to organization")
            return wanted
        if not principal.orgs:
            raise ApiFailure(403, "user belongs to no organizations")
        if len(principal.orgs) > 1:
            raise ApiFailure(400, "user belongs to multiple organizations but no organization specified")
        return principal.orgs[0]

    # ---------------------------------------------------------------------------------- requests

    def record_request(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        *,
        org: str | None = None,
        status: int | None = None,
    ) -> dict[str, Any]:
        """Log a request (Authorization replaced by whether it was present); returns the entry."""
        safe = {k.lower(): v for k, v in headers.items() if k.lower() not in ("authorization", "cookie")}
        entry = {
            "time": self.clock.now(),
            "method": method,
            "path": path,
            "query": query,
            "headers": safe,
            "authorization_present": any(k.lower() == "authorization" for k in headers),
            "org": org,
            "status": status,
        }
        with self._lock:
            self._requests.append(entry)
        return entry

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()


class OAuthError(Exception):
    """An OAuth2 token-endpoint error (``{"error": ..., "error_description": ...}``)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def token_response(tokens: TokenSet) -> dict[str, Any]:
    return {
        "access_token": tokens.access_token,
        "token_type": "Bearer",
        "id_token": tokens.id_token,
        "refresh_token": tokens.refresh_token,
        "expires_in": tokens.expires_in,
    }
