"""Static lists: create, list, subscribe and unsubscribe members, read members and size, delete.

Lists live in ``_shared.lists(project)`` because campaigns send to their members. Members are
the ``User`` objects of ``_shared.users(project)``, keyed by lower-cased email (or by userId for a
user without one), so a profile change shows in every list at once.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from prefect_iterable.sandbox.handlers._base import (
    ApiFailure,
    Call,
    Reply,
    bad_params,
    handles,
    success,
)
from prefect_iterable.sandbox.handlers._shared import (
    User,
    UserList,
    lists,
    now_ms,
    require_list,
    users,
    valid_email,
    valid_user_id,
)
from prefect_iterable.sandbox.state import Project

PREVIEW_DEFAULT_SIZE = 1000
PREVIEW_MAX_SIZE = 5000


#: failedUpdates keys of a bulk answer, in Iterable's order.
FAILURE_KEYS = (
    "invalidEmails",
    "invalidUserIds",
    "notFoundEmails",
    "notFoundUserIds",
    "forgottenEmails",
    "forgottenUserIds",
)


class Failures:
    """Per-record refusals of a bulk request, by Iterable's failedUpdates key."""

    def __init__(self) -> None:
        self.by_key: dict[str, list[str]] = {key: [] for key in FAILURE_KEYS}
        self.count = 0

    def add(self, key: str, identifier: Any) -> None:
        self.by_key[key].append("" if identifier is None else str(identifier))
        self.count += 1

    def body(self) -> dict[str, Any]:
        return {
            "failCount": self.count,
            "failedUpdates": {key: list(values) for key, values in self.by_key.items()},
            # Deprecated top-level copies that older clients still read.
            "invalidEmails": list(self.by_key["invalidEmails"]),
            "invalidUserIds": list(self.by_key["invalidUserIds"]),
        }


def classify(
    project: Project,
    email: Any,
    user_id: Any,
    *,
    create: bool,
    prefer_user_id: bool = False,
) -> tuple[User | None, str | None, str | None]:
    """The user a record names, created when allowed, or why not: ``(user, failure key, id)``.

    A new user needs an identifier the project can create one from: an email in email-based
    projects (a userId alone only with ``preferUserId``), a userId in userID-based projects,
    either in hybrid ones. A record naming an existing user by either identifier is fine. The
    failure key is Iterable's ``failedUpdates`` key (invalidEmails, forgottenUserIds, …).
    """
    email = email or None
    user_id = user_id or None
    if email is None and user_id is None:
        return None, ("invalidUserIds" if project.identity == "userId" else "invalidEmails"), None
    if email is not None and not valid_email(email):
        return None, "invalidEmails", str(email)
    if user_id is not None and not valid_user_id(user_id):
        return None, "invalidUserIds", str(user_id)
    store = users(project)
    if email is not None and store.is_forgotten(email=email):
        return None, "forgottenEmails", email
    if user_id is not None and store.is_forgotten(user_id=user_id):
        return None, "forgottenUserIds", user_id
    user = store.find(email, user_id)
    if user is not None:
        return user, None, None
    creatable = {
        "email": email is not None or (user_id is not None and prefer_user_id),
        "userId": user_id is not None,
        "hybrid": True,
    }[project.identity]
    if not create or not creatable:
        if email is not None:
            return None, "notFoundEmails", email
        return None, "notFoundUserIds", user_id
    return store.add(User(email=email, user_id=user_id)), None, None


def resolve_record(
    project: Project,
    record: Any,
    failures: Failures,
    *,
    create: bool,
    prefer_user_id: bool = False,
) -> User | None:
    """The user a bulk record names (see ``classify``); ``None``, counted in ``failures``, if not."""
    if not isinstance(record, dict):
        failures.add("invalidEmails", None)
        return None
    user, key, identifier = classify(
        project,
        record.get("email"),
        record.get("userId"),
        create=create,
        prefer_user_id=prefer_user_id,
    )
    if key is not None:
        failures.add(key, identifier)
    return user


def merge_fields(user: User, fields: Any, *, nested: bool = False) -> None:
    """Store request ``dataFields`` on a profile: top-level fields overwrite, or merge objects."""
    if not isinstance(fields, dict) or not fields:
        return
    for name, value in fields.items():
        current = user.data_fields.get(name)
        if nested and isinstance(current, dict) and isinstance(value, dict):
            user.data_fields[name] = {**current, **value}
        else:
            user.data_fields[name] = value
    user.profile_updated_at = now_ms()


def member_key(user: User) -> str:
    return user.email.lower() if user.email is not None else str(user.user_id)


def current_members(project: Project, user_list: UserList) -> list[User]:
    """The list's members that still exist (a deleted or forgotten user leaves every list)."""
    store = users(project)
    present = []
    for user in user_list.members.values():
        if store.find(user.email, user.user_id) is user:
            present.append(user)
    return present


def _identifier(project: Project, user: User, prefer_user_id: bool) -> str:
    if project.identity == "userId":
        return str(user.user_id if user.user_id is not None else user.email)
    if project.identity == "hybrid" and prefer_user_id and user.user_id is not None:
        return user.user_id
    return str(user.email if user.email is not None else user.user_id)


def _lines(identifiers: Iterable[str]) -> Reply:
    text = "".join(f"{identifier}\n" for identifier in identifiers)
    return Reply(text, media_type="text/plain")


def _records(call: Call) -> list[Any]:
    call.require("listId", "subscribers")
    records = call.arg("subscribers")
    if not isinstance(records, list):
        raise bad_params("subscribers must be an array")
    return records


def _list_for(call: Call) -> UserList:
    list_id = call.int_arg("listId")
    if list_id is None:
        raise bad_params("missing required parameter(s): listId")
    return require_list(call.project, list_id)


@handles("ITERABLE_CREATE_LIST")
def create_list(call: Call) -> dict[str, Any]:
    name = call.arg("name")
    if not isinstance(name, str) or not name.strip():
        raise bad_params("name is required and must be a non-empty string")
    description = call.arg("description")
    existing = lists(call.project)
    if any(found.name == name for found in existing.values()):
        raise bad_params(f"A list named {name!r} already exists")
    list_id = call.project.next_id()
    existing[list_id] = UserList(id=list_id, name=name, description=description)
    return {"listId": list_id}


@handles("ITERABLE_LIST_LISTS")
def list_lists(call: Call) -> dict[str, Any]:
    return {"lists": [found.as_json() for _, found in sorted(lists(call.project).items())]}


@handles("ITERABLE_LIST_LIST_USERS")
def list_list_users(call: Call) -> Reply:
    user_list = _list_for(call)
    prefer = call.bool_arg("preferUserId")
    members = current_members(call.project, user_list)
    return _lines(_identifier(call.project, user, prefer) for user in members)


@handles("ITERABLE_PREVIEW_LIST_USERS")
def preview_list_users(call: Call) -> Reply:
    user_list = _list_for(call)
    size = call.int_arg("size", PREVIEW_DEFAULT_SIZE)
    assert size is not None
    if not 1 <= size <= PREVIEW_MAX_SIZE:
        raise bad_params(f"size must be between 1 and {PREVIEW_MAX_SIZE}, got {size}")
    prefer = call.bool_arg("preferUserId")
    members = current_members(call.project, user_list)
    if len(members) > size:
        # A sample, as Iterable's preview is, but in membership order so answers read naturally.
        keep = sorted(random.sample(range(len(members)), size))
        members = [members[i] for i in keep]
    return _lines(_identifier(call.project, user, prefer) for user in members)


@handles("ITERABLE_SUBSCRIBE_TO_LIST")
def subscribe_to_list(call: Call) -> dict[str, Any]:
    records = _records(call)
    user_list = _list_for(call)
    # updateExistingUsersOnly is only respected in userID-based and hybrid projects.
    existing_only = call.bool_arg("updateExistingUsersOnly") and call.project.identity != "email"
    failures = Failures()
    added = 0
    for record in records:
        user = resolve_record(
            call.project,
            record,
            failures,
            create=not existing_only,
            prefer_user_id=bool(isinstance(record, dict) and record.get("preferUserId")),
        )
        if user is None:
            continue
        merge_fields(user, record.get("dataFields"), nested=bool(record.get("mergeNestedObjects")))
        user_list.members[member_key(user)] = user
        added += 1
    return {"successCount": added, **failures.body(), "createdFields": [], "filteredOutFields": []}


@handles("ITERABLE_UNSUBSCRIBE_FROM_LIST")
def unsubscribe_from_list(call: Call) -> dict[str, Any]:
    records = _records(call)
    user_list = _list_for(call)
    call.int_arg("campaignId")  # only attributes the unsubscribe in Iterable's reports
    channel_wide = call.bool_arg("channelUnsubscribe")
    failures = Failures()
    removed = 0
    for record in records:
        user = resolve_record(call.project, record, failures, create=False)
        if user is None:
            continue
        for key in [k for k, member in user_list.members.items() if member is user]:
            del user_list.members[key]
        if channel_wide:
            # The sandbox's lists belong to the marketing email channel (id 1, see channels).
            channels = list(user.data_fields.get("unsubscribedChannelIds") or [])
            if 1 not in channels:
                user.data_fields["unsubscribedChannelIds"] = [*channels, 1]
        removed += 1
    return {
        "successCount": removed,
        **failures.body(),
        "createdFields": [],
        "filteredOutFields": [],
    }


def _campaigns_using(project: Project, list_id: int) -> list[Any]:
    using = []
    for campaign_id, campaign in project.areas.get("campaigns", {}).items():
        fields = campaign if isinstance(campaign, dict) else vars(campaign)
        ids = [*(fields.get("listIds") or []), *(fields.get("suppressionListIds") or [])]
        if list_id in {int(i) for i in ids if str(i).lstrip("-").isdigit()}:
            using.append(campaign_id)
    return using


@handles("ITERABLE_DELETE_LIST")
def delete_list(call: Call) -> dict[str, Any]:
    user_list = _list_for(call)
    using = _campaigns_using(call.project, user_list.id)
    if using:
        raise ApiFailure(
            409,
            "Conflict",
            f"List {user_list.id} is in use by campaign(s) {', '.join(map(str, using))}",
            {"campaignIds": using},
        )
    del lists(call.project)[user_list.id]
    return success(f"Deleted list {user_list.id}")


@handles("ITERABLE_GET_LIST_SIZE")
def get_list_size(call: Call) -> Reply:
    user_list = _list_for(call)
    return Reply(str(len(current_members(call.project, user_list))), media_type="text/plain")
