"""The fast JSON paths (msgspec reads API bodies, orjson writes answers) match the json module."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from answers import _encode, _Encoded, dumps
from api_responses import Response
from simulator.state import DEFAULT_ORG, SimulatorState


def _reference(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def test_answers_are_byte_for_byte_what_the_json_module_writes() -> None:
    state = SimulatorState(devices=40, full_devices=True)
    devices = [state.render(DEFAULT_ORG, "devices", r) for r in state.org(DEFAULT_ORG).devices]
    answer = {"kind": "Device", "items": devices, "note": 'é ✓ \u2028 \x00 "quoted" \\ back'}
    assert dumps(answer) == _reference(answer)


@pytest.mark.parametrize(
    "value",
    [
        {"big": 2**70},
        {"surrogate": "\udc80"},
        {"when": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)},
        {1: "integer key"},
    ],
    ids=["integer over 64 bits", "lone surrogate", "datetime", "integer key"],
)
def test_what_orjson_refuses_or_writes_differently_is_still_written_as_before(value: Any) -> None:
    assert dumps(value) == _reference(value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"items":[{"a":1}],"metadata":{}}', {"items": [{"a": 1}], "metadata": {}}),
        (b'{"x": NaN}', {"x": float("nan")}),
        (b'{"s":"\\udc80"}', {"s": "\udc80"}),
    ],
    ids=["plain", "NaN", "lone surrogate"],
)
def test_api_bodies_that_the_json_module_reads_are_read(body: bytes, expected: dict[str, Any]) -> None:
    response = Response.read(200, {}, body)
    assert response.is_json
    assert json.dumps(response.data) == json.dumps(expected)


def test_a_body_that_is_not_json_is_kept_as_text() -> None:
    response = Response.read(502, {}, b"<html>Bad Gateway</html>")
    assert not response.is_json
    assert response.body == b"<html>Bad Gateway</html>"


def test_a_list_answer_is_the_items_encoded_once_inside_the_envelope() -> None:
    items = [{"metadata": {"name": f"d{i}"}, "status": {"n": 2**70 if i == 1 else i}} for i in range(3)]
    answer = {"kind": "Device", "data": [_Encoded(_encode(item)) for item in items], "returned": 3}
    assert json.loads(dumps(answer)) == {"kind": "Device", "data": items, "returned": 3}
    assert dumps({"data": [_Encoded(_encode(items[0]))]}) == _reference({"data": [items[0]]})
