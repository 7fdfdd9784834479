"""Every body the simulator returns validates through flightctl-client's own models where those are
right, and against the upstream OpenAPI schema where they are not (objects with applications, see
flightctl-client-notes.md §1)."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import pydantic
import pytest
import yaml
from flightctl.models.auth_config import AuthConfig
from flightctl.models.device import Device
from flightctl.models.device_last_seen import DeviceLastSeen
from flightctl.models.device_list import DeviceList
from flightctl.models.enrollment_request_list import EnrollmentRequestList
from flightctl.models.fleet import Fleet
from flightctl.models.organization_list import OrganizationList
from flightctl.models.permission_list import PermissionList
from flightctl.models.repository_list import RepositoryList
from flightctl.models.status import Status
from flightctl.models.token_response import TokenResponse
from flightctl.models.user_info_response import UserInfoResponse
from flightctl.models.version import Version

from simulator.harness import SimulatorServer
from simulator.kinds import KINDS as SIM_KINDS
from simulator.state import DEFAULT_ORG
from tests.reference import reference_file

SPEC = reference_file("flightctl", "openapi-v1beta1.yaml")
EXAMPLES = SPEC.parent / "examples"

# The client's generated models make these fields of the application variants required although the
# API leaves them optional. A failure outside this set means the simulator (or a new client) changed.
KNOWN_MODEL_ERRORS = {
    ("ContainerApplication", "catalogItemRef"),
    ("ComposeApplication", "catalogItemRef"),
    ("ComposeApplication", "inline"),
    ("QuadletApplication", "catalogItemRef"),
    ("QuadletApplication", "inline"),
    ("ApplicationVolume", "image"),
    ("ApplicationVolume", "mount"),
}


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 to JSON Schema: ``nullable``, and oneOf + discriminator as the discriminator means it."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _openapi_to_jsonschema(value) for key, value in node.items()}
    if node.pop("nullable", False) and "type" in node:
        node["type"] = [node["type"], "null"]
    discriminator = node.pop("discriminator", None)
    if discriminator and "oneOf" in node and discriminator.get("mapping"):
        prop, mapping = discriminator["propertyName"], discriminator["mapping"]
        del node["oneOf"]
        branches = [
            {"if": {"properties": {prop: {"const": key}}, "required": [prop]}, "then": {"$ref": ref}}
            for key, ref in mapping.items()
        ]
        node["allOf"] = [
            *node.get("allOf", []),
            *branches,
            {"required": [prop], "properties": {prop: {"enum": list(mapping)}}},
        ]
    return node


class SchemaCheck:
    def __init__(self, spec_path: Path) -> None:
        spec = yaml.safe_load(spec_path.read_text())
        self.components = _openapi_to_jsonschema(spec["components"])

    def errors(self, schema_name: str, body: Any) -> list[str]:
        schema = {"$ref": f"#/components/schemas/{schema_name}", "components": self.components}
        validator = jsonschema.Draft202012Validator(schema)
        return [f"{list(e.absolute_path)}: {e.message[:300]}" for e in validator.iter_errors(body)]


@pytest.fixture(scope="module")
def schema() -> SchemaCheck:
    if not SPEC.exists():
        pytest.skip(
            f"the upstream OpenAPI spec is not here ({SPEC}); it is reference material, not in the repo"
        )
    return SchemaCheck(SPEC)


def all_items(
    client: httpx.Client, sim: SimulatorServer, plural: str, **params: Any
) -> Iterator[dict[str, Any]]:
    token = None
    while True:
        query = dict(params, limit=25)
        if token:
            query["continue"] = token
        path = plural if plural.startswith("/") else f"/api/v1/{plural}"
        body = client.get(path, params=query, headers=sim.auth_headers()).json()
        yield from body["items"]
        token = body["metadata"].get("continue")
        if not token:
            return


def model_errors(model: Any, body: dict[str, Any]) -> set[tuple[str, str]] | None:
    """None when the model accepts ``body``; else the (model, field) pairs it complains about."""
    try:
        model.from_dict(body)
    except pydantic.ValidationError as exc:
        return {(exc.title, str(error["loc"][0])) for error in exc.errors()}
    return None


def test_devices_of_every_status(
    simulator_client: httpx.Client, simulator: SimulatorServer, schema: SchemaCheck
) -> None:
    with_apps = without_apps = 0
    for device in all_items(simulator_client, simulator, "devices"):
        assert schema.errors("Device", device) == [], device["metadata"]["name"]
        errors = model_errors(Device, device)
        if device.get("spec", {}).get("applications"):
            with_apps += 1
            assert errors is not None, "the client models accept applications now: drop the workaround"
            assert errors <= KNOWN_MODEL_ERRORS, errors
        else:
            without_apps += 1
            assert errors is None, (device["metadata"]["name"], errors)
    assert with_apps
    assert without_apps


def test_full_size_devices_follow_the_schema(make_simulator: Any, schema: SchemaCheck) -> None:
    sim = make_simulator(tls=False, devices=40, full_devices=True)
    with httpx.Client(base_url=sim.base_url, timeout=30) as client:
        devices = list(all_items(client, sim, "devices"))
    assert len(devices) == 40
    for device in devices:
        assert schema.errors("Device", device) == [], device["metadata"]["name"]


def test_device_list_through_the_model(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    response = simulator_client.get(
        "/api/v1/devices",
        params={"fieldSelector": "status.applicationsSummary.status=NoApplications"},
        headers=simulator.auth_headers(),
    )
    parsed = DeviceList.from_json(response.text)
    assert parsed is not None
    assert len(parsed.items) == len(response.json()["items"]) > 0
    assert parsed.summary is not None
    summary = simulator_client.get(
        "/api/v1/devices", params={"summaryOnly": "true"}, headers=simulator.auth_headers()
    )
    assert DeviceList.from_json(summary.text) is not None


def client_model(name: str) -> Any:
    """flightctl-client's generated model class for a schema name (``TemplateVersionList``...)."""
    module = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    return getattr(importlib.import_module(f"flightctl.models.{module}"), name)


def kind_path(sim: SimulatorServer, plural: str) -> str:
    """The list path of a kind; a nested kind under the parent of its first record."""
    spec = SIM_KINDS[plural]
    path = "/api/v1" + spec.list_path
    if spec.parent is not None:
        first = next(iter(sim.state.org(DEFAULT_ORG).collections[plural]))
        path = path.replace("{" + spec.parent + "}", spec.fields["metadata.owner"].getter(first))
    return path


# Kinds whose objects embed a device template (fleets, template versions) meet KNOWN_MODEL_ERRORS.
_TEMPLATES = ("fleets", "templateversions")


@pytest.mark.parametrize("plural", [p for p in SIM_KINDS if p not in ("devices", "fleets")])
def test_other_lists_through_the_models(
    simulator_client: httpx.Client, simulator: SimulatorServer, schema: SchemaCheck, plural: str
) -> None:
    spec = SIM_KINDS[plural]
    seen = 0
    token = None
    while True:
        params: dict[str, Any] = {"limit": 50}
        if token:
            params["continue"] = token
        response = simulator_client.get(
            kind_path(simulator, plural), params=params, headers=simulator.auth_headers()
        )
        body = response.json()
        assert body["kind"] == spec.list_kind
        errors = model_errors(client_model(spec.list_kind), body)
        assert errors is None or (plural in _TEMPLATES and errors <= KNOWN_MODEL_ERRORS), errors
        for item in body["items"]:
            assert schema.errors(spec.kind, item) == [], item["metadata"]["name"]
        seen += len(body["items"])
        token = body["metadata"].get("continue")
        if not token:
            break
    assert seen, f"the simulator generates no {plural}"


def test_fleets(simulator_client: httpx.Client, simulator: SimulatorServer, schema: SchemaCheck) -> None:
    response = simulator_client.get(
        "/api/v1/fleets", params={"addDevicesSummary": "true"}, headers=simulator.auth_headers()
    )
    for fleet in response.json()["items"]:
        assert schema.errors("Fleet", fleet) == []
        errors = model_errors(Fleet, fleet)
        if fleet["spec"]["template"]["spec"].get("applications"):
            assert errors is not None
            assert errors <= KNOWN_MODEL_ERRORS
        else:
            assert errors is None


def test_small_bodies_through_the_models(
    simulator_client: httpx.Client, simulator: SimulatorServer, schema: SchemaCheck
) -> None:
    headers = simulator.auth_headers()
    online = simulator.state.pick_device(summary="Online")
    bodies: list[tuple[Any, str, httpx.Response]] = [
        (
            OrganizationList,
            "OrganizationList",
            simulator_client.get("/api/v1/organizations", headers=headers),
        ),
        (AuthConfig, "AuthConfig", simulator_client.get("/api/v1/auth/config")),
        (Version, "Version", simulator_client.get("/api/v1/version", headers=headers)),
        (Status, "Status", simulator_client.get("/api/v1/auth/validate", headers=headers)),
        (Status, "Status", simulator_client.get("/api/v1/devices/nope", headers=headers)),
        (Status, "Status", simulator_client.get("/api/v1/devices")),
        (
            UserInfoResponse,
            "UserInfoResponse",
            simulator_client.get("/api/v1/auth/userinfo", headers=headers),
        ),
        (PermissionList, "PermissionList", simulator_client.get("/api/v1/auth/permissions", headers=headers)),
        (
            DeviceLastSeen,
            "DeviceLastSeen",
            simulator_client.get(f"/api/v1/devices/{online}/lastseen", headers=headers),
        ),
        (
            TokenResponse,
            "TokenResponse",
            simulator_client.post(
                simulator.token_proxy_url,
                data={
                    "grant_type": "refresh_token",
                    "client_id": "flightctl",
                    "refresh_token": simulator.issue_tokens().refresh_token,
                },
            ),
        ),
        (
            TokenResponse,
            "TokenResponse",
            simulator_client.post(
                simulator.token_proxy_url,
                data={"grant_type": "refresh_token", "client_id": "flightctl", "refresh_token": "nope"},
            ),
        ),
    ]
    for model, schema_name, response in bodies:
        assert model.from_json(response.text) is not None, response.text
        assert schema.errors(schema_name, response.json()) == [], response.text
    labels = simulator_client.get("/api/v1/labels", params={"kind": "Device"}, headers=headers).json()
    assert schema.errors("LabelList", labels) == []


def test_fault_bodies_through_the_models(make_simulator: Any, schema: SchemaCheck) -> None:
    sim: SimulatorServer = make_simulator(tls=False, devices=1)
    sim.faults.rate_limit(1)
    sim.faults.unavailable(1)
    with httpx.Client(base_url=sim.base_url, headers=sim.auth_headers()) as client:
        for expected in (429, 503):
            response = client.get("/api/v1/devices")
            assert response.status_code == expected
            assert Status.from_json(response.text) is not None
            assert schema.errors("Status", response.json()) == []
        negotiation = client.get("/api/v1/devices", headers={"Flightctl-API-Version": "v9"})
        assert Status.from_json(negotiation.text) is not None


def test_upstream_examples_load_and_validate(make_simulator: Any, schema: SchemaCheck) -> None:
    if not EXAMPLES.is_dir():
        pytest.skip(f"the upstream examples are not here ({EXAMPLES})")
    sim: SimulatorServer = make_simulator(tls=False, devices=0, load=[EXAMPLES])
    with httpx.Client(base_url=sim.base_url, headers=sim.auth_headers()) as client:
        for name in ("444qgdhc7ht92g5k2mi9q926eld9nf25dvusrg9pqmkku75oqing", "test-device-all-image-types"):
            device = client.get(f"/api/v1/devices/{name}").json()
            assert schema.errors("Device", device) == []
            errors = model_errors(Device, device)
            assert errors is not None
            assert errors <= KNOWN_MODEL_ERRORS
        devices = client.get("/api/v1/devices").json()["items"]
        assert {d["metadata"]["name"] for d in devices} >= {
            "444qgdhc7ht92g5k2mi9q926eld9nf25dvusrg9pqmkku75oqing"
        }
        for device in devices:
            assert schema.errors("Device", device) == []
            if not device.get("spec", {}).get("applications"):
                assert model_errors(Device, device) is None
        fleets = {f["metadata"]["name"]: f for f in client.get("/api/v1/fleets").json()["items"]}
        assert {"default"} <= set(fleets)
        repositories = client.get("/api/v1/repositories").json()["items"]
        by_name = {r["metadata"]["name"]: r for r in repositories}
        assert by_name["my-registry"]["spec"]["ociAuth"]["password"] == "*****"
        assert RepositoryList.from_json(json.dumps(client.get("/api/v1/repositories").json())) is not None
        for repo in repositories:
            assert schema.errors("Repository", repo) == []
        syncs = client.get("/api/v1/resourcesyncs").json()["items"]
        assert [s["metadata"]["name"] for s in syncs] == ["default-sync"]
        ers = client.get("/api/v1/enrollmentrequests").json()
        assert EnrollmentRequestList.from_json(json.dumps(ers)) is not None


def _without_times(status: dict[str, Any]) -> dict[str, Any]:
    """A device status minus the times that are computed from the moment of the read."""
    stable = {key: value for key, value in status.items() if key not in ("conditions", "integrity")}
    stable["conditions"] = [(c["type"], c["status"], c["reason"]) for c in status["conditions"]]
    stable["integrity"] = status["integrity"]["status"]
    return stable


def test_device_subresources_and_single_objects_through_the_models(
    simulator_client: httpx.Client, simulator: SimulatorServer, schema: SchemaCheck
) -> None:
    headers = simulator.auth_headers()
    names = simulator.state.device_names()
    assert names
    for name in names:
        device = simulator_client.get(f"/api/v1/devices/{name}", headers=headers).json()
        status = simulator_client.get(f"/api/v1/devices/{name}/status", headers=headers)
        rendered = simulator_client.get(f"/api/v1/devices/{name}/rendered", headers=headers)
        assert (status.status_code, rendered.status_code) == (200, 200), name
        # /status is the whole device, as upstream's GetDeviceStatus returns it (times aside, see
        # test_condition_transition_times_hold_still).
        assert _without_times(status.json()["status"]) == _without_times(device["status"]), name
        assert rendered.json()["metadata"]["name"] == name
        assert "status" not in rendered.json()
        has_apps = bool(device.get("spec", {}).get("applications"))
        for body in (status.json(), rendered.json()):
            assert schema.errors("Device", body) == [], name
            errors = model_errors(Device, body)
            if body.get("spec", {}).get("applications"):
                assert errors is not None, "the client models accept applications now: drop the workaround"
                assert errors <= KNOWN_MODEL_ERRORS, (name, errors)
            else:
                assert errors is None, (name, errors)
        assert bool(rendered.json()["spec"].get("applications")) == has_apps, name

    for plural, spec in SIM_KINDS.items():
        if plural == "devices" or not spec.get:
            continue
        path = kind_path(simulator, plural)
        listed = list(all_items(simulator_client, simulator, path))
        assert listed, plural
        for item in listed:
            name = item["metadata"]["name"]
            response = simulator_client.get(f"{path}/{name}", headers=headers)
            assert response.status_code == 200, (plural, name)
            body = response.json()
            assert body["metadata"]["name"] == name
            assert body["spec"] == item["spec"], (plural, name)
            assert schema.errors(spec.kind, body) == [], (plural, name)
            errors = model_errors(client_model(spec.kind), body)
            if errors is not None:
                assert errors <= KNOWN_MODEL_ERRORS, (plural, name, errors)
            if plural not in _TEMPLATES:  # only device templates carry applications
                assert errors is None, (plural, name, errors)


def test_error_token_and_version_bodies_through_the_models(
    simulator_client: httpx.Client, simulator: SimulatorServer, schema: SchemaCheck
) -> None:
    admin = simulator.auth_headers()
    failures: list[tuple[int, str, httpx.Response]] = [
        (
            401,
            "failed to validate token",
            simulator_client.get("/api/v1/devices", headers={"Authorization": "Bearer not-issued"}),
        ),
        (403, "Forbidden", simulator_client.get("/api/v1/events", headers=simulator.auth_headers("viewer"))),
        (
            400,
            "failed to parse field selector: invalid field selector syntax: ",
            simulator_client.get("/api/v1/devices", params={"fieldSelector": "a b"}, headers=admin),
        ),
        (
            400,
            "invalid organization ID format",
            simulator_client.get("/api/v1/devices", params={"org_id": "not-a-uuid"}, headers=admin),
        ),
        (
            400,
            'API Error: parameter "limit" in query has an error: number must be at most 1000',
            simulator_client.get("/api/v1/devices", params={"limit": 2000}, headers=admin),
        ),
    ]
    for code, message, response in failures:
        assert response.status_code == code, response.text
        status = Status.from_json(response.text)
        assert status is not None, response.text
        assert status.code == code
        assert status.status == "Failure"
        assert status.message is not None
        assert status.message.startswith(message), status.message
        assert schema.errors("Status", response.json()) == [], response.text

    token = simulator_client.post(
        simulator.oidc_token_url,
        data={
            "grant_type": "refresh_token",
            "client_id": "flightctl",
            "refresh_token": simulator.issue_tokens().refresh_token,
        },
    )
    assert token.status_code == 200, token.text
    parsed = TokenResponse.from_json(token.text)
    assert parsed is not None
    assert parsed.access_token
    assert parsed.refresh_token
    assert parsed.expires_in == int(simulator.state.access_token_ttl)
    # Keycloak adds refresh_expires_in, session_state, ...: only the spec's own fields are checked.
    spec_fields = {k: v for k, v in token.json().items() if k in TokenResponse.model_fields}
    assert schema.errors("TokenResponse", spec_fields) == [], token.text
    bearer = {"Authorization": f"Bearer {parsed.access_token}"}
    assert simulator_client.get("/api/v1/devices", params={"limit": 1}, headers=bearer).status_code == 200

    legacy = simulator_client.get("/api/version")
    assert legacy.status_code == 200, legacy.text
    version = Version.from_json(legacy.text)
    assert version is not None
    assert version.version == simulator.state.version
    assert schema.errors("Version", legacy.json()) == []
    current = simulator_client.get("/api/v1/version", headers=admin).json()
    assert current == legacy.json()


def test_condition_transition_times_hold_still(make_simulator: Any) -> None:
    """A live device's lastSeen follows the clock; when its conditions last changed does not."""
    sim: SimulatorServer = make_simulator(tls=False, devices=16)
    name = sim.state.pick_device(summary="Online", lifecycle="Enrolled")
    with httpx.Client(base_url=sim.base_url) as client:
        headers = sim.auth_headers()
        before = client.get(f"/api/v1/devices/{name}", headers=headers).json()
        seen_before = client.get(f"/api/v1/devices/{name}/lastseen", headers=headers).json()["lastSeen"]
        assert client.post("/_sim/clock", json={"advance": 120}).status_code == 200
        headers = sim.auth_headers()
        after = client.get(f"/api/v1/devices/{name}", headers=headers).json()
        seen_after = client.get(f"/api/v1/devices/{name}/lastseen", headers=headers).json()["lastSeen"]
    assert seen_after > seen_before  # the device keeps reporting in
    times = [
        (b["type"], b["lastTransitionTime"], a["lastTransitionTime"])
        for b, a in zip(before["status"]["conditions"], after["status"]["conditions"], strict=True)
    ]
    assert [(kind, old) for kind, old, _ in times] == [(kind, new) for kind, _, new in times], times
