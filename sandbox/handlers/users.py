"""Users: profile updates (single and bulk), lookups, deletes, merges, email changes,
subscription updates, fields, sent messages and GDPR forget/unforget.

Profiles live in ``_shared.users(project)``, which every area reads. Rules this module enforces,
as Iterable does:

* identity follows the project's mode (``email``, ``userId``, ``hybrid``): which identifier may
  create a user, which may only find one, and when two identifiers name different users (409);
* a field keeps the JSON type it was first stored with (``UserStore.field_types``, nested fields
  under dotted paths): a single update answers 400 ``RequestFieldsTypesMismatched``, a bulk
  update reports the record under ``invalidData*``;
* a forgotten identifier (its SHA-256 in ``forgotten_emails``/``forgotten_user_ids``) refuses
  every write with 409 ``ForgottenUserError`` (``forgotten*`` in bulk answers).
"""

from __future__ import annotations

import gc
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from prefect_iterable.sandbox.handlers import _shared
from prefect_iterable.sandbox.handlers._base import ApiFailure, Call, bad_params, handles, success
from prefect_iterable.sandbox.handlers._shared import (
    User,
    identifier_hash,
    lists,
    messages,
    now_ms,
    require_user,
    users,
    valid_email,
    valid_user_id,
)
from prefect_iterable.sandbox.handlers.subscriptions import (
    apply_subscriptions,
    is_member,
    leave_all_lists,
    list_ids_of,
    member_key,
    rekey_memberships,
)
from prefect_iterable.sandbox.state import Project

#: Fields Iterable maintains; a write of them is dropped and reported as filtered out.
MANAGED_FIELDS = frozenset({"emailListIds", "signupDate", "profileUpdatedAt", "itblInternal"})

#: Fields every project has, with Iterable's type names.
BUILTIN_FIELDS = {
    "email": "string",
    "userId": "string",
    "signupDate": "date",
    "profileUpdatedAt": "date",
}

MEDIUMS = ("Email", "Push", "InApp", "SMS")
SENT_MESSAGES_DEFAULT = 10
SENT_MESSAGES_MAX = 1000

_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?: ?(?:Z|[+-]\d{2}:?\d{2}))?)?$"
)
_FAILED_KEYS = (
    "invalidEmails",
    "invalidUserIds",
    "notFoundEmails",
    "notFoundUserIds",
    "forgottenEmails",
    "forgottenUserIds",
    "conflictEmails",
    "conflictUserIds",
    "invalidDataEmails",
    "invalidDataUserIds",
)


def _given(value: Any) -> Any:
    return None if value in (None, "") else value


# ---- refusals ------------------------------------------------------------------------------


class Refusal(Exception):
    """Why one user write was refused: as a single request's error, or a bulk failure key."""

    def __init__(
        self,
        reason: str,
        kind: str,
        identifier: Any,
        status: int,
        code: str,
        msg: str,
        params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(msg)
        self.reason, self.kind, self.identifier = reason, kind, identifier
        self.status, self.code, self.msg, self.params = status, code, msg, params

    @property
    def bulk_key(self) -> str:
        return self.reason + ("Emails" if self.kind == "email" else "UserIds")

    def failure(self) -> ApiFailure:
        return ApiFailure(self.status, self.code, self.msg, self.params)


def _forgotten(kind: str, identifier: str) -> Refusal:
    return Refusal(
        "forgotten", kind, identifier, 409, "ForgottenUserError", "Contact is GDPR forgotten"
    )


def _conflict(kind: str, identifier: str) -> Refusal:
    what = "email" if kind == "email" else "userId"
    return Refusal(
        "conflict",
        kind,
        identifier,
        409,
        "Conflict",
        f"Email/userId conflict: {what} {identifier} belongs to another user",
    )


# ---- identity ------------------------------------------------------------------------------


@dataclass
class Target:
    """The user a write names: an existing profile (maybe gaining an identifier) or a new one."""

    user: User | None
    email: str | None
    user_id: str | None

    @property
    def kind(self) -> str:
        return "email" if self.email is not None else "userId"

    @property
    def identifier(self) -> str | None:
        return self.email if self.email is not None else self.user_id


def _placeholder_email(user_id: str) -> str:
    # Email-based projects give a user created from a userId a placeholder address.
    return f"{identifier_hash(user_id)[:32]}@placeholder.email"


def resolve_target(
    project: Project, email: Any, user_id: Any, *, prefer_user_id: bool = False
) -> Target:
    """Which user ``email``/``user_id`` name in this project, or a ``Refusal``."""
    email, user_id = _given(email), _given(user_id)
    if email is None and user_id is None:
        kind = "userId" if project.identity == "userId" else "email"
        raise Refusal(
            "invalid", kind, None, 400, "BadParams", "Either email or userId must be provided"
        )
    if email is not None and not valid_email(email):
        raise Refusal(
            "invalid", "email", email, 400, "InvalidEmailAddressError", f"Invalid email: {email}"
        )
    if user_id is not None and not valid_user_id(user_id):
        raise Refusal(
            "invalid", "userId", user_id, 400, "InvalidUserIdError", f"Invalid userId: {user_id!r}"
        )
    store = users(project)
    # (Hashing an identifier costs more than the rest of this; most projects forgot no one.)
    if email is not None and store.forgotten_emails and store.is_forgotten(email=email):
        raise _forgotten("email", email)
    if user_id is not None and store.forgotten_user_ids and store.is_forgotten(user_id=user_id):
        raise _forgotten("userId", user_id)
    by_email = store.find(email=email) if email is not None else None
    by_id = store.by_user_id.get(user_id) if user_id is not None else None
    mode = project.identity
    if mode == "email":
        if email is not None:
            if by_id is not None and by_id is not by_email:
                raise _conflict("userId", user_id)
            return Target(by_email, email, user_id)
        if by_id is not None:
            return Target(by_id, by_id.email, user_id)
        if prefer_user_id:
            return Target(None, _placeholder_email(user_id), user_id)
        raise Refusal(
            "notFound",
            "userId",
            user_id,
            400,
            "UnknownUserIdError",
            f"No user with userId {user_id}; set preferUserId to create one",
        )
    if mode == "userId":
        if user_id is not None:
            if by_email is not None and by_email is not by_id:
                raise _conflict("email", email)
            return Target(by_id, email, user_id)
        if by_email is not None:
            return Target(by_email, email, by_email.user_id)
        raise Refusal(
            "notFound",
            "email",
            email,
            400,
            "UnknownEmailError",
            f"No user with email {email}; this project creates users from a userId",
        )
    if by_email is not None and by_id is not None and by_email is not by_id:
        raise _conflict("email", email)
    return Target(by_email or by_id, email, user_id)


def _set_identifiers(project: Project, user: User, email: Any, user_id: Any) -> None:
    email, user_id = _given(email), _given(user_id)
    if (email is None or email == user.email) and (user_id is None or user_id == user.user_id):
        return
    store = users(project)
    store.remove(user)
    if email is not None:
        user.email = email
    if user_id is not None:
        user.user_id = user_id
    store.add(user)
    rekey_memberships(project, user)


def realize(project: Project, target: Target) -> User:
    """The target's user, created or given its new identifier as needed."""
    if target.user is None:
        return users(project).add(User(email=target.email, user_id=target.user_id))
    _set_identifiers(project, target.user, target.email, target.user_id)
    return target.user


def remove_user(project: Project, user: User) -> None:
    users(project).remove(user)
    leave_all_lists(project, user)


# ---- data fields ---------------------------------------------------------------------------


def incoming_types(value: Any) -> list[str]:
    """The types a value could be stored as, most specific first (Iterable's type names)."""
    if isinstance(value, bool):
        return ["boolean"]
    if isinstance(value, int):
        return ["long", "double"]
    if isinstance(value, float):
        return ["double"]
    if isinstance(value, str):
        return ["date", "string", "keyword"] if _DATE.match(value) else ["string", "keyword"]
    if isinstance(value, dict):
        return ["object"]
    if isinstance(value, list):
        for item in value:
            if item is not None:
                return incoming_types(item)
    return []


@dataclass
class FieldCheck:
    accepted: dict[str, Any] = field(default_factory=dict)
    new_types: dict[str, str] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    filtered: list[str] = field(default_factory=list)
    mismatches: dict[str, dict[str, Any]] = field(default_factory=dict)


#: For a value of exactly this type, a stored type in the set certainly accepts it (a subset of
#: what ``incoming_types`` answers), so the common case skips building the list and the date match.
_ACCEPTS: dict[type, frozenset[str]] = {
    str: frozenset({"string", "keyword"}),
    bool: frozenset({"boolean"}),
    int: frozenset({"long", "double"}),
    float: frozenset({"double"}),
}
_OBJECT = frozenset({"object"})


def _note_type(check: FieldCheck, path: str, value: Any, expected: str | None) -> None:
    """Record the type of a new field, or a mismatch with the stored type."""
    types = incoming_types(value)
    if not types:
        return
    if expected is None:
        check.new_types[path] = types[0]
    elif expected not in types:
        check.mismatches[path] = {
            "incomingTypes": types,
            "expectedType": expected,
            "_type": "UnexpectedType",
            "offendingValue": value,
            "category": "user",
        }


def _check_types(
    check: FieldCheck, known: dict[str, str], fields: dict[str, Any], prefix: str
) -> None:
    """``_note_type`` for each field, nested ones under dotted paths (objects in a list under the
    list's path), in order. The hot loop of a bulk update: a value whose stored type certainly
    accepts it is passed over without working out its types."""
    known_get = known.get
    new_get = check.new_types.get
    accepts_get = _ACCEPTS.get
    for name, value in fields.items():
        path = prefix + name if prefix else name
        cls = type(value)
        accepts = accepts_get(cls)
        if accepts is not None:  # a string, number or boolean
            expected = known_get(path) or new_get(path)
            if expected not in accepts:
                _note_type(check, path, value, expected)
            continue
        expected = known_get(path) or new_get(path)
        if cls is dict:
            accepts = _OBJECT
        elif cls is list:  # typed by its first item that is not null
            for item in value:
                if item is not None:
                    accepts = accepts_get(type(item))
                    break
        if accepts is None or expected not in accepts:
            _note_type(check, path, value, expected)
        if isinstance(value, dict):
            _check_types(check, known, value, path + ".")
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    _check_types(check, known, item, path + ".")


#: Per project, for each shape of ``dataFields`` seen (the names in order and each value's type):
#: the names whose check the stored types do not settle. A field whose stored type accepts its
#: value's type stays settled (stored types are never changed), so a bulk update of records of
#: one shape checks only their objects, lists and dates, not every field.
_SHAPES_AREA = "users.field-shapes"
_MAX_SHAPES = 1024


def _check_data_fields(
    check: FieldCheck, project: Project, known: dict[str, str], fields: dict[str, Any]
) -> None:
    shapes: dict[tuple[Any, ...], tuple[str, ...]] = project.area(_SHAPES_AREA, dict)
    shape = (tuple(fields), tuple(map(type, fields.values())))
    unsettled = shapes.get(shape)
    if unsettled is None:
        unsettled = tuple(
            name
            for name, value in fields.items()
            if known.get(name) not in _ACCEPTS.get(type(value), ())
        )
        if len(shapes) < _MAX_SHAPES and all(name in known for name in fields):
            shapes[shape] = unsettled  # (a field not yet stored may be settled next time)
    if len(unsettled) < len(fields):  # the settled ones would note nothing
        fields = {name: fields[name] for name in unsettled}
    _check_types(check, known, fields, "")


def top_level_fields(project: Project) -> set[str]:
    """The top-level names of the project's known fields."""
    return {path.split(".", 1)[0] for path in users(project).field_types}


def check_fields(
    project: Project,
    data_fields: Any,
    create_new_fields: Any,
    top_known: set[str] | None = None,
) -> FieldCheck:
    """Split ``dataFields`` into what may be stored, dropped fields and type mismatches.

    ``top_known``: ``top_level_fields(project)`` when the caller keeps it (a bulk update, which
    adds each stored record's new fields), so it is not rebuilt for every record.
    """
    check = FieldCheck()
    if data_fields is None:
        return check
    if not isinstance(data_fields, dict):
        raise bad_params("dataFields must be an object")
    known = users(project).field_types
    if top_known is None:
        top_known = top_level_fields(project)
    if create_new_fields is False:
        accepted = {
            k: v for k, v in data_fields.items() if k not in MANAGED_FIELDS and k in top_known
        }
    else:
        accepted = {k: v for k, v in data_fields.items() if k not in MANAGED_FIELDS}
    check.accepted = accepted
    if len(accepted) < len(data_fields):
        check.filtered = [name for name in data_fields if name not in accepted]
    if not accepted.keys() <= top_known:
        check.created = [name for name in accepted if name not in top_known]
    _check_data_fields(check, project, known, accepted)
    return check


def _mismatch(project: Project, target: Target, check: FieldCheck) -> Refusal:
    path, detail = next(iter(check.mismatches.items()))
    msg = (
        f"Project {project.id}: The request does not have the same data types as the data "
        f"previously submitted. Field '{path}' already exists for type 'user' and has a data "
        f"type of '{detail['expectedType']}' but possible types "
        f"'{', '.join(detail['incomingTypes'])}' in the request."
    )
    return Refusal(
        "invalidData",
        target.kind,
        target.identifier,
        400,
        "RequestFieldsTypesMismatched",
        msg,
        {"validationErrors": check.mismatches},
    )


def store_fields(project: Project, user: User, check: FieldCheck, *, nested: bool) -> None:
    if check.new_types:
        users(project).field_types.update(check.new_types)
    if not nested:
        user.data_fields.update(check.accepted)
        user.profile_updated_at = now_ms()
        return
    for name, value in check.accepted.items():
        current = user.data_fields.get(name)
        if isinstance(current, dict) and isinstance(value, dict):
            user.data_fields[name] = {**current, **value}
        else:
            user.data_fields[name] = value
    user.profile_updated_at = now_ms()


def user_json(project: Project, user: User) -> dict[str, Any]:
    body = user.as_json()
    list_ids = list_ids_of(project, user)
    if list_ids:
        body["dataFields"]["emailListIds"] = list_ids
    return body


# ---- profile updates -----------------------------------------------------------------------


def _body(call: Call) -> dict[str, Any]:
    if not isinstance(call.body, dict):
        raise bad_params("The request body must be a JSON object")
    return call.body


@handles("ITERABLE_UPDATE_USER")
def update_user(call: Call) -> dict[str, Any]:
    body = _body(call)
    project = call.project
    try:
        target = resolve_target(
            project,
            body.get("email"),
            body.get("userId"),
            prefer_user_id=body.get("preferUserId") is True,
        )
        check = check_fields(project, body.get("dataFields"), body.get("createNewFields"))
        if check.mismatches:
            raise _mismatch(project, target, check)
    except Refusal as refusal:
        raise refusal.failure() from None
    user = realize(project, target)
    store_fields(project, user, check, nested=body.get("mergeNestedObjects") is True)
    return success()


#: From this many profiles in a project, a bulk update moves what the process holds out of the
#: garbage collector's sight (``gc.freeze``). Profiles live as long as the project; without this,
#: the collector rescans all of them again and again while thousands arrive per request (at
#: 100,000 profiles a full collection takes ~0.15 s, and a bulk import triggers one every request
#: or two: the sandbox, not the client, would set the pace). Small test projects never get there.
FREEZE_FROM_PROFILES = 10_000


def _settle_profiles(project: Project) -> None:
    if len(users(project).by_email) >= FREEZE_FROM_PROFILES and gc.isenabled():
        gc.collect(1)  # the young garbage first, so that it is not frozen with the profiles
        gc.freeze()


@handles("ITERABLE_BULK_UPDATE_USERS")
def bulk_update_users(call: Call) -> dict[str, Any]:
    body = _body(call)
    records = body.get("users")
    if not isinstance(records, list) or not records:
        raise bad_params("users must be a non-empty array")
    project = call.project
    failed: dict[str, list[str]] = {key: [] for key in _FAILED_KEYS}
    created: list[str] = []
    filtered: list[str] = []
    success_count = fail_count = 0
    top_known = top_level_fields(project)
    for record in records:
        if not isinstance(record, dict):
            fail_count += 1
            continue
        try:
            target = resolve_target(
                project,
                record.get("email"),
                record.get("userId"),
                prefer_user_id=record.get("preferUserId") is True,
            )
            check = check_fields(
                project, record.get("dataFields"), body.get("createNewFields"), top_known
            )
            if check.mismatches:
                raise _mismatch(project, target, check)
        except Refusal as refusal:
            fail_count += 1
            if refusal.identifier is not None:
                failed[refusal.bulk_key].append(str(refusal.identifier))
            continue
        except ApiFailure:
            fail_count += 1
            key = "invalidDataEmails" if _given(record.get("email")) else "invalidDataUserIds"
            failed[key].append(str(_given(record.get("email")) or record.get("userId")))
            continue
        user = realize(project, target)
        store_fields(project, user, check, nested=record.get("mergeNestedObjects") is True)
        success_count += 1
        if check.new_types:
            top_known.update(path.split(".", 1)[0] for path in check.new_types)
        if check.created:
            created += [f for f in check.created if f not in created]
        if check.filtered:
            filtered += [f for f in check.filtered if f not in filtered]
    if success_count:
        _settle_profiles(project)
    failed_emails = [e for key in _FAILED_KEYS if key.endswith("Emails") for e in failed[key]]
    failed_ids = [u for key in _FAILED_KEYS if key.endswith("UserIds") for u in failed[key]]
    return {
        "successCount": success_count,
        "failCount": fail_count,
        "createdFields": created,
        "filteredOutFields": filtered,
        "failedUpdates": failed,
        # Deprecated: every email and userId that failed, whatever the reason.
        "invalidEmails": failed_emails,
        "invalidUserIds": failed_ids,
    }


# ---- lookups and deletes -------------------------------------------------------------------


def _get_by_user_id(call: Call) -> dict[str, Any]:
    user_id = _given(call.arg("userId"))
    if user_id is None:
        raise bad_params("userId is required")
    user = users(call.project).by_user_id.get(str(user_id))
    # Iterable answers an unknown user with success and no "user" key.
    return {"user": user_json(call.project, user)} if user is not None else {}


@handles("ITERABLE_GET_USER_BY_ID")
def get_user_by_id(call: Call) -> dict[str, Any]:
    return _get_by_user_id(call)


@handles("ITERABLE_GET_USER_BY_ID_PATH")
def get_user_by_id_path(call: Call) -> dict[str, Any]:
    return _get_by_user_id(call)


@handles("ITERABLE_DELETE_USER_BY_ID")
def delete_user_by_id(call: Call) -> dict[str, Any]:
    user_id = str(call.arg("userId"))
    user = require_user(call.project, None, user_id)
    remove_user(call.project, user)
    return success(f"User {user_id} is queued for deletion")


# ---- merge and email change ----------------------------------------------------------------


def _one_of(body: dict[str, Any], email_key: str, user_id_key: str) -> tuple[Any, Any]:
    email, user_id = _given(body.get(email_key)), _given(body.get(user_id_key))
    if email is None and user_id is None:
        raise bad_params(f"Either {email_key} or {user_id_key} must be provided")
    if email is not None and not valid_email(email):
        raise ApiFailure(400, "InvalidEmailAddressError", f"Invalid email: {email}")
    if user_id is not None and not valid_user_id(user_id):
        raise ApiFailure(400, "InvalidUserIdError", f"Invalid userId: {user_id!r}")
    return email, user_id


def _merge_arrays(dest: list[Any], source: list[Any], dedupe_by: str | None) -> list[Any]:
    def key(item: Any) -> Any:
        if dedupe_by is not None and isinstance(item, dict):
            return ("key", repr(item.get(dedupe_by)))
        return ("item", repr(item))

    seen = {key(item) for item in dest}
    merged = list(dest)
    for item in source:
        if key(item) not in seen:
            seen.add(key(item))
            merged.append(item)
    return merged


@handles("ITERABLE_MERGE_USERS")
def merge_users(call: Call) -> dict[str, Any]:
    body = _body(call)
    project = call.project
    store = users(project)
    source_email, source_id = _one_of(body, "sourceEmail", "sourceUserId")
    dest_email, dest_id = _one_of(body, "destinationEmail", "destinationUserId")
    array_merge = body.get("arrayMerge") or []
    if not isinstance(array_merge, list) or not all(
        isinstance(a, dict) and isinstance(a.get("field"), str) for a in array_merge
    ):
        raise bad_params("arrayMerge must be an array of {field, dedupeBy}")
    if store.is_forgotten(source_email, source_id) or store.is_forgotten(dest_email, dest_id):
        raise ApiFailure(409, "ForgottenUserError", "Source or destination user forgotten")
    source = require_user(project, source_email, source_id)
    dest = store.find(dest_email, dest_id)
    if dest is source:
        raise bad_params("The source and destination are the same user")
    if dest is None:
        # No destination: the source takes the destination's identifier instead.
        _set_identifiers(project, source, dest_email, dest_id)
        return success("Destination not found; source user updated")
    arrays = {a["field"]: a.get("dedupeBy") for a in array_merge}
    for name, value in source.data_fields.items():
        current = dest.data_fields.get(name)
        if name in arrays and isinstance(current, list) and isinstance(value, list):
            dest.data_fields[name] = _merge_arrays(current, value, arrays[name])
        elif name not in dest.data_fields:
            dest.data_fields[name] = value
    dest.signup_date = min(dest.signup_date, source.signup_date)
    dest.profile_updated_at = now_ms()
    for list_id in list_ids_of(project, source):
        target_list = lists(project)[list_id]
        if not is_member(target_list, dest):
            target_list.members[member_key(dest)] = dest
    # Events move with the profile: the message log now names the destination.
    for entry in messages(project):
        if _names(entry, source):
            entry["email"], entry["userId"] = dest.email, dest.user_id
    remove_user(project, source)
    return success()


def _names(entry: dict[str, Any], user: User) -> bool:
    email = entry.get("email")
    return (
        user.email is not None and isinstance(email, str) and email.lower() == user.email.lower()
    ) or (user.user_id is not None and entry.get("userId") == user.user_id)


@handles("ITERABLE_UPDATE_USER_EMAIL")
def update_user_email(call: Call) -> dict[str, Any]:
    body = _body(call)
    project = call.project
    if project.identity != "email":
        raise bad_params(
            "users/updateEmail is for email-based projects; set the email with users/update"
        )
    new_email = _given(body.get("newEmail"))
    if new_email is None:
        raise bad_params("newEmail is required")
    if not valid_email(new_email):
        raise ApiFailure(400, "InvalidEmailAddressError", f"Invalid email: {new_email}")
    current_email = _given(body.get("currentEmail"))
    # Iterable lets currentEmail win when both are sent.
    current_id = None if current_email is not None else _given(body.get("currentUserId"))
    if current_email is None and current_id is None:
        raise bad_params("Provide currentEmail or currentUserId")
    store = users(project)
    if store.is_forgotten(current_email, current_id) or store.is_forgotten(email=new_email):
        raise ApiFailure(409, "ForgottenUserError", "Contact is GDPR forgotten")
    user = require_user(project, current_email, current_id)
    other = store.find(email=new_email)
    if other is not None and other is not user:
        raise ApiFailure(409, "Conflict", f"Email/userId conflict: {new_email} already exists")
    previous = User(email=user.email, user_id=None)
    store.remove(user)
    user.email = new_email
    store.add(user)
    rekey_memberships(project, user)
    # Events move with the profile: messages sent to the old address now name the new one.
    for entry in messages(project):
        if _names(entry, previous):
            entry["email"] = new_email
    user.profile_updated_at = now_ms()
    return success()


# ---- subscriptions -------------------------------------------------------------------------


@handles("ITERABLE_UPDATE_USER_SUBSCRIPTIONS")
def update_user_subscriptions(call: Call) -> dict[str, Any]:
    body = _body(call)
    project = call.project
    try:
        target = resolve_target(project, body.get("email"), body.get("userId"))
    except Refusal as refusal:
        raise refusal.failure() from None
    # Check the request against a throwaway profile first, so a refused one creates no user.
    user = target.user or User(email=target.email, user_id=target.user_id)
    apply_subscriptions(project, user, body)
    if target.user is None:
        users(project).add(user)
        rekey_memberships(project, user)
    else:
        _set_identifiers(project, user, target.email, target.user_id)
    return success()


@handles("ITERABLE_UPDATE_USER_SUBSCRIPTIONS_BULK")
def update_user_subscriptions_bulk(call: Call) -> dict[str, Any]:
    body = _body(call)
    requests = body.get("updateSubscriptionsRequests")
    if not isinstance(requests, list) or not requests:
        raise bad_params("updateSubscriptionsRequests must be a non-empty array")
    project = call.project
    answer: dict[str, Any] = {
        "successCount": 0,
        "failCount": 0,
        "invalidEmails": [],
        "invalidUserIds": [],
        "validEmailFailures": [],
        "validUserIdFailures": [],
    }
    for request in requests:
        if not isinstance(request, dict):
            answer["failCount"] += 1
            continue
        try:
            target = resolve_target(project, request.get("email"), request.get("userId"))
            user = target.user or User(email=target.email, user_id=target.user_id)
            apply_subscriptions(project, user, request)
        except Refusal as refusal:
            answer["failCount"] += 1
            if refusal.identifier is None:
                continue
            if refusal.reason == "invalid":
                key = "invalidEmails" if refusal.kind == "email" else "invalidUserIds"
            else:
                key = "validEmailFailures" if refusal.kind == "email" else "validUserIdFailures"
            answer[key].append(str(refusal.identifier))
            continue
        except ApiFailure:
            answer["failCount"] += 1
            email = _given(request.get("email"))
            key = "validEmailFailures" if email is not None else "validUserIdFailures"
            answer[key].append(str(email if email is not None else request.get("userId")))
            continue
        if target.user is None:
            users(project).add(user)
            rekey_memberships(project, user)
        else:
            _set_identifiers(project, user, target.email, target.user_id)
        answer["successCount"] += 1
    return answer


# ---- fields and messages -------------------------------------------------------------------


@handles("ITERABLE_LIST_USER_FIELDS")
def list_user_fields(call: Call) -> dict[str, Any]:
    store = users(call.project)
    fields = dict(BUILTIN_FIELDS)
    if any(list_ids_of(call.project, user) for user in store.all()):
        fields["emailListIds"] = "long"
    fields.update(store.field_types)
    return {"fields": dict(sorted(fields.items()))}


def _query_time(call: Call, name: str) -> int | None:
    raw = _given(call.arg(name))
    if raw is None:
        return None
    return _shared.parse_time_ms(raw, name)


def _profile_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S +00:00")


@handles("ITERABLE_GET_USER_SENT_MESSAGES")
def get_user_sent_messages(call: Call) -> dict[str, Any]:
    project = call.project
    email, user_id = _given(call.arg("email")), _given(call.arg("userId"))
    if email is None and user_id is None:
        raise bad_params("Either email or userId must be provided")
    limit = call.int_arg("limit", SENT_MESSAGES_DEFAULT)
    assert limit is not None
    if not 1 <= limit <= SENT_MESSAGES_MAX:
        raise bad_params(f"limit must be between 1 and {SENT_MESSAGES_MAX}")
    medium = _given(call.arg("messageMedium"))
    if medium is not None and medium not in MEDIUMS:
        raise bad_params(f"messageMedium must be one of {', '.join(MEDIUMS)}")
    try:
        campaign_ids = {int(c) for c in call.args("campaignIds")}
    except ValueError:
        raise bad_params("campaignIds must be integers") from None
    start, end = _query_time(call, "startDateTime"), _query_time(call, "endDateTime")
    exclude_blast = call.bool_arg("excludeBlastCampaigns") and not campaign_ids
    user = users(project).find(email, user_id) or User(email, user_id)
    found = []
    for entry in messages(project):
        sent_at = entry.get("sendAt") or entry.get("createdAt") or 0
        if (
            entry.get("status", "sent") != "sent"
            or not _names(entry, user)
            or (campaign_ids and entry.get("campaignId") not in campaign_ids)
            or (medium is not None and entry.get("medium") != medium)
            or (start is not None and sent_at < start)
            or (end is not None and sent_at > end)
            or (exclude_blast and _is_blast(entry))
        ):
            continue
        found.append((sent_at, entry))
    found.sort(key=lambda pair: pair[0], reverse=True)
    return {
        "messages": [
            {
                "messageId": entry["messageId"],
                "campaignId": entry.get("campaignId"),
                "templateId": entry.get("templateId"),
                "createdAt": _profile_time(sent_at),
            }
            for sent_at, entry in found[:limit]
        ]
    }


def _is_blast(entry: dict[str, Any]) -> bool:
    if "campaignType" in entry:
        return entry["campaignType"] == "Blast"
    return entry.get("kind") == "campaign"


# ---- GDPR ----------------------------------------------------------------------------------


def _gdpr_identifier(call: Call, verb: str) -> tuple[str | None, str | None]:
    body = _body(call)
    email, user_id = _given(body.get("email")), _given(body.get("userId"))
    if email is None and user_id is None:  # both may be sent; the email goes first
        raise bad_params("Either email or userId must be provided")
    mode = call.project.identity
    if mode == "email" and email is None:
        raise bad_params(f"Email-based projects {verb} users by email")
    if mode == "userId" and user_id is None:
        raise bad_params(f"UserID-based projects {verb} users by userId")
    if email is not None and not valid_email(email):
        raise ApiFailure(400, "InvalidEmailAddressError", f"Invalid email: {email}")
    if user_id is not None and not valid_user_id(user_id):
        raise ApiFailure(400, "InvalidUserIdError", f"Invalid userId: {user_id!r}")
    return email, user_id


@handles("ITERABLE_FORGET_USER")
def forget_user(call: Call) -> dict[str, Any]:
    email, user_id = _gdpr_identifier(call, "forget")
    project = call.project
    store = users(project)
    user = store.find(email=email) if email is not None else store.by_user_id.get(user_id or "")
    if user is not None:
        remove_user(project, user)
    # Only the hash is kept, so nothing about the person remains but the block.
    if email is not None:
        store.forgotten_emails.add(identifier_hash(email))
    else:
        store.forgotten_user_ids.add(identifier_hash(user_id or ""))
    return success()


@handles("ITERABLE_UNFORGET_USER")
def unforget_user(call: Call) -> dict[str, Any]:
    email, user_id = _gdpr_identifier(call, "unforget")
    store = users(call.project)
    if email is not None:
        store.forgotten_emails.discard(identifier_hash(email))
    else:
        store.forgotten_user_ids.discard(identifier_hash(user_id or ""))
    return success()


@handles("ITERABLE_LIST_FORGOTTEN_USER_IDS")
def list_forgotten_user_ids(call: Call) -> dict[str, Any]:
    if call.project.identity == "email":
        raise bad_params(
            "Forgotten userIds are kept for userID-based and hybrid projects only; "
            "this project is email-based"
        )
    return {"hashedUserIds": sorted(users(call.project).forgotten_user_ids)}
