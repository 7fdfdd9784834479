"""Template versions, rollouts, certificate signing requests and enrollment config over real sockets."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from simulator.harness import SimulatorServer
from simulator.state import DEFAULT_ORG


def get(client: httpx.Client, sim: SimulatorServer, path: str, user: str = "admin", **params: Any) -> Any:
    response = client.get(path, params=params, headers=sim.auth_headers(user))
    assert response.status_code == 200, response.text
    return response.json()


def test_template_versions_are_nested_newest_first_and_the_newest_is_the_fleets(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    fleets = get(simulator_client, simulator, "/api/v1/fleets")["items"]
    assert len(fleets) >= 2
    seen: set[str] = set()
    for fleet in fleets:
        name = fleet["metadata"]["name"]
        body = get(simulator_client, simulator, f"/api/v1/fleets/{name}/templateversions")
        assert body["kind"] == "TemplateVersionList"
        versions = body["items"]
        assert len(versions) >= 3, "several template versions per fleet"
        assert {v["spec"]["fleet"] for v in versions} == {name}
        assert {v["metadata"]["owner"] for v in versions} == {f"Fleet/{name}"}
        created = [v["metadata"]["creationTimestamp"] for v in versions]
        assert created == sorted(created, reverse=True)
        newest = versions[0]
        assert (
            newest["metadata"]["name"] == fleet["metadata"]["annotations"]["fleet-controller/templateVersion"]
        )
        assert newest["status"]["os"]["image"] == fleet["spec"]["template"]["spec"]["os"]["image"]
        seen.update(v["metadata"]["name"] for v in versions)
    stored = {r.name for r in simulator.state.org(DEFAULT_ORG).collections["templateversions"]}
    assert seen == stored


def test_a_template_version_belongs_to_one_fleet(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    first, second = (
        f["metadata"]["name"] for f in get(simulator_client, simulator, "/api/v1/fleets")["items"][:2]
    )
    version = get(simulator_client, simulator, f"/api/v1/fleets/{first}/templateversions")["items"][-1]
    name = version["metadata"]["name"]
    assert get(simulator_client, simulator, f"/api/v1/fleets/{first}/templateversions/{name}") == version
    elsewhere = simulator_client.get(
        f"/api/v1/fleets/{second}/templateversions/{name}", headers=simulator.auth_headers()
    )
    assert elsewhere.status_code == 404
    assert elsewhere.json()["message"] == f'TemplateVersion of name "{name}" not found'
    none = get(simulator_client, simulator, "/api/v1/fleets/no-such-fleet/templateversions")
    assert none["items"] == []
    by_owner = get(
        simulator_client,
        simulator,
        f"/api/v1/fleets/{first}/templateversions",
        fieldSelector=f"metadata.owner={first}",
    )
    assert len(by_owner["items"]) == len(
        get(simulator_client, simulator, f"/api/v1/fleets/{first}/templateversions")["items"]
    )


def test_template_versions_page_with_continue_tokens(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    fleet = get(simulator_client, simulator, "/api/v1/fleets")["items"][0]["metadata"]["name"]
    path = f"/api/v1/fleets/{fleet}/templateversions"
    everything = [v["metadata"]["name"] for v in get(simulator_client, simulator, path)["items"]]
    names: list[str] = []
    token = None
    while True:
        params: dict[str, Any] = {"limit": 1} | ({"continue": token} if token else {})
        body = get(simulator_client, simulator, path, **params)
        names += [v["metadata"]["name"] for v in body["items"]]
        token = body["metadata"].get("continue")
        if not token:
            break
        assert body["metadata"]["remainingItemCount"] == len(everything) - len(names)
    assert names == everything


def test_template_versions_have_their_own_permission(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    fleet = get(simulator_client, simulator, "/api/v1/fleets")["items"][0]["metadata"]["name"]
    token = simulator.issue_access_token("admin", scopes=["fleets:list", "fleets:get"])
    response = simulator_client.get(
        f"/api/v1/fleets/{fleet}/templateversions", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 403
    assert get(simulator_client, simulator, f"/api/v1/fleets/{fleet}/templateversions", user="viewer")[
        "items"
    ]


def test_rollouts_in_progress_and_a_stuck_one(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    fleets = get(simulator_client, simulator, "/api/v1/fleets", addDevicesSummary="true")["items"]
    rolling = [
        f
        for f in fleets
        if any(c["type"] == "RolloutInProgress" and c["status"] == "True" for c in f["status"]["conditions"])
    ]
    assert rolling
    for fleet in rolling:
        annotations = fleet["metadata"]["annotations"]
        assert (
            annotations["fleet-controller/deployingTemplateVersion"]
            == annotations["fleet-controller/templateVersion"]
        )
        assert int(annotations["fleet-controller/batchNumber"]) == fleet["status"]["rollout"]["currentBatch"]
        assert fleet["spec"]["rolloutPolicy"]["deviceSelection"]["sequence"]
        report = json.loads(annotations["fleet-controller/lastBatchCompletionReport"])
        assert set(report) >= {"batchName", "successPercentage", "total", "successful"}
        assert fleet["status"]["devicesSummary"]["total"] > 0
    suspended = [
        f
        for f in rolling
        if any(
            c["type"] == "RolloutInProgress" and c["reason"] == "Suspended" for c in f["status"]["conditions"]
        )
    ]
    assert suspended, "a small fleet already shows a stuck rollout"
    assert suspended[0]["metadata"]["annotations"]["fleet-controller/rolloutApproved"] == "false"


def test_certificate_signing_requests_pending_and_issued(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    items = get(simulator_client, simulator, "/api/v1/certificatesigningrequests")["items"]
    pending = [c for c in items if not c["status"]["conditions"]]
    issued = get(
        simulator_client, simulator, "/api/v1/certificatesigningrequests", fieldSelector="status.certificate"
    )
    unissued = get(
        simulator_client, simulator, "/api/v1/certificatesigningrequests", fieldSelector="!status.certificate"
    )
    assert pending
    assert {c["metadata"]["name"] for c in pending} <= {c["metadata"]["name"] for c in unissued["items"]}
    assert len(issued["items"]) + len(unissued["items"]) == len(items)
    for csr in issued["items"]:
        assert base64.b64decode(csr["status"]["certificate"]).startswith(b"-----BEGIN CERTIFICATE-----")
        assert csr["status"]["conditions"][0]["type"] == "Approved"
    assert {c["spec"]["signerName"] for c in items} >= {
        "flightctl.io/enrollment",
        "flightctl.io/device-enrollment",
    }
    denied = simulator_client.get(
        "/api/v1/certificatesigningrequests", headers=simulator.auth_headers("viewer")
    )
    assert denied.status_code == 403


def test_enrollment_config(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    config = get(simulator_client, simulator, "/api/v1/enrollmentconfig")["enrollment-service"]
    assert config["service"]["server"].startswith("https://")
    assert base64.b64decode(config["service"]["certificate-authority-data"]).startswith(b"-----BEGIN")
    assert config["authentication"]["client-certificate-data"] == ""
    issued = get(
        simulator_client, simulator, "/api/v1/certificatesigningrequests", fieldSelector="status.certificate"
    )
    name = issued["items"][0]["metadata"]["name"]
    with_csr = get(simulator_client, simulator, "/api/v1/enrollmentconfig", csr=name)["enrollment-service"]
    assert (
        with_csr["authentication"]["client-certificate-data"] == issued["items"][0]["status"]["certificate"]
    )
    missing = simulator_client.get(
        "/api/v1/enrollmentconfig", params={"csr": "nope"}, headers=simulator.auth_headers()
    )
    assert missing.status_code == 404
    viewer = simulator_client.get("/api/v1/enrollmentconfig", headers=simulator.auth_headers("viewer"))
    assert viewer.status_code == 403
