"""System webhooks: listed and updated through the API, created only in Iterable's UI.

Each project starts with two webhooks (seeded on first access), as if set up in the UI. State:
``project.area("webhooks", …)`` maps id to the stored webhook, auth token and headers included;
answers leave those two out, as Iterable's do.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from prefect_iterable.sandbox.handlers._base import Call, bad_params, handles, not_found
from prefect_iterable.sandbox.state import Project

AUTH_TYPES = ("NoAuth", "Basic", "OAuth2")
# Fields POST /api/webhooks may change, by wire name, with the JSON type each must have.
_UPDATABLE = {
    "enabled": bool,
    "authType": str,
    "authToken": str,
    "endpoint": str,
    "headers": list,
    "blastSendEnabled": bool,
    "triggeredSendEnabled": bool,
}
_PRIVATE = ("authToken", "headers")


def _seed(project: Project) -> dict[int, dict[str, Any]]:
    first, second = project.next_id(), project.next_id()
    return {
        first: {
            "id": first,
            "endpoint": "https://hooks.example.com/iterable/sends",
            "enabled": True,
            "authType": "NoAuth",
            "authToken": None,
            "headers": [],
            "blastSendEnabled": True,
            "triggeredSendEnabled": True,
            "channelIds": [1, 2],
            "messageTypeIds": [],
        },
        second: {
            "id": second,
            "endpoint": "https://crm.example.com/webhooks/iterable",
            "enabled": False,
            "authType": "Basic",
            "authToken": "c2FuZGJveDpzZWNyZXQ=",
            "headers": [{"key": "X-Source", "value": "iterable"}],
            "blastSendEnabled": False,
            "triggeredSendEnabled": True,
            "channelIds": [3],
            "messageTypeIds": [13],
        },
    }


def webhooks(project: Project) -> dict[int, dict[str, Any]]:
    return project.area("webhooks", lambda: _seed(project))


def public(webhook: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in webhook.items() if k not in _PRIVATE}


def _check(changes: dict[str, Any]) -> None:
    for wire, kind in _UPDATABLE.items():
        if wire in changes and not isinstance(changes[wire], kind):
            raise bad_params(f"{wire} must be a {kind.__name__}")
    if "authType" in changes and changes["authType"] not in AUTH_TYPES:
        raise bad_params(f"authType must be one of {', '.join(AUTH_TYPES)}")
    if "endpoint" in changes:
        parts = urlsplit(changes["endpoint"])
        if parts.scheme != "https" or not parts.hostname:
            raise bad_params("endpoint must be an https:// URL")
    for header in changes.get("headers", []):
        if not (
            isinstance(header, dict)
            and isinstance(header.get("key"), str)
            and header["key"]
            and isinstance(header.get("value"), str)
        ):
            raise bad_params("headers must be objects with a non-empty key and a value")


@handles("ITERABLE_LIST_WEBHOOKS")
def list_webhooks(call: Call) -> dict[str, Any]:
    return {"webhooks": [public(w) for _, w in sorted(webhooks(call.project).items())]}


@handles("ITERABLE_UPDATE_WEBHOOK")
def update_webhook(call: Call) -> dict[str, Any]:
    call.require("id")
    webhook_id = call.int_arg("id")
    webhook = webhooks(call.project).get(webhook_id)  # type: ignore[arg-type]
    if webhook is None:
        raise not_found(f"Webhook {webhook_id} not found")
    body = call.body if isinstance(call.body, dict) else {}
    changes = {k: v for k, v in body.items() if k in _UPDATABLE and v is not None}
    _check(changes)
    webhook.update(changes)
    return public(webhook)
