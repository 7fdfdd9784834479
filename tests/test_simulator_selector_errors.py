"""Selector error texts over real sockets: every 400 answer carries the real server's message."""

from __future__ import annotations

import httpx
import pytest

from simulator.harness import SimulatorServer
from tests.selector_support import error

DEVICE_SELECTORS = (
    "metadata.alias metadata.creationTimestamp metadata.name metadata.nameOrAlias metadata.owner "
    "status.applicationsSummary.status status.capabilities.osMode status.lifecycle.status "
    "status.summary.status status.updated.status"
)


def test_unknown_field(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    assert error(simulator_client, simulator, fieldSelector="text") == (
        'unknown or unsupported selector: unable to resolve selector name "text". '
        f"Supported selectors are: [{DEVICE_SELECTORS}]"
    )


def test_lastseen_is_not_selectable(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    assert error(simulator_client, simulator, fieldSelector="lastSeen>2024-01-01T00:00:00Z").startswith(
        'unknown or unsupported selector: unable to resolve selector name "lastSeen"'
    )


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        (
            "metadata.name>10",
            'failed to parse field selector: failed to resolve operation for selector "metadata.name": '
            'operator "gt" is unsupported for type string',
        ),
        (
            "metadata.name>abc",
            'failed to parse field selector: invalid field selector syntax: values[0]: Invalid value: "abc": '
            "for 'Gt', 'Lt', 'Gte', and 'Lte' operators, the value must be a number or a valid time in "
            "RFC3339 format",
        ),
        (
            "status.summary.status contains On",
            "failed to parse field selector: failed to resolve operation for selector "
            '"status.summary.status": '
            'the operator "contains" is not supported for partial string matching when the field is of type '
            "JSONB with string casting",
        ),
        (
            "metadata.labels contains region=x",
            'failed to parse field selector: failed to parse selector "metadata.labels": field is marked as '
            "private and cannot be selected",
        ),
    ],
)
def test_field_selector_errors(
    simulator_client: httpx.Client, simulator: SimulatorServer, selector: str, message: str
) -> None:
    assert error(simulator_client, simulator, fieldSelector=selector) == message


def test_bad_key_syntax(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    message = error(simulator_client, simulator, fieldSelector="metadata.name@=x")
    assert message.startswith(
        "failed to parse field selector: invalid field selector syntax: key: Invalid value: "
        '"metadata.name@": '
        "name part must consist of alphanumeric characters"
    )


def test_bool_value_error(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    message = error(
        simulator_client,
        simulator,
        "/api/v1/enrollmentrequests",
        fieldSelector="status.approval.approved=maybe",
    )
    assert message.startswith(
        'failed to parse field selector: failed to parse value for selector "status.approval.approved": '
        "failed to parse boolean value: "
    )


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        (
            "=foo",
            "failed to parse label selector: invalid label selector syntax: found '=', expected: !, "
            "identifier, or 'end of string'",
        ),
        (
            "a=b,",
            "failed to parse label selector: invalid label selector syntax: found '', "
            "expected: identifier after ','",
        ),
        (
            "region contains x",
            'failed to parse label selector: failed to resolve operation for key "region": '
            "unsupported operator "
            '"contains" for label selector',
        ),
        (
            "region>1",
            'failed to parse label selector: failed to resolve operation for key "region": '
            "unsupported operator "
            '"gt" for label selector',
        ),
    ],
)
def test_label_selector_errors(
    simulator_client: httpx.Client, simulator: SimulatorServer, selector: str, message: str
) -> None:
    assert error(simulator_client, simulator, labelSelector=selector) == message


def test_quoted_label_selector_is_rejected(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    assert error(simulator_client, simulator, labelSelector="'region=x'").startswith(
        "failed to parse label selector: "
    )


def test_label_value_must_be_a_label_value(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    message = error(simulator_client, simulator, labelSelector="region=a/b")
    assert message.startswith(
        'failed to parse label selector: invalid label selector syntax: values[0]: Invalid value: "a/b"'
    )


def test_events_take_no_label_selector_fields(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    message = error(
        simulator_client, simulator, "/api/v1/events", fieldSelector="status.summary.status=Online"
    )
    assert message.startswith(
        'unknown or unsupported selector: unable to resolve selector name "status.summary.status"'
    )


def test_tuple_keys_are_no_field_name(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    message = error(simulator_client, simulator, fieldSelector="(metadata.name,metadata.owner) in ((a,b))")
    assert message.startswith(
        'failed to parse field selector: invalid field selector syntax: key: Invalid value: "(metadata.name,'
    )


@pytest.mark.parametrize("value", ["1.5", "1e3", "soon"])
def test_comparisons_take_integers_times_or_uuids_only(
    simulator_client: httpx.Client, simulator: SimulatorServer, value: str
) -> None:
    message = error(simulator_client, simulator, fieldSelector=f"metadata.creationTimestamp>{value}")
    assert message == (
        "failed to parse field selector: invalid field selector syntax: "
        f"values[0]: Invalid value: \"{value}\": for 'Gt', 'Lt', 'Gte', and 'Lte' operators, the value must "
        "be a number or a valid time in RFC3339 format"
    )
