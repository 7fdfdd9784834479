"""How the simulator suites call it: a GET as one of its users, and where a kind lists its records."""

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
