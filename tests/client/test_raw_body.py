"""Pre-encoded body values (``RawJson``): spliced into the body as they are, checked cheaply."""

from __future__ import annotations

import json

import httpx
import pytest

from prefect_iterable.api import Client, NoLimiter
from prefect_iterable.api._requests import RawJson, build_request
from prefect_iterable.api.catalog import Effect, get_action
from prefect_iterable.api.errors import InputValidationError
from prefect_iterable.sandbox.data import users

BULK_USERS = "ITERABLE_BULK_UPDATE_USERS"
BULK_EVENTS = "ITERABLE_TRACK_EVENTS_BULK"
ARRAY = b'[{"email":"a@example.com","dataFields":{"n":1}},{"userId":"u-2"}]'


def test_the_bytes_are_spliced_into_the_body_unchanged():
    wire = build_request(
        get_action(BULK_USERS), {"users": RawJson(ARRAY), "create_new_fields": False}
    )
    assert wire.content() == b'{"users":' + ARRAY + b',"createNewFields":false}'
    assert json.loads(wire.content()) == {
        "users": json.loads(ARRAY),
        "createNewFields": False,
    }


def test_pieces_go_out_as_they_are_without_being_joined():
    pieces = [b"[", b'{"email":"a@example.com"}', b',{"userId":"u-2"}', b"]"]
    wire = build_request(get_action(BULK_USERS), {"users": RawJson(pieces)})
    parts = wire.content_parts()
    assert parts is not None
    assert parts[1:-1] == pieces and all(a is b for a, b in zip(parts[1:-1], pieces, strict=True))
    assert json.loads(wire.content()) == {"users": [{"email": "a@example.com"}, {"userId": "u-2"}]}


def test_other_values_are_encoded_as_before():
    values = {"users": [{"email": "a@example.com", "dataFields": {"x": None}}]}
    wire = build_request(get_action(BULK_USERS), values)
    assert wire.content_parts() == [wire.content()]
    assert (
        wire.content()
        == json.dumps(
            {"users": values["users"]}, separators=(",", ":"), ensure_ascii=False
        ).encode()
    )


@pytest.mark.parametrize(
    ("action", "values", "message"),
    [
        (BULK_USERS, {"users": RawJson(b'{"email":"a@example.com"}')}, "not a JSON object[]"),
        (BULK_USERS, {"users": RawJson(b"")}, "not a JSON object[]"),
        (BULK_USERS, {"users": RawJson(b"[1]"), "create_new_fields": RawJson(b"[]")}, "cannot"),
        ("ITERABLE_GET_CAMPAIGN_METRICS", {"campaign_id": RawJson(b"[1,2]")}, "body"),
        (BULK_USERS, {"people": RawJson(ARRAY)}, "people"),
    ],
    ids=["object-for-array", "empty", "for-a-boolean", "query-parameter", "unknown-name"],
)
def test_a_raw_value_that_cannot_stand_for_the_parameter_is_refused(action, values, message):
    with pytest.raises(InputValidationError) as refused:
        build_request(get_action(action), values)
    assert message in str(refused.value)


def test_a_raw_value_must_be_utf8_bytes():
    with pytest.raises(ValueError, match="not valid UTF-8"):
        RawJson(b'[{"email":"caf\xe9@example.com"}]')
    with pytest.raises(ValueError, match="not valid UTF-8"):
        RawJson([b'[{"n":"\xc3', b'"}'])  # a character cut between pieces, never completed
    assert RawJson([b'[{"n":"\xc3', b'\xa9"}]']).data == '[{"n":"é"}]'.encode()
    with pytest.raises(TypeError):
        RawJson("[]")  # type: ignore[arg-type]


def test_the_repr_never_shows_the_data():
    assert repr(RawJson(ARRAY)) == f"RawJson(<{len(ARRAY)} bytes>)"


def test_events_that_all_carry_an_id_may_be_resent():
    events = RawJson(b'[{"email":"a@example.com","eventName":"e","id":"1"}]')
    with_ids = RawJson(events.data, every_item_has={"id"})
    assert Client("k")._prepare(BULK_EVENTS, {"events": events}, {})[1] is Effect.SEND
    assert Client("k")._prepare(BULK_EVENTS, {"events": with_ids}, {})[1] is Effect.WRITE


def test_the_client_sends_the_body_whole_with_its_length():
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return httpx.Response(200, json={"successCount": 2, "failCount": 0})

    with Client(
        "key",
        base_url="http://iterable.test",
        transport=httpx.MockTransport(answer),
        limiter=NoLimiter(),
    ) as client:
        result = client.call(BULK_USERS, users=RawJson([b"[", ARRAY[1:-1], b"]"]))

    assert result.success_count == 2
    (request,) = seen
    assert request.content == b'{"users":' + ARRAY + b"}"
    assert request.headers["content-length"] == str(len(request.content))
    assert "transfer-encoding" not in request.headers
    assert request.headers["content-type"] == "application/json"


def test_bulk_update_with_a_raw_body_against_the_sandbox(sandbox, project, client):
    result = client.call(BULK_USERS, users=RawJson(ARRAY), create_new_fields=True)
    assert (result.success_count, result.fail_count) == (1, 1)  # u-2 is unknown: not created
    assert users(project).find(email="a@example.com").data_fields["n"] == 1


@pytest.mark.parametrize("body", ["Accepted", "<html>ok</html>", "not { json"])
def test_a_success_with_a_body_that_is_not_json_keeps_the_text(body: str) -> None:
    from tests._answers import AnswerServer

    with AnswerServer() as server, Client("k", base_url=server.url, limiter=NoLimiter()) as client:
        server.answer(body, content_type="text/plain")
        answer = client.call("ITERABLE_CREATE_LIST", name="Plain text answer")
    assert answer == {"msg": body}
    assert server.paths == ["/api/lists"]
