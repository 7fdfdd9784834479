"""Reads over real sockets beyond paging: device summaries, labels, get by name and the device
subresources, organizations, the version, parameter checks and the answers to unimplemented paths."""

from __future__ import annotations

import httpx
import pytest

from simulator.accounts import DEFAULT_ORG, LAB_ORG
from simulator.harness import SimulatorServer
from simulator.kinds import KINDS as SIM_KINDS
from tests.simulator_calls import collection, get


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
