"""A list page read with only a view's paths gives exactly the items that reading it whole and projecting
gives, for every kind and view, for odd shapes, and for bodies only the json module reads."""

from __future__ import annotations

import json
from typing import Any

import pytest

from answers import _view_paths
from api_responses import Response, parse_json
from page_decoding import page_decoder
from resource_queries import KINDS, ResourceKind
from simulator.state import DEFAULT_ORG, SimulatorState
from views import project


def _page(items: list[Any]) -> bytes:
    body = {
        "apiVersion": "v1beta1",
        "kind": "List",
        "metadata": {"continue": "token-1", "remainingItemCount": 7},
        "items": items,
        "summary": {"total": len(items)},
    }
    return json.dumps(body).encode()


def _objects(kind: ResourceKind) -> list[dict[str, Any]]:
    state = SimulatorState(devices=30, full_devices=True)
    plural = kind.path.rsplit("/", 1)[-1]
    collection = state.org(DEFAULT_ORG).collections[plural]
    return [state.render(DEFAULT_ORG, plural, record) for record in collection.filtered(None)]


def _shown(body: bytes, paths: tuple[str, ...], read: Any) -> list[Any]:
    return [project(item, paths) for item in read(body)["items"] if isinstance(item, dict)]


def _cut(paths: tuple[str, ...]) -> Any:
    """How a list page is read for a view: a 200 answer through the view's decoder, as send_blocking does."""
    return lambda body: Response.read(200, {}, body, page_decoder(paths)).data


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_every_kinds_view_reads_as_the_whole_page_projected(kind: ResourceKind) -> None:
    objects = _objects(kind)
    assert objects, f"the simulator has no {kind.name}"
    body = _page(objects)
    paths = _view_paths(kind, None, False)
    assert paths is not None
    decode = page_decoder(paths)
    assert decode is not None
    cut = decode(body)
    assert _shown(body, paths, _cut(paths)) == _shown(body, paths, parse_json)
    assert cut["metadata"] == {"continue": "token-1", "remainingItemCount": 7}
    assert cut["summary"] == {"total": len(objects)}
    assert len(json.dumps(cut)) < len(body), "the cut page keeps less than the whole one"


@pytest.mark.parametrize(
    "fields",
    [
        ("status.conditions.type", "status.conditions.status"),
        ("spec.applications.name", "metadata.labels"),
        ("status.applications", "metadata"),
        ("no.such.path",),
        ("metadata.labels.région", "metadata.labels.env"),
    ],
)
def test_chosen_fields_read_as_the_whole_page_projected(fields: tuple[str, ...]) -> None:
    objects = _objects(KINDS[0])
    objects[0]["metadata"]["labels"]["région"] = "île-de-france"
    body = _page(objects)
    paths = _view_paths(KINDS[0], fields, False)
    assert paths is not None
    shown = _shown(body, paths, _cut(paths))
    assert shown == _shown(body, paths, parse_json)
    if "région" in fields[0]:
        assert shown[0]["metadata"]["labels"]["région"] == "île-de-france"


def test_odd_shapes_read_as_the_whole_page_projected() -> None:
    paths = ("metadata.name", "status.conditions.type", "status.summary")
    items = [
        {"metadata": None, "status": {"conditions": [{"type": "A", "x": 1}, 5, [1, {"type": 2}], None, {}]}},
        {"metadata": "a string", "status": [{"conditions": {"type": "B", "y": 2}}, 3, "s"]},
        {"status": {"conditions": "not a list", "summary": {"deep": [1, {"a": None}]}}},
        {"metadata": {"name": 2**70, "labels": {"x": "y"}}, "status": {}},
        {"metadata": {"name": "é ✓ \u2028 \x00"}, "status": {"summary": 1.5}},
        7,
        None,
        [],
        "text",
    ]
    body = _page(items)
    assert _shown(body, paths, _cut(paths)) == _shown(body, paths, parse_json)


@pytest.mark.parametrize(
    "body",
    [
        b'{"items":[{"metadata":{"name":"a","x":NaN}}]}',
        b'{"items":[{"metadata":{"name":"\\udc80"}}]}',
        b'{"items":[{"metadata":{"name":"a"},"status":{"summary":1e400}}]}',
        b'[{"metadata":{"name":"a"}}]',
        b"null",
    ],
    ids=["NaN", "lone surrogate", "number out of range", "an array", "null"],
)
def test_bodies_only_the_json_module_reads_are_read_in_full(body: bytes) -> None:
    paths = ("metadata.name", "status.summary")
    decode = page_decoder(paths)
    assert decode is not None
    with pytest.raises(ValueError, match=r"malformed|out of range|Expected `object`"):
        decode(body)
    response = Response.read(200, {}, body, page_decoder(paths))
    assert response.is_json
    assert json.dumps(response.data) == json.dumps(json.loads(body))


def test_a_failed_answer_is_never_cut_to_a_view() -> None:
    status = {"kind": "Status", "status": "Failure", "message": "bad selector", "reason": "BadRequest"}
    response = Response.read(400, {}, json.dumps(status).encode(), page_decoder(("metadata.name",)))
    assert response.data == status
