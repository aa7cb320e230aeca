"""Subscription groups: subscribe or unsubscribe one user (by userId) to a list, a message type
or a channel, and the subscription state that ``users/updateSubscriptions`` overwrites.

A user's lists are the memberships in ``_shared.lists(project)`` (campaigns send to them); the
channel and message-type state lives on the profile, in the dataFields Iterable keeps it in
(``unsubscribedChannelIds``, ``unsubscribedMessageTypeIds``, ``subscribedMessageTypeIds``).
"""

from __future__ import annotations

from typing import Any

from prefect_iterable.sandbox.handlers._base import (
    ApiFailure,
    Call,
    Reply,
    bad_params,
    forbidden,
    handles,
    not_found,
    success,
)
from prefect_iterable.sandbox.handlers._shared import (
    User,
    UserList,
    lists,
    now_ms,
    require_list,
    users,
)
from prefect_iterable.sandbox.handlers.channels import CHANNELS, MESSAGE_TYPES
from prefect_iterable.sandbox.state import Project

FEATURE = "subscription_groups"

#: Canonical group names; Iterable reads the path segment case-insensitively.
GROUPS = {name.lower(): name for name in ("emailList", "messageType", "messageChannel")}

UNSUBSCRIBED_CHANNELS = "unsubscribedChannelIds"
UNSUBSCRIBED_TYPES = "unsubscribedMessageTypeIds"
SUBSCRIBED_TYPES = "subscribedMessageTypeIds"

_CHANNEL_IDS = {c["id"] for c in CHANNELS}
_MESSAGE_TYPES = {t["id"]: t for t in MESSAGE_TYPES}


def member_key(user: User) -> str:
    """How list memberships are keyed: lower-cased email, or userId for a user without one."""
    return user.email.lower() if user.email is not None else str(user.user_id)


def is_member(user_list: UserList, user: User) -> bool:
    return any(member is user for member in user_list.members.values())


def leave_list(user_list: UserList, user: User) -> None:
    for key in [k for k, member in user_list.members.items() if member is user]:
        del user_list.members[key]


def list_ids_of(project: Project, user: User) -> list[int]:
    return sorted(lid for lid, user_list in lists(project).items() if is_member(user_list, user))


def leave_all_lists(project: Project, user: User) -> None:
    for user_list in lists(project).values():
        leave_list(user_list, user)


def rekey_memberships(project: Project, user: User) -> None:
    """Re-file the user's memberships after an identifier changed."""
    for user_list in lists(project).values():
        if is_member(user_list, user):
            leave_list(user_list, user)
            user_list.members[member_key(user)] = user


def _id_list(value: Any, name: str) -> list[int]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise bad_params(f"{name} must be an array of integers")
    return list(dict.fromkeys(value))


def apply_subscriptions(project: Project, user: User, request: dict[str, Any]) -> None:
    """Overwrite every non-null subscription field of ``request`` on ``user``.

    Everything is checked before anything changes, so a refused request leaves the user as it
    was (bulk updates report such a user and go on with the next).
    """
    list_ids = request.get("emailListIds")
    channels = request.get(UNSUBSCRIBED_CHANNELS)
    unsubscribed = request.get(UNSUBSCRIBED_TYPES)
    subscribed = request.get(SUBSCRIBED_TYPES)
    if list_ids is not None:
        list_ids = _id_list(list_ids, "emailListIds")
        for list_id in list_ids:
            require_list(project, list_id)
    if channels is not None:
        channels = _id_list(channels, UNSUBSCRIBED_CHANNELS)
        unknown = [c for c in channels if c not in _CHANNEL_IDS]
        if unknown:
            raise bad_params(f"Unknown channel ids: {unknown}")
    for name, value in ((UNSUBSCRIBED_TYPES, unsubscribed), (SUBSCRIBED_TYPES, subscribed)):
        if value is not None:
            unknown = [t for t in _id_list(value, name) if t not in _MESSAGE_TYPES]
            if unknown:
                raise bad_params(f"Unknown message type ids in {name}: {unknown}")
    if subscribed is not None and request.get("validateChannelAlignment", True) is not False:
        blocked = set(
            channels if channels is not None else user.data_fields.get(UNSUBSCRIBED_CHANNELS) or []
        )
        misaligned = [t for t in subscribed if _MESSAGE_TYPES[t]["channelId"] in blocked]
        if misaligned:
            raise bad_params(
                f"Message types {misaligned} belong to channels the user is unsubscribed from; "
                "set validateChannelAlignment to false to subscribe anyway"
            )
    if list_ids is not None:
        wanted = set(list_ids)
        for lid, user_list in lists(project).items():
            if lid in wanted and not is_member(user_list, user):
                user_list.members[member_key(user)] = user
            elif lid not in wanted:
                leave_list(user_list, user)
    if channels is not None:
        user.data_fields[UNSUBSCRIBED_CHANNELS] = channels
    if unsubscribed is not None:
        user.data_fields[UNSUBSCRIBED_TYPES] = list(dict.fromkeys(unsubscribed))
    if subscribed is not None:
        user.data_fields[SUBSCRIBED_TYPES] = list(dict.fromkeys(subscribed))
    for name in (UNSUBSCRIBED_CHANNELS, UNSUBSCRIBED_TYPES, SUBSCRIBED_TYPES):
        if request.get(name) is not None:
            users(project).field_types.setdefault(name, "long")
    user.profile_updated_at = now_ms()


def _toggle(user: User, field: str, item: int, present: bool) -> None:
    values = [v for v in user.data_fields.get(field) or [] if v != item]
    if present:
        values.append(item)
    user.data_fields[field] = values


def _change(call: Call, subscribe: bool) -> Reply:
    project = call.project
    if FEATURE not in project.features:
        raise forbidden("Subscription group endpoints are not enabled for this project")
    group = GROUPS.get(str(call.path_params.get("subscriptionGroup", "")).lower())
    if group is None:
        raise not_found("Endpoint not found")
    group_id = call.int_arg("subscriptionGroupId")
    user_id = call.path_params.get("userId", "")
    if not user_id.strip() or user_id != user_id.strip():
        raise ApiFailure(400, "InvalidUserIdError", f"Invalid userId: {user_id!r}")
    store = users(project)
    if store.is_forgotten(user_id=user_id):
        raise ApiFailure(409, "ForgottenUserError", "Contact is GDPR forgotten")
    # Validate the group before creating anyone, so a refused request changes nothing.
    if group == "emailList":
        target_list = require_list(project, group_id)
    elif group == "messageType" and group_id not in _MESSAGE_TYPES:
        raise bad_params(f"Message type {group_id} does not exist")
    elif group == "messageChannel" and group_id not in _CHANNEL_IDS:
        raise bad_params(f"Channel {group_id} does not exist")
    user = store.by_user_id.get(user_id)
    if user is None:
        if project.identity == "email":
            raise ApiFailure(400, "UnknownUserIdError", f"No user with userId {user_id}")
        user = store.add(User(email=None, user_id=user_id))
    assert group_id is not None
    if group == "emailList":
        if subscribe and not is_member(target_list, user):
            target_list.members[member_key(user)] = user
        elif not subscribe:
            leave_list(target_list, user)
    elif group == "messageType":
        _toggle(user, UNSUBSCRIBED_TYPES, group_id, not subscribe)
        opt_in = _MESSAGE_TYPES[group_id].get("subscriptionPolicy") == "OptIn"
        _toggle(user, SUBSCRIBED_TYPES, group_id, subscribe and opt_in)
    else:
        _toggle(user, UNSUBSCRIBED_CHANNELS, group_id, not subscribe)
    user.profile_updated_at = now_ms()
    verb = "subscribe" if subscribe else "unsubscribe"
    return Reply(success(f"Accepted a request to {verb}"), 202)


@handles("ITERABLE_SUBSCRIBE_USER_BY_ID")
def subscribe_user_by_id(call: Call) -> Reply:
    return _change(call, subscribe=True)


@handles("ITERABLE_UNSUBSCRIBE_USER_BY_ID")
def unsubscribe_user_by_id(call: Call) -> Reply:
    return _change(call, subscribe=False)
