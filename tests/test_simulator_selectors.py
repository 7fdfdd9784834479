"""Field and label selectors over real sockets: every operator selects what Flight Control selects."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx

from simulator.accounts import DEFAULT_ORG
from simulator.generator import DeviceRecord
from simulator.harness import SimulatorServer
from simulator.resources import rfc3339
from tests.selector_support import error, expected, list_names

# ------------------------------------------------------------------------ field selector operators


def test_field_equals_and_double_equals(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    want = expected(simulator, lambda r: r.summary == "Online")
    assert want
    for op in ("=", "=="):
        got = list_names(simulator_client, simulator, fieldSelector=f"status.summary.status{op}Online")
        assert got == want


def test_field_not_equals_matches_null(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    got = list_names(simulator_client, simulator, fieldSelector="status.capabilities.osMode!=image")
    want = expected(simulator, lambda r: r.os_mode != "image")
    assert got == want
    assert any(simulator.state.device_record(DEFAULT_ORG, n).os_mode is None for n in got)  # type: ignore[union-attr]


def test_field_in_and_notin(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    got = list_names(simulator_client, simulator, fieldSelector="status.summary.status in (Online,Degraded)")
    assert got == expected(simulator, lambda r: r.summary in ("Online", "Degraded"))
    got = list_names(simulator_client, simulator, fieldSelector="metadata.owner notin (Fleet/pos-eu-west-1)")
    assert got == expected(simulator, lambda r: r.owner != "Fleet/pos-eu-west-1")


def test_field_exists_and_does_not_exist(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    owned = list_names(simulator_client, simulator, fieldSelector="metadata.owner")
    unowned = list_names(simulator_client, simulator, fieldSelector="!metadata.owner")
    assert owned == expected(simulator, lambda r: r.owner is not None)
    assert unowned == expected(simulator, lambda r: r.owner is None)
    assert owned
    assert unowned


def test_field_contains_and_notcontains(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    got = list_names(simulator_client, simulator, fieldSelector="metadata.alias contains pos")
    assert got == expected(simulator, lambda r: r.alias is not None and "pos" in r.alias)
    assert got
    got = list_names(simulator_client, simulator, fieldSelector="metadata.alias notcontains pos")
    assert got == expected(simulator, lambda r: r.alias is None or "pos" not in r.alias)


def test_name_or_alias(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    record = next(r for r in simulator.state.org(DEFAULT_ORG).devices if r.alias)
    assert list_names(simulator_client, simulator, fieldSelector=f"metadata.nameOrAlias={record.alias}") == [
        r.name for r in simulator.state.org(DEFAULT_ORG).devices if record.alias in (r.alias, r.name)
    ]
    assert list_names(simulator_client, simulator, fieldSelector=f"metadata.nameOrAlias={record.name}") == [
        record.name
    ]


def test_timestamp_comparisons(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    records = list(simulator.state.org(DEFAULT_ORG).devices)
    pivot = sorted(r.created for r in records)[len(records) // 2]
    when = rfc3339(pivot)
    cases = {
        ">": lambda r: r.created > pivot,
        ">=": lambda r: r.created >= pivot,
        "<": lambda r: r.created < pivot,
        "<=": lambda r: r.created <= pivot,
        "=": lambda r: r.created == pivot,
        "!=": lambda r: r.created != pivot,
    }
    for op, keep in cases.items():
        got = list_names(simulator_client, simulator, fieldSelector=f"metadata.creationTimestamp{op}{when}")
        assert got == expected(simulator, keep), op
    spaced = list_names(
        simulator_client,
        simulator,
        fieldSelector="metadata.creationTimestamp >= 2024-01-01T00:00:00Z,"
        "metadata.creationTimestamp<2099-01-01T00:00:00Z",
    )
    assert spaced == [r.name for r in records]


def test_bool_field(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    path = "/api/v1/enrollmentrequests"
    approved = list_names(simulator_client, simulator, path, fieldSelector="status.approval.approved=true")
    denied = list_names(simulator_client, simulator, path, fieldSelector="status.approval.approved==false")
    pending = list_names(simulator_client, simulator, path, fieldSelector="!status.approval.approved")
    everything = list_names(simulator_client, simulator, path)
    assert approved
    assert denied
    assert pending
    assert sorted(approved + denied + pending) == everything
    not_true = list_names(simulator_client, simulator, path, fieldSelector="status.approval.approved!=1")
    assert sorted(denied + pending) == not_true


def test_other_kinds_fields(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    assert list_names(simulator_client, simulator, "/api/v1/repositories", fieldSelector="spec.type=oci") == [
        "acme-registry",
        "quay-io",
    ]
    assert list_names(
        simulator_client, simulator, "/api/v1/resourcesyncs", fieldSelector="spec.repository=edge-config"
    ) == ["edge-fleets"]
    fleets = list_names(
        simulator_client, simulator, "/api/v1/fleets", fieldSelector="metadata.owner=ResourceSync/edge-fleets"
    )
    assert fleets
    events = simulator_client.get(
        "/api/v1/events",
        params={"fieldSelector": "involvedObject.kind=Fleet,type=Normal", "limit": 1000},
        headers=simulator.auth_headers(),
    ).json()["items"]
    assert events
    assert all(e["involvedObject"]["kind"] == "Fleet" and e["type"] == "Normal" for e in events)


# ------------------------------------------------------------------------ label selector operators


def test_label_operators(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    cases: dict[str, Callable[[DeviceRecord], bool]] = {
        "region=eu-west-1": lambda r: r.labels.get("region") == "eu-west-1",
        "region==eu-west-1": lambda r: r.labels.get("region") == "eu-west-1",
        "region!=eu-west-1": lambda r: r.labels.get("region") != "eu-west-1",
        "region in (eu-west-1,us-east-1)": lambda r: r.labels.get("region") in ("eu-west-1", "us-east-1"),
        "region notin (eu-west-1)": lambda r: r.labels.get("region") != "eu-west-1",
        "fleet": lambda r: "fleet" in r.labels,
        "!fleet": lambda r: "fleet" not in r.labels,
        "canary": lambda r: "canary" in r.labels,
        "canary=": lambda r: r.labels.get("canary") == "",
        "region in (eu-west-1,us-east-1),!decommissioned,tier!=db": lambda r: (
            r.labels.get("region") in ("eu-west-1", "us-east-1")
        ),
    }
    for selector, keep in cases.items():
        want = expected(simulator, keep)
        assert want, selector
        assert list_names(simulator_client, simulator, labelSelector=selector) == want, selector


def test_label_and_field_selectors_combine(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    got = list_names(
        simulator_client, simulator, labelSelector="env=prod", fieldSelector="status.summary.status=Online"
    )
    assert got == expected(simulator, lambda r: r.labels.get("env") == "prod" and r.summary == "Online")


# ------------------------------------------------------------------------ timestamps and booleans


def _as_offset(micros: int, hours: int) -> str:
    """The same instant as ``rfc3339(micros)``, written in a +HH:00 zone."""
    zone = timezone(timedelta(hours=hours))
    moment = datetime.fromtimestamp(micros // 1_000_000, UTC).astimezone(zone)
    fraction = micros % 1_000_000
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{fraction:06d}" if fraction else "") + moment.strftime("%z")[:3] + ":00"


def test_timestamp_in_notin_and_exists(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    records = list(simulator.state.org(DEFAULT_ORG).devices)
    created = sorted({r.created for r in records})
    picked = {created[0], created[len(created) // 2]}
    values = ",".join(rfc3339(t) for t in sorted(picked))
    field = "metadata.creationTimestamp"
    inside = list_names(simulator_client, simulator, fieldSelector=f"{field} in ({values})")
    assert inside == expected(simulator, lambda r: r.created in picked)
    assert len(inside) >= 2
    outside = list_names(simulator_client, simulator, fieldSelector=f"{field} notin ({values})")
    assert outside == expected(simulator, lambda r: r.created not in picked)
    assert sorted(inside + outside) == sorted(r.name for r in records)
    # Times compare as instants, not as text: the same moment in another zone selects the same devices.
    middle = created[len(created) // 2]
    shifted = _as_offset(middle, 2)
    assert shifted != rfc3339(middle)
    assert list_names(simulator_client, simulator, fieldSelector=f"{field} in ({shifted})") == expected(
        simulator, lambda r: r.created == middle
    )
    # Every device has a creation time.
    assert list_names(simulator_client, simulator, fieldSelector=field) == [r.name for r in records]
    assert list_names(simulator_client, simulator, fieldSelector=f"!{field}") == []


def _enrollment_requests(client: httpx.Client, sim: SimulatorServer) -> list[dict[str, Any]]:
    response = client.get("/api/v1/enrollmentrequests", params={"limit": 1000}, headers=sim.auth_headers())
    assert response.status_code == 200, response.text
    assert not response.json()["metadata"].get("continue")
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_enrollment_request_timestamps_in_notin_and_exists(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    path = "/api/v1/enrollmentrequests"
    items = _enrollment_requests(simulator_client, simulator)
    stamps = sorted({item["metadata"]["creationTimestamp"] for item in items})
    assert len(stamps) >= 3
    picked = [stamps[0], stamps[-1]]
    field = "metadata.creationTimestamp"
    inside = list_names(simulator_client, simulator, path, fieldSelector=f"{field} in ({','.join(picked)})")
    assert inside == [i["metadata"]["name"] for i in items if i["metadata"]["creationTimestamp"] in picked]
    outside = list_names(
        simulator_client, simulator, path, fieldSelector=f"{field} notin ({','.join(picked)})"
    )
    assert outside == [
        i["metadata"]["name"] for i in items if i["metadata"]["creationTimestamp"] not in picked
    ]
    assert inside
    assert outside
    assert list_names(simulator_client, simulator, path, fieldSelector=field) == [
        i["metadata"]["name"] for i in items
    ]
    assert list_names(simulator_client, simulator, path, fieldSelector=f"!{field}") == []


def test_bool_in_and_notin(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    path = "/api/v1/enrollmentrequests"
    items = _enrollment_requests(simulator_client, simulator)

    def approved(item: dict[str, Any]) -> bool | None:
        value = (item.get("status") or {}).get("approval", {}).get("approved")
        assert value is None or isinstance(value, bool)
        return value

    def names(keep: Callable[[bool | None], bool]) -> list[str]:
        return [i["metadata"]["name"] for i in items if keep(approved(i))]

    cases: dict[str, Callable[[bool | None], bool]] = {
        "status.approval.approved in (true)": lambda v: v is True,
        "status.approval.approved in (t, 1)": lambda v: v is True,
        "status.approval.approved notin (true)": lambda v: v is not True,  # NULL (pending) matches too
        "status.approval.approved in (true,false)": lambda v: v is not None,
        "status.approval.approved notin (true,false)": lambda v: v is None,
        "status.approval.approved notin (false)": lambda v: v is not False,
    }
    for selector, keep in cases.items():
        want = names(keep)
        assert want, selector
        assert list_names(simulator_client, simulator, path, fieldSelector=selector) == want, selector
    message = error(
        simulator_client, simulator, path, fieldSelector="status.approval.approved in (true,maybe)"
    )
    assert message.startswith(
        'failed to parse field selector: failed to parse value for selector "status.approval.approved": '
    )


# ------------------------------------------------------------------------------ the rarer corners


def test_label_tuple_form_selects_on_every_key(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    """``(k1,k2) in ((a,b),...)``: all keys present with a listed combination; notin: the rest."""
    devices = list(simulator.state.org(DEFAULT_ORG).devices)
    first = devices[0].labels
    pair = (first["region"], first["env"])
    inside = list_names(simulator_client, simulator, labelSelector=f"(region,env) in (({pair[0]},{pair[1]}))")
    assert inside == expected(simulator, lambda r: (r.labels.get("region"), r.labels.get("env")) == pair)
    assert devices[0].name in inside
    outside = list_names(
        simulator_client, simulator, labelSelector=f"(region,env) notin (({pair[0]},{pair[1]}))"
    )
    assert sorted(inside + outside) == sorted(r.name for r in devices)
    assert "canary" in {k for r in devices for k in r.labels}
    with_missing = list_names(simulator_client, simulator, labelSelector="(canary,region) notin ((x,y))")
    assert with_missing == [r.name for r in devices], "a device without one of the keys is not in the set"


def test_contains_takes_exactly_one_value(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    alias = next(r.alias for r in simulator.state.org(DEFAULT_ORG).devices if r.alias)
    part = alias[1:4]
    assert list_names(simulator_client, simulator, fieldSelector=f"metadata.alias contains ({part})") == (
        list_names(simulator_client, simulator, fieldSelector=f"metadata.alias contains {part}")
    )
    message = error(simulator_client, simulator, fieldSelector="metadata.alias contains (a,b)")
    assert message.endswith(
        "length mismatch: key metadata.alias has 1 elements but value (a,b) has 2 elements"
    )
