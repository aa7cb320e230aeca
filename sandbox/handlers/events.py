"""Custom events: track one, track in bulk, read a user's history.

Events live in ``project.area("events", dict)``: ``{id: event}``, each event in wire form
(``id``, ``eventName``, ``eventType`` ("customEvent" or "purchase"), ``email``, ``userId``,
``createdAt`` in epoch seconds, ``dataFields``, ``campaignId``, ``templateId``; purchases add
``items`` and ``total``). One id space, as in Iterable: tracking an id again replaces the event.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from typing import Any

from prefect_iterable.sandbox.handlers._base import ApiFailure, Call, bad_params, handles, success
from prefect_iterable.sandbox.handlers._shared import User, users
from prefect_iterable.sandbox.handlers.lists import (
    Failures,
    classify,
    resolve_record,
    valid_email,
    valid_user_id,
)
from prefect_iterable.sandbox.state import Project

DEFAULT_LIMIT = 30
MAX_LIMIT = 200
MAX_ID_BYTES = 512
#: Iterable reserves the ``itbl`` prefix for its own events and fields.
RESERVED_PREFIX = "itbl"


def events(project: Project) -> dict[str, dict[str, Any]]:
    return project.area("events", dict)


def blocked_event_names(project: Project) -> set[str]:
    """Event names the project refuses (Iterable's per-project event blocklist)."""
    return project.area("events.blocked", set)


def event_id(value: Any) -> str:
    """The id to store an event under: the one sent, or a new one as Iterable generates."""
    if value in (None, ""):
        return uuid.uuid4().hex
    text = str(value)
    if len(text.encode()) > MAX_ID_BYTES:
        raise bad_params(f"id must be at most {MAX_ID_BYTES} bytes")
    return text


def created_at(value: Any) -> int:
    """``createdAt`` in epoch seconds, defaulting to now."""
    if value is None:
        return int(time.time())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise bad_params(f"createdAt must be a Unix timestamp in seconds, got {value!r}")
    return value


def store_event(project: Project, record: dict[str, Any]) -> dict[str, Any]:
    """Insert or replace by id; a replaced event moves to the end (it was tracked again)."""
    store = events(project)
    store.pop(record["id"], None)
    store[record["id"]] = record
    return record


def _custom_event(body: dict[str, Any], email: str | None, user_id: str | None) -> dict[str, Any]:
    name = body.get("eventName")
    if not isinstance(name, str) or not name.strip():
        raise bad_params("eventName is required and must be a non-empty string")
    data_fields = body.get("dataFields")
    if data_fields is not None and not isinstance(data_fields, dict):
        raise bad_params("dataFields must be an object")
    record: dict[str, Any] = {
        "id": event_id(body.get("id")),
        "eventName": name,
        "eventType": "customEvent",
        "email": email,
        "userId": user_id,
        "createdAt": created_at(body.get("createdAt")),
        "dataFields": dict(data_fields or {}),
    }
    for key in ("campaignId", "templateId"):
        if body.get(key) is not None:
            record[key] = body[key]
    return record


def _disallowed(project: Project, name: Any) -> bool:
    return isinstance(name, str) and (
        name.lower().startswith(RESERVED_PREFIX) or name in blocked_event_names(project)
    )


# How a single-record endpoint answers each per-record refusal of the bulk endpoints.
_SINGLE_ERRORS = {
    "invalidEmails": (400, "InvalidEmailAddressError", "Invalid email: {}"),
    "invalidUserIds": (400, "InvalidUserIdError", "Invalid userId: {}"),
    "notFoundEmails": (
        400,
        "UnknownEmailError",
        "No user with email {} and no userId to create one",
    ),
    "notFoundUserIds": (400, "UnknownUserIdError", "No user with userId {}"),
    "forgottenEmails": (409, "ForgottenUserError", "Contact is GDPR forgotten"),
    "forgottenUserIds": (409, "ForgottenUserError", "Contact is GDPR forgotten"),
}


def user_for_single(project: Project, user_body: Any, *, create: bool = True) -> User:
    """The user a single-record request names, created if missing; Iterable's error if refused."""
    body = user_body if isinstance(user_body, dict) else {}
    email, user_id = body.get("email") or None, body.get("userId") or None
    if email is None and user_id is None:
        raise bad_params("Either email or userId must be provided")
    user, key, identifier = classify(
        project, email, user_id, create=create, prefer_user_id=bool(body.get("preferUserId"))
    )
    if key is not None:
        status, code, msg = _SINGLE_ERRORS[key]
        raise ApiFailure(status, code, msg.format(identifier))
    assert user is not None
    return user


@handles("ITERABLE_TRACK_EVENT")
def track_event(call: Call) -> dict[str, Any]:
    body = call.body if isinstance(call.body, dict) else {}
    if _disallowed(call.project, body.get("eventName")):
        raise bad_params(f"Event name {body['eventName']!r} is not allowed in this project")
    record = _custom_event(body, None, None)  # validated before the user is created
    user = user_for_single(call.project, body)
    record["email"], record["userId"] = user.email, user.user_id
    store_event(call.project, record)
    return success(f"Event with id: {record['id']} tracked.", id=record["id"])


@handles("ITERABLE_TRACK_EVENTS_BULK")
def track_events_bulk(call: Call) -> dict[str, Any]:
    call.require("events")
    batch = call.arg("events")
    if not isinstance(batch, list):
        raise bad_params("events must be an array")
    # A malformed event (no name, a bad id or time) fails the whole request, before any change.
    parsed = [_custom_event(body, None, None) if isinstance(body, dict) else None for body in batch]
    failures = Failures()
    disallowed: list[str] = []
    tracked = 0
    for body, record in zip(batch, parsed, strict=True):
        if record is None:
            failures.add("invalidEmails", None)
            continue
        if _disallowed(call.project, record["eventName"]):
            if record["eventName"] not in disallowed:
                disallowed.append(record["eventName"])
            failures.count += 1
            continue
        user = resolve_record(call.project, body, failures, create=True)
        if user is None:
            continue
        record["email"], record["userId"] = user.email, user.user_id
        store_event(call.project, record)
        tracked += 1
    return {
        "successCount": tracked,
        **failures.body(),
        "disallowedEventNames": disallowed,
        "createdFields": [],
        "filteredOutFields": [],
    }


def _as_wire(record: dict[str, Any]) -> dict[str, Any]:
    answer = {k: v for k, v in record.items() if v is not None}
    stamp = datetime.fromtimestamp(record["createdAt"], tz=timezone.utc)
    answer["createdAt"] = stamp.strftime("%Y-%m-%d %H:%M:%S +00:00")
    return answer


@handles("ITERABLE_GET_USER_EVENTS")
def get_user_events(call: Call) -> dict[str, Any]:
    user_id = call.arg("userId")
    if not valid_user_id(user_id):
        raise bad_params(f"Invalid userId: {user_id!r}")
    limit = call.int_arg("limit", DEFAULT_LIMIT)
    assert limit is not None
    if not 1 <= limit <= MAX_LIMIT:
        raise bad_params(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    user = users(call.project).find(user_id=user_id)
    if user is None:
        return {"events": []}
    mine = [
        (position, record)
        for position, record in enumerate(events(call.project).values())
        if record.get("userId") == user.user_id
        or (
            user.email is not None
            and valid_email(record.get("email"))
            and str(record["email"]).lower() == user.email.lower()
        )
    ]
    mine.sort(key=lambda item: (item[1]["createdAt"], item[0]), reverse=True)
    return {"events": [_as_wire(record) for _, record in mine[:limit]]}
