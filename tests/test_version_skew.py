"""A Flight Control newer than flightctl-client: fields and enum values the client's models do not know
must reach the assistant unharmed, in lists, counts and single objects alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import trustme
import yaml

from simulator.harness import SimulatorServer
from tests.query_support import call, client_for, https_simulator, services_for

FUTURE_DEVICE = {
    "apiVersion": "flightctl.io/v1beta1",
    "kind": "Device",
    "metadata": {"name": "future-device", "labels": {"site": "lab"}, "generationHint": "from-a-newer-server"},
    "spec": {"os": {"image": "quay.io/acme/os:10.0"}, "quantumAccelerator": {"enabled": True}},
    "status": {
        "conditions": [],
        "systemInfo": {
            "architecture": "riscv64",
            "bootID": "b",
            "operatingSystem": "linux",
            "agentVersion": "v9",
        },
        "applications": [],
        "applicationsSummary": {"status": "Hibernating", "info": "A summary value this client never saw."},
        "resources": {"cpu": "Healthy", "memory": "Healthy", "disk": "Healthy", "gpu": "Melting"},
        "integrity": {"status": "Unsupported"},
        "config": {"renderedVersion": "7"},
        "os": {"image": "quay.io/acme/os:10.0", "imageDigest": "sha256:00"},
        "updated": {"status": "Teleporting"},
        "summary": {"status": "Dreaming", "info": "An enum value from the future."},
        "lifecycle": {"status": "Enrolled"},
        "carbonFootprint": {"grams": 12},
    },
}


@pytest.fixture(scope="module")
def future(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimulatorServer, trustme.CA]]:
    tmp = tmp_path_factory.mktemp("skew")
    resources = tmp / "future.yaml"
    resources.write_text(yaml.safe_dump(FUTURE_DEVICE))
    with https_simulator(tmp, devices=3, load=[resources]) as running:
        yield running


async def test_unknown_fields_and_enum_values_survive_every_view(future: Any) -> None:
    sim, ca = future
    async with client_for(services_for(sim, ca)) as client:
        full = await call(client, "query_devices", {"name": "future-device", "full": True})
        compact = await call(client, "query_devices", {"field_selector": "metadata.name=future-device"})
        counts = await call(client, "count_devices", {"label_selector": "site=lab"})
    device = full["data"]
    assert device["spec"]["quantumAccelerator"] == {"enabled": True}
    assert device["metadata"]["generationHint"] == "from-a-newer-server"
    assert device["status"]["carbonFootprint"] == {"grams": 12}
    assert device["status"]["resources"]["gpu"] == "Melting"
    (item,) = compact["data"]
    assert item["status"]["summary"]["status"] == "Dreaming"
    assert item["status"]["updated"]["status"] == "Teleporting"
    assert item["status"]["applicationsSummary"]["status"] == "Hibernating"
    assert counts["summaryStatus"] == {"Dreaming": 1}


def test_the_generated_client_models_would_have_refused_this_device() -> None:
    """Why the server parses JSON itself: the official models reject what a newer server sends."""
    from flightctl.models.device import Device
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Device.from_dict(FUTURE_DEVICE)
