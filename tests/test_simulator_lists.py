"""List semantics over real sockets: limits, continue tokens, pagination walks, ordering, summaries."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from simulator.accounts import DEFAULT_ORG, LAB_ORG
from simulator.harness import SimulatorServer
from simulator.kinds import KINDS as SIM_KINDS
from simulator.resources import encode_continue

KINDS = tuple(SIM_KINDS)  # every kind the simulator serves: a new row is tested without a change here


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
    return client.get(path, params=params, headers=sim.auth_headers(user))


def walk(
    client: httpx.Client, sim: SimulatorServer, path: str, limit: int, **params: Any
) -> list[dict[str, Any]]:
    """Every item of a list, page by page, checking the metadata of each page."""
    items: list[dict[str, Any]] = []
    token: str | None = None
    first = True
    while True:
        query = dict(params, limit=limit)
        if token is not None:
            query["continue"] = token
        response = get(client, sim, path, **query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        items.extend(body["items"])
        metadata = body["metadata"]
        if "continue" not in metadata:
            assert metadata == {}
            return items
        assert len(body["items"]) == limit
        decoded = json.loads(base64.b64decode(metadata["continue"]))
        assert decoded["Version"] == 1
        assert decoded["Count"] == metadata["remainingItemCount"]
        if first:
            first = False
        token = metadata["continue"]


@pytest.mark.parametrize("plural", KINDS)
@pytest.mark.parametrize("limit", [1, 7, 1000])
def test_pagination_returns_every_item_once(
    simulator_client: httpx.Client, simulator: SimulatorServer, plural: str, limit: int
) -> None:
    path, records = collection(simulator, plural)
    items = walk(simulator_client, simulator, path, limit)
    names = [item["metadata"]["name"] for item in items]
    assert len(names) == len(set(names))
    assert sorted(names) == sorted(r.name for r in records)


def test_pagination_with_selector(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    selector = "status.summary.status!=Online"
    want = [r.name for r in simulator.state.org(DEFAULT_ORG).devices if r.summary != "Online"]
    items = walk(simulator_client, simulator, "/api/v1/devices", 3, fieldSelector=selector)
    assert [i["metadata"]["name"] for i in items] == want


def test_remaining_item_count(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    total = len(simulator.state.org(DEFAULT_ORG).devices)
    first = get(simulator_client, simulator, "/api/v1/devices", limit=10).json()
    assert first["metadata"]["remainingItemCount"] == total - 10
    second = get(
        simulator_client,
        simulator,
        "/api/v1/devices",
        limit=10,
        **{"continue": first["metadata"]["continue"]},
    ).json()
    assert second["metadata"]["remainingItemCount"] == total - 20
    names = [r.name for r in simulator.state.org(DEFAULT_ORG).devices]
    token = json.loads(base64.b64decode(first["metadata"]["continue"]))
    assert token == {"Version": 1, "Names": [names[10]], "Count": total - 10}


def test_remaining_item_count_with_selector(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    matching = [r for r in simulator.state.org(DEFAULT_ORG).devices if r.owner]
    body = get(simulator_client, simulator, "/api/v1/devices", limit=5, fieldSelector="metadata.owner").json()
    assert body["metadata"]["remainingItemCount"] == len(matching) - 5


def test_limit_zero_or_absent_means_1000(make_simulator: Any) -> None:
    sim = make_simulator(devices=1005, tls=False)
    with httpx.Client(base_url=sim.base_url, timeout=60) as client:
        for params in ({}, {"limit": 0}):
            body = client.get("/api/v1/devices", params=params, headers=sim.auth_headers()).json()
            assert len(body["items"]) == 1000
            assert body["metadata"]["remainingItemCount"] == 5
            assert body["summary"]["total"] == 1000


def test_full_size_devices_are_the_same_fleet_at_production_size(make_simulator: Any) -> None:
    bodies = []
    for full in (False, True):
        sim = make_simulator(devices=200, tls=False, full_devices=full)
        with httpx.Client(base_url=sim.base_url, timeout=60) as client:
            bodies.append(client.get("/api/v1/devices", headers=sim.auth_headers()).json())
    small, full_size = bodies
    assert [d["metadata"] for d in small["items"]] == [d["metadata"] for d in full_size["items"]]
    assert small["summary"] == full_size["summary"]
    sizes = [len(json.dumps(d, separators=(",", ":"))) for d in full_size["items"]]
    assert 3500 < sum(sizes) / len(sizes) < 5000, "about 4 KB per device, as real ones with applications"
    assert sum(sizes) > 1.3 * len(json.dumps(small["items"], separators=(",", ":")))
    for device in full_size["items"]:
        spec, status = device["spec"], device["status"]
        assert spec["resources"]
        assert spec["updatePolicy"]["updateSchedule"]["at"]
        apps = [a["name"] for a in spec.get("applications", [])]
        assert apps == [a["name"] for a in status["applications"]]
        assert bool(apps) == (status["applicationsSummary"]["status"] != "NoApplications")


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("1001", 'API Error: parameter "limit" in query has an error: number must be at most 1000'),
        ("2000", 'API Error: parameter "limit" in query has an error: number must be at most 1000'),
        ("-1", 'API Error: parameter "limit" in query has an error: number must be at least 0'),
        (
            "abc",
            'API Error: parameter "limit" in query has an error: '
            "value abc: an invalid integer: invalid syntax",
        ),
    ],
)
def test_limit_errors(
    simulator_client: httpx.Client, simulator: SimulatorServer, limit: str, message: str
) -> None:
    for plural in KINDS:
        response = get(simulator_client, simulator, collection(simulator, plural)[0], limit=limit)
        assert response.status_code == 400
        assert response.json()["message"] == message


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("abc!", "failed to parse continue parameter: illegal base64 data at input byte 3"),
        ("abcde", "failed to parse continue parameter: illegal base64 data at input byte 4"),
        (
            base64.b64encode(b'{"Version":2,"Names":["c"],"Count":3}').decode(),
            "failed to parse continue parameter: continue string version 2 must be 1",
        ),
        (
            base64.b64encode(b"xyz").decode(),
            "failed to parse continue parameter: invalid character 'x' looking for beginning of value",
        ),
    ],
)
def test_bad_continue_tokens(
    simulator_client: httpx.Client, simulator: SimulatorServer, token: str, message: str
) -> None:
    response = get(simulator_client, simulator, "/api/v1/devices", **{"continue": token})
    assert response.status_code == 400
    assert response.json()["message"] == message


def test_continue_token_format_is_the_real_one(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    assert encode_continue(["c"], 3) == "eyJWZXJzaW9uIjoxLCJOYW1lcyI6WyJjIl0sIkNvdW50IjozfQ=="
    # Go decodes JSON keys case-insensitively.
    lower = base64.b64encode(b'{"version":1,"names":["0"],"count":9}').decode()
    assert get(simulator_client, simulator, "/api/v1/devices", **{"continue": lower}).status_code == 200


def test_names_ascending(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    for plural in (p for p, spec in SIM_KINDS.items() if not spec.by_time):
        names = [
            i["metadata"]["name"]
            for i in get(simulator_client, simulator, collection(simulator, plural)[0]).json()["items"]
        ]
        assert names == sorted(names), plural


def test_events_newest_first_and_order_asc(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    def key(event: dict[str, Any]) -> tuple[str, str]:
        return (event["metadata"]["creationTimestamp"], event["metadata"]["name"])

    newest = walk(simulator_client, simulator, "/api/v1/events", 9)
    oldest = walk(simulator_client, simulator, "/api/v1/events", 9, order="asc")
    times = [
        simulator.state.org(DEFAULT_ORG).collections["events"].get(e["metadata"]["name"]).created  # type: ignore[union-attr]
        for e in newest
    ]
    assert times == sorted(times, reverse=True)
    assert [key(e) for e in oldest] == [key(e) for e in reversed(newest)]
    token = get(simulator_client, simulator, "/api/v1/events", limit=1).json()["metadata"]["continue"]
    names = json.loads(base64.b64decode(token))["Names"]
    assert len(names) == 2
    assert names[0].endswith("Z")


def test_order_must_be_asc_or_desc(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    response = get(simulator_client, simulator, "/api/v1/events", order="up")
    assert response.status_code == 400
    assert response.json()["message"] == (
        'API Error: parameter "order" in query has an error: '
        'value is not one of the allowed values ["asc","desc"]'
    )


def test_device_summary_is_per_page(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    body = get(simulator_client, simulator, "/api/v1/devices", limit=4).json()
    summary = body["summary"]
    assert summary["total"] == 4
    statuses: dict[str, int] = {}
    for item in body["items"]:
        status = item["status"]["summary"]["status"]
        statuses[status] = statuses.get(status, 0) + 1
    assert summary["summaryStatus"] == statuses
    assert sum(summary["capabilities"]["osMode"].values()) == 4


def test_summary_only_covers_the_filtered_set(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    records = [r for r in simulator.state.org(DEFAULT_ORG).devices if r.labels.get("env") == "prod"]
    body = get(
        simulator_client, simulator, "/api/v1/devices", summaryOnly="true", labelSelector="env=prod"
    ).json()
    assert body["items"] == []
    assert body["metadata"] == {}
    summary = body["summary"]
    assert summary["total"] == len(records)
    assert sum(summary["applicationStatus"].values()) == len(records)
    assert summary["capabilities"]["osMode"].get("unknown", 0) == sum(1 for r in records if r.os_mode is None)
    empty = get(
        simulator_client, simulator, "/api/v1/devices", summaryOnly="true", labelSelector="env=nowhere"
    )
    assert empty.json()["summary"] == {
        "total": 0,
        "applicationStatus": {},
        "summaryStatus": {},
        "updateStatus": {},
        "capabilities": {"osMode": {}},
    }


@pytest.mark.parametrize("extra", [{"limit": "0"}, {"limit": "5"}, {"continue": "x"}])
def test_summary_only_refuses_limit_and_continue(
    simulator_client: httpx.Client, simulator: SimulatorServer, extra: dict[str, str]
) -> None:
    response = get(simulator_client, simulator, "/api/v1/devices", summaryOnly="true", **extra)
    assert response.status_code == 400
    assert response.json()["message"] == (
        "parameters such as 'limit', and 'continue' are not supported when 'summaryOnly' is true"
    )


def test_add_devices_summary(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    plain = get(simulator_client, simulator, "/api/v1/fleets").json()["items"]
    assert all("devicesSummary" not in f["status"] for f in plain)
    fleets = get(simulator_client, simulator, "/api/v1/fleets", addDevicesSummary="true").json()["items"]
    for fleet in fleets:
        owner = f"Fleet/{fleet['metadata']['name']}"
        members = [r for r in simulator.state.org(DEFAULT_ORG).devices if r.owner == owner]
        assert fleet["status"]["devicesSummary"]["total"] == len(members)
    one = get(
        simulator_client,
        simulator,
        f"/api/v1/fleets/{fleets[0]['metadata']['name']}",
        addDevicesSummary="true",
    )
    assert one.json()["status"]["devicesSummary"] == fleets[0]["status"]["devicesSummary"]


def test_fleet_rollout_state(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    fleets = get(simulator_client, simulator, "/api/v1/fleets").json()["items"]
    rolling = [f for f in fleets if "rollout" in f["status"]]
    assert rolling
    for fleet in rolling:
        condition = next(c for c in fleet["status"]["conditions"] if c["type"] == "RolloutInProgress")
        assert condition["status"] == "True"


def test_labels(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    response = get(simulator_client, simulator, "/api/v1/labels", kind="Device")
    labels = response.json()
    assert isinstance(labels, list)
    expected = {f"{k}={v}" for r in simulator.state.org(DEFAULT_ORG).devices for k, v in r.labels.items()}
    assert set(labels) == expected
    assert "canary=" in labels
    regions = get(
        simulator_client,
        simulator,
        "/api/v1/labels",
        kind="Device",
        fieldSelector="metadata.labels.key=region",
    )
    assert all(label.startswith("region=") for label in regions.json())
    limited = get(simulator_client, simulator, "/api/v1/labels", kind="Device", limit=3).json()
    assert len(limited) == 3
    subset = get(
        simulator_client, simulator, "/api/v1/labels", kind="Device", labelSelector="region=eu-west-1"
    )
    assert "region=us-east-1" not in subset.json()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, 'API Error: parameter "kind" in query has an error: value is required but missing'),
        (
            {"kind": "Fleet"},
            'API Error: parameter "kind" in query has an error: '
            'value is not one of the allowed values ["Device"]',
        ),
    ],
)
def test_labels_kind_is_required(
    simulator_client: httpx.Client, simulator: SimulatorServer, params: dict[str, str], message: str
) -> None:
    response = get(simulator_client, simulator, "/api/v1/labels", **params)
    assert response.status_code == 400
    assert response.json()["message"] == message


def test_get_by_name_and_404(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    for plural, spec in SIM_KINDS.items():
        if not spec.get:
            continue
        path, records = collection(simulator, plural)
        first = records[0]
        response = get(simulator_client, simulator, f"{path}/{first.name}")
        assert response.status_code == 200
        assert response.json()["metadata"]["name"] == first.name
        assert response.json()["kind"] == spec.kind
        missing = get(simulator_client, simulator, f"{path}/no-such-thing")
        assert missing.status_code == 404
        assert missing.json() == {
            "apiVersion": "flightctl.io/v1beta1",
            "code": 404,
            "kind": "Status",
            "message": f'{spec.kind} of name "no-such-thing" not found',
            "reason": "Not Found",
            "status": "Failure",
        }


def test_device_subresources(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    state = simulator.state
    online = state.pick_device(summary="Online", lifecycle="Enrolled")
    never = state.pick_device(seen=None)
    device = get(simulator_client, simulator, f"/api/v1/devices/{online}").json()
    assert (
        get(simulator_client, simulator, f"/api/v1/devices/{online}/status").json()["status"]["summary"]
        == (device["status"]["summary"])
    )
    seen = get(simulator_client, simulator, f"/api/v1/devices/{online}/lastseen")
    assert seen.status_code == 200
    assert set(seen.json()) == {"lastSeen"}
    assert "lastSeen" not in device["status"]
    never_seen = get(simulator_client, simulator, f"/api/v1/devices/{never}/lastseen")
    assert never_seen.status_code == 204
    assert never_seen.content == b""
    rendered = get(simulator_client, simulator, f"/api/v1/devices/{online}/rendered")
    assert rendered.status_code == 200
    version = rendered.json()["metadata"]["annotations"]["device-controller/renderedVersion"]
    unchanged = get(
        simulator_client, simulator, f"/api/v1/devices/{online}/rendered", knownRenderedVersion=version
    )
    assert unchanged.status_code == 204
    assert get(simulator_client, simulator, "/api/v1/devices/nope/lastseen").status_code == 404


def test_every_status_value_is_generated(simulator: SimulatorServer) -> None:
    from simulator.generator import (
        APP_STATUSES,
        LIFECYCLE_STATUSES,
        RESOURCE_STATUSES,
        SUMMARY_STATUSES,
        UPDATED_STATUSES,
    )

    records = list(simulator.state.org(DEFAULT_ORG).devices)
    assert {r.summary for r in records} >= set(SUMMARY_STATUSES)
    assert {r.apps for r in records} >= set(APP_STATUSES)
    assert {r.updated for r in records} >= set(UPDATED_STATUSES)
    assert {r.lifecycle for r in records} >= set(LIFECYCLE_STATUSES)
    for attribute in ("cpu", "memory", "disk"):
        assert {getattr(r, attribute) for r in records} <= set(RESOURCE_STATUSES)
    assert {r.cpu for r in records} | {r.memory for r in records} | {r.disk for r in records} == set(
        RESOURCE_STATUSES
    )
    assert {r.os_mode for r in records} == {"image", "package", None}
    rendered = [simulator.state.render(DEFAULT_ORG, "devices", r) for r in records]
    app_states = {a["status"] for d in rendered for a in d["status"]["applications"]}
    assert app_states == {
        "Preparing",
        "Starting",
        "Running",
        "Error",
        "Unknown",
        "Completed",
        "Stopped",
        "Stopping",
    }
    integrity = {d["status"]["integrity"]["status"] for d in rendered}
    assert integrity == {"Verified", "Failed", "Unknown", "Unsupported"}
    assert any(r.seen is None for r in records)


def test_same_seed_same_fleet() -> None:
    from simulator.state import SimulatorState

    one = SimulatorState(devices=30, seed=5, anchor=1_700_000_000)
    two = SimulatorState(devices=30, seed=5, anchor=1_700_000_000)
    other = SimulatorState(devices=30, seed=6, anchor=1_700_000_000)
    names = one.device_names()
    assert names == two.device_names()
    assert names != other.device_names()
    for name in names:
        first, second = one.find_device(DEFAULT_ORG, name), two.find_device(DEFAULT_ORG, name)
        assert first is not None
        assert second is not None
        if "lastSeen" not in json.dumps(first):
            first["status"]["conditions"] = second["status"]["conditions"] = []
            first["status"].get("integrity", {}).pop("lastVerified", None)
            second["status"].get("integrity", {}).pop("lastVerified", None)
        assert first["spec"] == second["spec"]
        assert first["metadata"] == second["metadata"]
        assert first["status"]["summary"] == second["status"]["summary"]


def test_organizations(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    body = get(simulator_client, simulator, "/api/v1/organizations").json()
    assert body == {
        "apiVersion": "flightctl.io/v1beta1",
        "kind": "OrganizationList",
        "metadata": {},
        "items": [
            {
                "apiVersion": "flightctl.io/v1beta1",
                "kind": "Organization",
                "metadata": {"name": DEFAULT_ORG},
                "spec": {"externalId": "default", "displayName": "Default"},
            }
        ],
    }
    multi = get(simulator_client, simulator, "/api/v1/organizations", user="multi").json()["items"]
    assert [o["metadata"]["name"] for o in multi] == [DEFAULT_ORG, LAB_ORG]
    filtered = get(
        simulator_client,
        simulator,
        "/api/v1/organizations",
        user="multi",
        fieldSelector=f"metadata.name={LAB_ORG}",
    ).json()["items"]
    assert [o["metadata"]["name"] for o in filtered] == [LAB_ORG]
    assert get(simulator_client, simulator, "/api/v1/organizations", user="nobody").json()["items"] == []


def test_lab_org(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    devices = get(simulator_client, simulator, "/api/v1/devices", user="lab").json()["items"]
    assert [d["metadata"]["name"] for d in devices] == [f"lab-{i:02d}" for i in range(1, 6)]
    multi = get(simulator_client, simulator, "/api/v1/devices", user="multi", org_id=LAB_ORG).json()["items"]
    assert len(multi) == 5


def test_version_endpoints(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    assert get(simulator_client, simulator, "/api/v1/version").json() == {"version": simulator.state.version}
    assert simulator_client.get("/api/version").json() == {"version": simulator.state.version}
    assert simulator_client.get("/healthz").status_code == 200
    assert simulator_client.get("/readyz").status_code == 200


def test_unimplemented_spec_paths_answer_501(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    response = simulator_client.post("/api/v1/devices", headers=simulator.auth_headers(), json={})
    assert response.status_code == 501
    assert response.json()["code"] == 501
    assert "not implemented" in response.json()["message"]
    providers = get(simulator_client, simulator, "/api/v1/authproviders")
    assert providers.status_code == 501
    unknown = get(simulator_client, simulator, "/api/v1/nothing-here")
    assert unknown.status_code == 404
    assert unknown.text == "404 page not found\n"


def test_cve_id_is_validated(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    assert get(simulator_client, simulator, "/api/v1/devices", cveId="CVE-2024-12345").status_code == 200
    response = get(simulator_client, simulator, "/api/v1/devices", cveId="not-a-cve")
    assert response.status_code == 400
    assert response.json()["message"] == (
        'API Error: parameter "cveId" in query has an error: '
        'string doesn\'t match the regular expression "^CVE-[0-9]{4}-[0-9]{4,}$"'
    )


def test_bool_parameters_are_validated(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    response = get(simulator_client, simulator, "/api/v1/devices", summaryOnly="yes")
    assert response.status_code == 400
    assert response.json()["message"] == (
        'API Error: parameter "summaryOnly" in query has an error: '
        "value yes: an invalid boolean: invalid syntax"
    )
