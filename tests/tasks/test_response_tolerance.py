"""A successful answer never raises because of its shape (issue #10, class 5).

For every action whose Swagger response is JSON, answers are generated from the schema with
hypothesis and then perturbed the ways real Iterable answers differ from its own document: any
field missing (required ones too), unknown fields added, nested objects replaced by ``{}`` or
``null``, timestamps as epoch milliseconds or as ISO / Iterable date strings, numbers as
strings, enum values Iterable has since added. Each must read into the task's result type.

Most examples run through the tasks' read path (``parse_body`` then ``read_result``, what a task
does after a 200); one test runs every such task for real, through Prefect, against a loopback
server that answers 200 with a perturbed body.
"""

from __future__ import annotations

import csv
import datetime as dt
import inspect
import io
import itertools
import json
import os
import re
import secrets
import string
import types
import typing
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prefect import flow
from pydantic import BaseModel, StringConstraints

from prefect_iterable import tasks
from prefect_iterable.api._requests import parse_body
from prefect_iterable.api.catalog import Action, ResponseKind, get_action
from prefect_iterable.api.models import (
    CampaignsResponse,
    EmbeddedTemplate,
    ExperimentMetrics,
    InAppMessagesResponse,
    IterableModel,
    PushTemplate,
    read_result,
)
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.tasks._core import _LOCAL_PARAMS, _dump
from tests._answers import AnswerServer

SWAGGER = json.loads(
    (Path(__file__).parents[1] / "reference" / "iterable-openapi.json").read_text()
)
DEFINITIONS = SWAGGER["definitions"]
_SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
EXAMPLES = max(2, int(8 * _SCALE))
ALL_PERMISSIONS = ["read", "write", "send", "delete"]


def response_schema(action: Action) -> dict[str, Any] | None:
    """The Swagger schema of the action's success answer, when it is JSON."""
    if action.response not in (ResponseKind.JSON, ResponseKind.BULK):
        return None
    operation = SWAGGER["paths"][action.path][action.method.lower()]
    for status in ("200", "201", "202"):
        schema = operation.get("responses", {}).get(status, {}).get("schema")
        if schema:
            return schema
    return None


JSON_ACTIONS = sorted(a.id for a in map(get_action, tasks.ACTIONS) if response_schema(a))


def result_type(task: Any) -> Any:
    return typing.get_type_hints(task.fn, include_extras=True).get("return", Any)


# ---- answers from the schema, perturbed ------------------------------------------------------

_UNKNOWN_KEY = st.builds(lambda s: f"xUnknown{s}", st.text(string.ascii_letters, max_size=6))
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
_instants = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)
)
#: One instant as Iterable and its clients write it: epoch ms, ISO 8601, Iterable's own format.
_timestamps = st.one_of(
    _instants.map(lambda t: int(t.timestamp() * 1000)),
    _instants.map(lambda t: t.isoformat()),
    _instants.map(lambda t: t.strftime("%Y-%m-%d %H:%M:%S +00:00")),
    _instants.map(lambda t: t.strftime("%Y-%m-%d %H:%M:%S")),
)


def _is_time(name: str, schema: dict[str, Any]) -> bool:
    described = str(schema.get("description", "")).lower()
    return (
        schema.get("format") == "date-time"
        or name.endswith(("At", "Date", "Time", "DateTime"))
        or "epoch" in described
        or "timestamp" in described
    )


def answers(schema: dict[str, Any], name: str = "", depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of ``schema``, each field possibly missing, mistyped, emptied or joined by others."""
    if "$ref" in schema:
        schema = DEFINITIONS[schema["$ref"].rsplit("/", 1)[-1]]
    kind = schema.get("type")
    if depth > 4:
        return st.just({}) if kind == "object" else st.none()
    if kind == "object" or "properties" in schema:
        fields = {
            key: answers(sub, key, depth + 1) for key, sub in schema.get("properties", {}).items()
        }
        # Every field may be left out, required or not; unknown ones may be added.
        objects = st.builds(
            lambda known, unknown: {**unknown, **known},
            st.fixed_dictionaries({}, optional=fields),
            st.dictionaries(_UNKNOWN_KEY, _json, max_size=2),
        )
        if not fields and schema.get("additionalProperties"):
            objects = st.dictionaries(st.text(max_size=8), _json, max_size=3)
        return objects if depth == 0 else st.one_of(objects, st.just({}), st.none())
    if kind == "array":
        return st.lists(answers(schema.get("items", {}), name, depth + 1), max_size=3)
    if _is_time(name, schema):
        return _timestamps
    if "enum" in schema:
        return st.one_of(st.sampled_from(schema["enum"]), st.text(max_size=8))
    if kind in ("integer", "number"):
        numbers = st.integers(-(2**40), 2**40) | (
            st.floats(allow_nan=False, allow_infinity=False) if kind == "number" else st.nothing()
        )
        return st.one_of(numbers, numbers.map(str))
    if kind == "boolean":
        return st.booleans()
    if kind == "string":
        return st.text(max_size=12)
    return _json


def assert_read(action: Action, body: Any, value: Any) -> None:
    """``value`` is what a task returned for ``body``: its declared model, unknown fields kept."""
    expected = result_type(tasks.ACTIONS[action.id])
    if isinstance(expected, type) and issubclass(expected, BaseModel):
        assert isinstance(value, expected), f"{action.id}: got {type(value).__name__}"
        reshaped = any(
            d.info.mode == "before"
            for d in expected.__pydantic_decorators__.model_validators.values()
        )
        if isinstance(value, IterableModel) and isinstance(body, dict) and not reshaped:
            for key in body:
                if key.startswith("xUnknown"):
                    assert (value.model_extra or {}).get(key) == body[key], key


# ---- the read path, many examples per action -------------------------------------------------


@pytest.mark.parametrize("action_id", JSON_ACTIONS)
def test_every_answer_shape_reads(action_id: str) -> None:
    action = get_action(action_id)
    expected = result_type(tasks.ACTIONS[action_id])

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(body=answers(response_schema(action) or {}))
    def check(body: Any) -> None:
        answer = parse_body(action, json.dumps(body))
        value, notes = read_result(expected, answer)
        assert all(isinstance(note, str) for note in notes)
        assert_read(action, body, value)

    check()


def test_the_issues_examples_read_and_name_what_did_not_fit() -> None:
    # Older campaigns have no type or messageMedium.
    page, notes = read_result(
        CampaignsResponse,
        {"campaigns": [{"id": 7, "name": "Welcome", "campaignState": "Finished", "x": 1}]},
    )
    assert page.campaigns[0].id == 7
    assert page.campaigns[0].type is None and page.campaigns[0].message_medium is None
    assert page.campaigns[0].model_extra == {"x": 1}
    assert notes == []  # optional fields, not surprises
    # A trigger whose type is an object: kept as received, and named.
    body = {"inAppMessages": [{"messageId": "m1", "trigger": {"type": {"id": "event"}}}]}
    messages, notes = read_result(InAppMessagesResponse, body)
    assert messages.in_app_messages[0].trigger.type == {"id": "event"}
    assert any("InAppTrigger.type" in note for note in notes)
    # Sub-models that are request objects elsewhere keep keys Iterable adds.
    push, notes = read_result(
        PushTemplate,
        {"templateId": 3, "buttons": [{"identifier": "b", "newKey": 1}], "deeplink": {"web": "u"}},
    )
    assert push.buttons[0].model_extra == {"newKey": 1}
    assert push.deeplink.model_extra == {"web": "u"}
    embedded, _ = read_result(
        EmbeddedTemplate,
        {"templateId": 3, "elements": {"buttons": [{"id": str(i)} for i in range(3)], "z": 0}},
    )
    assert len(embedded.elements.buttons) == 3 and embedded.elements.model_extra == {"z": 0}


def test_a_note_names_the_field_never_the_value() -> None:
    secret = "person@example.com"
    _, notes = read_result(CampaignsResponse, {"campaigns": [{"id": secret, "name": ["x"]}]})
    assert any("Campaign.id" in note for note in notes)
    assert any("Campaign.name" in note for note in notes)
    assert not any(secret in note for note in notes)


# ---- every task for real, through Prefect ----------------------------------------------------


def _canned(annotation: Any, name: str) -> Any:
    """A simple valid value of ``annotation``: enough to get a task past its input checks."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        for meta in args[1:]:
            if isinstance(meta, StringConstraints) and meta.pattern:
                return _matching(meta.pattern)
        return _canned(args[0], name)
    if origin in (typing.Union, types.UnionType):
        return _canned(next(a for a in args if a is not type(None)), name)
    if origin is typing.Literal:
        return args[0]
    if origin in (list, set, frozenset, tuple):
        return [_canned(args[0], name)] if args else []
    if origin is dict:
        return {"k": _canned(args[1], "k")} if args else {}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {
            field: _canned(info.annotation, field)
            for field, info in annotation.model_fields.items()
            if info.is_required() or field == "email"
        }
    if annotation is bool:
        return True
    if annotation in (int, float):
        return annotation(1)
    if annotation is dt.datetime:
        return dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    if annotation is dt.date:
        return dt.date(2026, 1, 5)
    return "a@example.com" if "email" in name.lower() else "x1"


def _matching(pattern: str) -> str:
    """A plain value matching ``pattern``: a usual one when it fits, else printable ASCII."""
    for usual in ("x1", "abc-1", "1234", "+14155550123", "a@example.com"):
        if re.fullmatch(pattern, usual):
            return usual
    printable = st.characters(min_codepoint=33, max_codepoint=126)
    with warnings.catch_warnings():  # .example(): one value, outside a test's draws
        warnings.simplefilter("ignore")
        return st.from_regex(pattern, fullmatch=True, alphabet=printable).example()


def valid_arguments(task: Any) -> dict[str, Any]:
    """Required parameters, plus the fewest optional ones that make the input valid."""
    hints = typing.get_type_hints(task.fn, include_extras=True)
    parameters = inspect.signature(task.fn).parameters
    required = {
        name: _canned(hints[name], name)
        for name, p in parameters.items()
        if name not in _LOCAL_PARAMS and p.default is inspect.Parameter.empty
    }
    optional = [n for n, p in parameters.items() if n not in _LOCAL_PARAMS and n not in required]
    tries = itertools.chain.from_iterable(itertools.combinations(optional, n) for n in range(3))
    for extras in tries:
        kwargs = required | {name: _canned(hints[name], name) for name in extras}
        try:
            _dump(task.input_model.model_validate(kwargs), task.action)
        except Exception:
            continue
        return kwargs
    raise AssertionError(f"{task.action.id}: no simple valid input found")


@pytest.fixture(scope="module")
def answer_server() -> Iterator[AnswerServer]:
    with AnswerServer() as server:
        yield server


@pytest.fixture
def answering(answer_server: AnswerServer) -> IterableCredentials:
    return IterableCredentials(
        api_key="itbl-test-" + secrets.token_hex(16),
        base_url=answer_server.url,
        permissions=ALL_PERMISSIONS,
        timeout=5.0,
    )


def test_every_task_returns_a_perturbed_answer(
    prefect_server: None, answer_server: AnswerServer, answering: IterableCredentials
) -> None:
    calls = [
        (get_action(a), tasks.ACTIONS[a], valid_arguments(tasks.ACTIONS[a])) for a in JSON_ACTIONS
    ]

    @settings(max_examples=1, deadline=None, database=None)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        bodies = [
            data.draw(answers(response_schema(action) or {}), action.id) for action, *_ in calls
        ]

        @flow(name="tolerance-every-task")
        def every_task() -> list[Any]:
            results = []
            for (_, task, kwargs), body in zip(calls, bodies, strict=True):
                answer_server.answer(json.dumps(body))
                results.append(task(**kwargs, credentials=answering))
            return results

        results = every_task()
        for (action, _, _), body, value in zip(calls, bodies, results, strict=True):
            assert_read(action, body, value)

    check()


def test_experiment_metrics_keep_columns_the_model_does_not_know(
    run_in_flow: Any, answer_server: AnswerServer, answering: IterableCredentials
) -> None:
    rows = [
        ["experimentId", "campaignId", "variantName", "Total Sends", "New Column", "Emoji Rate"],
        ["11", "22", "B", "1200", "text, with a comma", "0.5"],
    ]
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    answer_server.answer(text.getvalue(), content_type="text/csv")
    metrics = run_in_flow(
        tasks.ACTIONS["ITERABLE_GET_EXPERIMENT_METRICS"],
        **valid_arguments(tasks.ACTIONS["ITERABLE_GET_EXPERIMENT_METRICS"]),
        credentials=answering,
    )
    assert isinstance(metrics[0], ExperimentMetrics)
    assert (metrics[0].experiment_id, metrics[0].variant_name) == (11, "B")
    assert metrics[0].metrics == {
        "Total Sends": 1200,
        "New Column": "text, with a comma",
        "Emoji Rate": 0.5,
    }
    assert metrics[0].get("New Column") == 0  # not a counter


def test_the_task_log_names_a_field_kept_as_received(
    run_in_flow: Any,
    answer_server: AnswerServer,
    answering: IterableCredentials,
    caplog: pytest.LogCaptureFixture,
) -> None:
    task = tasks.ACTIONS["ITERABLE_GET_IN_APP_MESSAGES"]
    body = {"inAppMessages": [{"messageId": "m1", "trigger": {"type": {"id": "event"}}}]}
    answer_server.answer(json.dumps(body))
    with caplog.at_level("WARNING"):
        messages = run_in_flow(task, **valid_arguments(task), credentials=answering)
    assert messages.in_app_messages[0].trigger.type == {"id": "event"}
    warnings_logged = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("InAppTrigger.type" in message for message in warnings_logged), warnings_logged


def test_list_campaigns_reads_older_campaigns_without_type_or_medium(
    run_in_flow: Any, answer_server: AnswerServer, answering: IterableCredentials
) -> None:
    older = {
        "id": 41,
        "name": "Spring",
        "campaignState": "Finished",
        "createdAt": 1,
        "updatedAt": 2,
    }
    newer = {**older, "id": 42, "type": "Blast", "messageMedium": "Email", "newField": [1]}
    answer_server.answer(json.dumps({"campaigns": [older, newer], "totalCampaignsCount": 2}))
    task = tasks.ACTIONS["ITERABLE_LIST_CAMPAIGNS"]
    page = run_in_flow(task, **valid_arguments(task), credentials=answering)
    assert [c.id for c in page.campaigns] == [41, 42]
    assert (page.campaigns[0].type, page.campaigns[0].message_medium) == (None, None)
    assert page.campaigns[1].new_field == [1]
