"""Property-based tests over the inputs of every task and every catalog action.

The contract fuzzed here, for each of the 116 tasks (``tasks.ACTIONS``):

* A call whose keyword arguments do not bind to the signature (a required parameter left out, an
  unknown keyword) raises ``TypeError`` from argument binding, naming the parameter: the same
  error a plain Python call gives, raised before validation, and Prefect's own task call does the
  same binding. It is deliberately not an ``InputValidationError``: the call is malformed, not
  its values.
* A call that binds either passes validation or raises ``InputValidationError`` whose
  ``errors`` name parameters of the signature (or, for a cross-field rule such as ``one_of``,
  whose message names them). Never any other exception, and never a request.
* An input the task accepts serialises, passes the client's own catalog-level check
  (``build_request``: task-valid implies catalog-valid) and encodes as an HTTP request.

and for the client layer alone, ``build_request(action, values)`` returns a request or raises
``InputValidationError`` for arbitrary values.

How the send is intercepted: the offline tests call ``task.fn`` (the wrapper Prefect runs) with a
credentials block that points at the sandbox but grants no permission. The wrapper validates,
serialises, then checks permissions, so an accepted input ends in ``MissingPermission`` before
any request; the sandbox log proves nothing was sent. A smaller live test grants every permission
and lets accepted inputs reach the sandbox (which may answer 4xx for state: fine), checking that
rejected inputs left no entry in the log and nothing but this library's errors escapes.

``prefect_iterable.tasks._core.iterable_task`` keeps the input model only in the wrapper's closure and does not
keep ``one_of``/``need_one`` at all; ``input_model`` below recovers them (from the closure and
from the model's ``check_one_of`` validator) and rebuilds the model with ``_input_model``.
"""

from __future__ import annotations

import inspect
import json
import os
import secrets
import typing
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from prefect.logging import disable_run_logger
from pydantic import BaseModel, ValidationError

from prefect_iterable import tasks
from prefect_iterable.api._requests import WireRequest, build_request
from prefect_iterable.api.catalog import ACTIONS as CATALOG
from prefect_iterable.api.catalog import Action, ResponseKind
from prefect_iterable.api.errors import InputValidationError, IterableError
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.blocks.credentials import MissingPermission
from prefect_iterable.sandbox import SandboxServer
from prefect_iterable.tasks._core import _dump, _input_model
from tests._strategies import LOCAL_PARAMS, Call, arguments, json_values, junk

ACTION_IDS = sorted(tasks.ACTIONS)
STREAMING = (ResponseKind.CSV_STREAM, ResponseKind.NDJSON_STREAM)
ALL_PERMISSIONS = ["read", "write", "send", "delete"]

# 116 tasks x (offline + live) + 116 catalog actions must stay well under ~90 s on 2 cores.
# FUZZ_SCALE=10 multiplies them for a longer local hunt.
_SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
OFFLINE_EXAMPLES = max(1, int(40 * _SCALE))
LIVE_EXAMPLES = max(1, int(4 * _SCALE))
CATALOG_EXAMPLES = max(1, int(30 * _SCALE))

_FUZZ = settings(
    deadline=None,
    database=None,
    # No "explain" phase: it reruns a failure many times to comment on it, which costs minutes.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


# -- what the decorator keeps ---------------------------------------------------------------------


def stub(task: Any) -> Any:
    return task.fn.__wrapped__


def wrapper_model(task: Any) -> type[BaseModel]:
    """The input model ``iterable_task`` built (it exposes it on the task)."""
    return task.input_model


def input_model(task: Any) -> type[BaseModel]:
    """The task's input model rebuilt from its stub with the options the decorator was given."""
    return _input_model(stub(task), task.action, task.one_of, task.need_one)


def signature_params(task: Any) -> list[str]:
    return [n for n in inspect.signature(stub(task)).parameters if n not in LOCAL_PARAMS]


def assert_names_parameters(exc: InputValidationError, task: Any) -> None:
    """Each error names a signature parameter; a cross-field error names one in its message."""
    params = signature_params(task)
    assert exc.errors, exc
    for where, problem in exc.errors:
        head = where.split(".", 1)[0]
        if head == "input":  # a model validator (one_of, exactly-one rules): loc is empty
            assert any(p in problem for p in params), (where, problem, params)
        else:
            assert head in params, (where, problem, params)
        assert head in str(exc) or problem in str(exc)


def _reject_constant(name: str) -> Any:
    raise AssertionError(f"the body carries {name}, which is not JSON")


def assert_sendable(wire: WireRequest, http: httpx.Client) -> None:
    """The request encodes: a UTF-8 path and query, and a body of strict (RFC 8259) JSON."""
    content = wire.content()
    if content is not None:
        json.loads(content, parse_constant=_reject_constant)
    http.build_request(wire.method, wire.path, params=wire.query, content=content)


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_sandbox(sandbox_server: SandboxServer) -> Iterator[SandboxServer]:
    """The session sandbox with its rate limits off, so fuzzing never waits or sees 429s."""
    box = sandbox_server.sandbox
    box.state.faults.clear()
    was = box.limits_enabled
    box.limits_enabled = False
    yield sandbox_server
    box.limits_enabled = was


def _project_credentials(
    server: SandboxServer, permissions: list[str]
) -> tuple[IterableCredentials, int]:
    key = "itbl-fuzz-" + secrets.token_hex(16)
    project = server.sandbox.add_project(key)
    creds = IterableCredentials(
        api_key=key,
        base_url=server.url,
        permissions=permissions,
        timeout=5.0,
        rate_limit_scale=1000.0,
    )
    return creds, project.id


@pytest.fixture(scope="module")
def offline(live_sandbox: SandboxServer) -> Iterator[tuple[IterableCredentials, int]]:
    """Credentials that grant nothing: an accepted input stops at the permission check."""
    creds, project_id = _project_credentials(live_sandbox, [])
    yield creds, project_id
    assert live_sandbox.sandbox.state.requests(project_id=project_id) == []


@pytest.fixture(scope="module")
def live(live_sandbox: SandboxServer) -> tuple[IterableCredentials, int]:
    return _project_credentials(live_sandbox, ALL_PERMISSIONS)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """Only used to build (never send) the HTTP request of an accepted input."""
    with httpx.Client(base_url="http://127.0.0.1:9") as client:
        yield client


# -- the decorator's model --------------------------------------------------------------------------


@pytest.mark.parametrize("action_id", ACTION_IDS)
def test_rebuilt_model_matches_the_decorators(action_id: str) -> None:
    task = tasks.ACTIONS[action_id]
    built, rebuilt = wrapper_model(task), input_model(task)
    assert list(built.model_fields) == list(rebuilt.model_fields) == signature_params(task)
    checks = [set(m.__pydantic_decorators__.model_validators) for m in (built, rebuilt)]
    assert checks[0] == checks[1] == ({"check_one_of"} if task.one_of else set())


# -- 1. every task, offline -------------------------------------------------------------------------


def _call_task(task: Any, call: Call, creds: IterableCredentials, tmp: str) -> None:
    extra: dict[str, Any] = {"destination": tmp} if task.action.response in STREAMING else {}
    with disable_run_logger():
        task.fn(**call.kwargs, **extra, credentials=creds)


def _check_accepted(task: Any, call: Call, http: httpx.Client) -> None:
    """An accepted input serialises, passes the catalog check and encodes as a request."""
    model = input_model(task)
    values = model.model_validate(call.kwargs).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    try:
        wire = build_request(task.action, values)
    except InputValidationError as exc:
        pytest.fail(f"the task accepts what the client refuses: {call.kwargs!r} -> {exc}")
    assert_sendable(wire, http)


@pytest.mark.parametrize("action_id", ACTION_IDS)
def test_task_inputs_validate_or_fail_by_name(
    action_id: str, offline: tuple[IterableCredentials, int], http: httpx.Client, tmp_path: Any
) -> None:
    task = tasks.ACTIONS[action_id]
    creds, _ = offline
    destination = str(tmp_path / "out")

    @settings(_FUZZ, max_examples=OFFLINE_EXAMPLES)
    @given(call=arguments(stub(task)))
    def check(call: Call) -> None:
        try:
            _call_task(task, call, creds, destination)
        except MissingPermission:
            assert call.binds, f"{call.missing or call.unknown} did not stop the call"
            _check_accepted(task, call, http)
        except InputValidationError as exc:
            assert call.binds, f"{call.missing or call.unknown} should fail binding: {exc}"
            assert_names_parameters(exc, task)
        except TypeError as exc:
            assert not call.binds, f"TypeError for arguments that bind: {exc!r}"
            assert any(repr(n) in str(exc) for n in call.missing + call.unknown), exc
        else:
            pytest.fail("the call went past a permission check that grants nothing")

    check()


# -- 1b. every task, against the sandbox ------------------------------------------------------------


@pytest.mark.parametrize("action_id", ACTION_IDS)
def test_task_inputs_against_the_sandbox(
    action_id: str,
    live: tuple[IterableCredentials, int],
    live_sandbox: SandboxServer,
    tmp_path: Any,
) -> None:
    task = tasks.ACTIONS[action_id]
    creds, project_id = live
    state = live_sandbox.sandbox.state
    model = input_model(task)
    destination = str(tmp_path / "out")

    @settings(_FUZZ, max_examples=LIVE_EXAMPLES)
    @given(call=arguments(stub(task), junk_rate=0.15))
    def check(call: Call) -> None:
        accepted = call.binds and _validates(model, call.kwargs, task.action)
        before = len(state.requests(project_id=project_id))
        try:
            _call_task(task, call, creds, destination)
        except (InputValidationError, TypeError) as exc:
            assert not accepted, f"accepted by the task model, then refused: {exc!r}"
            assert len(state.requests(project_id=project_id)) == before, "a request was sent"
        except IterableError:  # the sandbox's answer for bad state (404, 400…): fine
            assert accepted
        else:
            assert accepted

    check()


def _validates(model: type[BaseModel], kwargs: dict[str, Any], action: Any) -> bool:
    """Whether the task's own checks pass: its model, then the JSON-safety of the values."""
    try:
        _dump(model.model_validate(kwargs), action)
    except (ValidationError, InputValidationError):
        return False
    return True


# -- 2. the client layer alone ----------------------------------------------------------------------

_CATALOG_TYPES: dict[str, st.SearchStrategy[Any]] = {
    "string": st.text(max_size=20),
    "integer": st.integers(),
    "number": st.one_of(st.integers(), st.floats()),
    "boolean": st.booleans(),
    "object": st.dictionaries(st.text(max_size=8), json_values, max_size=3),
}


def _catalog_value(type_name: str) -> st.SearchStrategy[Any]:
    if type_name.endswith("[]"):
        return st.lists(_catalog_value(type_name[:-2]), max_size=4)
    return _CATALOG_TYPES[type_name]


@st.composite
def catalog_values(draw: st.DrawFn, action: Action) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for param in action.params:
        if not param.required and draw(st.booleans()):
            continue
        if draw(st.integers(0, 19)) == 0:
            continue  # a required one left out
        typed = _catalog_value(param.type)
        values[param.name] = draw(st.one_of(typed, typed, junk), label=param.name)
    if draw(st.integers(0, 9)) == 0:
        values[draw(st.sampled_from(["unknown", "apiKey", "campaign_Id"]))] = draw(junk)
    return values


@pytest.mark.parametrize("action", CATALOG, ids=lambda a: a.id)
def test_build_request_returns_a_request_or_names_the_input(
    action: Action, http: httpx.Client
) -> None:
    names = {p.name for p in action.params}

    @settings(_FUZZ, max_examples=CATALOG_EXAMPLES)
    @given(values=catalog_values(action))
    def check(values: dict[str, Any]) -> None:
        try:
            wire = build_request(action, values)
        except InputValidationError as exc:
            for where, _ in exc.errors:
                assert where.split(".", 1)[0] in names | set(values), exc
            return
        assert_sendable(wire, http)

    check()


# -- 3. every error names a parameter of the signature -----------------------------------------------


class _Opaque:
    """A value no annotation accepts."""


WITH_PARAMS = [a for a in ACTION_IDS if signature_params(tasks.ACTIONS[a])]


@pytest.mark.parametrize("action_id", WITH_PARAMS)
def test_each_bad_parameter_is_named(action_id: str, offline: Any) -> None:
    """Every parameter given a value of no accepted type is named, and nothing else is."""
    task = tasks.ACTIONS[action_id]
    creds, _ = offline
    params = signature_params(task)
    hints = typing.get_type_hints(stub(task), include_extras=True)
    accepts_anything = {p for p in params if hints[p] is Any}
    with pytest.raises(InputValidationError) as caught:
        _call_task(task, Call({p: _Opaque() for p in params}), creds, "/nonexistent")
    named = {where.split(".", 1)[0] for where, _ in caught.value.errors}
    assert named == set(params) - accepts_anything
    assert_names_parameters(caught.value, task)


@pytest.mark.parametrize("action_id", WITH_PARAMS)
def test_one_bad_parameter_is_named_alone(action_id: str, offline: Any) -> None:
    """One bad value among defaults is named; other names are only signature parameters.

    (A cross-field rule written as a field validator with ``validate_default``, such as "exactly
    one of destination_email or destination_user_id", may name its own field too.)
    """
    task = tasks.ACTIONS[action_id]
    creds, _ = offline
    required = [
        n
        for n, p in inspect.signature(stub(task)).parameters.items()
        if n not in LOCAL_PARAMS and p.default is inspect.Parameter.empty
    ]
    for name in signature_params(task):
        kwargs = {n: _Opaque() for n in required} | {name: _Opaque()}
        with pytest.raises(InputValidationError) as caught:
            _call_task(task, Call(kwargs), creds, "/nonexistent")
        named = {where.split(".", 1)[0] for where, _ in caught.value.errors}
        assert name in named
        assert named <= set(signature_params(task)), named
        assert_names_parameters(caught.value, task)


# -- crashes the fuzzing found, kept as plain examples ------------------------------------------------

_PLUS_ONE = timezone(timedelta(hours=1))
_MINUS_ONE = timezone(timedelta(hours=-1))

#: (action, keyword arguments, the parameter the error must name). Each of these once escaped as
#: something other than ``InputValidationError`` (see the ids).
FOUND: list[Any] = [
    pytest.param(
        "ITERABLE_GET_CAMPAIGN_METRICS",
        {"campaign_id": 1, "start_date_time": datetime(1, 1, 1, tzinfo=_PLUS_ONE)},
        "start_date_time",
        id="utc-overflow-min",  # OverflowError in iterable_api.types._utc
    ),
    pytest.param(
        "ITERABLE_SEND_PUSH",
        {
            "campaign_id": 1,
            "recipient_email": "a@example.com",
            "send_at": datetime.max.replace(tzinfo=_MINUS_ONE),
        },
        "send_at",
        id="utc-overflow-max",  # OverflowError in iterable_api.types._utc
    ),
    pytest.param(
        "ITERABLE_CREATE_CAMPAIGN",
        {"name": "n", "template_id": 1, "start_time_zone": "America"},
        "start_time_zone",
        id="zone-is-a-directory",  # IsADirectoryError in iterable_api.types._check_zone
    ),
    pytest.param(
        "ITERABLE_CREATE_CAMPAIGN",
        {"name": "n", "template_id": 1, "default_time_zone": "a" * 300},
        "default_time_zone",
        id="zone-name-too-long",  # OSError (ENAMETOOLONG) in iterable_api.types._check_zone
    ),
    pytest.param(
        "ITERABLE_SCHEDULE_CAMPAIGN",
        {
            "campaign_id": 1,
            "send_at": datetime.now(timezone.utc) + timedelta(days=1),
            "recipient_time_zone": {"start_time_zone": "Europe", "default_time_zone": "UTC"},
        },
        "recipient_time_zone",
        id="nested-zone-is-a-directory",  # IsADirectoryError in RecipientTimeZone._iana
    ),
    pytest.param(
        "ITERABLE_UPDATE_USER",
        {"email": "a@example.com", "data_fields": {"x": b"\xff"}},
        "data_fields",
        id="any-bytes",  # UnicodeDecodeError from model_dump in tasks._core.run
    ),
    pytest.param(
        "ITERABLE_UPDATE_USER",
        {"email": "a@example.com", "data_fields": {"x": object()}},
        "data_fields",
        id="any-object",  # PydanticSerializationError from model_dump in tasks._core.run
    ),
    pytest.param(
        "ITERABLE_REPLACE_METADATA_ITEM",
        {"table": "t", "key": "k", "value": {"a": b"x"}},
        "value",
        id="metadata-bytes",  # TypeError from json.dumps in models.metadata._check_value_size
    ),
    pytest.param(
        "ITERABLE_CREATE_LIST",
        {"name": "n", "description": "\ud800"},
        "description",
        id="surrogate-in-body",  # UnicodeEncodeError in WireRequest.content
    ),
    pytest.param(
        "ITERABLE_LIST_METADATA_KEYS",
        {"table": "t", "next_marker": "\ud800"},
        "next_marker",
        id="surrogate-in-query",  # UnicodeEncodeError in httpx's query encoding (quote)
    ),
    pytest.param(
        "ITERABLE_UPDATE_USER",
        {"email": "a@example.com", "data_fields": {"k": "\udc00"}},
        "data_fields",
        id="surrogate-in-an-object",  # UnicodeEncodeError in WireRequest.content
    ),
]


@pytest.mark.parametrize(("action_id", "kwargs", "param"), FOUND)
def test_found_inputs_are_refused_by_name(
    action_id: str, kwargs: dict[str, Any], param: str, offline: Any, http: httpx.Client
) -> None:
    task = tasks.ACTIONS[action_id]
    creds, _ = offline
    call = Call(kwargs)
    try:
        _call_task(task, call, creds, "/nonexistent")
    except InputValidationError as exc:
        assert param in {where.split(".", 1)[0] for where, _ in exc.errors}, exc
        assert_names_parameters(exc, task)
    except MissingPermission:
        _check_accepted(task, call, http)  # then it must at least be sendable
    # anything else propagates: the crash itself


#: The same for the client alone: (action, Python-named values, the parameter to name).
FOUND_IN_THE_CLIENT: list[Any] = [
    pytest.param(
        "ITERABLE_DELETE_USER_BY_ID",
        {"user_id": "\ud800"},
        "user_id",
        id="surrogate-in-path",  # UnicodeEncodeError from quote() in build_request
    ),
    pytest.param(
        "ITERABLE_LIST_EXPORT_JOBS",
        {"job_state": "\ud800"},
        "job_state",
        id="surrogate-in-query",  # UnicodeEncodeError when httpx encodes the query
    ),
    pytest.param(
        "ITERABLE_CREATE_LIST",
        {"name": "\ud800"},
        "name",
        id="surrogate-in-body",  # UnicodeEncodeError in WireRequest.content
    ),
    pytest.param(
        "ITERABLE_UPDATE_USER",
        {"email": "a@example.com", "data_fields": {"x": float("nan")}},
        "data_fields",
        id="nan-in-an-object",  # WireRequest.content writes NaN: not JSON
    ),
    pytest.param(
        "ITERABLE_TRACK_PURCHASE",
        {"user": {"email": "a@example.com"}, "items": [], "total": float("inf")},
        "total",
        id="infinite-number",  # WireRequest.content writes Infinity: not JSON
    ),
    pytest.param(
        "ITERABLE_SEND_EMAIL_PROOF",
        {"data_fields": {"": object()}, "template_id": 0},
        "data_fields",
        id="object-in-an-object",  # TypeError from json.dumps in _requests._dumps
    ),
    pytest.param(
        "ITERABLE_UPDATE_USER",
        {"email": "a@example.com", "data_fields": {"\ud800": 1}},
        "data_fields",
        id="surrogate-in-a-key",  # sent as U+FFFD by pydantic's JSON dump
    ),
    pytest.param(
        "ITERABLE_DELETE_USER_BY_ID",
        {"user_id": ".."},
        "user_id",
        id="dot-segment",  # httpx removed it: DELETE /api/users
    ),
]


@pytest.mark.parametrize(("action_id", "values", "param"), FOUND_IN_THE_CLIENT)
def test_found_values_are_refused_by_the_client(
    action_id: str, values: dict[str, Any], param: str, http: httpx.Client
) -> None:
    action = tasks.ACTIONS[action_id].action
    try:
        wire = build_request(action, values)
    except InputValidationError as exc:
        assert param in {where.split(".", 1)[0] for where, _ in exc.errors}, exc
    else:
        assert_sendable(wire, http)
