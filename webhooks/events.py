"""From one Iterable system webhook body to one Prefect event: its name, resources and payload.

Event names follow one scheme, ``iterable.<channel>.<action>``, lower case: Iterable's
``eventName`` is split after its channel prefix (email, push, sms, inApp, webPush, inbox,
whatsApp, embedded, rcs). ``emailBounce`` → ``iterable.email.bounce``, ``emailUnSubscribe`` →
``iterable.email.unsubscribe``, ``inAppSend`` → ``iterable.inapp.send``. A name with no channel
prefix keeps its whole lower-cased name: ``customEvent`` → ``iterable.customevent``,
``purchase`` → ``iterable.purchase``.

The event's resource is the user, ``iterable.user.<sha256>``, where the hash is the SHA-256 of the
email (trimmed, lower-cased) or else of the userId (trimmed): the same hash the GDPR audit log
keys on. Campaign and template are related resources. The payload is the webhook body without the
fields that identify a person (unless the operator opts in).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Any

__all__ = [
    "IDENTIFYING_FIELDS",
    "event_id",
    "event_name",
    "message_key",
    "open_identity",
    "prefect_event",
    "seal_identity",
    "user_hash",
]

_CHANNELS = ("webPush", "whatsApp", "embedded", "email", "inApp", "inbox", "push", "sms", "rcs")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")

#: Body fields (at any depth) that identify a person; dropped from payloads unless opted in.
IDENTIFYING_FIELDS = frozenset(
    {
        "email",
        "userId",
        "recipientEmail",
        "recipientUserId",
        "toEmail",
        "fromEmail",
        "phoneNumber",
        "toPhoneNumber",
        "fromPhoneNumber",
        "deviceToken",
        "token",
        "ip",
        "ipAddress",
        "userAgent",
        "firstName",
        "lastName",
    }
)

# Event ids are derived from Iterable's message id, so a webhook Iterable retries after our
# answer was lost maps to the same Prefect event id.
_NAMESPACE = uuid.UUID("6c0c2f57-4b8e-4d7a-9a55-1f3e2a7d8b10")


def event_name(raw: Any) -> str:
    """``iterable.<channel>.<action>`` for an Iterable ``eventName``; raises ``ValueError``."""
    if not isinstance(raw, str) or not _NAME.match(raw):
        raise ValueError("eventName must be a name of letters and digits")
    for channel in _CHANNELS:
        if raw.startswith(channel) and len(raw) > len(channel) and raw[len(channel)].isupper():
            return f"iterable.{channel.lower()}.{raw[len(channel) :].lower()}"
    return f"iterable.{raw.lower()}"


def _identity(body: dict[str, Any]) -> str | None:
    fields = body.get("dataFields")
    data: dict[str, Any] = fields if isinstance(fields, dict) else {}
    for source in (body, data):
        email = source.get("email")
        if isinstance(email, str) and email.strip():
            return email.strip().lower()
    for source in (body, data):
        user_id = source.get("userId")
        if (
            isinstance(user_id, (str, int))
            and not isinstance(user_id, bool)
            and str(user_id).strip()
        ):
            return str(user_id).strip()
    return None


def user_hash(body: dict[str, Any]) -> str | None:
    """SHA-256 of the body's email (trimmed, lower-cased), else of its userId; None if neither."""
    identity = _identity(body)
    return hashlib.sha256(identity.encode()).hexdigest() if identity is not None else None


def _field(body: dict[str, Any], name: str) -> Any:
    data = body.get("dataFields")
    if isinstance(data, dict) and data.get(name) is not None:
        return data[name]
    return body.get(name)


def message_key(body: dict[str, Any]) -> tuple[str, str] | None:
    """``(messageId, eventName)``, Iterable's identity of one webhook; None without a messageId."""
    message_id = _field(body, "messageId")
    if message_id is None or isinstance(message_id, (dict, list, bool)):
        return None
    return str(message_id), str(body.get("eventName"))


def event_id(body: dict[str, Any]) -> uuid.UUID:
    """A Prefect event id: stable for one (messageId, eventName), random without a messageId."""
    key = message_key(body)
    return uuid.uuid5(_NAMESPACE, "\x1f".join(key)) if key else uuid.uuid4()


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in IDENTIFYING_FIELDS}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _id_part(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    text = str(value).strip()
    return text if text and re.fullmatch(r"[\w.-]{1,100}", text) else None


def seal_identity(body: dict[str, Any], key: str) -> str | None:
    """The body's email and userId, encrypted (Fernet) with ``key``; None if it names nobody.

    A flow that must act on the user (suppress a bounced address) opens it with the same key,
    held in a Prefect Secret block; Prefect itself only ever stores the ciphertext.
    """
    from cryptography.fernet import Fernet

    identity = {
        name: value
        for name in ("email", "userId")
        if isinstance(value := _field(body, name), (str, int)) and not isinstance(value, bool)
    }
    if not identity:
        return None
    return Fernet(key.encode()).encrypt(json.dumps(identity).encode()).decode()


def open_identity(sealed: str, key: str) -> dict[str, Any]:
    """The ``{"email"?, "userId"?}`` that ``seal_identity`` sealed; raises ``ValueError``."""
    from cryptography.fernet import Fernet, InvalidToken

    try:
        return json.loads(Fernet(key.encode()).decrypt(sealed.encode()))
    except (InvalidToken, ValueError):
        raise ValueError("the sealed identity does not open with this key") from None


def prefect_event(
    body: dict[str, Any], *, include_identifiers: bool = False, seal_key: str | None = None
) -> dict[str, Any]:
    """The Prefect event (as JSON) for one webhook body; raises ``ValueError`` if it has none.

    Resource ``iterable.user.<sha256>`` (``iterable.user.unknown`` when the body names nobody),
    related ``iterable.campaign.<id>`` and ``iterable.template.<id>`` when the body has them.
    With ``seal_key``, the payload's ``sealed_identity`` carries the identifiers encrypted.
    """
    name = event_name(body.get("eventName"))
    digest = user_hash(body)
    resource = {
        "prefect.resource.id": f"iterable.user.{digest or 'unknown'}",
        "prefect.resource.role": "user",
        "iterable.event-name": str(body["eventName"]),
    }
    related = []
    for kind, field in (("campaign", "campaignId"), ("template", "templateId")):
        part = _id_part(_field(body, field))
        if part is not None:
            related.append(
                {"prefect.resource.id": f"iterable.{kind}.{part}", "prefect.resource.role": kind}
            )
    payload = body if include_identifiers else _scrub(body)
    extra: dict[str, Any] = {"user_sha256": digest}
    if seal_key is not None:
        extra["sealed_identity"] = seal_identity(body, seal_key)
    return {
        "id": str(event_id(body)),
        "event": name,
        "resource": resource,
        "related": related,
        "payload": {**payload, **extra},
    }
