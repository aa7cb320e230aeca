"""State that several API areas read: users, lists, templates and the message log.

Each area module keeps what only it needs to itself; what crosses areas (a campaign sends to a
list's members, a proof renders a template, a track call creates a user) lives here, once.
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from prefect_iterable.sandbox import system_webhooks
from prefect_iterable.sandbox.handlers._base import ApiFailure, Call, bad_params
from prefect_iterable.sandbox.state import Project


def now_ms() -> int:
    return int(time.time() * 1000)


def identifier_hash(value: str) -> str:
    """How Iterable stores a forgotten identifier: SHA-256 of the lower-cased, trimmed value."""
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()


# ---- dates ---------------------------------------------------------------------------------

_SPACE_BEFORE_OFFSET = re.compile(r"(?<=\d) (?=[+-]\d{2}:?\d{2}$)")


def parse_time(value: Any, name: str) -> datetime:
    """A date parameter as Iterable reads it, in any of the spellings it accepts, made aware.

    ISO 8601 (``T`` or a space, ``Z`` or an offset) and Iterable's ``yyyy-MM-dd HH:mm:ss ZZ``
    (``+0000``, ``+00:00`` after a space, or no offset, meaning UTC); a bare date is midnight.
    """
    text = _SPACE_BEFORE_OFFSET.sub("", str(value).strip())
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise bad_params(
            f"{name} must be a date and time such as 'yyyy-MM-dd HH:mm:ss +00:00', got {value!r}"
        ) from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def parse_time_ms(value: Any, name: str) -> int:
    return int(parse_time(value, name).timestamp() * 1000)


# ---- users ---------------------------------------------------------------------------------


@dataclass
class User:
    email: str | None
    user_id: str | None
    data_fields: dict[str, Any] = field(default_factory=dict)
    signup_date: int = field(default_factory=now_ms)
    profile_updated_at: int = field(default_factory=now_ms)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"dataFields": dict(self.data_fields)}
        body["dataFields"]["signupDate"] = self.signup_date
        body["dataFields"]["profileUpdatedAt"] = self.profile_updated_at
        if self.email is not None:
            body["email"] = self.email
            body["dataFields"]["email"] = self.email
        if self.user_id is not None:
            body["userId"] = self.user_id
            body["dataFields"]["userId"] = self.user_id
        return body


@dataclass
class UserStore:
    """A project's user profiles, indexed by email and by userId."""

    by_email: dict[str, User] = field(default_factory=dict)
    by_user_id: dict[str, User] = field(default_factory=dict)
    forgotten_emails: set[str] = field(default_factory=set)  # identifier_hash values
    forgotten_user_ids: set[str] = field(default_factory=set)
    field_types: dict[str, str] = field(default_factory=dict)  # field -> JSON type name

    def find(self, email: str | None = None, user_id: str | None = None) -> User | None:
        if email is not None and email.lower() in self.by_email:
            return self.by_email[email.lower()]
        if user_id is not None:
            return self.by_user_id.get(user_id)
        return None

    def is_forgotten(self, email: str | None = None, user_id: str | None = None) -> bool:
        return (email is not None and identifier_hash(email) in self.forgotten_emails) or (
            user_id is not None and identifier_hash(user_id) in self.forgotten_user_ids
        )

    def add(self, user: User) -> User:
        if user.email is not None:
            self.by_email[user.email.lower()] = user
        if user.user_id is not None:
            self.by_user_id[user.user_id] = user
        return user

    def remove(self, user: User) -> None:
        if user.email is not None:
            self.by_email.pop(user.email.lower(), None)
        if user.user_id is not None:
            self.by_user_id.pop(user.user_id, None)

    def all(self) -> list[User]:
        seen: dict[int, User] = {}
        for user in [*self.by_email.values(), *self.by_user_id.values()]:
            seen[id(user)] = user
        return list(seen.values())


def users(project: Project) -> UserStore:
    return project.area("users", UserStore)


# One address and userId rule for every endpoint, single or bulk, as Iterable has one.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*$")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_USER_ID = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$")


def valid_email(value: Any) -> bool:
    """Iterable's address check: stricter than a shape check (no empty or doubled dots, label
    and length limits), so some addresses a client accepts are still refused here."""
    if not isinstance(value, str) or len(value) > 254:
        return False
    local, at, domain = value.rpartition("@")
    if not at or len(local) > 64 or not _LOCAL.match(local):
        return False
    return _valid_domain(domain)


@functools.lru_cache(maxsize=4096)  # a bulk update names the same few domains again and again
def _valid_domain(domain: str) -> bool:
    labels = domain.split(".")
    return (
        len(labels) >= 2
        and all(_LABEL.match(label) for label in labels)
        and labels[-1].isalpha()
        and len(labels[-1]) >= 2
    )


def valid_user_id(value: Any) -> bool:
    return isinstance(value, str) and len(value.encode()) <= 512 and bool(_USER_ID.match(value))


def user_identity(
    call: Call, email_key: str = "email", user_id_key: str = "userId"
) -> tuple[str | None, str | None]:
    """The (email, userId) a request names, checked against the project's identity mode.

    Email-based projects identify by email, userID-based by userId, hybrid by either. Both may
    be sent: Iterable's documentation asks for one, but it accepts both (hybrid projects send
    both), and goes by the one the project identifies users by.
    """
    email = call.arg(email_key)
    user_id = call.arg(user_id_key)
    return check_identity(call.project, email, user_id)


def check_identity(project: Project, email: Any, user_id: Any) -> tuple[str | None, str | None]:
    if email in ("", None) and user_id in ("", None):
        raise bad_params("Either email or userId must be provided")
    if project.identity == "userId" and user_id in ("", None):
        raise bad_params("This project identifies users by userId")
    if project.identity == "email" and email in ("", None):
        raise bad_params("This project identifies users by email")
    if email not in ("", None) and ("@" not in str(email) or len(str(email)) > 254):
        raise ApiFailure(400, "InvalidEmailAddressError", f"Invalid email: {email}")
    return (
        str(email) if email not in ("", None) else None,
        str(user_id) if user_id not in ("", None) else None,
    )


def get_or_create_user(project: Project, email: str | None, user_id: str | None) -> User:
    store = users(project)
    if store.is_forgotten(email, user_id):
        raise ApiFailure(409, "ForgottenUserError", "Contact is GDPR forgotten")
    user = store.find(email, user_id)
    if user is None:
        user = store.add(User(email=email, user_id=user_id))
    return user


def require_user(project: Project, email: str | None, user_id: str | None) -> User:
    user = users(project).find(email, user_id)
    if user is None:
        if email is not None:
            raise ApiFailure(400, "UnknownEmailError", f"No user with email {email}")
        raise ApiFailure(400, "UnknownUserIdError", f"No user with userId {user_id}")
    return user


# ---- lists ---------------------------------------------------------------------------------


@dataclass
class UserList:
    id: int
    name: str
    list_type: str = "Standard"
    description: str | None = None
    created_at: int = field(default_factory=now_ms)
    members: dict[str, User] = field(default_factory=dict)  # keyed by email or userId

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "createdAt": self.created_at,
            "listType": self.list_type,
        }
        if self.description is not None:
            body["description"] = self.description
        return body


def lists(project: Project) -> dict[int, UserList]:
    return project.area("lists", dict)


def require_list(project: Project, list_id: Any) -> UserList:
    try:
        found = lists(project).get(int(list_id))
    except (TypeError, ValueError):
        found = None
    if found is None:
        raise ApiFailure(400, "BadParams", f"List {list_id} does not exist")
    return found


# ---- templates -----------------------------------------------------------------------------

MEDIUMS = ("Email", "Push", "SMS", "InApp", "Embedded")


def templates(project: Project) -> dict[int, dict[str, Any]]:
    """Templates by id; each is its wire JSON plus ``messageMedium`` and ``templateType``."""
    return project.area("templates", dict)


def require_template(
    project: Project, template_id: Any, medium: str | None = None
) -> dict[str, Any]:
    try:
        found = templates(project).get(int(template_id))
    except (TypeError, ValueError):
        found = None
    if found is None or (medium is not None and found.get("messageMedium") != medium):
        raise ApiFailure(404, "NotFound", f"Template {template_id} not found")
    return found


# ---- messages ------------------------------------------------------------------------------


def messages(project: Project) -> list[dict[str, Any]]:
    """Every message the project sent or scheduled: campaign sends, proofs and targeted sends.

    Each entry: ``messageId``, ``kind`` (campaign, proof, target), ``medium``, ``campaignId``,
    ``templateId``, ``email``, ``userId``, ``status`` (scheduled, sent, cancelled), ``sendAt``
    and ``createdAt`` (ms), and ``dataFields``.
    """
    return project.area("messages", list)


def record_message(project: Project, **fields: Any) -> dict[str, Any]:
    # Iterable's messageIds are unique 32-hex strings, never reused: a counter would repeat in
    # every fresh sandbox, and the webhook receiver's dedupe would then drop a new demo's events.
    fields.setdefault("scheduledMessageId", project.next_id())
    entry = {
        "messageId": uuid.uuid4().hex,
        "status": "sent",
        "createdAt": now_ms(),
        **fields,
    }
    messages(project).append(entry)
    system_webhooks.on_message(project, entry)
    return entry
