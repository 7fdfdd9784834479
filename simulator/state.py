"""SimulatorState: the resources of each organization, the request log, and the credentials and
clock everything else reads.

This is the contract the routes (and the console endpoint) code against:

- ``authenticate``, ``authorize`` and ``resolve_org`` (from credentials.py, which SimulatorState extends);
- ``find_device(org_id, name) -> dict | None`` gives the full Device JSON;
- ``console_wait_seconds``, ``faults`` and ``record_request(...)``.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.accounts import DEFAULT_ORG, LAB_ORG
from simulator.clock import Clock
from simulator.credentials import PROVIDER_NAME, Credentials
from simulator.faults import Faults
from simulator.generator import DeviceRecord, GeneratedData, generate, render_device
from simulator.kinds import KINDS
from simulator.resources import Collection, summarize

# DEFAULT_ORG, LAB_ORG and PROVIDER_NAME are named here too: the tests outside the simulator import
# them from simulator.state, the organizations and provider SimulatorState is populated and served with.
__all__ = ["DEFAULT_ORG", "LAB_ORG", "PROVIDER_NAME", "OrgData", "SimulatorState"]


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


class SimulatorState(Credentials):
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
        super().__init__(
            Clock(),
            access_token_ttl=access_token_ttl,
            refresh_token_ttl=refresh_token_ttl,
            refresh_token_rotation=refresh_token_rotation,
            login_user=login_user,
            auth_rate_limit=auth_rate_limit,
        )
        self.seed = seed
        self.version = version
        start = anchor if anchor is not None else time.time()
        # The default anchor is the start time floored to the hour: same seed, same data within the hour.
        self.anchor_micros = (
            int(start // 3600 * 3600 * 1_000_000) if anchor is None else int(start * 1_000_000)
        )
        self.console_wait_seconds = console_wait_seconds
        self.faults = Faults(latency_ms)
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
