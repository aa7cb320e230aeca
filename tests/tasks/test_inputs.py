"""Inputs across the 116 tasks: what Iterable accepts is accepted, what it cannot take is named.

The date and path-parameter matrices are generated from the catalog, so a new date parameter or
path parameter is covered (or fails for want of base arguments) without editing this file.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
from prefect.logging import disable_run_logger

from prefect_iterable import tasks
from prefect_iterable.api.catalog import ACTIONS as CATALOG
from prefect_iterable.api.catalog import Location, ResponseKind
from prefect_iterable.api.errors import InputValidationError, IterableError
from prefect_iterable.sandbox.data import User, users

# -- dates ------------------------------------------------------------------------------------------

#: Every date parameter of the catalog, by its wire name.
DATE_PARAMS = [
    (action, param)
    for action in CATALOG
    for param in action.params
    if re.fullmatch(r"\w*(DateTime|At)", param.wire)
]

_USER = {"email": "dates@example.com"}
_DEVICE = {"app_package_name": "com.example", "device_id": "d-1", "platform": "iOS"}

#: The other arguments each task needs; the sandbox may still refuse the call for state (an
#: unknown campaign), which is fine: what matters is that the date was accepted and how it went.
BASE: dict[str, dict[str, Any]] = {
    "ITERABLE_CREATE_CAMPAIGN": {"name": "n", "template_id": 1, "list_ids": [1]},
    "ITERABLE_EXPORT_DATA_CSV": {"data_type_name": "emailSend"},
    "ITERABLE_EXPORT_DATA_JSON": {"data_type_name": "emailSend"},
    "ITERABLE_GET_CAMPAIGN_METRICS": {"campaign_id": [1]},
    "ITERABLE_GET_EXPERIMENT_METRICS": {},
    "ITERABLE_GET_USER_SENT_MESSAGES": _USER,
    "ITERABLE_LIST_TEMPLATES": {},
    "ITERABLE_SCHEDULE_CAMPAIGN": {"campaign_id": 1},
    "ITERABLE_SEND_IN_APP": {"campaign_id": 1, "recipient_email": "dates@example.com"},
    "ITERABLE_SEND_PUSH": {"campaign_id": 1, "recipient_email": "dates@example.com"},
    "ITERABLE_SEND_WHATS_APP": {"campaign_id": 1, "recipient_email": "dates@example.com"},
    "ITERABLE_START_EXPORT": {"data_type_name": "emailSend", "output_format": "text/csv"},
    "ITERABLE_TRACK_EMBEDDED_CLICK": {"message_id": "m-1", **_USER},
    "ITERABLE_TRACK_EMBEDDED_RECEIVED": {"message_id": "m-1", **_USER},
    "ITERABLE_TRACK_EMBEDDED_SESSION": {
        "session": {"id": "s-1", "start": 1_700_000_000, "end": 1_700_000_060},
        "device_info": _DEVICE,
        **_USER,
    },
    "ITERABLE_TRACK_EVENT": {"event_name": "dates", **_USER},
    "ITERABLE_TRACK_PURCHASE": {
        "user": _USER,
        "items": [{"id": "sku", "name": "Hat", "price": 1.0, "quantity": 1}],
        "total": 1.0,
    },
    "ITERABLE_UPDATE_IN_APP_TEMPLATE": {"template_id": 1},
    "ITERABLE_UPSERT_IN_APP_TEMPLATE": {"client_template_id": "dates"},
}

_PLAIN = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def documented(action_id: str, wire: str) -> str:
    """The format Iterable documents for this parameter (iterable-api-notes.md, section 8)."""
    if wire == "createdAt":
        return r"\d+"  # Unix seconds
    if action_id == "ITERABLE_SCHEDULE_CAMPAIGN":
        return r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z"  # ISO 8601
    if wire in ("sendAt", "expirationDateTime"):
        return _PLAIN  # UTC, no zone
    if "METRICS" in action_id:
        return r"\d{4}-\d\d-\d\d(T\d\d:\d\d:\d\dZ)?"  # a date, or ISO 8601
    return _PLAIN + r" \+00:00"  # yyyy-MM-dd HH:mm:ss ZZ


def spellings(moment: datetime) -> dict[str, Any]:
    """The same moment as a datetime, ISO 8601 and Iterable's own format, with and without
    offsets (naive means UTC)."""
    east, west = timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-5))
    return {
        "datetime": moment,
        "iso-z": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "iso-offset": moment.astimezone(east).isoformat(),
        "iterable-+0000": moment.strftime("%Y-%m-%d %H:%M:%S +0000"),
        "iterable-+00:00": moment.strftime("%Y-%m-%d %H:%M:%S +00:00"),
        "iterable-no-offset": moment.strftime("%Y-%m-%d %H:%M:%S"),
        "iterable--05:00": moment.astimezone(west).strftime("%Y-%m-%d %H:%M:%S -05:00"),
    }


def test_every_date_parameter_has_a_task_parameter_and_base_arguments() -> None:
    assert len(DATE_PARAMS) >= 26
    for action, param in DATE_PARAMS:
        assert param.name in tasks.ACTIONS[action.id].input_model.model_fields, action.id
        assert action.id in BASE, f"add base arguments for {action.id}"


def _call(task: Any, kwargs: dict[str, Any], credentials: Any, tmp_path: Any) -> Exception | None:
    extra: dict[str, Any] = {}
    if task.action.response in (ResponseKind.CSV_STREAM, ResponseKind.NDJSON_STREAM):
        extra["destination"] = str(tmp_path / "out")
    try:
        with disable_run_logger():
            task.fn(**kwargs, **extra, credentials=credentials)
    except IterableError as exc:  # the sandbox's answer for state: the request was sent
        if isinstance(exc, InputValidationError):
            raise
        return exc
    return None


@pytest.mark.parametrize(
    ("action", "param"), DATE_PARAMS, ids=[f"{a.name}.{p.wire}" for a, p in DATE_PARAMS]
)
def test_every_date_parameter_takes_every_spelling(
    action, param, credentials, sandbox, project, tmp_path
):
    # Seven calls in a row: no 429s and no client-side pacing (both reset per test).
    sandbox.limits_enabled = False
    credentials = credentials.model_copy(update={"rate_limit_scale": 1000.0})
    task = tasks.ACTIONS[action.id]
    ahead = param.wire in ("sendAt", "expirationDateTime")
    moment = datetime.now(timezone.utc).replace(microsecond=0, second=7)
    moment += timedelta(days=2) if ahead else -timedelta(days=2)
    sent: dict[str, Any] = {}
    for label, spelled in spellings(moment).items():
        kwargs = dict(BASE[action.id], **{param.name: spelled})
        if action.id in ("ITERABLE_EXPORT_DATA_CSV", "ITERABLE_EXPORT_DATA_JSON"):
            other = "end_date_time" if param.name == "start_date_time" else "start_date_time"
            kwargs[other] = moment + timedelta(seconds=1 if other == "end_date_time" else -1)
        before = len(sandbox.state.requests(action.id, project_id=project.id))
        refused = _call(task, kwargs, credentials, tmp_path)
        requests = sandbox.state.requests(action.id, project_id=project.id)
        assert len(requests) > before, label  # sent (a retry after a 429 may add one)
        request = requests[-1]
        if param.location is Location.QUERY:
            sent[label] = request.query[param.wire][0]
        else:
            sent[label] = request.body[param.wire]
        # The sandbox reads every spelling too: a refusal is never about the date.
        assert refused is None or param.wire not in str(refused), (label, refused)
    assert len(set(map(str, sent.values()))) == 1, sent  # one moment, sent one way
    assert re.fullmatch(documented(action.id, param.wire), str(sent["datetime"])), sent


@pytest.mark.parametrize("spelled", ["2023-11-14 22:13:20 +0000", "2023-11-14T22:13:20Z"])
def test_nested_session_times_take_date_strings(spelled, credentials, sandbox, project):
    users(project).add(User(email=_USER["email"], user_id=None))
    session = {"id": "s-2", "start": spelled, "end": "2023-11-14 22:14:20 +00:00"}
    with disable_run_logger():
        tasks.ACTIONS["ITERABLE_TRACK_EMBEDDED_SESSION"].fn(
            session=session, device_info=_DEVICE, **_USER, credentials=credentials
        )
    [request] = sandbox.state.requests("ITERABLE_TRACK_EMBEDDED_SESSION", project_id=project.id)
    assert (request.body["session"]["start"], request.body["session"]["end"]) == (
        1_700_000_000,
        1_700_000_060,
    )


# -- path parameters ---------------------------------------------------------------------------------

PATH_PARAMS = [(a, p) for a in CATALOG for p in a.params_in(Location.PATH)]
_ODD = [".", "..", "/", "%2F", "?", "#"]
_FILL = {"string": "x", "integer": 1, "boolean": True, "object": {}}


def _filled(action: Any, but: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for p in action.params:
        if p.required and p.name != but:
            values[p.name] = [_FILL[p.type[:-2]]] if p.type.endswith("[]") else _FILL[p.type]
    return values


@pytest.mark.parametrize(
    ("action", "param"), PATH_PARAMS, ids=[f"{a.name}.{p.wire}" for a, p in PATH_PARAMS]
)
def test_path_parameters_never_become_another_path(action, param, client, sandbox, project):
    sandbox.limits_enabled = False
    log = sandbox.state
    for value in _ODD:
        before = len(log.requests(project_id=project.id))
        values = _filled(action, param.name) | {param.name: value}
        if param.type != "string" or value in (".", ".."):
            # A number cannot be "..", and "." and ".." are dot segments: refused by name.
            with pytest.raises(InputValidationError) as caught:
                client.call(action, **values)
            assert param.name in {where.split(".")[0] for where, _ in caught.value.errors}
            assert len(log.requests(project_id=project.id)) == before, value
            continue
        try:
            client.call(action, **values)
        except IterableError:
            pass  # the sandbox's answer for state
        [request] = log.requests(project_id=project.id)[before:]
        expected = action.path
        for p in action.params_in(Location.PATH):
            expected = expected.replace("{" + p.wire + "}", quote(str(values[p.name]), safe=""))
        assert request.raw_path == expected, value
        assert request.action == action.id, value


@pytest.mark.parametrize(
    ("task_name", "kwargs"),
    [
        ("delete_user_by_id", {"user_id": ".."}),
        ("list_metadata_keys", {"table": "."}),
        (
            "subscribe_user_by_id",
            {"subscription_group": "emailList", "subscription_group_id": 1, "user_id": ".."},
        ),
    ],
)
def test_the_reported_dot_segments_are_refused_by_tasks(
    task_name, kwargs, run_in_flow, credentials, sandbox, project
):
    task = getattr(tasks, task_name)
    with pytest.raises(InputValidationError) as caught:
        task.fn(**kwargs, credentials=credentials)
    named = {where.split(".")[0] for where, _ in caught.value.errors}
    assert named & {"user_id", "table"}
    assert sandbox.state.requests(project_id=project.id) == []


# -- refused by name, before any request ---------------------------------------------------------------


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


REFUSED = [
    pytest.param("get_campaign", {"campaign_id": True}, "campaign_id", id="bool-id"),
    pytest.param("get_campaign", {"campaign_id": False}, "campaign_id", id="false-id"),
    pytest.param(
        "update_user", {"email": "a" * 100_000 + "@example.com"}, "email", id="10mb-email"
    ),
    pytest.param(
        "track_event",
        {"event_name": "e", "email": "a@example.com", "event_id": "é" * 300},
        "event_id",
        id="event-id-over-512-bytes",
    ),
    pytest.param(
        "track_event",
        {"event_name": "x" * 2_000_000, "email": "a@example.com"},
        "event_name",
        id="10mb-run-name-value",
    ),
    pytest.param(
        "update_user",
        {"email": "a@example.com", "data_fields": {"\ud800key": 1}},
        "data_fields",
        id="surrogate-in-a-key",
    ),
    pytest.param(
        "update_user",
        {"email": "a@example.com", "data_fields": {"nested": {"k\udfff": 1}}},
        "data_fields",
        id="surrogate-in-a-nested-key",
    ),
    pytest.param(
        "update_user",
        {"email": "a@example.com", "data_fields": _deep(200)},
        "data_fields",
        id="deeply-nested",
    ),
    pytest.param("create_list", {"name": "a\x00b"}, "name", id="nul-in-list-name"),
    pytest.param("create_list", {"name": "a\nb"}, "name", id="newline-in-list-name"),
    pytest.param(
        "replace_metadata_item",
        {"table": "t", "key": "a\nb", "value": {}},
        "key",
        id="newline-in-metadata-key",
    ),
    pytest.param(
        "replace_metadata_item",
        {"table": "t", "key": "k" * 100_000, "value": {}},
        "key",
        id="10mb-metadata-key",
    ),
    pytest.param(
        "get_user_sent_messages", {"email": "foo@"}, "email", id="invalid-single-identifier"
    ),
]


@pytest.mark.parametrize(("task_name", "kwargs", "param"), REFUSED)
def test_refused_by_name_before_any_request(
    task_name, kwargs, param, run_in_flow, credentials, sandbox, project
):
    with pytest.raises(InputValidationError) as caught:
        getattr(tasks, task_name).fn(**kwargs, credentials=credentials)
    assert param in {where.split(".")[0] for where, _ in caught.value.errors}, caught.value
    assert sandbox.state.requests(project_id=project.id) == []


def test_nesting_thousands_deep_is_named_not_a_recursion_error(credentials, sandbox, project):
    # Called as Prefect's task wrapper runs it; a flow passing such an argument fails in Prefect's
    # own parameter walk before the task starts, which this library cannot change.
    with pytest.raises(InputValidationError, match="data_fields"), disable_run_logger():
        tasks.update_user.fn(
            email="a@example.com", data_fields=_deep(5000), credentials=credentials
        )
    assert sandbox.state.requests(project_id=project.id) == []


# -- accepted as Iterable accepts it ------------------------------------------------------------------


def test_case_insensitive_enums_are_sent_in_the_documented_casing(
    run_in_flow, credentials, sandbox, project
):
    run_in_flow(tasks.list_export_jobs, job_state="Completed", credentials=credentials)
    [request] = sandbox.state.requests("ITERABLE_LIST_EXPORT_JOBS", project_id=project.id)
    assert request.query["jobState"] == ["completed"]
    model = tasks.subscribe_user_by_id.input_model
    checked = model(subscription_group="EmailList", subscription_group_id=1, user_id="u-1")
    assert checked.model_dump()["subscription_group"] == "emailList"


def test_fields_take_a_list_or_a_comma_separated_string(credentials, sandbox, project):
    start = tasks.ACTIONS["ITERABLE_START_EXPORT"]
    for fields in (["email", "campaignId"], "email, campaignId", "email,campaignId"):
        kwargs = {"data_type_name": "emailSend", "output_format": "text/csv"}
        _call(start, kwargs | {"only_fields": fields}, credentials, None)
    requests = sandbox.state.requests("ITERABLE_START_EXPORT", project_id=project.id)
    sent = [r.body["onlyFields"] for r in requests]
    assert sent == ["email,campaignId"] * 3


@pytest.mark.parametrize(
    ("task_name", "kwargs"),
    [
        ("upsert_push_template", {"client_template_id": "c", "relevance_score": 1.5}),
        ("upsert_push_template", {"client_template_id": "c", "locale": ""}),
        (
            "verify_sms_code",
            {"code": "12", "phone_number": "+15551234567", "verification_profile_id": 7},
        ),
    ],
)
def test_ranges_iterable_clamps_or_defaults_are_sent(
    task_name, kwargs, credentials, sandbox, project
):
    task = getattr(tasks, task_name)
    _call(task, kwargs, credentials, None)
    assert len(sandbox.state.requests(task.action.id, project_id=project.id)) == 1
