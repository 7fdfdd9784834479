"""How the simulator suites call it: a bearer header, a GET as one of its users, where a kind lists its
records, and the (status, message) of a Status answer."""

from __future__ import annotations

from typing import Any

import httpx

from simulator.accounts import DEFAULT_ORG
from simulator.harness import SimulatorServer
from simulator.kinds import KINDS as SIM_KINDS


def collection(sim: SimulatorServer, plural: str) -> tuple[str, list[Any]]:
    """The list path of a kind (a nested kind under the parent of its first record) and its records."""
    spec = SIM_KINDS[plural]
    records = list(sim.state.org(DEFAULT_ORG).collections[plural])
    assert records, f"the simulator generates no {plural}"
    path = spec.list_path
    if spec.parent is not None:
        owner = spec.fields["metadata.owner"].getter
        parent = owner(records[0])
        records = [r for r in records if owner(r) == parent]
        path = path.replace("{" + spec.parent + "}", parent)
    return "/api/v1" + path, records


def get(
    client: httpx.Client, sim: SimulatorServer, path: str, user: str = "admin", **params: Any
) -> httpx.Response:
    """A GET as ``user`` (admin unless named), its query parameters given as keywords."""
    return client.get(path, params=params, headers=sim.auth_headers(user))


def status(response: httpx.Response) -> tuple[int, str]:
    """The status and message of a Status answer, once its ``code`` is seen to match the HTTP status."""
    body = response.json()
    assert body["code"] == response.status_code
    return response.status_code, body["message"]


def bearer(token: str) -> dict[str, str]:
    """The Authorization header that sends ``token``."""
    return {"Authorization": f"Bearer {token}"}
